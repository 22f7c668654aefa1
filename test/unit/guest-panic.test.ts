// A local guest whose kernel panics is powered off at once and the failure says so (SSH to a dead
// guest would otherwise wait); under TCG a boot scenario hit by a panic runs once more, under KVM
// never. A stand-in qemu-system-x86_64 writes the panic to the console QEMU would write.
import { afterEach, describe, expect, it } from 'vitest';
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { GUEST_PANIC, LocalVm } from '../../scripts/lib/guest/vm.ts';
import { LOCAL_SCENARIOS, runScenario, withVm, type LocalBootContext } from '../../scripts/lib/boottest/local.ts';
import { Recorder } from '../../scripts/lib/boottest/common.ts';
import { BuildInstanceBridge } from '../../scripts/lib/rehearsal/build-instance.ts';
import type { EC2Client } from '@aws-sdk/client-ec2';

const savedPath = process.env.PATH;
afterEach(() => {
  process.env.PATH = savedPath;
});

/** A QEMU that boots into a panic after `afterS` seconds, then hangs like a panicked guest. Counts its runs. */
function panickingQemu(afterS = 0.3): string {
  const dir = mkdtempSync(join(tmpdir(), 'qemu-panic-'));
  writeFileSync(
    join(dir, 'qemu-system-x86_64'),
    `#!/bin/bash
echo run >> "${dir}/runs"
for a in "$@"; do [[ $a == file,id=ser0,path=* ]] && serial=\${a#*path=} && serial=\${serial%%,*}; done
echo "[    0.000000] Linux version 6.12.118+deb13-cloud-amd64" >> "$serial"
sleep ${afterS}
printf '[   12.3] Oops: 0000 [#1] PREEMPT SMP NOPTI\\n[   12.4] Kernel panic - not syncing: Fatal exception in interrupt\\n' >> "$serial"
exec sleep 300
`,
  );
  chmodSync(join(dir, 'qemu-system-x86_64'), 0o755);
  process.env.PATH = `${dir}:${savedPath}`;
  return dir;
}

const runs = (dir: string) => (existsSync(join(dir, 'runs')) ? readFileSync(join(dir, 'runs'), 'utf8').trim().split('\n').length : 0);

/** The disk the scenarios' guests overlay (the stand-in QEMU never reads it). */
function disk(): string {
  const f = join(mkdtempSync(join(tmpdir(), 'panic-disk-')), 'image.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', f, '16M']);
  return f;
}

function ctx(accel: 'tcg' | 'kvm', log: string[]): LocalBootContext {
  return { image: disk(), accel, catalog: [], sshUser: 'admin', log: (l) => log.push(l), cpus: 1, memoryMib: 512 };
}

describe('a panicked local guest', () => {
  it('is powered off, and waiting for its SSH fails at once with the panic line', async () => {
    panickingQemu();
    const vm = new LocalVm({ image: '/nonexistent.qcow2', accel: 'tcg', overlay: false, restrict: true });
    try {
      await vm.start();
      const t0 = Date.now();
      await expect(vm.waitForSsh(60_000)).rejects.toThrow(`${GUEST_PANIC}: "Kernel panic - not syncing: Fatal exception in interrupt" before SSH came up`);
      expect(Date.now() - t0).toBeLessThan(10_000);
      expect(vm.panic).toBe('Kernel panic - not syncing: Fatal exception in interrupt');
    } finally {
      await vm.stop();
      vm.cleanup();
    }
  }, 30_000);

  it('makes whatever failed after it a failure that names the panic', async () => {
    panickingQemu(0.1);
    const rec = new Recorder('t', () => {});
    const err = await withVm(ctx('tcg', []), rec, {}, async () => {
      await new Promise((r) => setTimeout(r, 2500));
      throw new Error('ssh exited 255: Connection closed by 127.0.0.1');
    }).catch((e: Error) => e);
    expect((err as Error).message).toBe(`${GUEST_PANIC}: "Kernel panic - not syncing: Fatal exception in interrupt" (then: ssh exited 255: Connection closed by 127.0.0.1)`);
  }, 30_000);

  it('runs a TCG scenario once more in fresh guests, never a KVM one, and the report says so', async () => {
    const tcg = panickingQemu();
    const log: string[] = [];
    const r = await runScenario('dialogue', LOCAL_SCENARIOS.dialogue!, ctx('tcg', log));
    expect(runs(tcg)).toBe(2);
    expect(r.passed).toBe(false);
    expect(r.error).toBe(`${GUEST_PANIC}: "Kernel panic - not syncing: Fatal exception in interrupt" while its console was read`);
    expect(r.figures.retried_after_panic).toMatch(/^the guest's kernel panicked/);
    expect(log.some((l) => l.includes('[dialogue] warning: the guest\'s kernel panicked') && l.includes('runs once more'))).toBe(true);

    const kvm = panickingQemu();
    const k = await runScenario('dialogue', LOCAL_SCENARIOS.dialogue!, ctx('kvm', []));
    expect(runs(kvm)).toBe(1);
    expect(k.passed).toBe(false);
    expect(k.figures.retried_after_panic).toBeUndefined();
  }, 60_000);

  it('a scenario that passes on its second run passes, with the first run\'s panic in its figures; other failures are not retried', async () => {
    let calls = 0;
    const flaky = async () => {
      calls += 1;
      if (calls === 1) throw new Error(`${GUEST_PANIC}: "Kernel panic - not syncing: Fatal exception in interrupt" before SSH came up`);
    };
    const r = await runScenario('reboot', flaky, ctx('tcg', []));
    expect(calls).toBe(2);
    expect(r).toMatchObject({ passed: true, figures: { retried_after_panic: `${GUEST_PANIC}: "Kernel panic - not syncing: Fatal exception in interrupt" before SSH came up` } });

    let other = 0;
    const failing = async () => {
      other += 1;
      throw new Error('agent not running after 300 s');
    };
    const f = await runScenario('reboot', failing, ctx('tcg', []));
    expect(other).toBe(1);
    expect(f).toMatchObject({ passed: false, error: 'agent not running after 300 s' });
  });

  it("the rehearsal's build instance bridge reports its guest's panic (its run.ts builds once more under TCG)", async () => {
    panickingQemu(0.1);
    // What the emulator answers: Packer's instance running with its key pair, then terminated
    // (Packer's cleanup after its SSH session died).
    let state = 'running';
    const ec2 = {
      send: async (cmd: { constructor: { name: string } }) =>
        cmd.constructor.name === 'DescribeKeyPairsCommand'
          ? { KeyPairs: [{ KeyName: 'packer_x', PublicKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq5 packer' }] }
          : { Reservations: [{ Instances: [{ InstanceId: 'i-0123456789abcdef0', KeyName: 'packer_x', ImageId: 'ami-0123456789abcdef0', InstanceType: 't3.medium', State: { Name: state } }] }] },
    } as unknown as EC2Client;
    const log: string[] = [];
    const bridge = new BuildInstanceBridge({
      ec2, region: 'us-east-1', baseDisk: disk(), accel: 'tcg', sshPort: 0, diskGib: 1, cpus: 1, memoryMib: 256, guestfwd: [],
      log: (l) => log.push(l), publicKeyOf: async () => null, onStopInstances: () => {}, pollMs: 100,
    });
    bridge.start(join(mkdtempSync(join(tmpdir(), 'bridge-')), 'disk.qcow2'));
    const deadline = Date.now() + 15_000;
    while (!log.some((l) => l.includes('kernel panicked')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    state = 'terminated';
    const b = await bridge.finish();
    expect(b.panic).toBe('Kernel panic - not syncing: Fatal exception in interrupt');
    expect(log.filter((l) => l.includes("the guest's kernel panicked"))).toHaveLength(1);
  }, 30_000);
});
