// Where configuration comes from: EC2 user data through IMDSv2 (never IMDSv1), a SecureString
// in SSM Parameter Store, or the dialogue. This module covers the first two.
import { request } from 'node:http';
import { parse as parseYaml } from 'yaml';
import { checkAgentName, checkSsmParameterName, checkToken, parseTags } from './validate.ts';
import { registerSecret } from './secrets.ts';

export class SourceError extends Error {
  override name = 'SourceError';
}

// ---------------------------------------------------------------- IMDSv2

export interface InstanceIdentity {
  instanceId: string;
  region: string;
}

interface HttpAnswer {
  status: number;
  body: string;
}

/**
 * A plain node:http request (lighter than fetch, which matters for first boot's memory), one
 * connection per request like curl: Node's default keep-alive leaves idle sockets open to the
 * metadata address, and several first-boot processes holding them starved new requests.
 */
function httpRequest(url: string, method: string, headers: Record<string, string>, timeoutMs: number): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers: { ...headers, Connection: 'close' }, agent: false, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

export class ImdsClient {
  private token: string | null = null;

  constructor(
    readonly endpoint = 'http://169.254.169.254',
    private readonly timeoutMs = 2000,
    private readonly attempts = 3,
  ) {}

  private async request(method: 'PUT' | 'GET', path: string, headers: Record<string, string>): Promise<HttpAnswer> {
    let last: unknown;
    for (let i = 0; i < this.attempts; i++) {
      try {
        return await httpRequest(`${this.endpoint}${path}`, method, headers, this.timeoutMs);
      } catch (e) {
        last = e;
        await new Promise((r) => setTimeout(r, 200 * (i + 1)));
      }
    }
    throw new SourceError(`instance metadata service at ${this.endpoint} did not answer (${(last as Error).message})`);
  }

  /** IMDSv2 session token; there is deliberately no IMDSv1 fallback. */
  private async sessionToken(): Promise<string> {
    if (this.token) return this.token;
    const res = await this.request('PUT', '/latest/api/token', { 'X-aws-ec2-metadata-token-ttl-seconds': '300' });
    if (res.status !== 200) throw new SourceError(`instance metadata service refused a session token (HTTP ${res.status})`);
    this.token = res.body;
    return this.token;
  }

  /** GET a metadata path; null when it does not exist (404). */
  async get(path: string): Promise<string | null> {
    const token = await this.sessionToken();
    const res = await this.request('GET', path, { 'X-aws-ec2-metadata-token': token });
    if (res.status === 404) return null;
    if (res.status !== 200) throw new SourceError(`instance metadata ${path} answered HTTP ${res.status}`);
    return res.body;
  }

  private known: InstanceIdentity | null = null;

  async identity(): Promise<InstanceIdentity> {
    if (this.known) return this.known;
    const instanceId = await this.get('/latest/meta-data/instance-id');
    const region = await this.get('/latest/meta-data/placement/region');
    if (!instanceId || !/^i-[0-9a-f]{8,17}$/.test(instanceId)) throw new SourceError('instance metadata gave no valid instance ID');
    this.known = { instanceId, region: region ?? '' };
    return this.known;
  }

  async userData(): Promise<string | null> {
    return await this.get('/latest/user-data');
  }
}

// ---------------------------------------------------------------- user data

/** Settings as given by a source, before the port range is checked against the host. */
export interface RawSettings {
  portRange?: string;
  agentName?: string;
  tags?: string[];
  token?: string;
  tokenSsmParameter?: string;
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
  if (text.startsWith('#!') || /^Content-Type:\s*multipart\//im.test(text.slice(0, 512))) return null;
  let doc: unknown;
  try {
    doc = parseYaml(text, { uniqueKeys: true });
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
      throw new SourceError(`user data: syntropy.${k} is not a known setting (allowed: ${USER_DATA_KEYS.join(', ')})`);
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

// ---------------------------------------------------------------- SSM Parameter Store

/** The part of SSMClient this service uses, so tests and callers can pass any SSMClient. */
export interface SsmLike {
  send(command: unknown): Promise<unknown>;
}

/**
 * Reads the token from a SecureString parameter with decryption, under the instance role.
 * Errors name the parameter and what to fix, never the value.
 */
export async function readTokenParameter(name: string, region: string, makeClient: (region: string) => Promise<SsmLike>): Promise<string> {
  const { GetParameterCommand } = await import('@aws-sdk/client-ssm');
  const client = await makeClient(region);
  let res: { Parameter?: { Type?: string; Value?: string } };
  try {
    res = (await client.send(new GetParameterCommand({ Name: name, WithDecryption: true }))) as typeof res;
  } catch (e) {
    const err = e as Error;
    const where = `SSM parameter ${name}${region ? ` in ${region}` : ''}`;
    switch (err.name) {
      case 'ParameterNotFound':
        throw new SourceError(`${where} does not exist`);
      case 'AccessDeniedException':
        throw new SourceError(`the instance role may not read ${where}: allow ssm:GetParameter on it and kms:Decrypt on its key`);
      case 'ParameterVersionNotFound':
        throw new SourceError(`${where}: that version does not exist`);
      default:
        throw new SourceError(`reading ${where} failed: ${err.name}`);
    }
  }
  const p = res.Parameter;
  if (!p || typeof p.Value !== 'string') throw new SourceError(`SSM parameter ${name} has no value`);
  registerSecret(p.Value);
  if (p.Type !== 'SecureString') {
    throw new SourceError(`SSM parameter ${name} is a ${p.Type ?? 'plain'} parameter; store the agent token as a SecureString`);
  }
  const ok = checkToken(p.Value);
  if (ok !== true) throw new SourceError(`SSM parameter ${name}: ${ok}`);
  return p.Value;
}

export async function defaultSsmClient(region: string, endpoint?: string): Promise<SsmLike> {
  const { SSMClient } = await import('@aws-sdk/client-ssm');
  return new SSMClient({ region: region || undefined, ...(endpoint ? { endpoint } : {}) });
}
