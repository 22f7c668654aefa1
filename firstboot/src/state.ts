// Files first boot owns, all under a root directory (`/` on an instance, DIR with --root):
// the 0600 env file, the state marker keyed on the instance, and the apply journal that lets a
// power cut mid-apply be rolled back on the next boot.
import { closeSync, existsSync, fchmodSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { z } from 'zod';

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

/** Temporary files of writeFileAtomic end so; a kill can leave one (with a copy of the token). */
export const TEMP_SUFFIX = '.syntropy-tmp';

/**
 * Writes a file atomically: temp file with the final mode (exactly `mode`, whatever the umask),
 * fsync, rename, fsync the directory.
 */
export function writeFileAtomic(file: string, content: string, mode: number): void {
  const dir = dirname(file);
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.${basename(file)}.${process.pid}${TEMP_SUFFIX}`);
  rmSync(tmp, { force: true });
  const fd = openSync(tmp, 'wx', mode);
  try {
    fchmodSync(fd, mode);
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
  fsyncDir(dir);
}

/** Removes temporary files a killed run left in the directories first boot writes (ufw's too). */
export function removeTempFiles(p: Paths): void {
  for (const dir of [dirname(p.envFile), dirname(p.stateFile), join(p.root, 'etc/ufw')]) {
    let names: string[] = [];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    for (const n of names.filter((x) => x.endsWith(TEMP_SUFFIX))) rmSync(join(dir, n), { force: true });
  }
}

const AgentSettingsSchema = z
  .object({
    portRange: z.string().regex(/^\d{1,5}-\d{1,5}$/),
    agentName: z.string().min(1),
    tags: z.array(z.string()),
    networkApi: z.string(),
  })
  .strict();
export type AgentSettings = z.infer<typeof AgentSettingsSchema>;

export const StateSchema = z
  .object({
    status: z.literal('configured'),
    instanceId: z.string().min(1),
    configuredAt: z.string(),
    /**
     * Where the configuration came from: EC2 user data (token inline or from Parameter Store),
     * `configure --token-ssm-parameter` (the SSM document), the dialogue, or other flags.
     */
    source: z.enum(['user-data', 'ssm', 'dialogue', 'flags']),
    settings: AgentSettingsSchema,
    boundPort: z.number().int().nullable(),
    lastError: z.string().optional(),
    /** The apply that wrote this state (its journal's `id`): how recovery knows it got this far. */
    applyId: z.string().optional(),
  })
  .strict();
export type State = z.infer<typeof StateSchema>;

/** Parses a JSON file with a schema; null when it is absent, unreadable or not of that shape. */
function readJsonFile<S extends z.ZodTypeAny>(file: string, schema: S): { value: z.infer<S> | null; broken: boolean } {
  if (!existsSync(file)) return { value: null, broken: false };
  try {
    const r = schema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
    return r.success ? { value: r.data as z.infer<S>, broken: false } : { value: null, broken: true };
  } catch {
    return { value: null, broken: true };
  }
}

/** The saved state; a hand-edited or torn state file counts as no configuration. */
export function readState(p: Paths): State | null {
  return readJsonFile(p.stateFile, StateSchema).value;
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

/**
 * The apply journal: what was done, without the token, so it can be undone (or finished) after a
 * crash. `id` is also written into the state the apply records once complete: a state file that
 * carries the journal's `id` means the new configuration is complete on disk and only the
 * bookkeeping remains (recovery rolls forward). `next` and the `commit` step say the same in
 * journals written before `id` existed.
 */
export const JournalSchema = z
  .object({
    id: z.string().optional(),
    instanceId: z.string(),
    range: z.string(),
    previous: StateSchema.nullable(),
    next: StateSchema.nullable(),
    steps: z.array(z.enum(['enable', 'write-env', 'firewall', 'start-agent', 'commit'])),
  })
  .strict();
export type Journal = z.infer<typeof JournalSchema>;
export type JournalStep = Journal['steps'][number];

export function readJournal(p: Paths): Journal | null {
  const { value, broken } = readJsonFile(p.journalFile, JournalSchema);
  if (value) return value;
  // A journal torn by a power cut, or edited by hand, still means an apply was under way: undo
  // every step it could have taken (each undo is harmless when the step never happened).
  return broken ? { instanceId: '', range: '', previous: null, next: null, steps: ['write-env', 'firewall', 'start-agent'] } : null;
}

export function writeJournal(p: Paths, j: Journal): void {
  writeFileAtomic(p.journalFile, JSON.stringify(j), 0o600);
}

export function removeJournal(p: Paths): void {
  rmSync(p.journalFile, { force: true });
  fsyncDir(dirname(p.journalFile));
}

/** Makes a rename or removal in `dir` durable (a directory that is gone has nothing to keep). */
export function fsyncDir(dir: string): void {
  let fd: number;
  try {
    fd = openSync(dir, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
