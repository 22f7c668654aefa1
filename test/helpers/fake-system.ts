// A System double for first-boot tests: records each call and can be made to fail at a step.
import type { System } from '../../firstboot/src/system.ts';
import type { PortRange } from '../../firstboot/src/validate.ts';

export const FAKE_IMAGE_ID = `sha256:${'c'.repeat(64)}`;

export class FakeSystem implements System {
  readonly live = true;
  calls: string[] = [];
  failAt: string | null = null;
  imageIdValue: string | null = FAKE_IMAGE_ID;
  running = false;
  agentPort: number | null = 51820;
  bound = new Set<number>();

  private step(name: string): void {
    this.calls.push(name);
    if (this.failAt === name) throw new Error(`${name} exploded`);
  }
  async imageId(): Promise<string | null> {
    this.step('imageId');
    return this.imageIdValue;
  }
  imageExecValue: string[] = ['/usr/local/bin/syntropy-agent-test-double'];
  async image(): Promise<{ id: string; exec: string[] } | null> {
    this.step('image');
    return this.imageIdValue === null ? null : { id: this.imageIdValue, exec: this.imageExecValue };
  }
  async loadImageArchive(): Promise<void> {
    this.step('load');
  }
  async pullImage(): Promise<void> {
    this.step('pull');
  }
  async firewallAllowUdp(r: PortRange): Promise<void> {
    this.step(`ufw-allow ${r.start}:${r.end}`);
    if (this.failAt === 'ufw-allow') throw new Error('ufw exploded');
  }
  async firewallDeleteUdp(r: PortRange): Promise<void> {
    this.step(`ufw-delete ${r.start}:${r.end}`);
  }
  /** Restart and enable, recorded as one 'start' (update-agent, a rollback's previous agent). */
  async startAgent(): Promise<void> {
    await this.restartAgent();
    this.enabled = true;
  }
  enabled = false;
  async enableAgent(): Promise<void> {
    this.step('enable');
    this.enabled = true;
  }
  agentEnabled(): boolean {
    return this.enabled;
  }
  async disableAgent(): Promise<void> {
    this.step('disable');
    this.enabled = false;
  }
  async restartAgent(): Promise<void> {
    this.step('start');
    if (this.failAt === 'start-fails') throw new Error('systemctl restart failed');
    if (this.failAt !== 'no-run') this.running = true;
    if (this.running && this.agentPort && this.failAt !== 'no-port') this.bound.add(this.agentPort);
  }
  async stopAgent(): Promise<void> {
    this.step('stop');
    this.running = false;
    this.bound.clear();
  }
  async agentRunning(): Promise<boolean> {
    return this.running;
  }
  /** The container's process: `pid` while it runs; a restart by Docker gives a new start time. */
  pid = 4242;
  startTime = '1000';
  async agentPid(): Promise<number | null> {
    return this.running ? this.pid : null;
  }
  processStartTime(pid: number): string | null {
    return this.running && pid === this.pid ? this.startTime : null;
  }
  boundUdpPorts(): Set<number> {
    return new Set(this.bound);
  }
  hostname(): string {
    return 'relay-host';
  }
}

