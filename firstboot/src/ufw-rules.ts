// The agent's UDP rule added the way ufw itself adds it, without ufw's Python.
//
// `ufw allow proto udp from any to any port S:E comment C` (ufw 0.36.2, Debian 13) does two
// things (ufw/backend_iptables.py `set_rule`): it rewrites /etc/ufw/user.rules (and user6.rules
// when IPv6 is on) with the new rule appended after the existing ones (`_write_rules`), and when
// ufw is enabled it loads the rule into the running firewall. On a 1 vCPU instance that costs
// about 3 s with cold caches (Python start-up and about 27 iptables processes), beside the
// container start it competes with. Here the same files are written (byte for byte what ufw
// writes: test/fixtures/ufw, captured from real ufw) and the running firewall is loaded from
// them with one `iptables-restore -n` per family, which is what ufw does itself whenever a rule
// is modified or inserted (`_reload_user_rules`); `-n` keeps the other tables and chains, and a
// user chain the file declares is emptied before its rules are added (iptables-restore(8)), so
// the ufw chains end up holding exactly the file's rules. About 0.2 s.
//
// Anything but a plain new rule in files of the expected shape (a rule for the same ports
// already there, with any action or comment; a file without ufw's markers; settings this module
// does not read the way ufw does) is left to real ufw: `planUfwAllow` answers with the reason.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PortRange } from './validate.ts';

export const UFW_COMMENT = 'syntropy-agent wireguard';

export interface UfwLocations {
  /** /etc/ufw: user.rules, user6.rules, ufw.conf. */
  dir: string;
  /** /etc/default/ufw (IPV6=). */
  defaults: string;
  /** /proc/sys/net/ipv6: ufw uses IPv6 only when the kernel has it. */
  procIpv6: string;
}

export const UFW_LOCATIONS: UfwLocations = { dir: '/etc/ufw', defaults: '/etc/default/ufw', procIpv6: '/proc/sys/net/ipv6' };

/** A rules file to replace and, when ufw is enabled, the restore command that loads it. */
export interface UfwFileChange {
  file: string;
  content: string;
  restore: 'iptables-restore' | 'ip6tables-restore';
}

export type UfwAllowPlan = { changes: UfwFileChange[]; live: boolean } | { fallback: string };

/**
 * ufw's settings as ufw reads them (ufw/backend.py `_get_defaults`): /etc/default/ufw, then
 * ufw.conf; lines `KEY=value` matching ^\w+="?\w+"?, keys and values lower-cased, quotes stripped.
 */
export function parseUfwSettings(...texts: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const text of texts) {
    for (const line of text.split('\n')) {
      if (!/^\w+="?\w+"?/.test(line)) continue;
      const parts = line.trim().split('=');
      out.set(parts[0]!.toLowerCase(), (parts[1] ?? '').toLowerCase().replace(/^["']+|["']+$/g, ''));
    }
  }
  return out;
}

/** ufw's comment encoding in the tuple line (ufw/util.py `hex_encode`: UTF-8 bytes as hex). */
const hex = (s: string) => Buffer.from(s, 'utf8').toString('hex');

/** The lines ufw writes for the rule (`_write_rules`, `UFWRule.format_rule` with multiport). */
export function ufwRuleBlock(range: PortRange, v6: boolean, comment = UFW_COMMENT): string {
  const any = v6 ? '::/0' : '0.0.0.0/0';
  const ports = `${range.start}:${range.end}`;
  return `### tuple ### allow udp ${ports} ${any} any ${any} in comment=${hex(comment)}\n-A ${v6 ? 'ufw6' : 'ufw'}-user-input -p udp -m multiport --dports ${ports} -j ACCEPT\n\n`;
}

const END_RULES = '### END RULES ###';

/**
 * The file with the rule appended after the existing rules, as ufw writes it; or why this file
 * is left to ufw. ufw writes each rule as "\n### tuple ### …\n-A …\n" and the footer as
 * "\n### END RULES ###\n", so appending is inserting the block right before the footer's line.
 */
export function appendUfwRule(text: string, range: PortRange, v6: boolean, comment = UFW_COMMENT): { content: string } | { fallback: string } {
  const lines = text.split('\n');
  const end = lines.indexOf(END_RULES);
  if (!text.startsWith('*filter\n') || end < 1 || lines.indexOf(END_RULES, end + 1) >= 0 || !lines.includes('### RULES ###') || lines[end - 1] !== '') {
    return { fallback: 'the rules file is not in the shape ufw writes' };
  }
  const any = v6 ? '::/0' : '0.0.0.0/0';
  // A rule for the same traffic with another action or comment is ufw's to update, and the same
  // rule ufw's to skip: both are left to it.
  // A tuple line's fields: action protocol dport dst sport src interfaces [comment=…].
  const key = `udp ${range.start}:${range.end} ${any} any ${any} in`;
  if (lines.some((l) => l.startsWith('### tuple ### ') && l.slice(14).split(' ').slice(1, 7).join(' ') === key)) {
    return { fallback: `a rule for UDP ${range.start}:${range.end} is already there` };
  }
  const at = lines.slice(0, end).join('\n').length + 1;
  return { content: text.slice(0, at) + ufwRuleBlock(range, v6, comment) + text.slice(at) };
}

/** What adding the agent's rule changes, read from the system's ufw files; nothing is written. */
export function planUfwAllow(range: PortRange, loc: UfwLocations = UFW_LOCATIONS): UfwAllowPlan {
  let settings: Map<string, string>;
  try {
    settings = parseUfwSettings(readFileSync(loc.defaults, 'utf8'), readFileSync(join(loc.dir, 'ufw.conf'), 'utf8'));
  } catch (e) {
    return { fallback: `cannot read ufw's settings: ${(e as Error).message}` };
  }
  const families: [string, boolean][] = [['user.rules', false]];
  if (settings.get('ipv6') === 'yes' && existsSync(loc.procIpv6)) families.push(['user6.rules', true]);
  const changes: UfwFileChange[] = [];
  for (const [name, v6] of families) {
    const file = join(loc.dir, name);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      return { fallback: `cannot read ${file}: ${(e as Error).message}` };
    }
    const r = appendUfwRule(text, range, v6);
    if ('fallback' in r) return { fallback: `${file}: ${r.fallback}` };
    changes.push({ file, content: r.content, restore: v6 ? 'ip6tables-restore' : 'iptables-restore' });
  }
  return { changes, live: settings.get('enabled') === 'yes' };
}
