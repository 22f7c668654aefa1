// The first-boot systemd units as a set: ordering that cannot deadlock, the recover unit that
// undoes an interrupted apply before the agent starts, and the `recover` command it runs.
import { describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { spawnSync } from 'node:child_process';
import { main } from '../../firstboot/src/cli.ts';
import { paths, writeJournal } from '../../firstboot/src/state.ts';
import { REPO } from '../../scripts/lib/paths.ts';

const DIR = join(REPO, 'firstboot/units');
type Unit = Map<string, string[]>;

function parseUnit(text: string): Unit {
  const u: Unit = new Map();
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const sec = /^\[(\w+)\]$/.exec(line);
    if (sec) {
      section = sec[1]!;
      continue;
    }
    const i = line.indexOf('=');
    const key = `${section}.${line.slice(0, i)}`;
    u.set(key, [...(u.get(key) ?? []), ...line.slice(i + 1).split(/\s+/).filter(Boolean)]);
  }
  return u;
}

const units = new Map(readdirSync(DIR).filter((f) => f.endsWith('.service')).map((f) => [f, parseUnit(readFileSync(join(DIR, f), 'utf8'))]));
const template = (name: string) => name.replace(/@[^.]+\.service$/, '@.service');
const agent = 'syntropy-agent.service';

/** Units ordered (transitively) before `target`, from After= and Before= of every unit. */
function orderedBefore(target: string): Set<string> {
  const edges: [string, string][] = [];
  for (const [name, u] of units) {
    for (const a of u.get('Unit.After') ?? []) edges.push([template(a), name]);
    for (const b of u.get('Unit.Before') ?? []) edges.push([name, template(b)]);
  }
  const seen = new Set<string>();
  const todo = [target];
  while (todo.length) {
    const t = todo.pop()!;
    for (const [a, b] of edges) if (b === t && !seen.has(a)) (seen.add(a), todo.push(a));
  }
  return seen;
}

async function run(args: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const input = new PassThrough();
  input.end('');
  const sink = { write: (s: string) => void (out += s) };
  const code = await main(args, { stdout: sink, stderr: sink, stdin: input });
  return { code, out };
}

describe('first-boot units', () => {
  it('never order the agent after a unit that starts it (its start job would wait for that unit)', () => {
    // firstboot/bin/boot hands every case with something to apply to `syntropy-firstboot boot`.
    const starters = [...units].filter(([, u]) => /syntropy-firstboot (boot|console|configure)\b|^\/usr\/lib\/syntropy-firstboot\/boot$/.test((u.get('Service.ExecStart') ?? []).join(' '))).map(([n]) => n);
    expect(starters.sort()).toEqual(['syntropy-firstboot-console@.service', 'syntropy-firstboot.service']);
    const before = orderedBefore(agent);
    expect(before).toContain('syntropy-firstboot-recover.service');
    expect(before).toContain('docker.service');
    for (const s of starters) expect(before, `${agent} is ordered after ${s}`).not.toContain(s);
  });

  it('never order a unit multi-user.target wants after a unit that starts after multi-user.target (a cycle systemd breaks by dropping a start job)', () => {
    // cloud-final.service is After=multi-user.target (cloud-init's systemd/cloud-final.service.tmpl);
    // a target is ordered after the units it wants (systemd.target(5), default dependencies).
    const late = ['cloud-final.service', 'multi-user.target', 'graphical.target'];
    const wanted = [...units].filter(([, u]) => (u.get('Install.WantedBy') ?? []).includes('multi-user.target')).map(([n]) => n);
    expect(wanted).toContain('syntropy-route-failover.service');
    for (const n of wanted) {
      const before = orderedBefore(n);
      for (const l of late) expect(before, `${n} is ordered after ${l}`).not.toContain(l);
    }
    // The failover watcher still waits for the stage that writes its configuration.
    expect(orderedBefore('syntropy-route-failover.service')).toContain('cloud-init-network.service');
  });

  it('put the console dialogue after first boot but not after Docker or cloud-init\'s config stage', () => {
    const before = orderedBefore('syntropy-firstboot-console@.service');
    expect(before).toContain('syntropy-firstboot.service');
    expect(before).toContain('cloud-init-network.service');
    expect(before).not.toContain('docker.service');
    expect(before).not.toContain('cloud-config.service');
    // Not a login: it does not wait for logins to be permitted (nor, through that, for the
    // key-only accounts' password ageing).
    expect(before).not.toContain('systemd-user-sessions.service');
    expect(units.get('syntropy-firstboot.service')!.get('Unit.Wants')).toContain('docker.service');
  });

  it('never hold boot for an answer at the console, and give the console to the getty around the dialogue', () => {
    const c = units.get('syntropy-firstboot-console@.service')!;
    // A oneshot's start job lasts until the dialogue ends: multi-user.target, and cloud-init's
    // final stage after it, would wait for a human (up to the start timeout).
    expect(c.get('Service.Type')).toEqual(['exec']);
    expect(c.get('Service.TimeoutStartSec')).toBeUndefined();
    expect(c.get('Service.RuntimeMaxSec')).toEqual(['15min']);
    expect(c.get('Unit.Before')).toContain('getty-pre.target');
    const marker = '/run/syntropy/console-%i.active';
    // Unsandboxed ("+"): one namespace setup fewer on the dialogue's path.
    expect(c.get('Service.ExecStartPre')).toEqual(['+/usr/bin/touch', marker]);
    expect(c.get('Service.ExecStopPost')).toEqual(['-/usr/lib/syntropy-firstboot/console-done', '%i']);
    for (const getty of ['getty@.service.d', 'serial-getty@.service.d']) {
      const d = parseUnit(readFileSync(join(DIR, getty, 'syntropy-firstboot.conf'), 'utf8'));
      expect(d.get('Unit.ConditionPathExists'), getty).toEqual([`!${marker.replace('%i', '%I')}`]);
    }
  });

  const canUnshare = spawnSync('unshare', ['-m', 'true']).status === 0;
  it.runIf(canUnshare)('console-done removes the marker and starts the console\'s own getty', () => {
    const bin = mkdtempSync(join(tmpdir(), 'fake-systemctl-'));
    const log = join(bin, 'calls');
    writeFileSync(join(bin, 'systemctl'), `#!/bin/sh\necho "$*" >> ${log}\n`, { mode: 0o755 });
    const run = (tty: string) =>
      spawnSync('unshare', ['-m', 'sh', '-c', `mount -t tmpfs none /run && mkdir /run/syntropy && touch /run/syntropy/console-${tty}.active && ${join(REPO, 'firstboot/bin/console-done')} ${tty}; rc=$?; test ! -e /run/syntropy/console-${tty}.active || echo marker-left; exit $rc`], {
        encoding: 'utf8',
        env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
      });
    for (const tty of ['ttyS0', 'tty1']) {
      const r = run(tty);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).not.toContain('marker-left');
    }
    expect(readFileSync(log, 'utf8')).toBe('--no-block start serial-getty@ttyS0.service\n--no-block start getty@tty1.service\n');
    for (const name of ['tty1/../x', 'console', 'tty']) {
      const bad = spawnSync(join(REPO, 'firstboot/bin/console-done'), [name], { encoding: 'utf8', env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } });
      expect(bad.status, name).toBe(2);
      expect(bad.stderr).toContain('not a terminal name');
    }
    expect(readFileSync(log, 'utf8').split('\n').length).toBe(3);
  });

  it('give the units on the dialogue\'s path the CPU first while the system starts', () => {
    for (const name of ['syntropy-firstboot.service', 'syntropy-firstboot-console@.service']) {
      expect(Number(units.get(name)!.get('Service.StartupCPUWeight')?.[0]), name).toBeGreaterThan(100);
    }
    // Of the two dialogues starting side by side, the serial console's (the one a person can type
    // into on EC2) goes first: tty1's instance drop-in gives it less than the template.
    const tty1 = parseUnit(readFileSync(join(DIR, 'syntropy-firstboot-console@tty1.service.d', 'serial-first.conf'), 'utf8'));
    const template = Number(units.get('syntropy-firstboot-console@.service')!.get('Service.StartupCPUWeight')![0]);
    expect(Number(tty1.get('Service.StartupCPUWeight')![0])).toBeLessThan(template);
    expect(existsSync(join(DIR, 'syntropy-firstboot-console@ttyS0.service.d'))).toBe(false);
    // A weight is a share among the units of one slice: the consoles' must be among the units
    // they compete with, not in the template's own slice (systemd's default for instances).
    expect(units.get('syntropy-firstboot-console@.service')!.get('Service.Slice')).toEqual(['system.slice']);
    expect(units.get('syntropy-firstboot.service')!.get('Service.Slice')).toBeUndefined();
  });

  it('undo an interrupted apply before the agent and first boot start, only when a journal exists', () => {
    const r = units.get('syntropy-firstboot-recover.service')!;
    expect(r.get('Service.ExecStart')).toEqual(['/usr/sbin/syntropy-firstboot', 'recover']);
    expect(r.get('Unit.Before')).toEqual(expect.arrayContaining([agent, 'syntropy-firstboot.service']));
    expect(r.get('Unit.ConditionPathExists')).toEqual([paths('/').journalFile]);
    const enabled = readFileSync(join(DIR, 'enable.list'), 'utf8').split('\n').filter((l) => l && !l.startsWith('#'));
    expect(enabled).toContain('syntropy-firstboot-recover.service');
    for (const e of enabled) expect(units.has(template(e)), `${e} has no unit file`).toBe(true);
    // The agent unit is enabled from the bake (first boot need not enable it while the user
    // waits), and starts only once configured: gated on the env file, after recovery.
    expect(enabled).toContain(agent);
    expect(units.get(agent)!.get('Unit.ConditionPathExists')).toEqual([paths('/').envFile]);
    expect(units.get(agent)!.get('Unit.After')).toEqual(expect.arrayContaining(['syntropy-firstboot-recover.service']));
  });

  it('recover rolls back a journaled apply and is a no-op without one', async () => {
    const root = mkdtempSync(join(tmpdir(), 'fb-recover-'));
    const p = paths(root);
    expect((await run(['recover', '--root', root])).code).toBe(0);
    mkdirSync(join(root, 'etc/syntropy'), { recursive: true });
    writeFileSync(p.envFile, 'SYNTROPY_AGENT_TOKEN=half-applied\n', { mode: 0o600 });
    writeJournal(p, { instanceId: 'i-0123456789abcdef0', range: '51820-51830', previous: null, next: null, steps: ['write-env', 'firewall', 'start-agent'] });
    const r = await run(['recover', '--root', root]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/interrupted/);
    expect(r.out).toContain('plan: ufw delete allow proto udp from any to any port 51820:51830');
    expect(r.out).toContain('plan: systemctl stop syntropy-agent.service && docker rm -f syntropy-agent');
    expect(existsSync(p.envFile)).toBe(false);
    expect(existsSync(p.journalFile)).toBe(false);
  });
});
