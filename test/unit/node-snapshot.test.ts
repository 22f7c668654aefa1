// The start of /usr/sbin/syntropy-firstboot from a V8 startup snapshot (firstboot/bin/
// build-node-snapshot, snapshot-main.cjs, syntropy-firstboot), run for real on this host's node:
// copies of the scripts with only their two path lines pointed at a scratch folder.
import { describe, expect, it } from 'vitest';
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { REPO } from '../../scripts/lib/paths.ts';

const BIN = join(REPO, 'firstboot/bin');

/** A scratch install: lib folder with the scripts, a private copy of node (so it can "change"). */
function install(program: string) {
  const lib = mkdtempSync(join(tmpdir(), 'fb-snapshot-'));
  const node = join(lib, 'node');
  copyFileSync(process.execPath, node);
  chmodSync(node, 0o755);
  const point = (name: string) => {
    const text = readFileSync(join(BIN, name), 'utf8');
    expect(text).toMatch(/^lib=\/usr\/lib\/syntropy-firstboot$/m);
    expect(text).toMatch(/^node=\/usr\/bin\/node$/m);
    writeFileSync(join(lib, name), text.replace(/^lib=.*$/m, `lib=${lib}`).replace(/^node=.*$/m, `node=${node}`), { mode: 0o755 });
  };
  point('build-node-snapshot');
  point('syntropy-firstboot');
  copyFileSync(join(BIN, 'snapshot-main.cjs'), join(lib, 'snapshot-main.cjs'));
  writeFileSync(join(lib, 'syntropy-firstboot.mjs'), program);
  const build = (...args: string[]) => spawnSync(join(lib, 'build-node-snapshot'), args, { encoding: 'utf8' });
  const start = (args: string[]) => spawnSync(join(lib, 'syntropy-firstboot'), args, { encoding: 'utf8' });
  return { lib, node, build, start };
}

// Stands in for the bundle: answers --help as the program does, and shows how it was started.
const PROGRAM = `
if (process.argv[2] === '--help') { console.log('usage: syntropy-firstboot configure|...'); process.exit(0); }
console.log(JSON.stringify({ script: process.argv[1], args: process.argv.slice(2), snapshot: process.execArgv.includes('--snapshot-blob'), url: import.meta.url }));
process.exitCode = 3;
`;

describe('syntropy-firstboot from a startup snapshot', () => {
  it('starts the same module with the same arguments from the snapshot built on this node', () => {
    const s = install(PROGRAM);
    const b = s.build();
    expect(b.status, b.stderr).toBe(0);
    expect(b.stdout).toMatch(/build-node-snapshot: \d+ bytes for node v\d+/);
    expect(existsSync(join(s.lib, 'node-startup.blob'))).toBe(true);
    const args = ['--help-me', 'a b', '', '--', "it's"];
    const r = s.start(args);
    expect(r.status, r.stderr).toBe(3);
    expect(r.stderr).toBe('');
    const seen = JSON.parse(r.stdout);
    expect(seen).toEqual({ script: join(s.lib, 'syntropy-firstboot.mjs'), args, snapshot: true, url: `file://${join(s.lib, 'syntropy-firstboot.mjs')}` });
    // --help reaches the program, not node.
    expect(s.start(['--help']).stdout).toMatch(/^usage: syntropy-firstboot/);
    rmSync(s.lib, { recursive: true, force: true });
  });

  it('starts the ordinary way when node changed since, or the snapshot or its record is missing', () => {
    const s = install(PROGRAM);
    expect(s.build().status).toBe(0);
    const how = () => JSON.parse(s.start(['x']).stdout) as { snapshot: boolean; args: string[] };
    expect(how().snapshot).toBe(true);
    // A nodejs update replaces the binary: its identity (inode, size, mtime) no longer matches.
    utimesSync(s.node, new Date(), new Date(Date.now() - 86_400_000));
    expect(how()).toMatchObject({ snapshot: false, args: ['x'] });
    expect(s.build().status).toBe(0);
    expect(how().snapshot).toBe(true);
    rmSync(join(s.lib, 'node-startup.blob'));
    expect(how().snapshot).toBe(false);
    expect(s.build().status).toBe(0);
    writeFileSync(join(s.lib, 'node-startup.id'), '');
    expect(how().snapshot).toBe(false);
    rmSync(s.lib, { recursive: true, force: true });
  });

  it('--if-stale (apt\'s hook after every package change) rebuilds only when node changed', () => {
    const s = install(PROGRAM);
    expect(s.build('--if-stale').stdout).toMatch(/bytes for node/);
    const blob = join(s.lib, 'node-startup.blob');
    utimesSync(blob, new Date(0), new Date(0));
    const idle = s.build('--if-stale');
    expect(idle.status).toBe(0);
    expect(idle.stdout).toBe('');
    expect(statSync(blob).mtimeMs).toBe(0);
    utimesSync(s.node, new Date(), new Date(Date.now() - 86_400_000));
    expect(s.build('--if-stale').stdout).toMatch(/bytes for node/);
    expect(statSync(blob).mtimeMs).toBeGreaterThan(0);
    expect(JSON.parse(s.start(['x']).stdout).snapshot).toBe(true);
    expect(s.build('--bogus').status).toBe(2);
    // --help prints its usage and builds nothing.
    rmSync(blob);
    const help = s.build('--help');
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^usage: build-node-snapshot \[--if-stale\]/);
    expect(existsSync(blob)).toBe(false);
    // The hook as apt runs it: through sh, never failing the package operation.
    const hook = readFileSync(join(BIN, '90syntropy-node-snapshot'), 'utf8');
    expect(hook).toMatch(/^DPkg::Post-Invoke \{ "if \[ -x \/usr\/lib\/syntropy-firstboot\/build-node-snapshot \]; then \/usr\/lib\/syntropy-firstboot\/build-node-snapshot --if-stale \|\| echo '[^']+' >&2; fi"; \};$/m);
    rmSync(s.lib, { recursive: true, force: true });
  });

  it('refuses a snapshot that does not start the program, and leaves no record for the wrapper', () => {
    const s = install('process.exit(0);\n');
    const b = s.build();
    expect(b.status).toBe(1);
    expect(b.stderr).toContain('the snapshot did not start syntropy-firstboot');
    expect(existsSync(join(s.lib, 'node-startup.id'))).toBe(false);
    expect(existsSync(join(s.lib, 'node-startup.blob'))).toBe(false);
    rmSync(s.lib, { recursive: true, force: true });
  });
});
