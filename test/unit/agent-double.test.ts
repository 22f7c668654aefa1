// The agent TEST DOUBLE keeps the real agent's start-up contract (images/agent-double/CONTRACT.md,
// from Synternet/syntropy-agent 1.0.0), so it fails where the agent would. It runs here for real
// (bash, flock(1), its own /var/lock in a private mount namespace); only the kernel-facing tools
// (ip, wg, iptables-*) are recording stand-ins, since this host has no WireGuard module. The
// image's boot tests run it with the real tools.
import { describe, expect, it } from 'vitest';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { REPO } from '../../scripts/lib/paths.ts';

const DOUBLE = join(REPO, 'images/agent-double/syntropy-agent-test-double');
const TOKEN = 'tok-0123456789abcdef';

interface Run {
  code: number;
  out: string;
  calls: string[];
  ports: Record<string, number>;
  /** The stand-ins started, one line each (ip, wg). */
  processes: string[];
  keys: string[];
}

/**
 * Runs the double in a private mount namespace whose /run/lock is a fresh tmpfs, with stand-in
 * ip/wg/iptables. `prelude` runs first inside the namespace (e.g. to make a directory at the lock
 * path or hold the lock). `taken` are UDP ports already in use; `legacy` false makes
 * iptables-legacy fail as it does without the ip_tables module.
 */
function runDouble(env: Record<string, string>, opts: { prelude?: string; taken?: number[]; legacy?: boolean; asUser?: boolean } = {}): Run {
  const dir = mkdtempSync(join(tmpdir(), 'agent-double-'));
  const bin = join(dir, 'bin');
  spawnSync('mkdir', [bin]);
  const stub = (name: string, body: string) => {
    writeFileSync(join(bin, name), `#!/bin/bash\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  };
  writeFileSync(join(dir, 'taken'), (opts.taken ?? []).map((p) => `${p}\n`).join(''));
  // ip: each command (one per call, or one per line of -batch) is recorded; \`link set X up\` binds
  // the interface's socket on a free random port, as kernel WireGuard does with listen-port 0.
  stub(
    'ip',
    `echo ip >> ${dir}/processes
one() {
  echo "ip $*" >> ${dir}/calls
  if [[ "$1 $2 $4" == "link set up" ]]; then port=$((40000 + $(wc -l < ${dir}/taken))); echo "$port" >> ${dir}/taken; echo "$3=$port" >> ${dir}/ports; fi
}
if [[ $1 == -batch || $2 == -batch ]]; then while read -r -a l; do if [[ \${#l[@]} -gt 0 ]]; then one "\${l[@]}"; fi; done; else one "$@"; fi`,
  );
  // wg set IF listen-port P private-key FILE: refused (EADDRINUSE) when P is taken; the key
  // must be one \`wg genkey\` would make (base64 of 32 bytes).
  stub(
    'wg',
    `echo wg >> ${dir}/processes
echo "wg $*" >> ${dir}/calls
case "$1" in
  set) if [[ $5 == private-key ]]; then key=$(cat "$6"); [[ $(printf '%s' "$key" | base64 -d | wc -c) == 32 && $key =~ =$ ]] || { echo "bad key $key" >&2; exit 1; }; echo "$2 $key" >> ${dir}/keys; fi
       if [[ $3 == private-key ]]; then exit 0; fi
       port=$4
       grep -qx "$port" ${dir}/taken && exit 1
       echo "$port" >> ${dir}/taken; echo "$2=$port" >> ${dir}/ports ;;
  show) sed -n "s/^$2=//p" ${dir}/ports | tail -n 1 ;;
esac`,
  );
  // -C (does the rule exist?) answers no, as on a fresh host.
  for (const v of ['legacy', 'nft']) stub(`iptables-${v}`, `echo "iptables-${v} $*" >> ${dir}/calls\n${v === 'legacy' && opts.legacy === false ? 'exit 3' : '[[ " $* " == *" -C "* ]] && exit 1; exit 0'}`);
  stub('hostname', 'echo ip-10-0-0-5');
  // The double stays up like the agent; its "sleep" here stops it the way docker stop would.
  stub('sleep', 'kill -TERM $PPID');
  const run = `${opts.prelude ?? ''}\n${opts.asUser ? 'exec setpriv --reuid=65534 --regid=65534 --clear-groups ' : 'exec '}bash ${DOUBLE}`;
  const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'bash', '-c', `mount -t tmpfs tmpfs /run/lock && ${run}`], {
    env: { PATH: `${bin}:/usr/sbin:/usr/bin:/sbin:/bin`, ...env },
    encoding: 'utf8',
    timeout: 20_000,
  });
  const read = (f: string) => {
    try {
      return readFileSync(join(dir, f), 'utf8');
    } catch {
      return '';
    }
  };
  const ports = Object.fromEntries(read('ports').split('\n').filter(Boolean).map((l) => l.split('=') as [string, string]).map(([k, v]) => [k, Number(v)]));
  const lines = (f: string) => read(f).split('\n').filter(Boolean);
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}`, calls: lines('calls'), ports, processes: lines('processes'), keys: lines('keys') };
}

describe('agent test double', () => {
  it('creates the four WireGuard interfaces, each on its own port from the range', () => {
    const r = runDouble({ SYNTROPY_AGENT_TOKEN: TOKEN, SYNTROPY_PORT_RANGE: '51820-51830', SYNTROPY_AGENT_NAME: 'relay-1', SYNTROPY_TAGS: 'a,,bc', SYNTROPY_PROVIDER: '1' });
    expect(r.code, r.out).toBe(0);
    expect(r.ports).toEqual({ SYNTROPY_PUBLIC: 51820, SYNTROPY_SDN1: 51821, SYNTROPY_SDN2: 51822, SYNTROPY_SDN3: 51823 });
    expect(r.out).toContain('agent relay-1 (provider 1, tags: a bc) running');
    expect(r.out).not.toMatch(/WARNING/);
    // Each interface gets a key of its own (checked as base64 of 32 bytes by the wg stand-in).
    expect(new Set(r.keys.map((k) => k.split(' ')[1])).size).toBe(4);
    expect(r.keys.map((k) => k.split(' ')[0])).toEqual(['SYNTROPY_PUBLIC', 'SYNTROPY_SDN1', 'SYNTROPY_SDN2', 'SYNTROPY_SDN3']);
  });

  it('starts its interfaces with one ip process and one wg process per free port (first boot waits for the first)', () => {
    const r = runDouble({ SYNTROPY_AGENT_TOKEN: TOKEN, SYNTROPY_PORT_RANGE: '51820-51830', SYNTROPY_AGENT_NAME: 'relay-1' });
    expect(r.code, r.out).toBe(0);
    expect(r.processes).toEqual(['ip', 'wg', 'wg', 'wg', 'wg']);
    expect(r.calls.filter((c) => c.startsWith('ip '))).toEqual(
      ['SYNTROPY_PUBLIC', 'SYNTROPY_SDN1', 'SYNTROPY_SDN2', 'SYNTROPY_SDN3'].flatMap((i) => [`ip link add ${i} type wireguard`, `ip link set ${i} up`]),
    );
  });

  it('falls back to a random port with the agent\'s warning when the range has fewer free ports than interfaces', () => {
    const r = runDouble({ SYNTROPY_AGENT_TOKEN: TOKEN, SYNTROPY_PORT_RANGE: '51820-51822' });
    expect(r.code, r.out).toBe(0);
    expect([r.ports.SYNTROPY_PUBLIC, r.ports.SYNTROPY_SDN1, r.ports.SYNTROPY_SDN2]).toEqual([51820, 51821, 51822]);
    expect(r.ports.SYNTROPY_SDN3).toBeGreaterThanOrEqual(40000);
    expect(r.out).toContain('Could not find free port in configured range. Fallback to random port. (SYNTROPY_SDN3)');
    const busy = runDouble({ SYNTROPY_AGENT_TOKEN: TOKEN, SYNTROPY_PORT_RANGE: '51820-51830' }, { taken: [51820, 51822] });
    expect(busy.ports.SYNTROPY_PUBLIC).toBe(51821);
    expect(busy.ports.SYNTROPY_SDN1).toBe(51823);
  });

  it('exits when the lock path is a directory (os.Create fails), as the agent does', () => {
    const r = runDouble({ SYNTROPY_AGENT_TOKEN: TOKEN }, { prelude: 'mkdir /run/lock/syntropy' });
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/Is a directory|cannot create the lock file/);
    expect(r.calls.filter((c) => c.startsWith('ip link add'))).toEqual([]);
  });

  it('exits when another agent holds the lock (flock LOCK_EX|LOCK_NB)', () => {
    const r = runDouble({ SYNTROPY_AGENT_TOKEN: TOKEN }, { prelude: 'exec 8>/run/lock/syntropy; flock -n 8' });
    expect(r.code).toBe(16);
    expect(r.out).toContain('Another agent instance is running');
  });

  it('requires root, and a token (SYNTROPY_AGENT_TOKEN, else SYNTROPY_API_KEY)', () => {
    expect(runDouble({ SYNTROPY_AGENT_TOKEN: TOKEN }, { asUser: true }).out).toMatch(/run with sudo or as root/);
    const none = runDouble({ SYNTROPY_PORT_RANGE: '51820-51830' });
    expect(none.code).toBe(1);
    expect(none.out).toMatch(/SYNTROPY_AGENT_TOKEN is not set/);
    expect(runDouble({ SYNTROPY_API_KEY: TOKEN, SYNTROPY_PORT_RANGE: '51820-51830' }).code).toBe(0);
  });

  it('reads the range as the agent does: reversed ends swapped, anything else ignored (then random ports)', () => {
    expect(runDouble({ SYNTROPY_AGENT_TOKEN: TOKEN, SYNTROPY_PORT_RANGE: '51830-51820' }).ports.SYNTROPY_PUBLIC).toBe(51820);
    expect(runDouble({ SYNTROPY_AGENT_TOKEN: TOKEN, SYNTROPY_PORT_RANGE: '+51820-51830' }).ports.SYNTROPY_PUBLIC).toBe(51820);
    for (const bad of ['51820 - 51830', '51820-51830-51840', '0-51830', '51820-70000', '51820']) {
      const r = runDouble({ SYNTROPY_AGENT_TOKEN: TOKEN, SYNTROPY_PORT_RANGE: bad });
      expect(r.code, bad).toBe(0);
      expect(r.ports.SYNTROPY_PUBLIC, bad).toBeGreaterThanOrEqual(40000);
      expect(r.out, bad).not.toMatch(/WARNING/);
    }
  });

  it('writes its FORWARD jump through iptables-legacy first, then iptables-nft, unless rules are disabled', () => {
    const legacy = runDouble({ SYNTROPY_AGENT_TOKEN: TOKEN });
    expect(legacy.calls).toContain('iptables-legacy -w -t filter -I FORWARD 1 -s 0.0.0.0/0 -d 0.0.0.0/0 -j SYNTROPY_CHAIN');
    const nft = runDouble({ SYNTROPY_AGENT_TOKEN: TOKEN }, { legacy: false });
    expect(nft.out).toContain('iptables rules through iptables-nft');
    const off = runDouble({ SYNTROPY_AGENT_TOKEN: TOKEN, SYNTROPY_CREATE_IPTABLES_RULES: 'Disabled' });
    expect(off.calls.filter((c) => c.startsWith('iptables'))).toEqual([]);
  });
});
