// Builders for the common kinds of control. Each returns the apply step (bash using the helpers
// of apply-lib.sh), the facts its check reads, the check, and how fixtures apply and break it,
// so a kind is written once and every control of that kind is tested the same way.
import type { Control, FixtureWriter, Verdict } from './types.ts';
import type { Facts } from './facts.ts';
import { MODPROBE_NEEDS, SSHD_NEEDS, SYSCTL_NEEDS, keyValues, moduleState, sshdEffective, sysctlConfigured } from './parse.ts';

export type Draft = Omit<Control, 'level' | 'automated' | 'section'> & Partial<Pick<Control, 'section'>>;

/** What a section's controls may depend on (config values the catalog is built with). */
export interface SectionOptions {
  sshPort: number;
  sshUser: string;
}

/** Every section file exports one of these: the section's control records for the options. */
export type Section = (opts: SectionOptions) => Draft[];

export const pass = (evidence: string): Verdict => ({ pass: true, evidence });
export const fail = (evidence: string): Verdict => ({ pass: false, evidence });
export const all = (...vs: Verdict[]): Verdict => ({ pass: vs.every((v) => v.pass), evidence: vs.map((v) => v.evidence).join('; ') });

/** Single-quotes a value for the generated bash. */
export function q(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

// ---- fixture helpers (shared by builders and hand-written controls) ----

export const FX_SYSCTL = '/etc/sysctl.d/60-syntropy-cis.conf';

export function fxSetLine(fx: FixtureWriter, path: string, match: RegExp, line: string, top = false): void {
  const lines = (fx.read(path) ?? '').split('\n').filter((l) => l !== '' && !match.test(l));
  if (top) lines.unshift(line);
  else lines.push(line);
  fx.file(path, `${lines.join('\n')}\n`);
}

/** Sets KEY=VALUE in a one-section systemd-style drop-in, keeping the file's other keys. */
export function fxIni(fx: FixtureWriter, path: string, section: string, key: string, value: string): void {
  const keep = (fx.read(path) ?? '').split('\n').filter((l) => l && !l.startsWith('[') && !l.startsWith(`${key}=`));
  fx.file(path, `[${section}]\n${[...keep, `${key}=${value}`].join('\n')}\n`);
}

export function fxSshd(fx: FixtureWriter, key: string, value: string): void {
  fxSetLine(fx, '/etc/ssh/sshd_config', new RegExp(`^\\s*${key}\\s`, 'i'), `${key} ${value}`, true);
}

export function fxFstab(fx: FixtureWriter, mp: string, edit: (opts: string[]) => string[] | null, base: string): void {
  const lines = (fx.read('/etc/fstab') ?? '').split('\n').filter(Boolean);
  const i = lines.findIndex((l) => l.split(/\s+/)[1] === mp);
  const cur = i >= 0 ? lines[i]!.split(/\s+/) : base.split(/\s+/);
  const opts = edit(cur[3]!.split(','));
  if (opts === null) {
    if (i >= 0) lines.splice(i, 1);
  } else {
    cur[3] = [...new Set(opts)].join(',');
    if (i >= 0) lines[i] = cur.join(' ');
    else lines.push(cur.join(' '));
  }
  fx.file('/etc/fstab', `${lines.join('\n')}\n`);
}

// ---- builders ----

export function sysctl(id: string, title: string, key: string, value: string): Draft {
  return {
    id,
    title,
    tags: ['sysctl'],
    needs: [...SYSCTL_NEEDS, `sysctl:${key}`],
    apply: `set_sysctl ${q(key)} ${q(value)}`,
    check: (f) => sysctlCheck(f, key, value),
    fixture: {
      good: (fx) => fxSetLine(fx, FX_SYSCTL, new RegExp(`^${key.replace(/\./g, '\\.')}\\s*=`), `${key} = ${value}`),
      bad: (fx) => fx.append('/etc/sysctl.d/99-zz-local.conf', `${key} = ${value === '0' ? '1' : '0'}\n`),
    },
  };
}

export function sysctlCheck(f: Facts, key: string, value: string): Verdict {
  const conf = sysctlConfigured(f, key);
  const confOk = conf.value === value;
  const ev = [`configured ${key}=${conf.value ?? '(unset)'}${conf.file ? ` in ${conf.file}` : ''}`];
  let runOk = true;
  if (f.live) {
    const rt = f.sysctl(key);
    runOk = rt === value;
    ev.push(`running ${rt ?? '(absent)'}`);
  }
  return { pass: confOk && runOk, evidence: `${ev.join(', ')}; want ${value}` };
}

export function kmod(id: string, title: string, mod: string): Draft {
  const conf = `/etc/modprobe.d/60-syntropy-cis-${mod}.conf`;
  return {
    id,
    title,
    tags: ['kernel-module'],
    needs: [...MODPROBE_NEEDS],
    apply: `module_off ${q(mod)}`,
    check: (f) => {
      const s = moduleState(f, mod);
      const off = s.install !== null && /^\/(usr\/)?bin\/(false|true)$/.test(s.install) && s.blacklisted;
      const ev = `${mod}: ${s.present ? 'shipped by the kernel' : 'not shipped'}, install=${s.install ?? '(none)'}, ${s.blacklisted ? 'blacklisted' : 'not blacklisted'}${s.loaded === null ? '' : s.loaded ? ', LOADED' : ', not loaded'}`;
      return { pass: (!s.present || off) && s.loaded !== true, evidence: ev };
    },
    fixture: {
      good: (fx) => fx.file(conf, `install ${mod} /bin/false\nblacklist ${mod}\n`),
      bad: (fx) => fx.remove(conf),
    },
  };
}

const MOUNT_BASE: Record<string, string> = {
  '/tmp': 'tmpfs /tmp tmpfs defaults,rw,nosuid,nodev,noexec,relatime,size=25%,mode=1777 0 0',
  '/dev/shm': 'tmpfs /dev/shm tmpfs defaults,rw,nosuid,nodev,noexec,relatime 0 0',
};
export const bindBase = (mp: string) => MOUNT_BASE[mp] ?? `${mp} ${mp} none bind 0 0`;

function fstabEntry(f: Facts, mp: string): string[] | null {
  for (const raw of (f.read('/etc/fstab') ?? '').split('\n')) {
    const p = raw.trim().split(/\s+/);
    if (!raw.trim().startsWith('#') && p[1] === mp) return p;
  }
  return null;
}

function liveMount(f: Facts, mp: string): { fstype: string; opts: string[] } | null | undefined {
  const m = f.cmd('mounts');
  if (!m) return undefined;
  const line = m.out.split('\n').map((l) => l.trim().split(/\s+/)).filter((p) => p[0] === mp).pop();
  return line ? { fstype: line[1]!, opts: line[2]!.split(',') } : null;
}

/** `opt` null: the mount point must exist as tmpfs or its own mount. */
export function mountOpt(id: string, title: string, mp: string, opt: string | null): Draft {
  return {
    id,
    title,
    tags: ['mount'],
    needs: ['read:/etc/fstab', 'cmd:mounts'],
    apply: opt ? `mount_opt ${q(mp)} ${q(opt)} ${q(bindBase(mp))}` : `mount_entry ${q(mp)} ${q(bindBase(mp))}`,
    check: (f) => {
      const e = fstabEntry(f, mp);
      const vs: Verdict[] = [];
      if (!e) vs.push(fail(`no /etc/fstab entry for ${mp}`));
      else if (opt) vs.push({ pass: e[3]!.split(',').includes(opt), evidence: `fstab ${mp} ${e[2]} ${e[3]}` });
      else vs.push({ pass: e[2] === 'tmpfs' || e[3]!.split(',').includes('bind') || !!e[0]!.match(/^(UUID|LABEL|\/dev)/), evidence: `fstab ${e.join(' ')}` });
      const live = liveMount(f, mp);
      if (live === null) vs.push(fail(`${mp} is not mounted`));
      else if (live) vs.push({ pass: !opt || live.opts.includes(opt), evidence: `mounted ${live.fstype} ${live.opts.join(',')}` });
      return all(...vs);
    },
    fixture: {
      good: (fx) => fxFstab(fx, mp, (o) => (opt ? [...o, opt] : o), bindBase(mp)),
      bad: (fx) => fxFstab(fx, mp, (o) => (opt ? o.filter((x) => x !== opt) : null), bindBase(mp)),
    },
  };
}

/** Packages that must not be installed; when a dependency keeps one, its units must be masked. */
export function notInUse(id: string, title: string, pkgs: string[], units: string[]): Draft {
  return {
    id,
    title,
    tags: ['service'],
    needs: [...pkgs.map((p) => `pkg:${p}`), ...units.map((u) => `unit:${u}`)],
    apply: `pkg_purge ${pkgs.map(q).join(' ')}${units.length ? `\nunits_off ${units.map(q).join(' ')}` : ''}`,
    check: (f) => {
      const installed = pkgs.filter((p) => f.pkg(p).installed);
      const on = units.filter((u) => {
        const s = f.unit(u);
        return /^(enabled|static|alias|indirect|generated)/.test(s.enabled) || s.active === 'active';
      });
      if (installed.length === 0 && on.length === 0) return pass(`not installed: ${pkgs.join(', ')}`);
      // The benchmark accepts a package kept by a dependency when its units are masked.
      const masked = units.length > 0 && units.every((u) => f.unit(u).enabled === 'masked');
      return { pass: on.length === 0 && masked, evidence: `installed: ${installed.join(', ') || 'none'}; enabled/active units: ${on.join(', ') || 'none'}${masked ? '; units masked' : ''}` };
    },
    fixture: {
      good: (fx) => {
        for (const p of pkgs) fx.pkg(p, false);
        for (const u of units) fx.unit(u, 'absent');
      },
      bad: (fx) => {
        fx.pkg(pkgs[0]!, true);
        if (units[0]) fx.unit(units[0], 'enabled');
      },
    },
  };
}

export function installed(id: string, title: string, pkgs: string[]): Draft {
  return {
    id,
    title,
    tags: ['package'],
    needs: pkgs.map((p) => `pkg:${p}`),
    apply: `pkg_install ${pkgs.map(q).join(' ')}`,
    check: (f) => {
      const missing = pkgs.filter((p) => !f.pkg(p).installed);
      return { pass: missing.length === 0, evidence: pkgs.map((p) => `${p} ${f.pkg(p).installed ? f.pkg(p).version : 'NOT installed'}`).join(', ') };
    },
    fixture: {
      good: (fx) => pkgs.forEach((p) => fx.pkg(p, true)),
      bad: (fx) => fx.pkg(pkgs[0]!, false),
    },
  };
}

export interface PermSpec {
  /** A path or a glob (every match is judged). */
  path: string;
  max: number;
  user?: string;
  groups?: string[];
  /** The path must exist (else: judged only if present). */
  required?: boolean;
  dir?: boolean;
}

export function permCheck(f: Facts, spec: PermSpec): Verdict {
  const isGlob = spec.path.includes('*');
  // A symbolic link's own mode means nothing; the file it points to is judged under its own path.
  const stats = (isGlob ? f.stats(spec.path) : [f.stat(spec.path)]).filter((s): s is NonNullable<typeof s> => s !== null && s.type !== 'symbolic link');
  if (stats.length === 0) return { pass: !spec.required, evidence: `${spec.path} ${spec.required ? 'MISSING' : 'absent'}` };
  const user = spec.user ?? 'root';
  const groups = spec.groups ?? ['root'];
  const bad = stats.filter((s) => (s.mode & ~spec.max & 0o7777) !== 0 || s.user !== user || !groups.includes(s.group));
  const shown = (bad.length ? bad : stats).slice(0, 5).map((s) => `${s.path} ${s.mode.toString(8)} ${s.user}:${s.group}`);
  return { pass: bad.length === 0, evidence: `${shown.join(', ')}${stats.length > 5 ? ` (+${stats.length - 5})` : ''}; want <= ${spec.max.toString(8)} ${user}:${groups.join('|')}` };
}

export function perms(id: string, title: string, specs: PermSpec[]): Draft {
  return {
    id,
    title,
    tags: ['permissions'],
    needs: specs.map((s) => (s.path.includes('*') ? `stats:${s.path}` : `stat:${s.path}`)),
    apply: specs
      .map((s) => `perm_max ${s.max.toString(8).padStart(4, '0')} ${q(s.user ?? 'root')} ${q((s.groups ?? ['root']).join('|'))} ${s.required ? 'required' : 'optional'} ${s.path.includes('*') ? s.path.replace(/([^\w/.*+@-])/g, '\\$1') : q(s.path)}`)
      .join('\n'),
    check: (f) => all(...specs.map((s) => permCheck(f, s))),
    fixture: {
      good: (fx) => {
        for (const s of specs) {
          if (s.path.includes('*') && !s.required) continue; // nothing to judge is compliant; `bad` adds a match
          const p = s.path.replace('*', 'sample');
          if (s.dir || p.endsWith('/')) fx.dir(p, s.max);
          else fx.file(p, fx.read(p) ?? 'fixture\n', s.max);
        }
      },
      bad: (fx) => {
        const s = specs[0]!;
        const p = s.path.replace('*', 'sample');
        // One bit wider than allowed (or an unexpected owner when every bit is allowed).
        const wider = [0o002, 0o020, 0o004, 0o040, 0o100, 0o200].find((b) => (s.max & b) === 0);
        if (s.dir || p.endsWith('/')) fx.dir(p, wider ? s.max | wider : s.max);
        else if (wider) fx.file(p, fx.read(p) ?? 'fixture\n', s.max | wider);
        else fx.file(p, fx.read(p) ?? 'fixture\n', s.max, { uid: 1, gid: 1 });
      },
    },
  };
}

export function sshd(id: string, title: string, key: string, value: string, ok: (v: string) => boolean, badValue: string): Draft {
  return {
    id,
    title,
    tags: ['sshd'],
    needs: [...SSHD_NEEDS],
    apply: `sshd_set ${q(key)} ${q(value)}`,
    check: (f) => {
      const e = sshdEffective(f);
      const v = e.get(key);
      return { pass: ok(v), evidence: `${key} ${v || '(unset)'} (${e.source})` };
    },
    fixture: { good: (fx) => fxSshd(fx, key, value), bad: (fx) => fxSshd(fx, key, badValue) },
  };
}

export function loginDefs(id: string, title: string, key: string, value: string, ok: (v: string) => boolean, badValue: string): Draft {
  return {
    id,
    title,
    tags: ['login.defs'],
    needs: ['read:/etc/login.defs'],
    apply: `kv_set /etc/login.defs ${q(key)} ${q(value)}`,
    check: (f) => {
      const v = keyValues(f.read('/etc/login.defs')).get(key) ?? '';
      return { pass: ok(v), evidence: `login.defs ${key} ${v || '(unset)'}` };
    },
    fixture: {
      good: (fx) => fxSetLine(fx, '/etc/login.defs', new RegExp(`^#?\\s*${key}\\s`), `${key}\t${value}`),
      bad: (fx) => fxSetLine(fx, '/etc/login.defs', new RegExp(`^#?\\s*${key}\\s`), `${key}\t${badValue}`),
    },
  };
}

/** A control satisfied by the same state as another (the benchmark lists some twice). */
export function sameAs(id: string, title: string, other: Draft): Draft {
  return { ...other, id, title, apply: `# same state as ${other.id}` };
}

export function manual(id: string, title: string, what: string): Draft {
  return { id, title, tags: ['manual'], needs: [], apply: '', manual: what };
}
