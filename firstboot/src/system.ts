// Everything first boot does to the running system beyond writing files: Docker, ufw, systemd,
// and reading bound ports. With --root DIR those steps are printed as a plan instead of run.
// Commands get argument arrays (no shell) and never the token: it reaches the agent only
// through the 0600 env file.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readFileSync, readlinkSync, statSync } from 'node:fs';
import { parseProcNetUdp, type PortRange } from './validate.ts';
import { planUfwAllow, UFW_COMMENT, UFW_LOCATIONS, type UfwLocations } from './ufw-rules.ts';
import { writeFileAtomic } from './state.ts';
import { containerPid, containerRunning, inspectImage, inspectImageId, type DockerGetOptions } from './docker-api.ts';

export const AGENT_CONTAINER = 'syntropy-agent';
export const AGENT_UNIT = 'syntropy-agent.service';
/** The link `systemctl enable` makes for the agent unit ([Install] WantedBy=multi-user.target). */
export const AGENT_WANTS_LINK = `/etc/systemd/system/multi-user.target.wants/${AGENT_UNIT}`;

/**
 * A living process's start time from its /proc/PID/stat line (proc(5): field 2 is the command in
 * parentheses, which may hold spaces and parentheses, so fields are counted after the last ')';
 * field 3 is the state, field 22 the start time in clock ticks since boot); null for a zombie or
 * dead process (state Z or X, or x) or a line that is not one.
 */
export function procStartTime(stat: string): string | null {
  const rest = stat.slice(stat.lastIndexOf(')') + 1).trim().split(/\s+/);
  const [state] = rest;
  const start = rest[19];
  if (stat.lastIndexOf(')') < 0 || !state || /^[ZXx]$/.test(state) || !start || !/^\d+$/.test(start)) return null;
  return start;
}

export interface System {
  readonly live: boolean;
  /**
   * Image ID of a local image reference, or null if Docker does not have it. A `background`
   * question does not keep the process alive (asked ahead, e.g. while the user answers).
   */
  imageId(ref: string, opts?: Pick<DockerGetOptions, 'background'>): Promise<string | null>;
  /** The image's ID and what a container of it runs (Entrypoint then Cmd); null when Docker lacks it. */
  image(ref: string): Promise<{ id: string; exec: string[] } | null>;
  loadImageArchive(file: string): Promise<void>;
  pullImage(ref: string): Promise<void>;
  firewallAllowUdp(range: PortRange): Promise<void>;
  firewallDeleteUdp(range: PortRange): Promise<void>;
  /** Enables the agent unit for the next boots and (re)starts it now. */
  startAgent(): Promise<void>;
  /** (Re)starts the agent unit now, for this boot only. */
  restartAgent(): Promise<void>;
  /** Enables the agent unit for the next boots (no daemon reload: the unit file is the bake's). */
  enableAgent(): Promise<void>;
  /** Whether the agent unit is enabled for the next boots. */
  agentEnabled(): boolean;
  /** Undoes enableAgent: not started at the next boots; this boot's agent is left as it is. */
  disableAgent(): Promise<void>;
  /**
   * Stops this boot's agent and removes its container; whether it starts at the next boot is left
   * as it was (the unit starts only while /etc/syntropy/agent.env exists).
   */
  stopAgent(): Promise<void>;
  /** Whether the agent container is running. */
  agentRunning(): Promise<boolean>;
  /** The agent container's process (host PID) if it runs, else null: one question to Docker. */
  agentPid(): Promise<number | null>;
  /**
   * When a process started (its start time since boot, from /proc), or null if there is no such
   * living process: the same PID with the same start time is the same process, read for free.
   */
  processStartTime(pid: number): string | null;
  boundUdpPorts(): Set<number>;
  hostname(): string;
}

const execFileAsync = promisify(execFile);

const RUN_TIMEOUT_MS = 120_000;

async function run(cmd: string, args: string[]): Promise<string> {
  try {
    return (await execFileAsync(cmd, args, { encoding: 'utf8', timeout: RUN_TIMEOUT_MS })).stdout;
  } catch (e) {
    throw new Error(runFailure(`${cmd} ${args.join(' ')}`, e as RunError));
  }
}

interface RunError {
  stderr?: string;
  code?: number | string | null;
  killed?: boolean;
  signal?: string | null;
}

/** Names how a command failed: its exit code, or the timeout or signal that stopped it. */
export function runFailure(what: string, err: RunError, timeoutMs = RUN_TIMEOUT_MS): string {
  const detail = (err.stderr ?? '').trim().split('\n').slice(-2).join(' ');
  return `${what} failed${failureCause(err, timeoutMs)}${detail ? `: ${detail}` : ''}`;
}

function failureCause(err: RunError, timeoutMs: number): string {
  if (err.killed && err.signal) return ` (no answer within ${timeoutMs / 1000} s, stopped with ${err.signal})`;
  if (typeof err.code === 'number') return ` (exit ${err.code})`;
  if (typeof err.code === 'string') return ` (${err.code})`;
  if (err.signal) return ` (killed by ${err.signal})`;
  return '';
}

const ufwRule = (r: PortRange) => ['proto', 'udp', 'from', 'any', 'to', 'any', 'port', `${r.start}:${r.end}`];

export class LiveSystem implements System {
  readonly live = true;

  /** `ufw` names where ufw's files are, `wantsLink` the agent unit's enable link (tests point them at copies). */
  constructor(
    private readonly ufw: UfwLocations = UFW_LOCATIONS,
    private readonly wantsLink = AGENT_WANTS_LINK,
  ) {}

  // Questions go to the Engine API on Docker's socket (docker-api.ts): no CLI process competing
  // with the container start for a small instance's CPU.
  async imageId(ref: string, opts?: Pick<DockerGetOptions, 'background'>): Promise<string | null> {
    return inspectImageId(ref, opts);
  }

  async image(ref: string): Promise<{ id: string; exec: string[] } | null> {
    return inspectImage(ref);
  }

  async loadImageArchive(file: string): Promise<void> {
    await run('docker', ['load', '-i', file]);
  }

  async pullImage(ref: string): Promise<void> {
    await run('docker', ['pull', ref]);
  }

  async firewallAllowUdp(range: PortRange): Promise<void> {
    // Runs alongside the container start (applyConfiguration). A new rule is written into ufw's
    // files as ufw writes it and loaded with one iptables-restore per family (ufw-rules.ts):
    // about 0.2 s instead of ufw's ~3 s of Python and iptables processes competing with the
    // container start for a small instance's one vCPU.
    const plan = planUfwAllow(range, this.ufw);
    if ('fallback' in plan) {
      // Anything else is real ufw's, at the lowest CPU priority so the container start goes first.
      await run('nice', ['-n', '19', 'ufw', 'allow', ...ufwRule(range), 'comment', UFW_COMMENT]);
      return;
    }
    // Files first, then the running firewall, in ufw's order: a failure in between leaves the
    // rule in the files, where the apply's rollback (`ufw delete`) finds it; ufw deletes by
    // reloading its chains from the files (backend_iptables.py `set_rule`, LP #1933117), so the
    // running firewall ends up without the rule whether or not it had been loaded.
    for (const c of plan.changes) writeFileAtomic(c.file, c.content, statSync(c.file).mode & 0o7777);
    // Niced: the container start the user waits for goes first on a small instance's CPU; the
    // apply waits for the rule only after the agent is confirmed running.
    if (plan.live) await Promise.all(plan.changes.map((c) => run('nice', ['-n', '10', c.restore, '-n', c.file])));
  }

  async firewallDeleteUdp(range: PortRange): Promise<void> {
    await run('ufw', ['delete', 'allow', ...ufwRule(range)]);
  }

  async startAgent(): Promise<void> {
    // Enabling (a symlink for the next boot) and restarting (this boot) are independent: both at
    // once, the restart spawned first.
    await Promise.all([this.restartAgent(), this.enableAgent()]);
  }

  async restartAgent(): Promise<void> {
    await run('systemctl', ['restart', AGENT_UNIT]);
  }

  async enableAgent(): Promise<void> {
    // The unit file was installed at bake time: enabling needs no daemon reload. It stays
    // systemd's own (a D-Bus call): the first-boot units' sandbox (ProtectSystem=strict) leaves
    // /etc/systemd read-only to them.
    await run('systemctl', ['--no-reload', 'enable', AGENT_UNIT]);
  }

  agentEnabled(): boolean {
    // What `systemctl enable` makes of the unit's [Install] WantedBy=multi-user.target; read, not
    // asked (a systemctl process costs ~0.1 s on a small instance while the user waits).
    try {
      return readlinkSync(this.wantsLink).endsWith(`/${AGENT_UNIT}`);
    } catch {
      return false;
    }
  }

  async disableAgent(): Promise<void> {
    await run('systemctl', ['--no-reload', 'disable', AGENT_UNIT]);
  }

  async stopAgent(): Promise<void> {
    try {
      await run('systemctl', ['stop', AGENT_UNIT]);
    } finally {
      try {
        await run('docker', ['rm', '-f', AGENT_CONTAINER]);
      } catch {
        /* already gone */
      }
    }
  }

  async agentRunning(): Promise<boolean> {
    try {
      return await containerRunning(AGENT_CONTAINER);
    } catch {
      return false;
    }
  }

  async agentPid(): Promise<number | null> {
    try {
      return await containerPid(AGENT_CONTAINER);
    } catch {
      return null;
    }
  }

  processStartTime(pid: number): string | null {
    try {
      return procStartTime(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    } catch {
      return null;
    }
  }

  boundUdpPorts(): Set<number> {
    const ports = new Set<number>();
    for (const f of ['/proc/net/udp', '/proc/net/udp6']) {
      try {
        for (const p of parseProcNetUdp(readFileSync(f, 'utf8'))) ports.add(p);
      } catch {
        /* no IPv6 */
      }
    }
    return ports;
  }

  hostname(): string {
    try {
      return readFileSync('/proc/sys/kernel/hostname', 'utf8').trim();
    } catch {
      return 'syntropy-agent';
    }
  }
}

/** --root mode: prints what a live system would run; file writes still happen under the root. */
export class PlanSystem implements System {
  readonly live = false;
  readonly planned: string[] = [];

  constructor(
    private readonly print: (line: string) => void,
    private readonly host = new LiveSystem(),
  ) {}

  private plan(line: string): void {
    this.planned.push(line);
    this.print(`plan: ${line}`);
  }

  async imageId(ref: string): Promise<string | null> {
    this.plan(`verify that Docker holds ${ref} with the digest in the lock file`);
    return null;
  }

  async image(ref: string): Promise<{ id: string; exec: string[] } | null> {
    this.plan(`read the ID, entrypoint and command of ${ref}`);
    return null;
  }

  async loadImageArchive(file: string): Promise<void> {
    this.plan(`docker load -i ${file}`);
  }

  async pullImage(ref: string): Promise<void> {
    this.plan(`docker pull ${ref}`);
  }

  async firewallAllowUdp(range: PortRange): Promise<void> {
    this.plan(`ufw allow ${ufwRule(range).join(' ')} comment '${UFW_COMMENT}'`);
  }

  async firewallDeleteUdp(range: PortRange): Promise<void> {
    this.plan(`ufw delete allow ${ufwRule(range).join(' ')}`);
  }

  async startAgent(): Promise<void> {
    await this.enableAgent();
    await this.restartAgent();
  }

  async restartAgent(): Promise<void> {
    this.plan(`systemctl restart ${AGENT_UNIT}`);
  }

  async enableAgent(): Promise<void> {
    this.plan(`systemctl enable ${AGENT_UNIT}`);
  }

  /** A plan enables the unit: whether an instance has it enabled is the instance's to say. */
  agentEnabled(): boolean {
    return false;
  }

  async disableAgent(): Promise<void> {
    this.plan(`systemctl disable ${AGENT_UNIT}`);
  }

  async stopAgent(): Promise<void> {
    this.plan(`systemctl stop ${AGENT_UNIT} && docker rm -f ${AGENT_CONTAINER}`);
  }

  async agentRunning(): Promise<boolean> {
    this.plan(`confirm container ${AGENT_CONTAINER} runs and bound a UDP port in the range`);
    return true;
  }

  async agentPid(): Promise<number | null> {
    return null;
  }

  processStartTime(): string | null {
    return null;
  }

  boundUdpPorts(): Set<number> {
    return this.host.boundUdpPorts();
  }

  hostname(): string {
    return this.host.hostname();
  }
}
