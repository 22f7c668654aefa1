// Facts are what a check reads from a host. Every fact is named by a key, and all the keys a run
// needs are collected by ONE generated shell script (one round trip to the host), then checks
// judge the parsed facts. Keys:
//   stat:/path    mode, owner and type of one path      stats:/glob  the same for every match
//   read:/path    a file's content                      reads:/glob  every matching file's content
//   pkg:name      dpkg status and version               unit:name    systemd enablement (+ activity live)
//   sysctl:key    runtime kernel parameter (live only)  cmd:name     a named probe from CMDS below
// Paths are inside the host's root: "$R" prefixes them, so one script serves a root directory
// (offline scan, fixtures) and a running system (R="").
import { randomBytes } from 'node:crypto';

export interface Stat {
  path: string;
  mode: number;
  uid: number;
  gid: number;
  user: string;
  group: string;
  type: string;
}

export interface Cmd {
  /** Only meaningful on a running system; offline scans do not collect it. */
  live?: boolean;
  sh: string;
}

const NOLOGIN = '(nologin|false|sync|shutdown|halt)$';

/** Named probes. Each runs under `sh` with R set to the root prefix. */
export const CMDS: Record<string, Cmd> = {
  mounts: { live: true, sh: 'findmnt -kn -l -o TARGET,FSTYPE,OPTIONS' },
  lsmod: { live: true, sh: "cut -d' ' -f1 /proc/modules" },
  'modules-present': {
    sh: `for d in "$R"/lib/modules/* "$R"/usr/lib/modules/*; do [ -f "$d/modules.dep" ] && cat "$d/modules.dep"; done 2>/dev/null | cut -d: -f1 | sed 's#.*/##; s#\\.ko.*##' | sort -u | grep -xE '(cramfs|freevxfs|hfs|hfsplus|jffs2|overlay|squashfs|udf|firewire-core|usb-storage|atm|can|dccp|rds|sctp|tipc)' || true`,
  },
  'wireless-drivers': {
    sh: `for d in "$R"/lib/modules/* "$R"/usr/lib/modules/*; do [ -f "$d/modules.dep" ] && grep -c '/drivers/net/wireless/' "$d/modules.dep"; done 2>/dev/null | awk '{ s += $1 } END { print s + 0 }'`,
  },
  'wireless-ifaces': { live: true, sh: 'ls -d /sys/class/net/*/wireless 2>/dev/null | wc -l' },
  'sshd-T': { live: true, sh: 'sshd -T 2>&1' },
  'ufw-status': { live: true, sh: 'ufw status verbose 2>&1' },
  'apparmor-enabled': { live: true, sh: 'cat /sys/module/apparmor/parameters/enabled 2>/dev/null; aa-status --profiled 2>/dev/null | head -n 1' },
  listening: { live: true, sh: 'ss -H -lntu 2>/dev/null' },
  'chronyd-user': { live: true, sh: 'ps -C chronyd -o user= 2>/dev/null' },
  // One walk of the root file system serves three checks: owners (o), world-writable (w), authorized_keys (k).
  'fs-scan': {
    sh: `find "$R/" -xdev \\( -path "$R/proc" -o -path "$R/sys" -o -path "$R/dev" -o -path "$R/run" -o -path "$R/var/lib/docker" -o -path "$R/var/lib/containerd" \\) -prune -o \\( -printf 'o %U:%G\\n' , \\( -type f -perm -0002 -o -type d -perm -0002 ! -perm -1000 \\) -printf 'w %p\\n' , \\( -name authorized_keys -o -name authorized_keys2 \\) -printf 'k %p\\n' \\) 2>/dev/null | sed "s#^\\([wk]\\) $R/#\\1 /#" | awk '!seen[$0]++'`,
  },
  homes: {
    sh: `awk -F: '$7 !~ /${NOLOGIN}/ { print $1":"$3":"$6 }' "$R/etc/passwd" | while IFS=: read -r u id h; do
  printf 'home|%s|%s|%s|' "$u" "$id" "$h"; stat -c '%a|%u|%g' "$R$h" 2>/dev/null || echo 'missing||'
  find "$R$h" -maxdepth 1 -name '.*' ! -type d -printf "dot|$u|%f|%m|%U|%G\\n" 2>/dev/null
done`,
  },
  'root-path': {
    sh: `p=$(sed -n 's/^ENV_SUPATH[[:space:]]\\{1,\\}PATH=//p' "$R/etc/login.defs" | tail -n 1); printf 'PATH=%s\\n' "$p"
IFS=:; for d in $p; do [ -n "$d" ] || continue; stat -c "dir|$d|%a|%U|%F" "$R$d" 2>/dev/null || echo "dir|$d|missing||"; done`,
  },
  logfiles: { sh: `find "$R/var/log" -type f -printf '%p|%m|%u|%g\\n' 2>/dev/null | sed "s#^$R##"` },
  histories: { sh: `find "$R/root" "$R/home" -maxdepth 2 \\( -name .bash_history -o -name .zsh_history -o -name .python_history -o -name .lesshst -o -name .viminfo \\) -print 2>/dev/null | sed "s#^$R##"` },
  'aws-credentials': { sh: `{ find "$R/root" "$R/home" -maxdepth 3 -path '*/.aws/credentials' 2>/dev/null; grep -rlE '\\b(AKIA|ASIA)[A-Z0-9]{16}\\b' "$R/etc" "$R/root" "$R/home" 2>/dev/null; } | sed "s#^$R##" | sort -u` },
  'aa-profiles': { live: true, sh: 'aa-status --json 2>/dev/null | head -c 20000' },
};

function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** A glob inside the root, left unquoted so the shell expands it. Only catalog constants reach here. */
function rglob(glob: string): string {
  if (!/^\/[\w./*+@-]+$/.test(glob)) throw new Error(`unsafe glob in a fact key: ${glob}`);
  return `"$R"${glob}`;
}

function rpath(path: string): string {
  return `"$R"${shq(path)}`;
}

export function isLiveOnly(key: string): boolean {
  const [kind, arg] = splitKey(key);
  return kind === 'sysctl' || (kind === 'cmd' && CMDS[arg]?.live === true);
}

function splitKey(key: string): [string, string] {
  const i = key.indexOf(':');
  if (i < 0) throw new Error(`malformed fact key ${key}`);
  return [key.slice(0, i), key.slice(i + 1)];
}

/** The record that carries every single-path stat key at once (see probeScript). */
const STAT_BATCH = 'stat-batch';

export interface ProbeScript {
  script: string;
  nonce: string;
  keys: string[];
}

/** One shell script that collects every key (live-only keys only when `live`). */
export function probeScript(keys: Iterable<string>, opts: { root: string; live: boolean }): ProbeScript {
  const nonce = randomBytes(6).toString('hex');
  const wanted = [...new Set(keys)].filter((k) => opts.live || !isLiveOnly(k)).sort();
  const lines = [
    '# shellcheck shell=sh disable=SC2016,SC2317 # each probe is quoted for eval, and calls the helpers from there',
    'LC_ALL=C; export LC_ALL',
    // PROBE_ROOT overrides the root (the build judges a bind view of the image's file system).
    `R=\${PROBE_ROOT-${shq(opts.root === '/' ? '' : opts.root.replace(/\/+$/, ''))}}`,
    `f() { printf '\\n@@${nonce}:%s\\n' "$1"; eval "$2"; printf '\\n@@${nonce}=%s\\n' "$?"; }`,
    // Every process costs tens of milliseconds on a small instance, and a run reads some hundred
    // files: files are read with the shell's own read (rd), and stat runs once per batch (st).
    `rd() { [ -f "$1" ] || return 1; while IFS= read -r _l || [ -n "$_l" ]; do printf '%s\\n' "$_l"; done < "$1"; }`,
    `st() { stat -c '%n|%a|%u|%g|%U|%G|%F' -- "$@" 2>/dev/null | while IFS= read -r _l; do printf '%s\\n' "\${_l#"$R"}"; done; }`,
  ];
  const stats: string[] = [];
  const pkgs: string[] = [];
  const units: string[] = [];
  for (const key of wanted) {
    const [kind, arg] = splitKey(key);
    switch (kind) {
      case 'stat':
        stats.push(arg);
        break;
      case 'stats':
        // An unmatched glob stays a literal word; stat skips it as a missing file.
        lines.push(`f ${shq(key)} ${shq(`st ${rglob(arg)}; true`)}`);
        break;
      case 'read':
        lines.push(`f ${shq(key)} ${shq(`rd ${rpath(arg)}`)}`);
        break;
      case 'reads':
        lines.push(
          `f ${shq(key)} ${shq(`for x in ${rglob(arg)}; do [ -f "$x" ] && printf '%s\\n' "\${x#"$R"}"; done; true`)}`,
          `for x in ${rglob(arg)}; do [ -f "$x" ] && f "read:\${x#"$R"}" 'rd "$x"'; done`,
        );
        break;
      case 'pkg':
        pkgs.push(arg);
        break;
      case 'unit':
        units.push(arg);
        break;
      case 'sysctl':
        // What `sysctl -n` prints: the file under /proc/sys the key names (dots are slashes).
        if (!/^[\w-]+(\.[\w-]+)*$/.test(arg)) throw new Error(`unsafe sysctl key in a fact key: ${arg}`);
        lines.push(`f ${shq(key)} ${shq(`rd /proc/sys/${arg.replaceAll('.', '/')}`)}`);
        break;
      case 'cmd': {
        const cmd = CMDS[arg];
        if (!cmd) throw new Error(`unknown probe cmd:${arg}`);
        lines.push(`f ${shq(key)} ${shq(cmd.sh)}`);
        break;
      }
      default:
        throw new Error(`unknown fact kind in ${key}`);
    }
  }
  if (stats.length) {
    // One stat for every single-path stat key: `?path` lines name what was asked (missing unless
    // stat printed it); parseProbeOutput turns them back into one stat:<path> fact each.
    lines.push(`f ${shq(STAT_BATCH)} ${shq(`printf '?%s\\n' ${stats.map(shq).join(' ')}; st ${stats.map(rpath).join(' ')}; true`)}`);
  }
  if (pkgs.length) {
    lines.push(`f pkgs ${shq(`dpkg-query --admindir="$R/var/lib/dpkg" -W -f '\${Package}|\${db:Status-Abbrev}|\${Version}\\n' ${pkgs.map(shq).join(' ')} 2>/dev/null; true`)}`);
  }
  if (units.length) {
    // One listing of every unit file's state (and, live, every loaded unit's activity) instead of a
    // systemctl call per unit; template instances (name@x) are asked one by one.
    const instances = units.filter((u) => u.includes('@'));
    const sc = opts.live ? 'systemctl' : 'systemctl --root="$R"';
    // Only the units asked about: listing every unit file costs seconds on a small instance.
    const named = units.filter((u) => !u.includes('@'));
    const parts = named.length ? [`${sc} list-unit-files --no-legend --no-pager ${named.map(shq).join(' ')} 2>/dev/null | awk '{ print "f|" $1 "|" $2 }'`] : [];
    if (instances.length) parts.push(`for u in ${instances.map(shq).join(' ')}; do printf 'f|%s|%s\\n' "$u" "$(${sc} is-enabled "$u" 2>/dev/null || true)"; done`);
    if (opts.live) parts.push(`systemctl list-units --all --no-legend --plain --no-pager 2>/dev/null | awk '{ print "a|" $1 "|" $3 }'`);
    lines.push(`f units ${shq(parts.join('\n'))}`);
  }
  lines.push('exit 0');
  return { script: `${lines.join('\n')}\n`, nonce, keys: wanted };
}

export interface RawFact {
  out: string;
  rc: number;
}

export function parseProbeOutput(output: string, nonce: string): Map<string, RawFact> {
  const facts = new Map<string, RawFact>();
  const re = new RegExp(`\\n@@${nonce}:(.*)\\n([\\s\\S]*?)\\n@@${nonce}=(\\d+)\\n`, 'g');
  // Each record starts with a newline the script prints itself; the text before the first is noise.
  const text = `\n${output}`;
  let m: RegExpExecArray | null;
  let lastEnd = 0;
  while ((m = re.exec(text))) {
    facts.set(m[1]!, { out: m[2]!, rc: Number(m[3]) });
    lastEnd = re.lastIndex;
    re.lastIndex = lastEnd - 1; // the record's closing newline may open the next record
  }
  const batch = facts.get(STAT_BATCH);
  if (batch) {
    facts.delete(STAT_BATCH);
    for (const line of batch.out.split('\n')) {
      if (line.startsWith('?')) {
        if (!facts.has(`stat:${line.slice(1)}`)) facts.set(`stat:${line.slice(1)}`, { out: '', rc: 1 });
      } else if (line.includes('|')) {
        const i = line.indexOf('|');
        facts.set(`stat:${line.slice(0, i)}`, { out: `${line.slice(i + 1)}\n`, rc: 0 });
      }
    }
  }
  return facts;
}

function parseStat(line: string, path?: string): Stat | null {
  const parts = line.trim().split('|');
  if (path === undefined) path = parts.shift()!;
  if (parts.length < 6) return null;
  const [mode, uid, gid, user, group, type] = parts as [string, string, string, string, string, string];
  return { path, mode: parseInt(mode, 8), uid: Number(uid), gid: Number(gid), user, group, type };
}

export interface UnitState {
  enabled: string;
  active: string | null;
}

/** Typed access to collected facts. With `declared`, reading an undeclared key is an error. */
export class Facts {
  private pkgs: Map<string, { status: string; version: string }> | null = null;
  private units: Map<string, UnitState> | null = null;

  constructor(
    private readonly raw: Map<string, RawFact>,
    readonly live: boolean,
    private readonly declared: Set<string> | null = null,
  ) {}

  withDeclared(keys: Iterable<string>): Facts {
    const f = new Facts(this.raw, this.live, new Set(keys));
    f.pkgs = this.pkgs;
    f.units = this.units;
    return f;
  }

  private guard(key: string): void {
    if (this.declared && !this.declared.has(key)) throw new Error(`check read fact ${key} without declaring it`);
  }

  private get(key: string): RawFact | undefined {
    this.guard(key);
    if (isLiveOnly(key) && !this.live) return undefined;
    const v = this.raw.get(key);
    if (!v) throw new Error(`fact ${key} was not collected`);
    return v;
  }

  read(path: string): string | null {
    const v = this.get(`read:${path}`)!;
    return v.rc === 0 ? v.out : null;
  }

  reads(glob: string): { path: string; content: string }[] {
    const list = this.get(`reads:${glob}`)!;
    return list.out
      .split('\n')
      .filter(Boolean)
      .map((path) => ({ path, content: this.raw.get(`read:${path}`)?.out ?? '' }));
  }

  stat(path: string): Stat | null {
    const v = this.get(`stat:${path}`)!;
    return v.rc === 0 ? parseStat(v.out, path) : null;
  }

  stats(glob: string): Stat[] {
    return this.get(`stats:${glob}`)!
      .out.split('\n')
      .filter(Boolean)
      .map((l) => parseStat(l))
      .filter((s): s is Stat => s !== null);
  }

  pkg(name: string): { installed: boolean; version: string } {
    this.guard(`pkg:${name}`);
    if (!this.pkgs) {
      this.pkgs = new Map();
      for (const line of (this.raw.get('pkgs')?.out ?? '').split('\n')) {
        const [p, status, version] = line.split('|');
        if (p && status) this.pkgs.set(p.replace(/:.*$/, ''), { status: status.trim(), version: version ?? '' });
      }
    }
    const p = this.pkgs.get(name);
    // "ii" installed; "iU"/"iF" half-installed count as installed (they have files on disk).
    return { installed: !!p && /^[ih][iUFWt]/.test(p.status), version: p?.version ?? '' };
  }

  unit(name: string): UnitState {
    this.guard(`unit:${name}`);
    if (!this.units) {
      this.units = new Map();
      const active = new Map<string, string>();
      for (const line of (this.raw.get('units')?.out ?? '').split('\n')) {
        const [kind, u, v] = line.split('|');
        if (!u) continue;
        if (kind === 'a') active.set(u, v ?? '');
        else if (kind === 'f' && v) this.units.set(u, { enabled: v, active: null });
      }
      for (const [u, st] of this.units) st.active = this.live ? (active.get(u) ?? 'inactive') : null;
      for (const [u, a] of active) if (!this.units.has(u)) this.units.set(u, { enabled: 'not-found', active: this.live ? a : null });
    }
    return this.units.get(name) ?? { enabled: 'not-found', active: this.live ? 'inactive' : null };
  }

  /** Runtime value of a kernel parameter; null offline or when the kernel lacks it. */
  sysctl(key: string): string | null {
    const v = this.get(`sysctl:${key}`);
    if (!v || v.rc !== 0) return null;
    return v.out.trim();
  }

  /** A named probe's output; null when it is live-only and this is an offline scan. */
  cmd(name: string): RawFact | null {
    return this.get(`cmd:${name}`) ?? null;
  }
}
