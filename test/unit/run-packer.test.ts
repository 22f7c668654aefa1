// Packer never notices a build guest whose kernel panicked (QEMU runs on, the SSH session waits):
// runPacker watches the serial console and stops the build with the panic line. A stand-in
// `packer` on PATH plays a provisioner step that would never end.
import { afterEach, describe, expect, it } from 'vitest';
import { appendFileSync, chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PANIC_PATTERN, runPacker, watchForPanic } from '../../scripts/lib/bake/run-packer.ts';

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
