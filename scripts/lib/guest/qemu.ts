// Launching local guests: accelerator choice, the EC2-like machine identity, and the
// always-on IMDS forwarding. Packer builds and boot tests use the same pieces.
import { accessSync, constants, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { release } from 'node:os';
import { info } from '../cli/log.ts';
import { cacheRoot } from '../paths.ts';

export type Accelerator = 'kvm' | 'tcg';

/**
 * QEMU arguments for an accelerator: KVM with the host CPU model, or multi-threaded TCG with
 * QEMU's default model plus RDRAND. Why RDRAND: without it the guest's kernel has no entropy
 * source until ~10-20 s into boot, and when its random pool became ready then it flipped static
 * branches (text_poke_bp) while another vCPU ran them; under multi-threaded TCG that vCPU can
 * still execute the transient int3 after the patch completed: "Oops: int3" in
 * wait_for_random_bytes, "Kernel panic - not syncing: Fatal exception in interrupt" (build guest
 * 20261207T204330Z; the CI failure of b6df677). With RDRAND (which EC2's CPUs have, and the
 * kernel trusts by default) the pool is ready at 0.05 s, before the second vCPU is brought up,
 * as on EC2. Packer's template says the same (packer/locals.pkr.hcl; a test keeps them equal).
 */
export const TCG_ARGS = [['-accel', 'tcg,thread=multi'], ['-cpu', 'qemu64,+rdrand']];

export function accelArgs(accel: Accelerator): string[][] {
  return accel === 'kvm' ? [['-accel', 'kvm'], ['-cpu', 'host']] : TCG_ARGS.map((a) => [...a]);
}

/** SMBIOS identity that cloud-init's ds-identify recognises as EC2 (vendor and ec2-prefixed UUID). */
export function ec2Smbios(uuid = `ec2${randomBytes(16).toString('hex').slice(3)}`): string {
  const u = `${uuid.slice(0, 8)}-${uuid.slice(8, 12)}-${uuid.slice(12, 16)}-${uuid.slice(16, 20)}-${uuid.slice(20, 32)}`;
  return `type=1,manufacturer=Amazon EC2,product=t3.small,serial=${u},uuid=${u}`;
}

export interface ProbeResult {
  accel: Accelerator;
  reason: string;
}

/**
 * Decides whether KVM really works by booting the base disk's kernel under it for a few seconds:
 * some hosts expose /dev/kvm but fail stock kernels with "KVM internal error ... emulation failure".
 */
export async function probeKvm(vmlinuz: string, timeoutMs = 25_000): Promise<ProbeResult> {
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
  } catch {
    return { accel: 'tcg', reason: '/dev/kvm is missing or not accessible' };
  }
  const args = [
    '-accel', 'kvm', '-cpu', 'host', '-m', '256', '-nographic', '-no-reboot', '-nodefaults',
    '-serial', 'stdio', '-kernel', vmlinuz, '-append', 'console=ttyS0 panic=-1 root=/dev/null',
  ];
  return await new Promise<ProbeResult>((resolve) => {
    const child = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let settled = false;
    const done = (r: ProbeResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.kill('SIGKILL');
      resolve(r);
    };
    const onData = (b: Buffer) => {
      out += b.toString();
      if (/KVM internal error|emulation failure|failed to initialize kvm/i.test(out)) {
        done({ accel: 'tcg', reason: 'KVM fails to run a Debian kernel here (emulation failure)' });
      } else if (/Kernel panic|VFS: Unable to mount|Run \/init/.test(out)) {
        done({ accel: 'kvm', reason: 'a Debian kernel booted under KVM' });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', () => done({ accel: 'tcg', reason: `KVM probe exited early: ${out.trim().split('\n').at(-1) ?? ''}` }));
    const timer = setTimeout(() => done({ accel: 'tcg', reason: 'KVM probe timed out' }), timeoutMs);
  });
}

/** Resolves `auto` with a cached probe (keyed on host kernel and guest kernel); kvm/tcg pass through. */
export async function chooseAccelerator(setting: 'auto' | Accelerator, vmlinuz: string, guestKernel: string): Promise<ProbeResult> {
  if (setting !== 'auto') {
    if (setting === 'kvm') {
      try {
        accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
      } catch {
        throw new Error('local.accelerator is kvm but /dev/kvm is missing or not accessible; use auto or tcg');
      }
    }
    return { accel: setting, reason: 'set in config' };
  }
  const cacheFile = join(cacheRoot(), 'accel-probe.json');
  const key = `${release()}|${guestKernel}`;
  if (existsSync(cacheFile)) {
    const cached = JSON.parse(readFileSync(cacheFile, 'utf8')) as ProbeResult & { key: string };
    if (cached.key === key) return { accel: cached.accel, reason: `${cached.reason} (cached probe)` };
  }
  info('accelerator: probing whether KVM can run the guest kernel');
  const r = await probeKvm(vmlinuz);
  mkdirSync(dirname(cacheFile), { recursive: true });
  writeFileSync(cacheFile, JSON.stringify({ ...r, key }, null, 2));
  return r;
}
