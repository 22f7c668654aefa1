// `configure` and `reconfigure`: the dialogue (console, SSH login) or flags (SSM document,
// automation). Input is validated before anything is touched: bad input writes nothing.
import { readFileSync, statSync } from 'node:fs';
import { preverifyImage, recoverInterrupted } from '../apply.ts';
import { runDialogue } from '../dialogue.ts';
import { stats, UsageError, type Env } from '../env.ts';
import { portRules, readImageSettings } from '../image-settings.ts';
import { configuredFor, defaultAgentName, instanceId, withLock } from '../instance.ts';
import { registerSecret } from '../secrets.ts';
import type { AgentSettings, State } from '../state.ts';
import { checkSsmParameterName, checkToken, parseTags } from '../validate.ts';
import { applyAndReport, deps, FLAG_LABELS, settingsFrom, tokenFromSsm } from './common.ts';

export interface ConfigureFlags {
  nonInteractive: boolean;
  reconfigure: boolean;
  tokenFile?: string;
  tokenStdin: boolean;
  tokenSsmParameter?: string;
  portRange?: string;
  agentName?: string;
  tags?: string;
}

async function nonInteractiveToken(env: Env, f: ConfigureFlags): Promise<{ token: string; source: State['source'] }> {
  const given = [f.tokenFile !== undefined, f.tokenStdin, f.tokenSsmParameter !== undefined].filter(Boolean).length;
  if (given !== 1) throw new UsageError('--non-interactive needs exactly one of --token-file FILE, --token-stdin or --token-ssm-parameter NAME');
  if (f.tokenSsmParameter !== undefined) {
    const ok = checkSsmParameterName(f.tokenSsmParameter);
    if (ok !== true) throw new UsageError(`--token-ssm-parameter: ${ok}`);
    return { token: await tokenFromSsm(env, f.tokenSsmParameter), source: 'ssm' };
  }
  let raw: string;
  if (f.tokenFile !== undefined) {
    try {
      raw = readFileSync(f.tokenFile, 'utf8');
    } catch (e) {
      throw new UsageError(`--token-file ${f.tokenFile}: cannot read it (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    if ((statSync(f.tokenFile).mode & 0o077) !== 0) env.con.warn(`Warning: ${f.tokenFile} is readable by other users; keep token files mode 0600.`);
  } else {
    raw = await env.readStdin();
  }
  // One trailing newline (an editor's, or echo's) and a UTF-8 byte-order mark are not the token.
  const token = raw.replace(/^\uFEFF/, '').replace(/\r?\n$/, '');
  registerSecret(token);
  const ok = checkToken(token);
  if (ok !== true) throw new UsageError(`${f.tokenFile ? '--token-file' : '--token-stdin'}: ${ok}`);
  return { token, source: 'flags' };
}

export async function configure(env: Env, f: ConfigureFlags): Promise<number> {
  // Input is validated before anything is touched: bad input writes nothing.
  const id = await instanceId(env);
  const image = readImageSettings(env.p);
  const current = configuredFor(env.p, id);
  if (current && !f.reconfigure) {
    env.con.say(`The Syntropy agent is already configured (${current.source}, ${current.configuredAt}). To change it: sudo syntropy-firstboot reconfigure`);
    return 0;
  }
  const rules = portRules(env, image, current);
  const defaultName = current?.settings.agentName ?? (await defaultAgentName(env, id));

  if (f.nonInteractive) {
    const tags = f.tags !== undefined ? parseTags(f.tags) : [];
    if (typeof tags === 'string') throw new UsageError(`--tags: ${tags}`);
    const settings = settingsFrom({ portRange: f.portRange, agentName: f.agentName, tags }, image, rules, defaultName, FLAG_LABELS);
    const { token, source } = await nonInteractiveToken(env, f);
    return await withLock(env.p, async () => {
      await recoverInterrupted(deps(env));
      // Decided under the lock: another run may have configured the instance meanwhile.
      const now = configuredFor(env.p, id);
      if (now && !f.reconfigure) {
        env.con.say(`The agent was configured meanwhile (${now.source}, ${now.configuredAt}); nothing to do. To change it: sudo syntropy-firstboot reconfigure`);
        return 0;
      }
      await applyAndReport(env, id, token, settings, source);
      return 0;
    });
  }

  // While the user answers, the preloaded image is verified (the apply re-checks only that the
  // lock file still pins the image verified, or verifies again if this failed, e.g. while dockerd
  // was still starting). Its request also readies this process's HTTP client: a Node process's
  // first request costs 200-300 ms on a 1 vCPU instance, the next ones 20-130 ms.
  const preverified = env.sys.live ? preverifyImage(deps(env)) : undefined;
  env.con.say('\nSyntropy agent setup. Answer a few questions; nothing changes until you confirm. Ctrl-C cancels.\n');
  const answers = await runDialogue(
    { portRange: current?.settings.portRange ?? image.defaultPortRange, agentName: defaultName },
    rules,
    env.prompt,
    (t) => env.con.say(t),
  );
  const confirmedAt = Date.now();
  return await withLock(env.p, async () => {
    const now = configuredFor(env.p, id);
    if (now && !f.reconfigure) {
      env.con.say(`The agent was configured meanwhile (${now.source}); nothing to do.`);
      return 0;
    }
    await recoverInterrupted(deps(env));
    const settings: AgentSettings = { portRange: answers.portRange, agentName: answers.agentName, tags: answers.tags, networkApi: image.networkApi };
    await applyAndReport(env, id, answers.token, settings, 'dialogue', preverified);
    stats.confirmedToRunningMs = Date.now() - confirmedAt;
    return 0;
  });
}
