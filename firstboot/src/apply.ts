// Apply, all or nothing: verify the preloaded image against the bake-time lock file, write the
// 0600 env file atomically, open exactly the UDP range in ufw, start the agent unit, and confirm
// the container runs with a UDP port bound inside the range. A journal records each step before
// it is taken, so a failure now, or a power cut, is rolled back to the state before.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Console } from './secrets.ts';
import {
  clearLastError,
  fsyncDir,
  readJournal,
  removeTempFiles,
  readState,
  recordError,
  removeJournal,
  writeFileAtomic,
  writeJournal,
  writeState,
  type AgentSettings,
  type Journal,
  type JournalStep,
  type Paths,
  type State,
} from './state.ts';
import type { System } from './system.ts';
import type { DockerGetOptions } from './docker-api.ts';
import { readImageLock, type AgentImageLock } from './image-lock.ts';
import type { PortRange } from './validate.ts';
import { stats } from './env.ts';

export class ApplyError extends Error {
  override name = 'ApplyError';
}

export interface ApplyDeps {
  p: Paths;
  sys: System;
  con: Console;
  /** How long to wait for the agent to run and bind its port. */
  confirmTimeoutMs?: number;
  pollMs?: number;
  now?: () => Date;
}

export interface ApplyInput {
  token: string;
  settings: AgentSettings;
  source: State['source'];
  instanceId: string;
  /** A verification of the preloaded image started earlier (preverifyImage), e.g. while the user answered. */
  preverified?: Preverified;
}

export function toRange(text: string): PortRange {
  const [a, b] = text.split('-').map(Number);
  return { start: a!, end: b! };
}

/**
 * SYNTROPY_PROVIDER for AWS. Unset, the agent guesses its provider from IP geolocation
 * (internal/config/init.go, config.env: 0 = detect); an EC2 instance says so instead.
 */
export const AWS_PROVIDER = 1;

export function envFileContent(token: string, s: AgentSettings, provider: number | null = null): string {
  const lines = [`SYNTROPY_AGENT_TOKEN=${token}`, `SYNTROPY_PORT_RANGE=${s.portRange}`, `SYNTROPY_AGENT_NAME=${s.agentName}`];
  if (provider !== null) lines.push(`SYNTROPY_PROVIDER=${provider}`);
  if (s.tags.length > 0) lines.push(`SYNTROPY_TAGS=${s.tags.join(',')}`);
  if (s.networkApi !== 'none') lines.push(`SYNTROPY_NETWORK_API=${s.networkApi}`);
  return `${lines.join('\n')}\n`;
}

/** Checks that Docker holds exactly the image the lock file names. */
export async function verifyImage(deps: ApplyDeps, opts?: Pick<DockerGetOptions, 'background'>): Promise<AgentImageLock | null> {
  if (!deps.sys.live && !existsSync(deps.p.lockFile)) {
    deps.con.say(`plan: no lock file at ${deps.p.lockFile}; on an instance the preloaded image is verified against it`);
    return null;
  }
  let lock: AgentImageLock;
  try {
    lock = readImageLock(deps.p);
  } catch (e) {
    throw new ApplyError((e as Error).message);
  }
  const id = await deps.sys.imageId(lock.ref, opts);
  if (deps.sys.live && id !== lock.id) {
    throw new ApplyError(
      id === null
        ? `the preloaded agent image ${lock.ref} is not in Docker; nothing will be pulled at first boot`
        : `the agent image ${lock.ref} is ${id}, but the lock file pins ${lock.id}`,
    );
  }
  return lock;
}

export type Outcome<T> = { ok: true; value: T } | { ok: false; error: unknown };

/**
 * A promise's outcome, never a rejection: nothing goes unobserved, and steps run side by side are
 * all waited for before a rollback.
 */
function outcome<T>(p: Promise<T>): Promise<Outcome<T>> {
  return p.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
}

/** A verifyImage started ahead of the apply, as its outcome. */
export type Preverified = Promise<Outcome<AgentImageLock | null>>;

/** How long the apply waits for an early image check still unanswered (Docker's own request timeout). */
const PREVERIFY_WAIT_MS = 120_000;

/**
 * Starts verifying the preloaded image now (the dialogue does, while the user answers). Its
 * question to Docker does not keep the process alive: a cancelled dialogue exits at once.
 */
export function preverifyImage(deps: ApplyDeps): Preverified {
  return outcome(verifyImage(deps, { background: true }));
}

/**
 * The apply's image check. An early check still unanswered is waited for (a timer keeps the
 * process alive meanwhile: its own request does not), so Docker is asked once. It counts only if
 * it passed and the lock file still pins the same image (`update-agent` may have changed it);
 * anything else (failed, e.g. while dockerd was still starting) is verified again now, so the
 * error named is today's.
 */
async function verifyBeforeApply(input: ApplyInput, deps: ApplyDeps): Promise<void> {
  let pre: Awaited<Preverified> | undefined;
  if (input.preverified) {
    let timer: NodeJS.Timeout | undefined;
    pre = await Promise.race([input.preverified, new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), PREVERIFY_WAIT_MS)))]);
    clearTimeout(timer);
  }
  if (pre?.ok && pre.value) {
    try {
      const now = readImageLock(deps.p);
      if (now.id === pre.value.id && now.ref === pre.value.ref) return;
    } catch {
      /* verifyImage names what is wrong with the lock file */
    }
  }
  await verifyImage(deps);
}

/** Waits until the agent container runs with a UDP port bound inside the range; returns that port. */
export async function confirmRunning(range: PortRange, deps: ApplyDeps, confirmedBy?: (by: 'process' | 'docker') => void): Promise<number | null> {
  const { sys } = deps;
  if (!sys.live) {
    await sys.agentRunning();
    return null;
  }
  const deadline = Date.now() + (deps.confirmTimeoutMs ?? 30_000);
  const boundInRange = () => [...sys.boundUdpPorts()].filter((p) => p >= range.start && p <= range.end).sort((a, b) => a - b)[0];
  // A port in the range alone proves nothing (an earlier agent's WireGuard links outlive its
  // container): the container must run too. The unit start returned, so `docker run` had started
  // it: Docker is asked for its process at once, while the agent starts up, and when the port
  // appears that same process still living is read from /proc, for free. Asked when the port
  // appeared instead, Docker took 0.46-0.52 s to answer in a 1 vCPU guest (the agent's own
  // start-up on the same CPU), 0.12-0.14 s when idle; asked at once, 0.34-0.42 s, unwaited for.
  let proc: { pid: number; start: string } | null | undefined;
  void sys.agentPid().then(
    (pid) => {
      const start = pid === null ? null : sys.processStartTime(pid);
      proc = pid !== null && start !== null ? { pid, start } : null;
    },
    () => (proc = null),
  );
  // Otherwise (it was not running then, or has been restarted since) Docker is asked when a port
  // appears, and again at most every DOCKER_ASK_MS while it does not say running; also when its
  // first answer is that late. Never without a port: that answer could not confirm anything.
  const began = Date.now();
  let running = false;
  let askedAt = 0;
  while (Date.now() < deadline) {
    const port = boundInRange();
    if (port !== undefined) {
      if (proc && sys.processStartTime(proc.pid) === proc.start) {
        confirmedBy?.('process');
        return port;
      }
      if ((proc !== undefined || Date.now() - began >= DOCKER_ASK_MS) && Date.now() - askedAt >= DOCKER_ASK_MS) {
        running = await sys.agentRunning();
        askedAt = Date.now();
        if (running) {
          confirmedBy?.('docker');
          return port;
        }
      }
    }
    await new Promise((r) => setTimeout(r, deps.pollMs ?? POLL_MS));
  }
  // The failure is named from Docker's answer now, not from one up to a second old.
  running = await sys.agentRunning();
  throw new ApplyError(
    running
      ? `the agent container runs but bound no UDP port in ${range.start}-${range.end} (see: docker logs syntropy-agent)`
      : 'the agent container did not start (see: journalctl -u syntropy-agent, docker logs syntropy-agent)',
  );
}

/** How often the socket table is read while waiting for the port (a read costs well under 1 ms). */
const POLL_MS = 20;
const DOCKER_ASK_MS = 1000;

/*
 * Why every crash point is recoverable (the journal is fsynced before each step it names, and
 * every file is replaced atomically: temp file, fsync, rename, fsync of the directory):
 *
 *   step (durable write)                 on disk if killed right after it   recovery does
 *   journal {previous, next, [enable]}   old config complete (the unit       disables the unit: old config
 *     (only if the unit is not enabled;  maybe enabled, by the enable that
 *     the enable then runs beside what   runs beside the next steps)
 *     follows)
 *   agent.env.previous (copy, fsynced)   old config + a backup               drops the backup (not journaled)
 *   journal +write-env                   old config + backup                 restores the backup (same bytes)
 *   agent.env (new, atomic)              new env, old state, backup          restores the backup: old config
 *   (the enable is waited for)
 *   journal +firewall +start-agent       new env, maybe rule/agent running   stops the agent, removes the rule,
 *     (one write), then the unit         (and enabled)                       restores the backup, restarts the
 *     started                                                                previous agent: old config
 *   state.json (new, with the journal's  new config, journal left            rolls FORWARD: the state names this
 *     id: the commit)                                                        journal, so the apply was complete
 *   journal removed                      new config, backup left             drops the backup
 *   backup removed                       new config                          nothing
 *
 * So at every point the old configuration or the new one is complete, never a mix. A first
 * configure has no backup: "restore" then means removing agent.env. Temporary files (which may
 * hold the token) end in TEMP_SUFFIX and are removed by every recovery.
 */

/** Undoes the journaled steps in reverse; the previous configuration, if any, comes back. */
export async function rollback(j: Journal, deps: ApplyDeps): Promise<string[]> {
  const { p, sys } = deps;
  const problems: string[] = [];
  const range = j.range ? toRange(j.range) : null;
  const prevRange = j.previous?.settings.portRange;
  const attempt = async (what: string, fn: () => Promise<void> | void) => {
    try {
      await fn();
    } catch (e) {
      problems.push(`${what}: ${(e as Error).message}`);
    }
  };
  for (const step of [...j.steps].reverse()) {
    if (step === 'start-agent') await attempt('stop the agent', () => sys.stopAgent());
    if (step === 'enable') await attempt('disable the agent', () => sys.disableAgent());
    if (step === 'firewall' && range && prevRange !== j.range) await attempt('remove the firewall rule', () => sys.firewallDeleteUdp(range));
    if (step === 'write-env') {
      await attempt('restore the env file', () => {
        if (existsSync(p.envBackup)) renameSync(p.envBackup, p.envFile);
        else rmSync(p.envFile, { force: true });
        fsyncDir(dirname(p.envFile));
      });
    }
  }
  // Started for this boot only: its enablement is as the apply found it already (stopping never
  // disables; a journaled enable was undone above), so enabling here would undo an operator's disable.
  if (j.previous && j.steps.includes('start-agent')) await attempt('restart the previous agent', () => sys.restartAgent());
  // A backup the journal never counted on (killed before journaling write-env) is stale.
  rmSync(p.envBackup, { force: true });
  removeJournal(p);
  return problems;
}

/**
 * Whether an apply got as far as recording its state: the state file names this journal (or, in
 * a journal from before journals had an id, the `commit` step was journaled).
 */
function committed(j: Journal, p: Paths): boolean {
  return j.steps.includes('commit') || (j.id !== undefined && readState(p)?.applyId === j.id);
}

/** Finishes an apply that was complete on disk but not yet cleaned up after. */
function rollForward(j: Journal, p: Paths): void {
  if (j.next) writeState(p, j.next);
  removeJournal(p);
  rmSync(p.envBackup, { force: true });
  fsyncDir(dirname(p.envBackup));
}

/**
 * Called at the start of every run: a journal left behind means an apply was cut off; it is
 * finished if it had committed, otherwise undone. Temporary files of a killed run are removed.
 */
export async function recoverInterrupted(deps: ApplyDeps): Promise<boolean> {
  const { p } = deps;
  removeTempFiles(p);
  const j = readJournal(p);
  if (!j) {
    // Killed after the journal was removed but before the backup was: the backup is stale.
    rmSync(p.envBackup, { force: true });
    return false;
  }
  if (committed(j, p)) {
    deps.con.warn('A previous configuration had been applied but not recorded; finishing it.');
    rollForward(j, p);
    return true;
  }
  deps.con.warn('A previous configuration attempt was interrupted; undoing what it had applied.');
  const problems = await rollback(j, deps);
  for (const pr of problems) deps.con.warn(`  could not ${pr}`);
  return true;
}

export async function applyConfiguration(input: ApplyInput, deps: ApplyDeps): Promise<State> {
  const { p, sys, con } = deps;
  const range = toRange(input.settings.portRange);
  const prev = readState(p);
  const previous = prev && prev.instanceId === input.instanceId ? prev : null;
  const journal: Journal = { id: randomBytes(8).toString('hex'), instanceId: input.instanceId, range: input.settings.portRange, previous, next: null, steps: [] };
  const mark = (step: JournalStep) => {
    journal.steps.push(step);
    writeJournal(p, journal);
  };
  // Where the apply's time goes (the benchmark prints it): when each step finished.
  const t0 = performance.now();
  const steps: [string, number][] = (stats.applySteps = []);
  const done = (step: string) => steps.push([step, Math.round(performance.now() - t0)]);
  // The image enables the agent unit at bake time (it starts only while the env file exists), so
  // this is for a unit disabled since (by hand, or an older image): enabled for the next boots,
  // journaled first so that a failure or a crash disables it again, while the image check and the
  // env file go ahead. On a 1 vCPU instance it costs its CPU wherever it runs: 0.24-0.31 s alone,
  // 0.35-0.48 s beside these steps, which it slowed as much (bench runs N, O, Q). Nothing else is
  // journaled before the env file's backup (recovery drops a stray backup).
  let enabling: Promise<Outcome<void>> | null = null;
  if (!sys.agentEnabled()) {
    mark('enable');
    enabling = outcome(sys.enableAgent().finally(() => done('enable')));
  }
  let failedStep = 'verify the preloaded agent image';
  try {
    await verifyBeforeApply(input, deps);
    done('verify-image');

    failedStep = 'write /etc/syntropy/agent.env';
    // The backup is complete and durable before the journal says the env file may change.
    if (existsSync(p.envFile)) writeFileAtomic(p.envBackup, readFileSync(p.envFile, 'utf8'), 0o600);
    mark('write-env');
    writeFileAtomic(p.envFile, envFileContent(input.token, input.settings, input.instanceId.startsWith('i-') ? AWS_PROVIDER : null), 0o600);
    done('write-env');

    // The firewall rule and the container start are independent: the rule is loaded while the
    // container starts and is waited for once the agent is confirmed running (both steps are
    // journaled first, in one journal write, so a failure of either rolls back both). The start
    // goes first: the user waits for it, and the firewall's file writes are synchronous.
    if (enabling) {
      const enabled = await enabling;
      if (!enabled.ok) {
        failedStep = 'enable the agent for the next boots';
        throw enabled.error;
      }
    }
    journal.steps.push('firewall', 'start-agent');
    writeJournal(p, journal);
    const starting = outcome(sys.restartAgent().finally(() => done('start-unit')));
    const firewall = outcome((previous?.settings.portRange !== input.settings.portRange ? sys.firewallAllowUdp(range) : Promise.resolve()).finally(() => done('firewall')));
    const start = await starting;
    let confirmed: Outcome<number | null> | null = null;
    if (start.ok) {
      let by: 'process' | 'docker' | null = null;
      confirmed = await outcome(confirmRunning(range, deps, (b) => (by = b)));
      if (confirmed.ok) done('confirm-running');
      // For the bench's breakdown: a confirmation that had to ask Docker again (the process it
      // named at the start was gone or restarted, or its answer came late) is the slow path.
      if (confirmed.ok && by === 'docker') done('confirmed-by-docker');
    }
    const fw = await firewall;
    if (!fw.ok) {
      failedStep = `open UDP ${input.settings.portRange} in the firewall`;
      throw fw.error;
    }
    if (!start.ok) {
      failedStep = 'start the agent';
      throw start.error;
    }
    if (!confirmed?.ok) {
      failedStep = 'confirm the agent is running';
      throw confirmed?.error;
    }
    const boundPort = confirmed.value;

    const state: State = {
      status: 'configured',
      instanceId: input.instanceId,
      configuredAt: (deps.now?.() ?? new Date()).toISOString(),
      source: input.source,
      settings: input.settings,
      boundPort,
      applyId: journal.id,
    };
    // Writing the state is the commit: it names this apply's journal, so from the moment it is on
    // disk a crash is finished, not undone (recovery compares the ids). A journaled `commit` step
    // before it would say the same for two more fsyncs, each a journal commit of the file system
    // while Docker writes, and the user waits for them.
    journal.next = state;
    failedStep = 'record the configuration';
    writeState(p, state);
    // The clean-up needs no fsync of its own: a journal whose removal a crash loses is named by
    // the state (recovery rolls forward to this same state), and a lost backup removal is dropped
    // by recovery either way. The user is waiting; each directory fsync is a journal commit.
    rmSync(p.journalFile, { force: true });
    rmSync(p.envBackup, { force: true });
    clearLastError(p);
    done('record');
    if (previous && previous.settings.portRange !== input.settings.portRange) {
      try {
        await sys.firewallDeleteUdp(toRange(previous.settings.portRange));
      } catch (e) {
        con.warn(`Could not remove the old firewall rule for ${previous.settings.portRange}: ${(e as Error).message}`);
      }
    }
    return state;
  } catch (e) {
    // An enable still running is let finish before anything is undone (its undo would race it).
    await enabling;
    if (committed(journal, p)) {
      // Complete on disk (also when writing the state failed after its rename, e.g. in the
      // directory's fsync); only the bookkeeping failed. Finish it rather than undo a working agent.
      rollForward(journal, p);
      throw new ApplyError(`could not ${failedStep}: ${(e as Error).message}`);
    }
    const problems = await rollback(journal, deps);
    const message = `could not ${failedStep}: ${(e as Error).message}`;
    recordError(p, message);
    const tail = problems.length > 0 ? `; rollback also failed to ${problems.join('; ')}` : '; every change was rolled back';
    throw new ApplyError(`${message}${tail}`);
  }
}
