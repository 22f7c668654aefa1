// syntropy-firstboot: configures the Syntropy agent on first boot.
//   configure      [--non-interactive] [--token-file F | --token-stdin | --token-ssm-parameter NAME]
//                  [--port-range A-B] [--agent-name N] [--tags a,b]
//   reconfigure    the same, on an already configured instance
//   status         [--json]
//   update-agent   --image REF [--archive FILE]
//   recover        (systemd, at boot, before the agent starts) undo an interrupted apply
//   boot           (systemd, at boot) undo an interrupted apply, then apply user data if any
//   console        (systemd, on tty1/ttyS0) the dialogue while unconfigured
// Common: --root DIR (work on a directory; system steps are printed as a plan),
//         --imds-endpoint URL, --ssm-endpoint URL, --region R.
// Configuration sources, first found wins: user data (IMDSv2) -> SSM document -> dialogue.
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, watch } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { applyConfiguration, ApplyError, confirmRunning, readImageLock, recoverInterrupted, toRange, type ApplyDeps } from './apply.ts';
import { runDialogue, type PromptContext } from './dialogue.ts';
import { Console, registerSecret } from './secrets.ts';
import { defaultSsmClient, ImdsClient, parseUserData, readTokenParameter, SourceError, type RawSettings } from './sources.ts';
import { parseKeyValues, paths, readLastError, readState, writeFileAtomic, type AgentSettings, type Paths, type State } from './state.ts';
import { AGENT_CONTAINER, LiveSystem, PlanSystem, type System } from './system.ts';
import {
  checkAgentName,
  checkSsmParameterName,
  checkToken,
  DEFAULT_MAX_RANGE_WIDTH,
  DEFAULT_PORT_RANGE,
  formatRange,
  parsePortRange,
  parseTags,
  type PortRules,
} from './validate.ts';

/** Figures reported on stderr when SYNTROPY_FIRSTBOOT_STATS=1 (used by the benchmark). */
export const stats: { confirmedToRunningMs?: number } = {};

export class UsageError extends Error {
  override name = 'UsageError';
}

const RESUME = 'Nothing was changed. To configure later, run: sudo syntropy-firstboot configure';

export interface Env {
  con: Console;
  p: Paths;
  sys: System;
  imds: ImdsClient | null;
  ssmEndpoint?: string;
  region?: string;
  prompt: PromptContext;
  /** Reads a token from standard input (non-interactive). */
  readStdin: () => Promise<string>;
  confirmTimeoutMs?: number;
}

/** Settings baked into the image by the build (/etc/syntropy/firstboot.conf). */
export interface ImageSettings {
  sshPort: number;
  maxRangeWidth: number;
  defaultPortRange: string;
  networkApi: string;
}

export function readImageSettings(p: Paths): ImageSettings {
  const file = join(p.root, 'etc/syntropy/firstboot.conf');
  const kv = existsSync(file) ? parseKeyValues(readFileSync(file, 'utf8')) : {};
  return {
    sshPort: Number(kv.SSH_PORT ?? 22),
    maxRangeWidth: Number(kv.MAX_PORT_RANGE_WIDTH ?? DEFAULT_MAX_RANGE_WIDTH),
    defaultPortRange: kv.DEFAULT_PORT_RANGE ?? DEFAULT_PORT_RANGE,
    networkApi: kv.AGENT_NETWORK_API ?? 'none',
  };
}

function portRules(env: Env, image: ImageSettings, current: State | null): PortRules {
  return {
    maxWidth: image.maxRangeWidth,
    sshPort: image.sshPort,
    boundUdpPorts: () => {
      const ports = env.sys.boundUdpPorts();
      // On reconfigure the running agent's own port is not a conflict.
      if (current?.boundPort) ports.delete(current.boundPort);
      return ports;
    },
  };
}

/** EC2 (Nitro and Xen) identifies itself in DMI; the local images copy that through SMBIOS. */
function onEc2(p: Paths): boolean {
  for (const f of ['sys/class/dmi/id/sys_vendor', 'sys/hypervisor/uuid']) {
    try {
      const v = readFileSync(join(p.root, f), 'utf8').trim();
      if (v === 'Amazon EC2' || /^ec2/i.test(v)) return true;
    } catch {
      /* not there */
    }
  }
  return false;
}

/**
 * The instance this configuration belongs to: the EC2 instance ID, or the machine ID where there
 * is no EC2. A slow or missing metadata answer is no proof of a new instance: it never wipes a
 * saved configuration, and on EC2 it never stands in a machine ID for the instance ID.
 */
async function instanceId(env: Env): Promise<string> {
  if (env.imds) {
    try {
      return (await env.imds.identity()).instanceId;
    } catch (e) {
      const saved = readState(env.p);
      if (saved?.instanceId.startsWith('i-')) {
        env.con.warn(`Instance metadata did not answer (${(e as Error).message}); keeping the configuration of ${saved.instanceId}.`);
        return saved.instanceId;
      }
      if (onEc2(env.p)) {
        throw new SourceError(`cannot tell which EC2 instance this is: ${(e as Error).message}; nothing was changed, try again`);
      }
    }
  }
  const mid = existsSync(env.p.machineId) ? readFileSync(env.p.machineId, 'utf8').trim() : '';
  return /^[0-9a-f]{32}$/.test(mid) ? `local-${mid}` : 'local-unknown';
}

async function region(env: Env): Promise<string> {
  if (env.region) return env.region;
  if (!env.imds) return '';
  try {
    return (await env.imds.identity()).region;
  } catch {
    return '';
  }
}

/** A simple exclusive lock so the console, SSH login and SSM cannot apply at the same time. */
function withLock<T>(p: Paths, fn: () => Promise<T>): Promise<T> {
  const dir = join(p.root, 'run/syntropy/firstboot.lock');
  mkdirSync(dirname(dir), { recursive: true });
  try {
    mkdirSync(dir);
  } catch {
    const pidFile = join(dir, 'pid');
    const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8')) : 0;
    let alive = false;
    try {
      if (pid > 0) process.kill(pid, 0);
      alive = pid > 0;
    } catch {
      alive = false;
    }
    if (alive) throw new UsageError(`another syntropy-firstboot (pid ${pid}) is configuring the agent right now`);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir);
  }
  writeFileAtomic(join(dir, 'pid'), String(process.pid), 0o644);
  return fn().finally(() => rmSync(dir, { recursive: true, force: true }));
}

function deps(env: Env): ApplyDeps {
  return { p: env.p, sys: env.sys, con: env.con, confirmTimeoutMs: env.confirmTimeoutMs };
}

function configuredFor(p: Paths, id: string): State | null {
  const s = readState(p);
  return s && s.status === 'configured' && s.instanceId === id ? s : null;
}

function printSuccess(env: Env, s: State): void {
  const lock = existsSync(env.p.lockFile) ? readImageLock(env.p) : { ref: '(no lock file)', id: '' };
  const where = s.boundPort ? `WireGuard on udp/${s.boundPort}` : 'WireGuard port: confirmed at start on a live system';
  env.con.say(
    [
      '',
      `Syntropy agent configured (${s.source}).`,
      `  runs      container ${AGENT_CONTAINER} from ${lock.ref} (${lock.id.slice(0, 19)}…), no registry pull`,
      `  network   ${where}, range ${s.settings.portRange} open in the firewall`,
      `  name      ${s.settings.agentName}`,
      '  check     sudo syntropy-firstboot status   |   docker logs syntropy-agent',
      '',
    ].join('\n'),
  );
}

const FLAG_LABELS = { range: '--port-range', name: '--agent-name' };
const USER_DATA_LABELS = { range: 'user data syntropy.port_range', name: 'user data syntropy.agent_name' };

function settingsFrom(raw: RawSettings, image: ImageSettings, rules: PortRules, hostname: string, label: typeof FLAG_LABELS): AgentSettings {
  const range = parsePortRange(raw.portRange ?? image.defaultPortRange, rules);
  if (typeof range === 'string') throw new UsageError(`${label.range}: ${range}`);
  const agentName = raw.agentName ?? hostname;
  const nameOk = checkAgentName(agentName);
  if (nameOk !== true) throw new UsageError(`${label.name}: ${nameOk}`);
  return { portRange: formatRange(range), agentName, tags: raw.tags ?? [], networkApi: image.networkApi };
}

async function tokenFromSsm(env: Env, name: string): Promise<string> {
  const r = await region(env);
  return await readTokenParameter(name, r, (reg) => defaultSsmClient(reg, env.ssmEndpoint));
}

async function applyAndReport(env: Env, id: string, token: string, settings: AgentSettings, source: State['source']): Promise<State> {
  const state = await applyConfiguration({ token, settings, source, instanceId: id }, deps(env));
  rmSync(env.p.needsDialogue, { force: true });
  printSuccess(env, state);
  return state;
}

// ---------------------------------------------------------------- commands

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
  const token = raw.replace(/\r?\n$/, '');
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
  const hostname = env.sys.hostname();

  if (f.nonInteractive) {
    const tags = f.tags !== undefined ? parseTags(f.tags) : [];
    if (typeof tags === 'string') throw new UsageError(`--tags: ${tags}`);
    const settings = settingsFrom({ portRange: f.portRange, agentName: f.agentName, tags }, image, rules, hostname, FLAG_LABELS);
    const { token, source } = await nonInteractiveToken(env, f);
    return await withLock(env.p, async () => {
      await recoverInterrupted(deps(env));
      await applyAndReport(env, id, token, settings, source);
      return 0;
    });
  }

  env.con.say('\nSyntropy agent setup. Answer a few questions; nothing changes until you confirm. Ctrl-C cancels.\n');
  const answers = await runDialogue(
    { portRange: current?.settings.portRange ?? image.defaultPortRange, agentName: current?.settings.agentName ?? hostname },
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
    await applyAndReport(env, id, answers.token, settings, 'dialogue');
    stats.confirmedToRunningMs = Date.now() - confirmedAt;
    return 0;
  });
}

/**
 * Undoes an apply cut off by a power loss. Runs in its own unit, ordered before the agent unit:
 * `boot` cannot be that unit, because applying user data starts the agent unit, whose start
 * job would wait for `boot` to finish (a deadlock until the start timeout).
 */
export async function recover(env: Env): Promise<number> {
  await withLock(env.p, () => recoverInterrupted(deps(env)));
  return 0;
}

export async function boot(env: Env): Promise<number> {
  // The recover unit ran first; this covers a boot where it could not (e.g. it failed).
  await recover(env);
  let id: string;
  try {
    id = await instanceId(env);
  } catch (e) {
    env.con.warn(`${(e as Error).message}. The setup dialogue will ask again at login.`);
    writeFileAtomic(env.p.needsDialogue, 'unknown\n', 0o644);
    return 0;
  }
  const state = readState(env.p);
  if (state && state.instanceId === id && state.status === 'configured') {
    env.con.say(`Syntropy agent configured (${state.source}); ports ${state.settings.portRange}.`);
    return 0;
  }
  if (state && state.instanceId !== id) {
    // A new instance from an image made of a configured one: its token is not ours to use.
    env.con.warn('Configuration belongs to another instance; removing it so this instance is configured afresh.');
    await env.sys.stopAgent().catch(() => undefined);
    rmSync(env.p.envFile, { force: true });
    rmSync(env.p.stateFile, { force: true });
  }
  if (env.imds) {
    try {
      const ud = parseUserData(await env.imds.userData());
      if (ud) {
        for (const w of ud.warnings) env.con.warn(`Warning: ${w}`);
        const image = readImageSettings(env.p);
        const settings = settingsFrom(ud.settings, image, portRules(env, image, null), env.sys.hostname(), USER_DATA_LABELS);
        const token = ud.settings.tokenSsmParameter ? await tokenFromSsm(env, ud.settings.tokenSsmParameter) : ud.settings.token!;
        await withLock(env.p, () => applyAndReport(env, id, token, settings, 'user-data'));
        return 0;
      }
    } catch (e) {
      env.con.warn(`Configuration from user data failed: ${(e as Error).message}`);
      env.con.warn('Falling back to the interactive setup.');
    }
  }
  writeFileAtomic(env.p.needsDialogue, `${id}\n`, 0o644);
  env.con.say(
    [
      '',
      '*** The Syntropy agent is not configured yet. ***',
      'Log in over SSH as admin to answer the setup questions, or configure it without a login',
      'through EC2 user data or the SyntropyConfigureAgent SSM document (see the product README).',
      '',
    ].join('\n'),
  );
  return 0;
}

/** The console dialogue; gives up quietly if another path configures the agent meanwhile. */
export async function consoleDialogue(env: Env): Promise<number> {
  const id = await instanceId(env);
  if (configuredFor(env.p, id) || !existsSync(env.p.needsDialogue)) return 0;
  const ctl = new AbortController();
  const stateDir = dirname(env.p.stateFile);
  mkdirSync(stateDir, { recursive: true });
  const watcher = watch(stateDir, () => {
    if (configuredFor(env.p, id)) ctl.abort(new Error('configured elsewhere'));
  });
  try {
    return await configure({ ...env, prompt: { ...env.prompt, signal: ctl.signal } }, { nonInteractive: false, reconfigure: false, tokenStdin: false });
  } catch (e) {
    if (ctl.signal.aborted && configuredFor(env.p, id)) {
      env.con.say('\nThe agent was configured from another console, SSH or SSM; closing this dialogue.');
      return 0;
    }
    throw e;
  } finally {
    watcher.close();
  }
}

export async function status(env: Env, json: boolean): Promise<number> {
  const id = await instanceId(env);
  const s = configuredFor(env.p, id);
  const running = s && env.sys.live ? await env.sys.agentRunning() : null;
  const lock = existsSync(env.p.lockFile) ? readImageLock(env.p) : null;
  const out = {
    configured: s !== null,
    instance: id,
    source: s?.source ?? null,
    configured_at: s?.configuredAt ?? null,
    port_range: s?.settings.portRange ?? null,
    agent_name: s?.settings.agentName ?? null,
    tags: s?.settings.tags ?? [],
    bound_port: s?.boundPort ?? null,
    container_running: running,
    agent_image: lock ? { ref: lock.ref, id: lock.id } : null,
    env_file: existsSync(env.p.envFile) ? `${env.p.envFile} (mode ${(statSync(env.p.envFile).mode & 0o777).toString(8)})` : null,
    last_error: readLastError(env.p),
  };
  if (json) {
    env.con.say(JSON.stringify(out, null, 2));
  } else {
    env.con.say(
      [
        `configured      ${out.configured ? `yes (${out.source}, ${out.configured_at})` : 'no'}`,
        `instance        ${out.instance}`,
        `port range      ${out.port_range ?? '-'}${out.bound_port ? ` (bound udp/${out.bound_port})` : ''}`,
        `agent name      ${out.agent_name ?? '-'}`,
        `tags            ${out.tags.length > 0 ? out.tags.join(', ') : '-'}`,
        `container       ${running === null ? '-' : running ? 'running' : 'NOT running'}`,
        `agent image     ${lock ? `${lock.ref} (${lock.id})` : 'no lock file'}`,
        `last error      ${out.last_error ?? '-'}`,
      ].join('\n'),
    );
  }
  return 0;
}

export async function updateAgent(env: Env, image: string | undefined, archive: string | undefined): Promise<number> {
  if (!image) throw new UsageError('update-agent needs --image REF (name@sha256:<digest> to pull, or the tag inside --archive FILE)');
  if (!archive && !/@sha256:[a-f0-9]{64}$/.test(image)) throw new UsageError('--image must be pinned by digest (name@sha256:<64 hex>) when pulling');
  const id = await instanceId(env);
  const state = configuredFor(env.p, id);
  if (!existsSync(env.p.lockFile)) throw new UsageError(`no agent image lock file at ${env.p.lockFile}`);
  const oldLock = readFileSync(env.p.lockFile, 'utf8');
  if (!env.sys.live) {
    // Plan mode: say what would happen; the lock file is only rewritten for an image Docker holds.
    if (archive) await env.sys.loadImageArchive(archive);
    else await env.sys.pullImage(image);
    await env.sys.imageId(image);
    if (state) await env.sys.startAgent();
    return 0;
  }
  return await withLock(env.p, async () => {
    if (archive) await env.sys.loadImageArchive(archive);
    else await env.sys.pullImage(image);
    const newId = await env.sys.imageId(image);
    if (!newId) throw new ApplyError(`Docker does not have ${image} after ${archive ? 'loading the archive' : 'the pull'}`);
    const digest = archive ? newId : image.split('@')[1]!;
    writeFileAtomic(
      env.p.lockFile,
      `# Updated by syntropy-firstboot update-agent at ${new Date().toISOString()}\nAGENT_IMAGE_REF=${image}\nAGENT_IMAGE_DIGEST=${digest}\nAGENT_IMAGE_ID=${newId}\nAGENT_IMAGE_SOURCE=${archive ? 'archive' : 'registry'}\n`,
      0o644,
    );
    if (!state) {
      env.con.say(`Agent image updated to ${image}; it will be used once the agent is configured.`);
      return 0;
    }
    try {
      await env.sys.startAgent();
      try {
        await confirmRunning(toRange(state.settings.portRange), deps(env));
      } catch (e) {
        env.con.warn((e as Error).message);
        throw new ApplyError('the updated agent did not come up');
      }
      env.con.say(`Agent updated to ${image} and running.`);
      return 0;
    } catch (e) {
      writeFileAtomic(env.p.lockFile, oldLock, 0o644);
      await env.sys.startAgent().catch(() => undefined);
      throw new ApplyError(`${(e as Error).message}; restored the previous image`);
    }
  });
}

// ---------------------------------------------------------------- entry

export interface MainIO {
  stdout: { write(s: string): void };
  stderr: { write(s: string): void };
  stdin: NodeJS.ReadableStream;
  prompt?: PromptContext;
}

function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = '';
    stream.setEncoding('utf8');
    stream.on('data', (c: string) => (data += c));
    stream.on('end', () => resolve(data));
    stream.on('error', reject);
  });
}

export async function main(argv: string[], io: MainIO): Promise<number> {
  const con = new Console(io.stdout, io.stderr);
  const code = await runMain(argv, io, con);
  if (process.env.SYNTROPY_FIRSTBOOT_STATS === '1') {
    const rss = (process.resourceUsage().maxRSS / 1024).toFixed(1);
    const applied = stats.confirmedToRunningMs !== undefined ? ` confirmed_to_running_ms=${stats.confirmedToRunningMs}` : '';
    con.warn(`syntropy-firstboot stats: peak_rss_mib=${rss}${applied} exit=${code}`);
  }
  return code;
}

async function runMain(argv: string[], io: MainIO, con: Console): Promise<number> {
  let command = '';
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        'non-interactive': { type: 'boolean' },
        'token-file': { type: 'string' },
        'token-stdin': { type: 'boolean' },
        'token-ssm-parameter': { type: 'string' },
        'port-range': { type: 'string' },
        'agent-name': { type: 'string' },
        tags: { type: 'string' },
        root: { type: 'string' },
        'imds-endpoint': { type: 'string' },
        'ssm-endpoint': { type: 'string' },
        region: { type: 'string' },
        json: { type: 'boolean' },
        image: { type: 'string' },
        archive: { type: 'string' },
        help: { type: 'boolean' },
      },
    });
    command = positionals[0] ?? '';
    if (values.help || !command) {
      con.say('usage: syntropy-firstboot configure|reconfigure|status|update-agent|recover|boot|console [options] (see the README)');
      return values.help ? 0 : 2;
    }
    if (positionals.length > 1) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[1])}`);
    const root = values.root ?? '/';
    const live = values.root === undefined;
    const p = paths(root);
    // With --root nothing talks to the real metadata service unless an endpoint is given.
    const imdsEndpoint = values['imds-endpoint'] ?? (live ? 'http://169.254.169.254' : undefined);
    const env: Env = {
      con,
      p,
      sys: live ? new LiveSystem() : new PlanSystem((l) => con.say(l)),
      imds: imdsEndpoint ? new ImdsClient(imdsEndpoint, 10_000, 6) : null,
      ssmEndpoint: values['ssm-endpoint'],
      region: values.region,
      prompt: io.prompt ?? { input: io.stdin, output: io.stdout as NodeJS.WritableStream },
      readStdin: () => readAll(io.stdin),
    };
    const flags: ConfigureFlags = {
      nonInteractive: values['non-interactive'] === true,
      reconfigure: command === 'reconfigure',
      tokenFile: values['token-file'],
      tokenStdin: values['token-stdin'] === true,
      tokenSsmParameter: values['token-ssm-parameter'],
      portRange: values['port-range'],
      agentName: values['agent-name'],
      tags: values.tags,
    };
    switch (command) {
      case 'configure':
      case 'reconfigure':
        return await configure(env, flags);
      case 'status':
        return await status(env, values.json === true);
      case 'update-agent':
        return await updateAgent(env, values.image, values.archive);
      case 'recover':
        return await recover(env);
      case 'boot':
        return await boot(env);
      case 'console':
        return await consoleDialogue(env);
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)} (configure, reconfigure, status, update-agent, recover, boot, console)`);
    }
  } catch (e) {
    const err = e as Error;
    if (err.name === 'ExitPromptError' || err.name === 'AbortPromptError' || err.name === 'CancelPromptError') {
      con.warn(`\nSetup cancelled. ${RESUME}`);
      return 130;
    }
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      con.warn(`syntropy-firstboot: ${err.message}`);
      return 2;
    }
    if (err instanceof SourceError) {
      con.warn(`syntropy-firstboot: ${err.message}`);
      return 2;
    }
    con.warn(`syntropy-firstboot ${command}: ${err.message}`);
    return 1;
  }
}

