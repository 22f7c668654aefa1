// A local guest never outlives the process that powered it on: SIGTERM/SIGINT to the boot test
// or the benchmark powers off every QEMU it started (a stand-in qemu-system-x86_64 here).
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO } from '../../scripts/lib/paths.ts';

function alive(pid: number): boolean {
  const stat = `/proc/${pid}/stat`;
  if (!existsSync(stat)) return false;
  // A killed child whose parent has gone may stay a zombie where PID 1 does not reap it.
  return readFileSync(stat, 'utf8').split(') ')[1]?.[0] !== 'Z';
}

async function startAndSignal(signal: NodeJS.Signals): Promise<{ code: number | null; pids: number[]; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'vm-reaper-'));
  const pidFile = join(dir, 'pids');
  writeFileSync(join(dir, 'qemu-system-x86_64'), `#!/bin/sh\necho $$ >> "${pidFile}"\nexec sleep 300\n`);
  chmodSync(join(dir, 'qemu-system-x86_64'), 0o755);
  const script = join(dir, 'guests.mts');
  writeFileSync(
    script,
    `import { LocalVm } from ${JSON.stringify(join(REPO, 'scripts/lib/guest/vm.ts'))};
const vms = [0, 1].map(() => new LocalVm({ image: '/nonexistent.qcow2', accel: 'tcg', overlay: false }));
for (const vm of vms) await vm.start();
process.stdout.write(vms.map((v) => v.dir).join(' ') + '\\n');
setInterval(() => {}, 1000);
`,
  );
  const child = spawn(join(REPO, 'node_modules/.bin/tsx'), [script], { env: { ...process.env, PATH: `${dir}:${process.env.PATH}` }, stdio: ['ignore', 'pipe', 'pipe'] });
  const vmDirs = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      if (out.includes('\n')) resolve(out.trim());
    });
    child.on('exit', (code) => reject(new Error(`exited ${code} before starting the guests`)));
  });
  const deadline = Date.now() + 10_000;
  while ((!existsSync(pidFile) || readFileSync(pidFile, 'utf8').trim().split('\n').length < 2) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const pids = readFileSync(pidFile, 'utf8').trim().split('\n').map(Number);
  expect(pids.every(alive)).toBe(true);
  const code = await new Promise<number | null>((resolve) => {
    child.on('exit', (c) => resolve(c));
    child.kill(signal);
  });
  return { code, pids, dir: vmDirs };
}

describe('local guests', () => {
  it('are powered off and their directories removed on SIGTERM', async () => {
    const { code, pids, dir } = await startAndSignal('SIGTERM');
    expect(code).toBe(143);
    expect(pids.filter(alive)).toEqual([]);
    for (const d of dir.split(' ')) expect(existsSync(d)).toBe(false);
  }, 30_000);

  it('are powered off on SIGINT (Ctrl-C)', async () => {
    const { code, pids } = await startAndSignal('SIGINT');
    expect(code).toBe(130);
    expect(pids.filter(alive)).toEqual([]);
  }, 30_000);
});
