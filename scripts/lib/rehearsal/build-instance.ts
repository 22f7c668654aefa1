// The rehearsal's build instance: Packer's amazon-ebs launches an instance in the emulator, and
// this bridge gives it a body. When the emulator reports Packer's instance running, a local QEMU
// guest boots from the local base disk (the replica of Debian's official AMI) with the IMDS
// double answering as that instance (its ID, AMI, type, zone) and serving, as EC2 does, the public
// key of the key pair the instance was launched with, read back from the emulator. Packer's SSH
// (aws.build_ssh) lands on that guest, so the key type, the login and every provisioner run for
// real. When Packer asks EC2 to stop the instance (before CreateImage), the bridge holds that call
// in the fault proxy, presses the guest's ACPI power button as EC2's stop does, waits for the
// guest to power off, keeps its disk as the image's content, and only then lets the stop through.
import { DescribeInstancesCommand, DescribeKeyPairsCommand, type EC2Client, type Instance } from '@aws-sdk/client-ec2';
import { renameSync } from 'node:fs';
import { LocalVm } from '../guest/vm.ts';
import type { Accelerator } from '../guest/qemu.ts';

export interface BridgeOptions {
  ec2: EC2Client;
  region: string;
  baseDisk: string;
  accel: Accelerator;
  sshPort: number;
  diskGib: number;
  cpus: number;
  memoryMib: number;
  guestfwd: { ip: string; port: number; hostPort: number }[];
  log: (l: string) => void;
  /**
   * The public key of a key pair as the emulator holds it. EC2 returns it from DescribeKeyPairs
   * with IncludePublicKey; moto 5.1.1 does not (its response template has no publicKey), so the
   * rehearsal reads moto's own state API for it (MotoServer.publicKey).
   */
  publicKeyOf: (keyName: string) => Promise<string | null>;
  /**
   * Registers a hook run before each StopInstances reaches the emulator, holding the call (the
   * fault proxy's onCall): EC2's stop is an ACPI shutdown that takes its time, moto's is instant.
   */
  onStopInstances: (hook: ((request: string) => Promise<void>) | null) => void;
  pollMs?: number;
}

export interface BridgeResult {
  instanceId: string | null;
  keyName: string | null;
  /** The guest shut itself down on the ACPI button (as an EC2 stop expects). */
  cleanShutdown: boolean;
  /** The guest's disk after the stop, moved to `keepDisk` if given. */
  disk: string | null;
  /** The guest's kernel panic line, when it panicked (LocalVm powers it off at once). */
  panic: string | null;
  events: { at: number; what: string }[];
}

async function packerInstance(ec2: EC2Client): Promise<Instance | null> {
  const r = await ec2.send(
    new DescribeInstancesCommand({
      Filters: [
        { Name: 'tag:syntropy:role', Values: ['packer-builder'] },
        { Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped', 'shutting-down', 'terminated'] },
      ],
    }),
  );
  const all = (r.Reservations ?? []).flatMap((x) => x.Instances ?? []);
  return all.find((i) => i.State?.Name !== 'terminated') ?? all[0] ?? null;
}

export class BuildInstanceBridge {
  private stopped = false;
  private done = false;
  private vm: LocalVm | null = null;
  readonly result: BridgeResult = { instanceId: null, keyName: null, cleanShutdown: false, disk: null, panic: null, events: [] };
  private loop: Promise<void> | null = null;
  private readonly t0 = Date.now();

  constructor(private readonly o: BridgeOptions) {}

  private event(what: string): void {
    this.result.events.push({ at: Date.now() - this.t0, what });
    this.o.log(`build instance: ${what}`);
  }

  start(keepDisk: string): void {
    this.o.onStopInstances(async (request) => {
      const vm = this.vm;
      if (!vm || !this.result.instanceId || !request.includes(this.result.instanceId)) return;
      this.event(`StopInstances ${this.result.instanceId}: ACPI power button, the call held until the guest is off`);
      this.result.cleanShutdown = await vm.acpiShutdown(180_000);
      this.event(this.result.cleanShutdown ? 'guest powered itself off' : 'guest did not power off within 180 s: cut');
      renameSync(vm.diskFile, keepDisk);
      this.result.disk = keepDisk;
      await vm.stop();
      vm.cleanup();
      this.vm = null;
      this.done = true;
    });
    // A failure here is reported by finish(); it must not end the process before then.
    this.loop = this.run(keepDisk).catch((e: Error) => {
      this.failure = e;
      this.event(`bridge failed: ${e.message}`);
    });
  }

  failure: Error | null = null;

  private async run(keepDisk: string): Promise<void> {
    const pollMs = this.o.pollMs ?? 1000;
    while (!this.stopped && !this.done) {
      this.notePanic();
      const inst = await packerInstance(this.o.ec2).catch(() => null);
      const state = inst?.State?.Name;
      if (inst && !this.vm && state === 'running' && !this.result.instanceId) {
        this.result.instanceId = inst.InstanceId!;
        this.result.keyName = inst.KeyName ?? null;
        if (!inst.KeyName) throw new Error(`Packer's instance ${inst.InstanceId} was launched without a key pair`);
        const kp = await this.o.ec2.send(new DescribeKeyPairsCommand({ KeyNames: [inst.KeyName], IncludePublicKey: true }));
        const publicKey = kp.KeyPairs?.[0]?.PublicKey?.trim() || (await this.o.publicKeyOf(inst.KeyName))?.trim();
        if (!publicKey) throw new Error(`the emulator returned no public key for key pair ${inst.KeyName}`);
        this.event(`${inst.InstanceId} running in the emulator (key pair ${inst.KeyName}, ${publicKey.split(' ')[0]}); booting its guest from the base disk`);
        this.vm = new LocalVm({
          image: this.o.baseDisk,
          accel: this.o.accel,
          cpus: this.o.cpus,
          memoryMib: this.o.memoryMib,
          diskGib: this.o.diskGib,
          sshPort: this.o.sshPort,
          publicKeys: { [inst.KeyName]: publicKey },
          guestfwd: this.o.guestfwd,
          imds: {
            instanceId: inst.InstanceId!,
            amiId: inst.ImageId,
            instanceType: inst.InstanceType,
            region: this.o.region,
            availabilityZone: inst.Placement?.AvailabilityZone,
          },
        });
        await this.vm.start();
      } else if (this.vm && (state === 'terminated' || state === 'shutting-down' || !inst)) {
        this.event(`${this.result.instanceId} ${state ?? 'gone'} before a stop: the build failed; guest powered off`);
        await this.vm.stop();
        this.vm.cleanup();
        this.vm = null;
        return;
      }
      await new Promise((r) => setTimeout(r, pollMs));
    }
  }

  /** Records a panic of the guest once: Packer's SSH to it fails, and the build with it. */
  private notePanic(): void {
    if (this.vm?.panic && !this.result.panic) {
      this.result.panic = this.vm.panic;
      this.event(`the guest's kernel panicked ("${this.vm.panic}"): powered off, so Packer's SSH session to it ends`);
    }
  }

  /** Ends the bridge; a guest still running is powered off. */
  async finish(): Promise<BridgeResult> {
    this.stopped = true;
    this.o.onStopInstances(null);
    await this.loop;
    this.notePanic();
    if (this.vm) {
      await this.vm.stop();
      this.vm.cleanup();
      this.vm = null;
    }
    return this.result;
  }
}
