// Packer never notices a build guest whose kernel panicked (QEMU runs on, the SSH session waits):
// runPacker watches the serial console and stops the build with the panic line. A stand-in
// `packer` on PATH plays a provisioner step that would never end.
import { afterEach, describe, expect, it } from 'vitest';
import { appendFileSync, chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GuestPanicError, runPacker, runPackerRetryingPanics } from '../../scripts/lib/bake/run-packer.ts';
import { PANIC_PATTERN, panicRetries, watchForPanic } from '../../scripts/lib/guest/panic.ts';

const PANIC = '[  191.115560] Kernel panic - not syncing: Fatal exception in interrupt';
const savedPath = process.env.PATH;
afterEach(() => {
  process.env.PATH = savedPath;
});

/** A `packer` that prints a step, then waits (like a provisioner on a dead guest) or exits. */
function fakePacker(body: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'run-packer-'));
  writeFileSync(join(dir, 'packer'), `#!/bin/bash\necho "==> qemu.local: Provisioning with shell script: /x/init-aide.sh"\n${body}\n`);
  chmodSync(join(dir, 'packer'), 0o755);
  process.env.PATH = `${dir}:${savedPath}`;
  return dir;
}

describe('runPacker', () => {
  it('stops a build whose guest panicked and names the step and the panic', async () => {
    const dir = fakePacker(`trap 'echo "Cleanly cancelled builds after being interrupted."; exit 1' TERM\nwhile :; do sleep 0.1; done`);
    const serial = join(dir, 'serial.log');
    writeFileSync(serial, '[    1.0] Linux version 6.12\n[    2.0] panic=-1 on the command line is not a panic\n');
    setTimeout(() => appendFileSync(serial, `[  191.1] traps: PANIC: double fault\n${PANIC}\n`), 300);
    const durations: Record<string, number> = {};
    const t0 = Date.now();
    const err = await runPacker(['build', '.'], { cwd: dir, logFile: join(dir, 'packer.log'), durations, serialLog: serial, panicPollMs: 50 }).catch((e: Error) => e);
    expect((err as Error).message).toBe(
      `the build guest's kernel panicked during init-aide.sh ("Kernel panic - not syncing: Fatal exception in interrupt"); Packer was stopped. The guest's console is serial.log among the build's logs`,
    );
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(readFileSync(join(dir, 'packer.log'), 'utf8')).toContain('Cleanly cancelled');
    expect(durations['packer:init-aide.sh']).toBeGreaterThanOrEqual(0);
  });

  it('leaves a healthy build alone and reports Packer\'s own failure', async () => {
    const dir = fakePacker('sleep 0.3; exit 3');
    const serial = join(dir, 'serial.log');
    writeFileSync(serial, '[    1.0] Linux version 6.12\n');
    await expect(runPacker(['build', '.'], { cwd: dir, logFile: join(dir, 'packer.log'), durations: {}, serialLog: serial, panicPollMs: 50 })).rejects.toThrow(
      /^packer build failed \(exit 3\); full log: .*packer\.log$/,
    );
    fakePacker('exit 0');
    await expect(runPacker(['build', '.'], { cwd: dir, logFile: join(dir, 'packer.log'), durations: {}, serialLog: serial, panicPollMs: 50 })).resolves.toBeUndefined();
  });

  it('finds a panic line split across two reads, and after the log was truncated', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'panic-watch-'));
    const serial = join(dir, 'serial.log');
    writeFileSync(serial, 'boot\n'.repeat(100));
    const seen: string[] = [];
    const stop = watchForPanic(serial, (l) => seen.push(l), 20);
    await new Promise((r) => setTimeout(r, 80));
    writeFileSync(serial, 'boot again\nKernel panic - not sy'); // truncated and rewritten (a new QEMU)
    await new Promise((r) => setTimeout(r, 80));
    appendFileSync(serial, 'ncing: VFS: Unable to mount root fs\n');
    await new Promise((r) => setTimeout(r, 80));
    stop();
    expect(seen).toEqual(['Kernel panic - not syncing: VFS: Unable to mount root fs']);
    expect(PANIC_PATTERN.test('[    0.0] Kernel command line: panic=-1')).toBe(false);
  });
});

// A packer whose runs are numbered: the runs listed in PANIC_RUNS panic at start-up (the guest's
// console gets the panic line, Packer waits on the dead guest until it is stopped); other runs
// make their output directory and succeed, or fail with exit 3 when FAIL_RUNS lists them.
function countingPacker(panicRuns: number[], failRuns: number[] = []): { dir: string; serial: string; out: string } {
  const dir = fakePacker(`n=$(( $(cat "$(dirname "$0")/runs" 2>/dev/null || echo 0) + 1 )); echo $n > "$(dirname "$0")/runs"
echo "attempt $n"
if [[ " ${panicRuns.join(' ')} " == *" $n "* ]]; then
  [[ -e "$(dirname "$0")/out" ]] && { echo "output directory exists"; exit 1; }
  mkdir "$(dirname "$0")/out"
  echo "[    9.8$n] Kernel panic - not syncing: Fatal exception in interrupt (run $n)" >> "$(dirname "$0")/serial.log"
  trap 'echo "Cleanly cancelled builds after being interrupted."; exit 1' TERM
  while :; do sleep 0.1; done
fi
[[ " ${failRuns.join(' ')} " == *" $n "* ]] && exit 3
[[ -e "$(dirname "$0")/out" ]] && { echo "output directory exists"; exit 1; }
mkdir "$(dirname "$0")/out"; echo "booted cleanly" >> "$(dirname "$0")/serial.log"; exit 0`);
  return { dir, serial: join(dir, 'serial.log'), out: join(dir, 'out') };
}

describe('runPackerRetryingPanics', () => {
  it('starts a build whose TCG guest panicked once again from scratch, and keeps the panicked console and log', async () => {
    const { dir, serial, out } = countingPacker([1]);
    let cleaned = 0;
    const retried = await runPackerRetryingPanics(
      ['build', '.'],
      { cwd: dir, logFile: join(dir, 'packer-layer.log'), durations: {}, serialLog: serial, panicPollMs: 50 },
      { build: 'layer', retries: panicRetries('tcg'), beforeRetry: () => { cleaned += 1; rmSync(out, { recursive: true }); } },
    );
    expect(cleaned).toBe(1);
    expect(retried).toEqual([
      { build: 'layer', line: 'Kernel panic - not syncing: Fatal exception in interrupt (run 1)', during: 'init-aide.sh', serial_log: 'serial-layer-panic-1.log', packer_log: 'packer-layer-panic-1.log' },
    ]);
    expect(readFileSync(join(dir, 'serial-layer-panic-1.log'), 'utf8')).toContain('(run 1)');
    expect(readFileSync(join(dir, 'packer-layer-panic-1.log'), 'utf8')).toContain('attempt 1');
    expect(readFileSync(serial, 'utf8')).toBe('booted cleanly\n');
    expect(readFileSync(join(dir, 'packer-layer.log'), 'utf8')).toContain('attempt 2');
    expect(existsSync(out)).toBe(true);
  });

  it('fails on a second panic naming both, and never retries under KVM or after any other failure', async () => {
    const twice = countingPacker([1, 2]);
    const opts = (d: { dir: string; serial: string }) => ({ cwd: d.dir, logFile: join(d.dir, 'packer.log'), durations: {}, serialLog: d.serial, panicPollMs: 50 });
    const clean = (out: string) => () => rmSync(out, { recursive: true, force: true });
    await expect(runPackerRetryingPanics(['build', '.'], opts(twice), { build: 'image', retries: 1, beforeRetry: clean(twice.out) })).rejects.toThrow(
      /kernel panicked during init-aide\.sh \("Kernel panic - not syncing: Fatal exception in interrupt \(run 2\)"\).* \(attempt 2; the earlier panics: init-aide\.sh, console serial-image-panic-1\.log\)$/,
    );
    expect(readFileSync(join(twice.dir, 'runs'), 'utf8').trim()).toBe('2');

    const kvm = countingPacker([1]);
    let cleaned = 0;
    const err = await runPackerRetryingPanics(['build', '.'], opts(kvm), { build: 'image', retries: panicRetries('kvm'), beforeRetry: () => (cleaned += 1) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GuestPanicError);
    expect(cleaned).toBe(0);
    expect(readFileSync(join(kvm.dir, 'runs'), 'utf8').trim()).toBe('1');

    const failing = countingPacker([], [1]);
    await expect(runPackerRetryingPanics(['build', '.'], opts(failing), { build: 'image', retries: 1, beforeRetry: clean(failing.out) })).rejects.toThrow(/^packer build failed \(exit 3\)/);
    expect(readFileSync(join(failing.dir, 'runs'), 'utf8').trim()).toBe('1');
  });
});
