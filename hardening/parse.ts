// Readers that turn collected files into effective settings, the way the consuming program
// resolves them (sysctl.d precedence, sshd's first-value-wins, systemd drop-ins, PAM lines).
import type { Facts } from './facts.ts';

export const SYSCTL_NEEDS = [
  'reads:/etc/sysctl.d/*.conf',
  'reads:/usr/lib/sysctl.d/*.conf',
  'read:/etc/sysctl.conf',
  'read:/etc/default/ufw',
  'read:/etc/ufw/sysctl.conf',
];

function sysctlLines(text: string): [string, string][] {
  const out: [string, string][] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const m = /^-?([^=\s]+)\s*=\s*(.*)$/.exec(line);
    if (m) out.push([m[1]!.replace(/\//g, '.'), m[2]!.trim()]);
  }
  return out;
}

/** The value the boot applies (systemd-sysctl, then ufw's IPT_SYSCTL file at ufw start). */
export function sysctlConfigured(f: Facts, key: string): { value: string | null; file: string | null } {
  const byName = new Map<string, { path: string; content: string }>();
  for (const file of [...f.reads('/usr/lib/sysctl.d/*.conf'), ...f.reads('/etc/sysctl.d/*.conf')]) {
    byName.set(file.path.split('/').pop()!, file); // /etc overrides a same-named file in /usr/lib
  }
  const ordered = [...byName.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, v]) => v);
  const etc = f.read('/etc/sysctl.conf');
  if (etc !== null) ordered.push({ path: '/etc/sysctl.conf', content: etc });
  const ufwDefault = f.read('/etc/default/ufw') ?? '';
  const ipt = /^IPT_SYSCTL=["']?([^"'\n]+)/m.exec(ufwDefault)?.[1];
  if (ipt === '/etc/ufw/sysctl.conf') {
    const t = f.read('/etc/ufw/sysctl.conf');
    if (t !== null) ordered.push({ path: ipt, content: t });
  } else if (ipt) {
    const same = ordered.find((o) => o.path === ipt);
    if (same) ordered.push(same);
  }
  let value: string | null = null;
  let file: string | null = null;
  for (const o of ordered) {
    for (const [k, v] of sysctlLines(o.content)) {
      if (k === key) {
        value = v;
        file = o.path;
      }
    }
  }
  return { value, file };
}

export const SSHD_NEEDS = ['read:/etc/ssh/sshd_config', 'reads:/etc/ssh/sshd_config.d/*.conf', 'cmd:sshd-T'];

/** OpenSSH's compiled-in defaults for the keywords the catalog reads. */
const SSHD_DEFAULTS: Record<string, string> = {
  permitrootlogin: 'prohibit-password',
  maxauthtries: '6',
  maxsessions: '10',
  maxstartups: '10:30:100',
  logingracetime: '120',
  loglevel: 'INFO',
  clientaliveinterval: '0',
  clientalivecountmax: '3',
  permitemptypasswords: 'no',
  permituserenvironment: 'no',
  hostbasedauthentication: 'no',
  ignorerhosts: 'yes',
  usepam: 'no',
  banner: 'none',
  passwordauthentication: 'yes',
  kbdinteractiveauthentication: 'yes',
  port: '22',
};

/** Effective sshd settings: `sshd -T` on a running system, else sshd_config as sshd reads it. */
export function sshdEffective(f: Facts): { get(key: string): string; source: string } {
  const t = f.cmd('sshd-T');
  const values = new Map<string, string>();
  let source: string;
  if (t && t.rc === 0 && /^port /m.test(t.out)) {
    source = 'sshd -T';
    for (const line of t.out.split('\n')) {
      const m = /^(\S+)\s+(.*)$/.exec(line.trim());
      if (m && !values.has(m[1]!.toLowerCase())) values.set(m[1]!.toLowerCase(), m[2]!);
    }
  } else {
    source = '/etc/ssh/sshd_config (+ sshd_config.d)';
    const dropins = f.reads('/etc/ssh/sshd_config.d/*.conf').sort((a, b) => (a.path < b.path ? -1 : 1));
    const lines: string[] = [];
    for (const line of (f.read('/etc/ssh/sshd_config') ?? '').split('\n')) {
      if (/^\s*include\s+\/etc\/ssh\/sshd_config\.d\/\*\.conf\s*$/i.test(line)) {
        for (const d of dropins) lines.push(...d.content.split('\n'));
      } else lines.push(line);
    }
    for (const raw of lines) {
      const line = raw.trim();
      if (!line || line.startsWith('#')) continue;
      const m = /^(\S+)\s*(?:=\s*|\s+)(.*)$/.exec(line);
      if (!m) continue;
      const key = m[1]!.toLowerCase();
      if (key === 'match') break; // later settings are conditional
      if (!values.has(key)) values.set(key, m[2]!.trim());
    }
  }
  return { get: (key) => values.get(key.toLowerCase()) ?? SSHD_DEFAULTS[key.toLowerCase()] ?? '', source };
}

export const MODPROBE_NEEDS = ['reads:/etc/modprobe.d/*.conf', 'reads:/usr/lib/modprobe.d/*.conf', 'cmd:modules-present', 'cmd:lsmod'];

const norm = (m: string) => m.replace(/-/g, '_');

export function moduleState(f: Facts, mod: string): { present: boolean; install: string | null; blacklisted: boolean; loaded: boolean | null } {
  let install: string | null = null;
  let blacklisted = false;
  for (const file of [...f.reads('/usr/lib/modprobe.d/*.conf'), ...f.reads('/etc/modprobe.d/*.conf')]) {
    for (const raw of file.content.split('\n')) {
      const parts = raw.trim().split(/\s+/);
      if (parts[0] === 'install' && parts[1] && norm(parts[1]) === norm(mod)) install = parts.slice(2).join(' ');
      if (parts[0] === 'blacklist' && parts[1] && norm(parts[1]) === norm(mod)) blacklisted = true;
    }
  }
  const present = (f.cmd('modules-present')?.out ?? '').split('\n').some((m) => norm(m) === norm(mod));
  const lsmod = f.cmd('lsmod');
  const loaded = lsmod ? lsmod.out.split('\n').some((m) => norm(m) === norm(mod)) : null;
  return { present, install, blacklisted, loaded };
}

/** `KEY value` files (login.defs, /etc/default/useradd with '='): the last definition wins. */
export function keyValues(text: string | null, sep: RegExp = /\s+/): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of (text ?? '').split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const i = line.search(sep);
    if (i < 0) continue;
    out.set(line.slice(0, i), line.slice(i).replace(sep, '').trim().replace(/^["']|["']$/g, ''));
  }
  return out;
}

/**
 * Every KEY=value of one section of a systemd-style config (journald.conf, coredump.conf...), in
 * the order systemd reads them: the main file, then the drop-ins by file name (a later
 * directory's file of the same name replacing an earlier one's), each with file and line.
 */
function systemdEntries(f: Facts, main: string, dropinGlobs: string[], section: string): { key: string; value: string; file: string; line: number }[] {
  const files = [{ path: main, content: f.read(main) ?? '' }];
  const byName = new Map<string, { path: string; content: string }>();
  for (const d of dropinGlobs.flatMap((g) => f.reads(g))) byName.set(d.path.split('/').pop()!, d);
  files.push(...[...byName.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([, v]) => v));
  const out: { key: string; value: string; file: string; line: number }[] = [];
  for (const file of files) {
    let current = '';
    file.content.split('\n').forEach((raw, i) => {
      const line = raw.trim();
      if (!line || line.startsWith('#') || line.startsWith(';')) return;
      const sec = /^\[(.+)\]$/.exec(line);
      if (sec) {
        current = sec[1]!;
        return;
      }
      const m = /^([^=]+?)\s*=\s*(.*)$/.exec(line);
      if (m && current === section) out.push({ key: m[1]!, value: m[2]!, file: file.path, line: i + 1 });
    });
  }
  return out;
}

/** A systemd-style config's effective values: the last statement of each key, and its file. */
export function systemdConf(f: Facts, main: string, dropinGlobs: string[], section: string): Map<string, { value: string; file: string }> {
  return new Map(systemdEntries(f, main, dropinGlobs, section).map((e) => [e.key, { value: e.value, file: e.file }]));
}

/** Every statement of one key, in reading order, each with file:line: the last one is in effect. */
export function systemdConfStatements(f: Facts, main: string, dropinGlobs: string[], section: string, key: string): { value: string; from: string }[] {
  return systemdEntries(f, main, dropinGlobs, section)
    .filter((e) => e.key === key)
    .map((e) => ({ value: e.value, from: `${e.file}:${e.line}` }));
}

/** PAM lines of one stack file for one module ("pam_unix.so"), as [type, control, args[]]. */
export function pamLines(text: string | null, module: string): { type: string; control: string; args: string[] }[] {
  const out: { type: string; control: string; args: string[] }[] = [];
  for (const raw of (text ?? '').split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^(\S+)\s+(\[[^\]]*\]|\S+)\s+(\S+)\s*(.*)$/.exec(line);
    if (m && m[3]!.split('/').pop() === module) out.push({ type: m[1]!, control: m[2]!, args: m[4]!.split(/\s+/).filter(Boolean) });
  }
  return out;
}

export function passwdEntries(text: string | null): { name: string; uid: number; gid: number; home: string; shell: string; raw: string[] }[] {
  return (text ?? '')
    .split('\n')
    .filter((l) => l.trim() && !l.startsWith('#'))
    .map((l) => {
      const p = l.split(':');
      return { name: p[0] ?? '', uid: Number(p[2]), gid: Number(p[3]), home: p[5] ?? '', shell: p[6] ?? '', raw: p };
    });
}

export function colonEntries(text: string | null): string[][] {
  return (text ?? '')
    .split('\n')
    .filter((l) => l.trim() && !l.startsWith('#'))
    .map((l) => l.split(':'));
}
