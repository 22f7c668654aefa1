// Everything first boot does to the running system beyond writing files: Docker, ufw, systemd,
// and reading bound ports. With --root DIR those steps are printed as a plan instead of run.
// Commands get argument arrays (no shell) and never the token: it reaches the agent only
// through the 0600 env file.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readFileSync } from 'node:fs';
import { parseProcNetUdp, type PortRange } from './validate.ts';
import { containerRunning, inspectImage, inspectImageId, warmUpDockerApi } from './docker-api.ts';

export const AGENT_CONTAINER = 'syntropy-agent';
export const AGENT_UNIT = 'syntropy-agent.service';

export interface System {
  readonly live: boolean;
  /** Image ID of a local image reference, or null if Docker does not have it. */
  imageId(ref: string): Promise<string | null>;
  /** The image's ID and what a container of it runs (Entrypoint then Cmd); null when Docker lacks it. */
  image(ref: string): Promise<{ id: string; exec: string[] } | null>;
  loadImageArchive(file: string): Promise<void>;
  pullImage(ref: string): Promise<void>;
  firewallAllowUdp(range: PortRange): Promise<void>;
  firewallDeleteUdp(range: PortRange): Promise<void>;
  startAgent(): Promise<void>;
  stopAgent(): Promise<void>;
  /** Whether the agent container is running. */
  agentRunning(): Promise<boolean>;
  boundUdpPorts(): Set<number>;
  hostname(): string;
  /** Readies the Docker client while the user answers (nothing changes, nothing is awaited). */
  warmUp(): void;
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

  // Questions go to the Engine API on Docker's socket (docker-api.ts): no CLI process competing
  // with the container start for a small instance's CPU.
  async imageId(ref: string): Promise<string | null> {
    return inspectImageId(ref);
  }

  warmUp(): void {
    warmUpDockerApi();
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
    // Runs alongside the container start (applyConfiguration) at the lowest CPU priority: ufw's
    // Python and its ~27 iptables calls (~2 s of CPU on one small vCPU) use what the container
    // start leaves idle instead of delaying it. The apply still waits for both.
    await run('nice', ['-n', '19', 'ufw', 'allow', ...ufwRule(range), 'comment', 'syntropy-agent wireguard']);
  }

  async firewallDeleteUdp(range: PortRange): Promise<void> {
    await run('ufw', ['delete', 'allow', ...ufwRule(range)]);
  }

  async startAgent(): Promise<void> {
    // The unit file was installed at bake time: enabling needs no daemon reload. Enabling (a
    // symlink for the next boot) and restarting (this boot) are independent: both at once.
    await Promise.all([run('systemctl', ['--no-reload', 'enable', AGENT_UNIT]), run('systemctl', ['restart', AGENT_UNIT])]);
  }

  async stopAgent(): Promise<void> {
    try {
      await run('systemctl', ['--no-reload', 'disable', '--now', AGENT_UNIT]);
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
    this.plan(`ufw allow ${ufwRule(range).join(' ')} comment 'syntropy-agent wireguard'`);
  }

  async firewallDeleteUdp(range: PortRange): Promise<void> {
    this.plan(`ufw delete allow ${ufwRule(range).join(' ')}`);
  }

  async startAgent(): Promise<void> {
    this.plan(`systemctl enable ${AGENT_UNIT} && systemctl restart ${AGENT_UNIT}`);
  }

  async stopAgent(): Promise<void> {
    this.plan(`systemctl disable --now ${AGENT_UNIT} && docker rm -f ${AGENT_CONTAINER}`);
  }

  async agentRunning(): Promise<boolean> {
    this.plan(`confirm container ${AGENT_CONTAINER} runs and bound a UDP port in the range`);
    return true;
  }

  boundUdpPorts(): Set<number> {
    return this.host.boundUdpPorts();
  }

  hostname(): string {
    return this.host.hostname();
  }

  warmUp(): void {
    /* a plan asks Docker nothing */
  }
}
