// Files first boot owns, all under a root directory (`/` on an instance, DIR with --root):
// the 0600 env file, the state marker keyed on the instance, and the apply journal that lets a
// power cut mid-apply be rolled back on the next boot.
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';

export interface Paths {
  root: string;
  envFile: string;
  envBackup: string;
  lockFile: string;
  stateFile: string;
  journalFile: string;
  needsDialogue: string;
  machineId: string;
}

export function paths(root = '/'): Paths {
  const p = (rel: string) => join(root, rel);
  return {
    root,
    envFile: p('etc/syntropy/agent.env'),
    envBackup: p('etc/syntropy/agent.env.previous'),
    lockFile: p('etc/syntropy/agent-image.lock'),
    stateFile: p('var/lib/syntropy/firstboot/state.json'),
    journalFile: p('var/lib/syntropy/firstboot/apply.journal'),
    needsDialogue: p('run/syntropy/needs-dialogue'),
    machineId: p('etc/machine-id'),
  };
}

/** Writes a file atomically: temp file with the final mode, fsync, rename, fsync the directory. */
export function writeFileAtomic(file: string, content: string, mode: number): void {
  const dir = dirname(file);
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.${Date.now()}-${process.pid}.tmp`);
  const fd = openSync(tmp, 'wx', mode);
  try {
    writeSync(fd, content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  const dfd = openSync(dir, 'r');
  try {
    fsyncSync(dfd);
  } finally {
    closeSync(dfd);
  }
}

export interface AgentSettings {
  portRange: string;
  agentName: string;
  tags: string[];
  networkApi: string;
}

export interface State {
  status: 'configured';
  instanceId: string;
  configuredAt: string;
  /**
   * Where the configuration came from: EC2 user data (token inline or from Parameter Store),
   * `configure --token-ssm-parameter` (the SSM document), the dialogue, or other flags.
   */
  source: 'user-data' | 'ssm' | 'dialogue' | 'flags';
  settings: AgentSettings;
  boundPort: number | null;
  lastError?: string;
}

export function readState(p: Paths): State | null {
  if (!existsSync(p.stateFile)) return null;
  try {
    return JSON.parse(readFileSync(p.stateFile, 'utf8')) as State;
  } catch {
    return null;
  }
}

export function writeState(p: Paths, s: State): void {
  writeFileAtomic(p.stateFile, `${JSON.stringify(s, null, 2)}\n`, 0o644);
}

/** Last error, kept beside the state so `status` can show it even when unconfigured. */
export function recordError(p: Paths, message: string): void {
  writeFileAtomic(join(dirname(p.stateFile), 'last-error'), `${new Date().toISOString()} ${message}\n`, 0o644);
}

export function readLastError(p: Paths): string | null {
  const f = join(dirname(p.stateFile), 'last-error');
  return existsSync(f) ? readFileSync(f, 'utf8').trim() : null;
}

export function clearLastError(p: Paths): void {
  rmSync(join(dirname(p.stateFile), 'last-error'), { force: true });
}

/** The apply journal: what was done, without the token, so it can be undone after a crash. */
export interface Journal {
  instanceId: string;
  range: string;
  previous: State | null;
  steps: string[];
}

export function readJournal(p: Paths): Journal | null {
  if (!existsSync(p.journalFile)) return null;
  try {
    return JSON.parse(readFileSync(p.journalFile, 'utf8')) as Journal;
  } catch {
    // A journal torn by the power cut still means an apply was under way.
    return { instanceId: '', range: '', previous: null, steps: ['write-env', 'firewall', 'start-agent'] };
  }
}

export function writeJournal(p: Paths, j: Journal): void {
  writeFileAtomic(p.journalFile, JSON.stringify(j), 0o600);
}

export function removeJournal(p: Paths): void {
  rmSync(p.journalFile, { force: true });
}
