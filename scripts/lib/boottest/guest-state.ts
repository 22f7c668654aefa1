// What a booted local guest shows, read in one SSH round trip, and the rules a configured
// instance must meet (shared by the local scenarios and the benchmark).
import { GuestPanicked, type LocalVm } from '../guest/vm.ts';
import { check } from './common.ts';

export interface GuestState {
  env: string;
  state: boolean;
  journal: boolean;
  container: { running: boolean; image: string } | null;
  lockId: string;
  udpPorts: number[];
  ufw: string[];
  agentEnabled: string;
  memUsedMib: number;
  /** WireGuard interfaces on the host (the agent uses host networking). */
  wgInterfaces: string[];
  /** UDP ports bound by the kernel, not a process: the WireGuard listen ports. */
  wgPorts: number[];
  /** What is at the agent's lock path (/var/lock/syntropy): it must be a regular file. */
  agentLock: string;
  /** DOCKER-USER drops forwarded traffic to the instance metadata service. */
  imdsGuard: boolean;
  /** SYNTROPY_PROVIDER and SYNTROPY_AGENT_NAME from agent.env (not the token). */
  provider: string;
  agentName: string;
}

/**
 * The agent container's state, or `absent`. `docker inspect -f` prints an empty line for a
 * container that does not exist (and fails), so an empty answer counts as absent too.
 */
export const CONTAINER_PROBE = `echo "container=$(docker inspect -f '{{eq .State.Status "running"}} {{.Image}}' syntropy-agent 2>/dev/null | grep . || echo absent)"`;

const INSPECT = `
echo "env=$(stat -c '%a %U %G' /etc/syntropy/agent.env 2>/dev/null || echo absent)"
echo "state=$(test -e /var/lib/syntropy/firstboot/state.json && echo 1 || echo 0)"
echo "journal=$(test -e /var/lib/syntropy/firstboot/apply.journal && echo 1 || echo 0)"
${CONTAINER_PROBE}
echo "lock=$(sed -n 's/^AGENT_IMAGE_ID=//p' /etc/syntropy/agent-image.lock)"
echo "udp=$(ss -H -lun | awk '{ print $4 }' | sed 's/.*://' | sort -un | tr '\\n' ' ')"
echo "agent=$(systemctl is-enabled syntropy-agent.service 2>/dev/null)"
echo "mem=$(awk '/^MemTotal:/ { t = $2 } /^MemAvailable:/ { a = $2 } END { print int((t - a) / 1024) }' /proc/meminfo)"
ufw status | sed -n 's/^/ufw=/p'
echo "wgifs=$(ip -br link show type wireguard 2>/dev/null | awk '{ print $1 }' | tr '\n' ' ')"
echo "kudp=$(ss -H -lunp | grep -v 'users:' | awk '{ print $4 }' | sed 's/.*://' | sort -un | tr '\n' ' ')"
echo "agentlock=$(stat -c %F /var/lock/syntropy 2>/dev/null || echo absent)"
echo "imdsguard=$(iptables -w -C DOCKER-USER -d 169.254.169.254/32 -j DROP 2>/dev/null && echo 1 || echo 0)"
echo "provider=$(sed -n 's/^SYNTROPY_PROVIDER=//p' /etc/syntropy/agent.env 2>/dev/null)"
echo "name=$(sed -n 's/^SYNTROPY_AGENT_NAME=//p' /etc/syntropy/agent.env 2>/dev/null)"
`;

export async function inspectGuest(vm: LocalVm): Promise<GuestState> {
  const r = await vm.ssh('sudo sh -s', INSPECT);
  if (r.exitCode !== 0) throw new Error(`inspecting the guest failed: ${r.stderr.trim()}`);
  return parseGuestState(r.stdout);
}

export function parseGuestState(stdout: string): GuestState {
  const kv = new Map<string, string>();
  const ufw: string[] = [];
  for (const line of stdout.split('\n')) {
    const i = line.indexOf('=');
    if (i < 0) continue;
    const k = line.slice(0, i);
    const v = line.slice(i + 1);
    if (k === 'ufw') {
      if (/ALLOW|DENY|REJECT|LIMIT/.test(v)) ufw.push(v.replace(/\s+/g, ' ').trim());
    } else kv.set(k, v.trim());
  }
  const c = kv.get('container') ?? 'absent';
  return {
    env: kv.get('env') ?? 'absent',
    state: kv.get('state') === '1',
    journal: kv.get('journal') === '1',
    container: c === 'absent' ? null : { running: c.startsWith('true'), image: c.split(' ')[1] ?? '' },
    lockId: kv.get('lock') ?? '',
    udpPorts: (kv.get('udp') ?? '').split(/\s+/).filter(Boolean).map(Number),
    ufw,
    agentEnabled: kv.get('agent') ?? '',
    memUsedMib: Number(kv.get('mem') ?? 0),
    wgInterfaces: (kv.get('wgifs') ?? '').split(/\s+/).filter(Boolean).sort(),
    wgPorts: (kv.get('kudp') ?? '').split(/\s+/).filter(Boolean).map(Number),
    agentLock: kv.get('agentlock') ?? 'absent',
    imdsGuard: kv.get('imdsguard') === '1',
    provider: kv.get('provider') ?? '',
    agentName: kv.get('name') ?? '',
  };
}

/** Where the token appears in the guest besides agent.env: journal, process list, files. */
export async function tokenLeaks(vm: LocalVm, token: string): Promise<string[]> {
  // The token travels on stdin into a 0600 file, so no command line ever carries it.
  const script = `umask 077; tf=$(mktemp); head -n 1 > "$tf"
j=$(journalctl -o cat --no-pager 2>/dev/null | grep -cFf "$tf")
ps -eo args > "$tf.ps"; p=$(grep -cFf "$tf" "$tf.ps")
f=$(grep -rlsFf "$tf" -D skip /etc /var /root /home /run /tmp /usr/local /opt 2>/dev/null | grep -vxF -e /etc/syntropy/agent.env -e "$tf" -e "$tf.ps" | tr '\\n' ' ')
rm -f "$tf" "$tf.ps"
echo "journal=$j ps=$p files=$f"`;
  const b64 = Buffer.from(script).toString('base64');
  const r = await vm.ssh(`sudo sh -c "$(echo ${b64} | base64 -d)"`, `${token}\n`);
  const m = /journal=(\d+) ps=(\d+) files=(.*)$/m.exec(r.stdout);
  if (!m) throw new Error(`token search did not run: ${r.stderr.trim() || r.stdout.trim()}`);
  const leaks: string[] = [];
  if (m[1] !== '0') leaks.push(`journal (${m[1]} lines)`);
  if (m[2] !== '0') leaks.push(`process list (${m[2]})`);
  if (m[3]!.trim()) leaks.push(`files: ${m[3]!.trim()}`);
  if (vm.serial().includes(token)) leaks.push('serial console log');
  return leaks;
}

export async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | null>, everyMs = 2000): Promise<T> {
  const t0 = Date.now();
  let last: unknown = null;
  while (Date.now() - t0 < timeoutMs) {
    try {
      const v = await probe();
      if (v !== null) return v;
    } catch (e) {
      // A panicked guest will never answer: stop waiting (scripts/lib/guest/vm.ts).
      if (e instanceof GuestPanicked) throw e;
      last = e;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`${what}: not after ${timeoutMs / 1000}s${last ? ` (${(last as Error).message})` : ''}`);
}

interface FirstbootStatus {
  configured: boolean;
  source: string | null;
  port_range: string | null;
  bound_port: number | null;
  container_running: boolean | null;
  last_error: string | null;
}

export async function firstbootStatus(vm: LocalVm): Promise<FirstbootStatus> {
  const r = await vm.ssh('sudo syntropy-firstboot status --json');
  if (r.exitCode !== 0) throw new Error(`status failed: ${r.stderr.trim()}`);
  return JSON.parse(r.stdout) as FirstbootStatus;
}

/** Waits until first boot has finished deciding (its unit active or failed). */
export async function firstbootSettled(vm: LocalVm, timeoutMs = 600_000): Promise<string> {
  return waitFor('syntropy-firstboot.service to finish', timeoutMs, async () => {
    const r = await vm.ssh('systemctl is-active syntropy-firstboot.service');
    const s = r.stdout.trim();
    return s === 'active' || s === 'failed' ? s : null;
  });
}

function inRange(port: number, range: string): boolean {
  const [a, b] = range.split('-').map(Number);
  return port >= a! && port <= b!;
}

/** The agent's four WireGuard interfaces (agent/swireguard; images/agent-double/CONTRACT.md). */
export const AGENT_WG_INTERFACES = ['SYNTROPY_PUBLIC', 'SYNTROPY_SDN1', 'SYNTROPY_SDN2', 'SYNTROPY_SDN3'];

/** The agent is up: container running and all four WireGuard ports bound. */
export function agentUp(g: GuestState): boolean {
  return !!g.container?.running && g.wgPorts.length >= AGENT_WG_INTERFACES.length;
}

/** Waits until the agent is up (container running, four WireGuard ports bound); returns what the guest shows. */
export function waitForAgent(vm: LocalVm, what: string, timeoutMs: number): Promise<GuestState> {
  return waitFor(what, timeoutMs, async () => {
    const g = await inspectGuest(vm);
    return agentUp(g) ? g : null;
  });
}

/**
 * What a configured instance must show: the container from the preloaded image, four WireGuard
 * interfaces each on a port inside the range (none on a random port the firewall would block),
 * the lock the agent opens as a file, the provider set to AWS, bridged containers kept away from
 * the metadata service, and a 0600 env file.
 */
export function assertConfigured(g: GuestState, range: string): void {
  check(g.container !== null && g.container.running, `agent container not running (${JSON.stringify(g.container)})`);
  check(!!g.lockId && g.container!.image === g.lockId, `container image ${g.container!.image} is not the preloaded ${g.lockId}`);
  check(JSON.stringify(g.wgInterfaces) === JSON.stringify([...AGENT_WG_INTERFACES].sort()), `WireGuard interfaces: ${g.wgInterfaces.join(' ') || 'none'}; want ${AGENT_WG_INTERFACES.join(' ')}`);
  check(g.wgPorts.length === AGENT_WG_INTERFACES.length && g.wgPorts.every((p) => inRange(p, range)), `WireGuard ports ${g.wgPorts.join(' ') || 'none'}: want ${AGENT_WG_INTERFACES.length}, all inside ${range}`);
  check(g.agentLock === 'regular empty file' || g.agentLock === 'regular file', `/var/lock/syntropy is a ${g.agentLock}; the agent os.Create()s it, so it must be a file`);
  check(g.provider === '1', `SYNTROPY_PROVIDER is "${g.provider}", want 1 (AWS)`);
  check(g.imdsGuard, 'DOCKER-USER does not drop forwarded traffic to 169.254.169.254');
  check(g.env === '600 root root', `/etc/syntropy/agent.env is "${g.env}", want 600 root root`);
  check(g.state && !g.journal, `state marker ${g.state ? 'present' : 'MISSING'}, apply journal ${g.journal ? 'LEFT BEHIND' : 'gone'}`);
}

/** The firewall gained exactly the agent's UDP range (v4 and v6) and nothing else. */
export function assertFirewallDelta(before: GuestState, after: GuestState, range: string): void {
  const added = after.ufw.filter((r) => !before.ufw.includes(r));
  const removed = before.ufw.filter((r) => !after.ufw.includes(r));
  const want = range.replace('-', ':');
  check(removed.length === 0, `firewall rules removed: ${removed.join(' | ')}`);
  check(added.length > 0 && added.every((r) => r.startsWith(`${want}/udp `) && /ALLOW/.test(r)), `firewall rules added: ${added.join(' | ') || 'none'}; want only ${want}/udp`);
}

/**
 * Prints what `liveUfwRuleProblems` reads: ufw's own view of the agent's rule (a dry run, which
 * changes nothing: "Skipping adding existing rule" when ufw already has it) and the running
 * user-input chains next to the files they are loaded from. First boot writes the rule into
 * ufw's files itself and loads them with iptables-restore (firstboot/src/ufw-rules.ts): this is
 * the proof that ufw reads the result as its own and that the kernel holds it.
 */
export function liveUfwProbe(range: string, comment: string): string {
  const ports = range.replace('-', ':');
  return [
    `sudo ufw --dry-run allow proto udp from any to any port ${ports} comment '${comment}'`,
    "echo '### v4'",
    'sudo iptables -S ufw-user-input',
    "echo '### v6'",
    'sudo ip6tables -S ufw6-user-input',
    "echo '### files'",
    "sudo grep -c '^-A ufw-user-input ' /etc/ufw/user.rules",
    "sudo grep -c '^-A ufw6-user-input ' /etc/ufw/user6.rules",
  ].join('; ');
}

/** What is wrong with the live rule for `range`, read from liveUfwProbe's output; empty when nothing. */
export function liveUfwRuleProblems(out: string, range: string): string[] {
  const ports = range.replace('-', ':');
  const [dry = '', v4 = '', v6 = '', files = ''] = out.split(/^### (?:v4|v6|files)$/m);
  const problems: string[] = [];
  const skipped = dry.split('\n').map((l) => l.trim());
  const said = skipped.filter(Boolean).join(' | ') || 'no output';
  if (!skipped.includes('Skipping adding existing rule')) problems.push(`ufw does not see the IPv4 rule as its own: ${said}`);
  if (!skipped.includes('Skipping adding existing rule (v6)')) problems.push(`ufw does not see the IPv6 rule as its own: ${said}`);
  const [n4, n6] = files.trim().split('\n').map((l) => (/^\d+$/.test(l.trim()) ? Number(l) : undefined));
  for (const [family, chain, text, inFiles] of [['IPv4', 'ufw-user-input', v4, n4], ['IPv6', 'ufw6-user-input', v6, n6]] as const) {
    const rules = text.split('\n').filter((l) => l.startsWith(`-A ${chain} `));
    const want = `-A ${chain} -p udp -m multiport --dports ${ports} -j ACCEPT`;
    const n = rules.filter((l) => l === want).length;
    if (n !== 1) problems.push(`${family}: the running ${chain} holds "${want}" ${n} times, want once`);
    if (rules.length !== inFiles) problems.push(`${family}: the running ${chain} has ${rules.length} rules, its rules file ${inFiles ?? 'no count'}`);
  }
  return problems;
}
