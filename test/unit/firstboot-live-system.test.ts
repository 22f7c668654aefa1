// LiveSystem's firewall steps run the real commands: here against stand-ins for ufw,
// iptables-restore and ip6tables-restore on PATH that record their arguments, the CPU priority
// they were started with and (the restores) the file they were given as it was at that moment.
// The ufw files are a copy of the image's (test/helpers/ufw-tree.ts).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { getPriority, tmpdir } from 'node:os';
import { AGENT_WANTS_LINK, LiveSystem } from '../../firstboot/src/system.ts';
import { REPO } from '../../scripts/lib/paths.ts';
import { ufwFixture, ufwTree } from '../helpers/ufw-tree.ts';
import type { UfwLocations } from '../../firstboot/src/ufw-rules.ts';

const R1 = { start: 51820, end: 51919 };
/** The restores run at the test's own priority (not lowered). */
const N = getPriority();
// The restores run at nice 10: the container start goes first.
const RN = Math.min(N + 10, 19);

describe('LiveSystem firewall', () => {
  let bin = '';
  let path = '';
  const calls = () => (existsSync(join(bin, 'calls')) ? readFileSync(join(bin, 'calls'), 'utf8') : '');
  const stub = (name: string, body: string) => writeFileSync(join(bin, name), `#!/bin/sh\necho "${name} $(nice) $*" >> ${join(bin, 'calls')}\n${body}\n`, { mode: 0o755 });
  beforeEach(() => {
    bin = mkdtempSync(join(tmpdir(), 'fake-fw-'));
    stub('ufw', '');
    // A restore copies the file it loads, so the test sees what the running firewall got.
    for (const r of ['iptables-restore', 'ip6tables-restore']) stub(r, `[ "$1" = -n ] && cp "$2" ${join(bin, r)}.loaded`);
    path = process.env.PATH!;
    process.env.PATH = `${bin}:${path}`;
  });
  afterEach(() => {
    process.env.PATH = path;
  });

  it("writes ufw's files as ufw does and loads each family with one restore, without ufw", async () => {
    const loc = ufwTree();
    await new LiveSystem(loc).firewallAllowUdp(R1);
    expect(readFileSync(join(loc.dir, 'user.rules'), 'utf8')).toBe(ufwFixture('allow-51820-51919.user.rules'));
    expect(readFileSync(join(loc.dir, 'user6.rules'), 'utf8')).toBe(ufwFixture('allow-51820-51919.user6.rules'));
    expect(calls().split('\n').filter(Boolean).sort()).toEqual([
      `ip6tables-restore ${RN} -n ${join(loc.dir, 'user6.rules')}`,
      `iptables-restore ${RN} -n ${join(loc.dir, 'user.rules')}`,
    ]);
    // Loaded after the files were complete.
    expect(readFileSync(join(bin, 'iptables-restore.loaded'), 'utf8')).toBe(ufwFixture('allow-51820-51919.user.rules'));
    expect(readFileSync(join(bin, 'ip6tables-restore.loaded'), 'utf8')).toBe(ufwFixture('allow-51820-51919.user6.rules'));
    // ufw's modes kept, and no temporary file left.
    expect(statSync(join(loc.dir, 'user.rules')).mode & 0o7777).toBe(0o640);
    expect(readdirSync(loc.dir).sort()).toEqual(['ufw.conf', 'user.rules', 'user6.rules']);

    // A second range is appended after the first, as ufw appends it.
    await new LiveSystem(loc).firewallAllowUdp({ start: 40000, end: 40010 });
    expect(readFileSync(join(loc.dir, 'user.rules'), 'utf8')).toBe(ufwFixture('allow-then-40000-40010.user.rules'));
    expect(readFileSync(join(loc.dir, 'user6.rules'), 'utf8')).toBe(ufwFixture('allow-then-40000-40010.user6.rules'));
  });

  it('keeps the files\u2019 mode whatever the umask', async () => {
    const loc = ufwTree();
    const old = process.umask(0o077);
    try {
      await new LiveSystem(loc).firewallAllowUdp(R1);
    } finally {
      process.umask(old);
    }
    expect(statSync(join(loc.dir, 'user6.rules')).mode & 0o7777).toBe(0o640);
  });

  it('touches only IPv4 when ufw has IPv6 off, and only the files when ufw is disabled', async () => {
    const v4only = ufwTree({ ipv6: 'no' });
    await new LiveSystem(v4only).firewallAllowUdp(R1);
    expect(readFileSync(join(v4only.dir, 'user6.rules'), 'utf8')).toBe(ufwFixture('image.user6.rules'));
    expect(calls()).toBe(`iptables-restore ${RN} -n ${join(v4only.dir, 'user.rules')}\n`);

    const off = ufwTree({ enabled: 'no' });
    await new LiveSystem(off).firewallAllowUdp(R1);
    expect(readFileSync(join(off.dir, 'user.rules'), 'utf8')).toBe(ufwFixture('allow-51820-51919.user.rules'));
    expect(calls()).toBe(`iptables-restore ${RN} -n ${join(v4only.dir, 'user.rules')}\n`);
  });

  it('leaves an existing rule for the ports, or files of another shape, to real ufw at the lowest CPU priority', async () => {
    const loc = ufwTree();
    writeFileSync(join(loc.dir, 'user.rules'), ufwFixture('allow-51820-51919.user.rules'));
    await new LiveSystem(loc).firewallAllowUdp(R1);
    const other: UfwLocations = ufwTree();
    writeFileSync(join(other.dir, 'user6.rules'), '# hand-written\n');
    await new LiveSystem(other).firewallAllowUdp(R1);
    const ufw = 'ufw 19 allow proto udp from any to any port 51820:51919 comment syntropy-agent wireguard\n';
    expect(calls()).toBe(ufw + ufw);
    // Real ufw is left to write them.
    expect(readFileSync(join(loc.dir, 'user6.rules'), 'utf8')).toBe(ufwFixture('image.user6.rules'));
  });

  it('names a failing restore with its message; the files keep the rule for the rollback to delete', async () => {
    const loc = ufwTree();
    stub('ip6tables-restore', 'echo "ip6tables-restore: line 12 failed" >&2; exit 2');
    await expect(new LiveSystem(loc).firewallAllowUdp(R1)).rejects.toThrow(`ip6tables-restore -n ${join(loc.dir, 'user6.rules')} failed (exit 2): ip6tables-restore: line 12 failed`);
    expect(readFileSync(join(loc.dir, 'user6.rules'), 'utf8')).toBe(ufwFixture('allow-51820-51919.user6.rules'));
  });

  it('removes a rule with real ufw, and names a failing command with its message', async () => {
    await new LiveSystem(ufwTree()).firewallDeleteUdp({ start: 40000, end: 40099 });
    expect(calls()).toMatch(/^ufw \d+ delete allow proto udp from any to any port 40000:40099\n$/);
    stub('ufw', 'echo "ERROR: Could not load logging rules" >&2; exit 1');
    await expect(new LiveSystem(ufwTree()).firewallDeleteUdp(R1)).rejects.toThrow(/ufw delete allow proto udp .* failed \(exit 1\): ERROR: Could not load logging rules/);
    const broken = ufwTree();
    writeFileSync(join(broken.dir, 'user.rules'), '');
    await expect(new LiveSystem(broken).firewallAllowUdp(R1)).rejects.toThrow(/ufw allow proto udp .* failed \(exit 1\): ERROR: Could not load logging rules/);
  });
});

/** The systemctl commands `fn` runs, with a systemctl on PATH that only records them. */
async function systemctlCalls(fn: () => Promise<void>): Promise<string[]> {
  const bin = mkdtempSync(join(tmpdir(), 'fake-systemctl-'));
  writeFileSync(join(bin, 'systemctl'), `#!/bin/sh\necho "systemctl $*" >> ${join(bin, 'calls')}\n`, { mode: 0o755 });
  const path = process.env.PATH!;
  process.env.PATH = `${bin}:${path}`;
  try {
    await fn();
  } finally {
    process.env.PATH = path;
  }
  return readFileSync(join(bin, 'calls'), 'utf8').split('\n').filter(Boolean);
}

describe('LiveSystem agent start', () => {
  it('enables through systemd (the first-boot units cannot write /etc/systemd) and restarts, restart first', async () => {
    expect((await systemctlCalls(() => new LiveSystem().startAgent())).sort()).toEqual(['systemctl --no-reload enable syntropy-agent.service', 'systemctl restart syntropy-agent.service']);
    // The units' sandbox: /etc/systemd is not among the paths first boot may write.
    const unit = readFileSync(join(REPO, 'firstboot/units/syntropy-firstboot.service'), 'utf8');
    expect(unit).toMatch(/^ProtectSystem=strict$/m);
    expect(/^ReadWritePaths=(.*)$/m.exec(unit)![1]).not.toMatch(/\/etc\/systemd|(^|\s)-?\/etc(\s|$)/);
  });

  it("reads whether the unit is enabled from the link `systemctl enable` makes for the unit's [Install]", async () => {
    const unit = readFileSync(join(REPO, 'firstboot/units/syntropy-agent.service'), 'utf8');
    const wantedBy = /^\[Install\]\n(?:.*\n)*?WantedBy=(\S+)$/m.exec(unit)![1];
    expect(AGENT_WANTS_LINK).toBe(`/etc/systemd/system/${wantedBy}.wants/syntropy-agent.service`);
    // No Alias or Also: the wants link is all that enabling makes.
    expect(unit).not.toMatch(/^(Alias|Also|RequiredBy|UpheldBy)=/m);
    const dir = mkdtempSync(join(tmpdir(), 'wants-'));
    const link = join(dir, 'syntropy-agent.service');
    expect(new LiveSystem(undefined, link).agentEnabled()).toBe(false);
    symlinkSync('/usr/lib/systemd/system/syntropy-agent.service', link);
    expect(new LiveSystem(undefined, link).agentEnabled()).toBe(true);
    const other = join(dir, 'other');
    symlinkSync('/usr/lib/systemd/system/something-else.service', other);
    expect(new LiveSystem(undefined, other).agentEnabled()).toBe(false);
    // Disabling (an apply's undo) goes through systemd, and leaves this boot's agent alone.
    expect(await systemctlCalls(() => new LiveSystem().disableAgent())).toEqual(['systemctl --no-reload disable syntropy-agent.service']);
  });
});
