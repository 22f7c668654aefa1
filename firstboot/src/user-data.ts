// The `syntropy:` section of EC2 user data. Its own module because it needs the YAML library,
// which first boot loads only when the instance has user data (commands/boot.ts imports this
// module on demand): parsing ~100 KB of JavaScript costs a small instance CPU at every boot.
import { parse as parseYaml } from 'yaml';
import { checkAgentName, checkSsmParameterName, checkToken, parseTags } from './validate.ts';
import { registerSecret } from './secrets.ts';
import { SourceError, type RawSettings } from './sources.ts';

/**
 * The parts of MIME multipart user data (cloud-init's "mime-multi-part archive") that can hold a
 * `syntropy:` section: text/cloud-config, text/plain and text/yaml parts, base64 decoded.
 */
export function multipartConfigs(text: string): string[] | null {
  const head = text.slice(0, 4096);
  if (!/^Content-Type:\s*multipart\//im.test(head)) return null;
  const b = /boundary="?([^";\r\n]+)"?/i.exec(head)?.[1];
  if (!b) throw new SourceError('user data is MIME multipart without a boundary');
  const parts: string[] = [];
  for (const chunk of text.split(`--${b}`).slice(1)) {
    if (chunk.startsWith('--')) break;
    const sep = chunk.search(/\r?\n\r?\n/);
    if (sep < 0) continue;
    const headers = chunk.slice(0, sep);
    let body = chunk.slice(sep).replace(/^\r?\n\r?\n/, '');
    const type = /^Content-Type:\s*([^;\s]+)/im.exec(headers)?.[1]?.toLowerCase() ?? 'text/plain';
    if (!['text/cloud-config', 'text/plain', 'text/yaml', 'text/x-yaml'].includes(type)) continue;
    if (/^Content-Transfer-Encoding:\s*base64/im.test(headers)) body = Buffer.from(body, 'base64').toString('utf8');
    parts.push(body);
  }
  return parts;
}

export interface UserDataResult {
  settings: RawSettings;
  warnings: string[];
}

const USER_DATA_KEYS = ['port_range', 'agent_name', 'tags', 'token', 'token_ssm_parameter'] as const;

/**
 * Reads the `syntropy:` section of user data (YAML or JSON; a cloud-config is fine).
 * Returns null when user data holds no such section; throws a SourceError naming the key
 * for a section that is present but wrong. The token is never part of an error message.
 */
export function parseUserData(text: string | null): UserDataResult | null {
  if (text === null || text.trim() === '') return null;
  const parts = multipartConfigs(text);
  if (parts !== null) {
    const found = parts.map((p) => parseUserData(p)).filter((r): r is UserDataResult => r !== null);
    if (found.length > 1) throw new SourceError('user data: more than one part of the multipart user data has a syntropy section');
    return found[0] ?? null;
  }
  if (text.startsWith('#!')) return null;
  // A token line is registered before the YAML library sees it, so nothing it says can show it.
  for (const m of text.matchAll(/^\s*"?token"?\s*:\s*(?:![^\s]*\s+)?["']?([^"'\s#]+)/gm)) registerSecret(m[1]!);
  let doc: unknown;
  try {
    // logLevel 'error': errors are thrown (and never printed by us), warnings are not printed at
    // all: the library's own warnings could quote the token line.
    doc = parseYaml(text, { uniqueKeys: true, logLevel: 'error', prettyErrors: false });
  } catch (e) {
    if (!/syntropy/i.test(text)) return null;
    const line = (e as { linePos?: { line: number }[] }).linePos?.[0]?.line;
    throw new SourceError(`user data mentions syntropy but is not valid YAML or JSON${line ? ` (line ${line})` : ''}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc) || !('syntropy' in doc)) return null;
  const section = (doc as Record<string, unknown>).syntropy;
  if (typeof section !== 'object' || section === null || Array.isArray(section)) {
    throw new SourceError('user data: the syntropy section must be a mapping of settings');
  }
  const s = section as Record<string, unknown>;
  if (typeof s.token === 'string') registerSecret(s.token);
  for (const k of Object.keys(s)) {
    if (!(USER_DATA_KEYS as readonly string[]).includes(k)) {
      // Only a plain name is echoed: a collection used as a key could be the token itself.
      const shown = /^[A-Za-z_][A-Za-z0-9_-]{0,39}$/.test(k) ? `syntropy.${k} is` : 'a key of the syntropy section is';
      throw new SourceError(`user data: ${shown} not a known setting (allowed: ${USER_DATA_KEYS.join(', ')})`);
    }
  }
  const str = (k: string): string | undefined => {
    const v = s[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string' && typeof v !== 'number') throw new SourceError(`user data: syntropy.${k} must be a string`);
    return String(v);
  };
  const settings: RawSettings = {};
  const warnings: string[] = [];
  settings.portRange = str('port_range');
  settings.agentName = str('agent_name');
  if (settings.agentName !== undefined) {
    const ok = checkAgentName(settings.agentName);
    if (ok !== true) throw new SourceError(`user data: syntropy.agent_name: ${ok}`);
  }
  if (s.tags !== undefined && s.tags !== null) {
    if (typeof s.tags !== 'string' && !Array.isArray(s.tags)) throw new SourceError('user data: syntropy.tags must be a list or a comma-separated string');
    const tags = parseTags(s.tags as string | string[]);
    if (typeof tags === 'string') throw new SourceError(`user data: syntropy.tags: ${tags}`);
    settings.tags = tags;
  }
  const token = s.token;
  const param = str('token_ssm_parameter');
  if (token !== undefined && param !== undefined) {
    throw new SourceError('user data: give either syntropy.token_ssm_parameter or syntropy.token, not both');
  }
  if (token === undefined && param === undefined) {
    throw new SourceError('user data: syntropy.token_ssm_parameter (preferred) or syntropy.token is required');
  }
  if (param !== undefined) {
    const ok = checkSsmParameterName(param);
    if (ok !== true) throw new SourceError(`user data: syntropy.token_ssm_parameter: ${ok}`);
    settings.tokenSsmParameter = param;
  } else {
    if (typeof token !== 'string') throw new SourceError('user data: syntropy.token must be a string');
    const ok = checkToken(token);
    if (ok !== true) throw new SourceError(`user data: syntropy.token: ${ok}`);
    settings.token = token;
    warnings.push(
      'The agent token was given in plain user data, which anyone allowed to read this instance\'s user data can see. Prefer syntropy.token_ssm_parameter (a SecureString in Parameter Store).',
    );
  }
  return { settings, warnings };
}
