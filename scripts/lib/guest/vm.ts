// A local guest on a copy-on-write overlay of an image, with the IMDS double forwarded and
// SSH on a loopback port. Used to smoke-boot images and by the boot tests.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync, existsSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { $ } from 'zx';
import { ImdsDouble, imdsNetdev, type ImdsOptions } from './imds-double.ts';
import { accelArgs, ec2Smbios, type Accelerator } from './qemu.ts';
import { watchForPanic } from './panic.ts';

export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

export interface SshKey {
  privateKey: string;
  publicKey: string;
}

/** A throwaway ed25519 key pair in a private directory. */
export async function throwawayKey(dir: string, comment: string): Promise<SshKey> {
  const privateKey = join(dir, 'id_ed25519');
  await $`ssh-keygen -q -t ed25519 -N ${''} -C ${comment} -f ${privateKey}`;
  chmodSync(privateKey, 0o600);
  return { privateKey, publicKey: readFileSync(`${privateKey}.pub`, 'utf8').trim() };
}

export interface VmOptions {
  image: string;
  accel: Accelerator;
  cpus?: number;
  memoryMib?: number;
  imds?: ImdsOptions;
  /** Write guest changes to an overlay (default) instead of the image itself. */
  overlay?: boolean;
  /** QEMU `restrict=on`: the guest reaches only the forwarded doubles, never the host's network. */
  restrict?: boolean;
  /** Loopback port of a Parameter Store double, reachable from the guest at SSM_DOUBLE_ADDR:80. */
  ssmPort?: number;
  /** More loopback doubles the guest reaches on addresses of its private 169.254.169.0/24. */
  guestfwd?: { ip: string; port: number; hostPort: number }[];
  /** Grow the overlay to this size (an EC2 root volume larger than its AMI's snapshot). */
  diskGib?: number;
  /** Host port forwarded to the guest's SSH (default: a free one). */
  sshPort?: number;
  /**
   * The public keys the IMDS double serves, when another party holds the private key (the
   * rehearsal: a key pair EC2 knows). Default: a throwaway key this class makes and uses.
   */
  publicKeys?: Record<string, string>;
}

/** Guests powered on by this process: a signal or exit never leaves one running. */
const running = new Set<LocalVm>();
let reaperInstalled = false;

function installReaper(): void {
  if (reaperInstalled) return;
  reaperInstalled = true;
  process.once('exit', () => {
    for (const vm of running) vm.kill();
  });
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.once(signal, () => {
      process.stderr.write(`\n${signal}: powering off ${running.size} guest(s)\n`);
      for (const vm of running) {
        vm.kill();
        vm.cleanup();
      }
      process.exit(code);
    });
  }
}

/** Where guests reach the SSM double (inside the private 169.254.169.0/24 of QEMU user networking). */
export const SSM_DOUBLE_ADDR = '169.254.169.250';

/** How an error caused by a guest's kernel panic begins (boot tests retry those under TCG). */
export const GUEST_PANIC = "the guest's kernel panicked";

/** Thrown by a panicked guest's ssh() and serial(): waiting on it (waitFor) stops at once. */
export class GuestPanicked extends Error {
  constructor(readonly line: string, what: string) {
    super(`${GUEST_PANIC}: "${line}" ${what}`);
  }
}

export class LocalVm {
  readonly dir: string;
  readonly imds: ImdsDouble;
  readonly serialLog: string;
  sshPort = 0;
  key: SshKey | null = null;
  private proc: ChildProcess | null = null;
  private exited: Promise<number | null> | null = null;
  /** The panic line, when the guest's kernel panicked (QEMU is then killed: see start()). */
  panic: string | null = null;
  private stopPanicWatch: () => void = () => {};

  constructor(private readonly opts: VmOptions) {
    this.dir = mkdtempSync(join(tmpdir(), 'syntropy-vm-'));
    this.imds = new ImdsDouble(opts.imds);
    this.serialLog = join(this.dir, 'serial.log');
  }

  /** Power-on time of the current boot (ms since epoch). */
  poweredOnAt = 0;
  private disk = '';
  private imdsPort = 0;

  /** Powers the guest on; a second call after powerOff() boots the same disk again. */
  async start(): Promise<void> {
    if (!this.imdsPort) {
      if (this.opts.publicKeys) {
        this.imds.setPublicKeys(this.opts.publicKeys);
      } else {
        this.key = await throwawayKey(this.dir, 'syntropy-boot-test');
        this.imds.setPublicKeys({ 'boot-test': this.key.publicKey });
      }
      this.imdsPort = await this.imds.start();
      this.sshPort = this.opts.sshPort ?? (await freePort());
    }
    if (!this.disk) {
      // Absolute: qemu-img resolves a relative backing file against the overlay's directory.
      const image = resolve(this.opts.image);
      this.disk = image;
      if (this.opts.overlay !== false) {
        this.disk = join(this.dir, 'overlay.qcow2');
        await $`qemu-img create -q -f qcow2 -F qcow2 -b ${image} ${this.disk} ${this.opts.diskGib ? [`${this.opts.diskGib}G`] : []}`;
      }
    }
    const disk = this.disk;
    const imdsPort = this.imdsPort;
    const args = [
      '-machine', 'type=pc', '-m', String(this.opts.memoryMib ?? 1024), '-smp', String(this.opts.cpus ?? 2),
      ...accelArgs(this.opts.accel).flat(),
      '-nodefaults', '-display', 'none', '-vga', 'none',
      '-drive', `file=${disk},if=virtio,format=qcow2,discard=unmap`,
      '-netdev', `${imdsNetdev({
        id: 'net0',
        imdsPort,
        hostfwd: [`tcp:127.0.0.1:${this.sshPort}-:22`],
        guestfwd: [...(this.opts.ssmPort ? [{ ip: SSM_DOUBLE_ADDR, port: 80, hostPort: this.opts.ssmPort }] : []), ...(this.opts.guestfwd ?? [])],
      })}${this.opts.restrict ? ',restrict=on' : ''}`,
      '-device', 'virtio-net-pci,netdev=net0,mac=52:54:00:12:34:56',
      '-smbios', ec2Smbios(),
      '-serial', `file:${this.serialLog}`,
      // The human monitor on a private socket: acpiShutdown() presses the power button with it.
      '-monitor', `unix:${join(this.dir, 'monitor.sock')},server=on,wait=off`,
    ];
    if (!existsSync(this.serialLog)) writeFileSync(this.serialLog, '');
    // The serial log keeps every boot of this guest (file: would truncate it on each power-on).
    args.splice(args.indexOf(`file:${this.serialLog}`) - 1, 2, '-chardev', `file,id=ser0,path=${this.serialLog},append=on`, '-serial', 'chardev:ser0');
    this.poweredOnAt = Date.now();
    installReaper();
    this.proc = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    running.add(this);
    let stderr = '';
    this.proc.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
    this.exited = new Promise((resolve) => this.proc!.on('exit', (code) => resolve(code)));
    // A panicked guest is powered off at once: SSH to it would otherwise wait on a dead peer and
    // the scenario would hang (scripts/lib/guest/panic.ts). The log holds every boot of this
    // guest, read again from its start by each power-on's watch; earlier boots had no panic.
    const proc = this.proc;
    this.stopPanicWatch();
    this.stopPanicWatch = watchForPanic(this.serialLog, (line) => {
      this.panic = line;
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    }, 1000);
    void this.exited.then((code) => {
      if (code !== 0 && code !== null && stderr) process.stderr.write(`qemu exited ${code}: ${stderr}\n`);
    });
  }

  /** The guest's console so far (every boot); throws GuestPanicked once the guest has panicked. */
  serial(): string {
    if (this.panic) throw new GuestPanicked(this.panic, 'while its console was read');
    return this.serialText();
  }

  private serialText(): string {
    return existsSync(this.serialLog) ? readFileSync(this.serialLog, 'utf8') : '';
  }

  sshArgs(): string[] {
    if (!this.key) throw new Error('VM not started');
    return [
      '-i', this.key.privateKey, '-p', String(this.sshPort),
      '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR',
      '-o', 'ConnectTimeout=5', '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', 'admin@127.0.0.1',
    ];
  }

  async ssh(command: string, input?: string): Promise<{ stdout: string; stderr: string; exitCode: number }> {
    if (this.panic) throw new GuestPanicked(this.panic, 'before an SSH command');
    const r = await $({ input, nothrow: true, quiet: true })`ssh ${this.sshArgs()} ${command}`;
    return { stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode ?? -1 };
  }

  /** Waits until `ssh true` succeeds; fails early if QEMU dies. */
  async waitForSsh(timeoutMs: number): Promise<number> {
    const t0 = Date.now();
    let dead = false;
    void this.exited?.then(() => (dead = true));
    while (Date.now() - t0 < timeoutMs) {
      if (this.panic) throw new GuestPanicked(this.panic, `before SSH came up; serial log tail:\n${this.serialText().slice(-2000)}`);
      if (dead) throw new Error(`guest exited before SSH came up; serial log tail:\n${this.serialText().slice(-2000)}`);
      const r = await this.ssh('true');
      if (r.exitCode === 0) return Date.now() - t0;
      await new Promise((res) => setTimeout(res, 2000));
    }
    throw new Error(`SSH not up after ${timeoutMs / 1000}s; serial log tail:\n${this.serialText().slice(-2000)}`);
  }

  /**
   * Presses the ACPI power button (what EC2's StopInstances does to an instance) and waits for
   * the guest to power itself off; kills it if it has not within `timeoutMs`. Returns whether the
   * guest shut down cleanly.
   */
  async acpiShutdown(timeoutMs: number): Promise<boolean> {
    if (!this.proc || this.proc.exitCode !== null) return true;
    const sock = connect(join(this.dir, 'monitor.sock'));
    try {
      await new Promise<void>((resolve, reject) => {
        sock.once('error', reject);
        sock.once('connect', () => sock.write('system_powerdown\n', () => resolve()));
        // The monitor greets with a banner: keep reading, or the socket never sees QEMU go.
        sock.resume();
      });
      let timer: NodeJS.Timeout | undefined;
      const clean = await Promise.race([this.exited!.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), timeoutMs)))]);
      clearTimeout(timer);
      if (!clean) await this.powerOff();
      return clean;
    } finally {
      sock.destroy();
      running.delete(this);
    }
  }

  /** The disk the guest writes (its overlay unless overlay: false). */
  get diskFile(): string {
    return this.disk;
  }

  /** Kills QEMU at once, synchronously (for signal and exit handlers). */
  kill(): void {
    this.stopPanicWatch();
    if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
    running.delete(this);
  }

  /** Cuts power at once (no shutdown in the guest), like pulling the plug. */
  async powerOff(): Promise<void> {
    if (this.proc && this.proc.exitCode === null) {
      this.proc.kill('SIGKILL');
      await this.exited;
    }
  }

  async stop(): Promise<void> {
    this.stopPanicWatch();
    if (this.proc && this.proc.exitCode === null) {
      this.proc.kill('SIGTERM');
      await Promise.race([this.exited, new Promise((r) => setTimeout(r, 5000))]);
      if (this.proc.exitCode === null) this.proc.kill('SIGKILL');
    }
    running.delete(this);
    await this.imds.stop();
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
