// Validation rules shared by every configuration source (dialogue, user data, SSM, flags).
// The agent silently ignores a bad port range, so nothing invalid may reach it. Messages say
// what is wrong and never repeat the token.

export const DEFAULT_PORT_RANGE = '51820-51919';
export const DEFAULT_MAX_RANGE_WIDTH = 1000;
export const TOKEN_MIN = 16;
export const TOKEN_MAX = 2048;

/** `true` when valid, otherwise the message to show. */
export type Check = true | string;

export function checkToken(token: string): Check {
  if (token.length === 0) return 'The agent token is empty.';
  if (/\s/.test(token)) return 'The agent token must not contain spaces, tabs or line breaks.';
  if (/[\x00-\x1f\x7f]/.test(token)) return 'The agent token must not contain control characters.';
  if (!/^[\x21-\x7e]+$/.test(token)) return 'The agent token may contain only printable ASCII characters.';
  if (token.length < TOKEN_MIN) return `The agent token is too short (${token.length} characters; a token has at least ${TOKEN_MIN}).`;
  if (token.length > TOKEN_MAX) return `The agent token is too long (${token.length} characters; at most ${TOKEN_MAX}).`;
  return true;
}

export interface PortRange {
  start: number;
  end: number;
}

export interface PortRules {
  maxWidth: number;
  sshPort: number;
  /** UDP ports bound on the host right now (the agent's own ports excluded on reconfigure). */
  boundUdpPorts: () => Set<number>;
}

/**
 * The agent creates up to four WireGuard interfaces (SYNTROPY_PUBLIC, SYNTROPY_SDN1..3), each on
 * its own UDP port from the range; with no free port left it falls back to a random port, which
 * the firewall blocks (agent/swireguard/network.go `findFreePort`, syntropy-agent 1.0.0).
 */
export const AGENT_INTERFACES = 4;
export const MIN_RANGE_WIDTH = AGENT_INTERFACES;

/** The syntax every source must use (no spaces, no sign); the SSM document's pattern is checked against it. */
export const PORT_RANGE_PATTERN = '^[0-9]{1,5}-[0-9]{1,5}$';

export function formatRange(r: PortRange): string {
  return `${r.start}-${r.end}`;
}

/** The rule for a range, without the host's bound ports: `null` when valid, else the message. */
export function rangeProblem(text: string, rules: Omit<PortRules, 'boundUdpPorts'>): string | null {
  const r = checkRange(text, rules);
  return typeof r === 'string' ? r : null;
}

function checkRange(text: string, rules: Omit<PortRules, 'boundUdpPorts'>): PortRange | string {
  if (!new RegExp(PORT_RANGE_PATTERN).test(text)) return 'Use the form START-END with two port numbers and no spaces, for example 51820-51919.';
  const [start, end] = text.split('-').map(Number) as [number, number];
  if (start < 1024) return `The range must start at 1024 or above (ports below 1024 are reserved); got ${start}.`;
  if (end > 65535) return `The range must end at 65535 or below; got ${end}.`;
  if (start > end) return `The start (${start}) is above the end (${end}); write the lower port first.`;
  const width = end - start + 1;
  if (width < MIN_RANGE_WIDTH) {
    return `The range spans ${width} port${width === 1 ? '' : 's'}; it needs at least ${MIN_RANGE_WIDTH}: the agent opens up to ${AGENT_INTERFACES} WireGuard interfaces, one UDP port each, and a port outside the range is blocked by the firewall.`;
  }
  if (width > rules.maxWidth) return `The range spans ${width} ports; at most ${rules.maxWidth} are allowed.`;
  if (rules.sshPort >= start && rules.sshPort <= end) return `The range contains the SSH port ${rules.sshPort}.`;
  return { start, end };
}

export function parsePortRange(text: string, rules: PortRules): PortRange | string {
  const r = checkRange(text, rules);
  if (typeof r === 'string') return r;
  const bound = [...rules.boundUdpPorts()].filter((p) => p >= r.start && p <= r.end).sort((a, b) => a - b);
  if (bound.length > 0) return `UDP port ${bound[0]} in the range is already in use on this host; choose another range.`;
  return r;
}

export function checkAgentName(name: string): Check {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(name)) {
    return 'The agent name must be 1-63 characters: letters, digits, dot, dash or underscore, starting with a letter or digit.';
  }
  return true;
}

/**
 * One tag: the agent keeps every non-empty tag of SYNTROPY_TAGS split on commas
 * (internal/config/agent.go `initAgentTags`, syntropy-agent 1.0.0; no length rule since 0.2.0).
 * Ours are also kept to characters that are safe in the env file, a console and an SSM pattern.
 */
export const TAG_PATTERN = '[A-Za-z0-9_.:-]{1,64}';

export function parseTags(input: string | string[]): string[] | string {
  const list = (Array.isArray(input) ? input : input.split(','))
    .map((t) => (typeof t === 'string' ? t.trim() : String(t)))
    .filter((t) => t.length > 0);
  for (const t of list) {
    if (!new RegExp(`^${TAG_PATTERN}$`).test(t)) return `The tag ${JSON.stringify(t)} may contain only letters, digits and . _ : - (1-64 characters).`;
  }
  if (new Set(list).size !== list.length) return 'A tag is listed twice.';
  return list;
}

/** SSM parameter names: letters, digits, . _ - / (or an ARN), as Parameter Store allows. */
export function checkSsmParameterName(name: string): Check {
  if (/^arn:aws[a-z-]*:ssm:[a-z0-9-]+:\d{12}:parameter\/[A-Za-z0-9_.\-/]{1,2011}$/.test(name)) return true;
  if (/^[A-Za-z0-9_.\-/]{1,2048}$/.test(name) && !/^\/?(aws|ssm)/i.test(name)) return true;
  return 'The SSM parameter name may contain only letters, digits and . _ - / and must not start with aws or ssm.';
}

/** Reads bound UDP ports from /proc/net/udp and udp6 (hex local port in column 2). */
export function parseProcNetUdp(text: string): Set<number> {
  const ports = new Set<number>();
  for (const line of text.split('\n').slice(1)) {
    const local = line.trim().split(/\s+/)[1];
    const hex = local?.split(':').pop();
    if (hex) ports.add(parseInt(hex, 16));
  }
  return ports;
}
