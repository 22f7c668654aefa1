// CIS Debian 13 v1.0.0, section 5: Access Control (sshd, sudo, PAM, accounts).
import { all, fail, fxSetLine, fxSshd, installed, loginDefs, manual, pass, perms, q, sshd, type Draft, type Section } from '../builders.ts';
import { SSHD_NEEDS, colonEntries, keyValues, pamLines, passwdEntries, sshdEffective } from '../parse.ts';
import type { Facts } from '../facts.ts';
import type { FixtureWriter } from '../types.ts';

export const CIPHERS = 'aes256-gcm@openssh.com,aes128-gcm@openssh.com,aes256-ctr,aes192-ctr,aes128-ctr';
export const KEX =
  'mlkem768x25519-sha256,sntrup761x25519-sha512,sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521,diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,diffie-hellman-group-exchange-sha256';
export const MACS = 'hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com,hmac-sha2-512,hmac-sha2-256';
const WEAK_CIPHERS = /(^|,)(3des-cbc|aes128-cbc|aes192-cbc|aes256-cbc|blowfish-cbc|cast128-cbc|arcfour\w*|rijndael-cbc@lysator\.liu\.se|chacha20-poly1305@openssh\.com)(,|$)/;
const WEAK_KEX = /(^|,)(diffie-hellman-group1-sha1|diffie-hellman-group14-sha1|diffie-hellman-group-exchange-sha1)(,|$)/;
const WEAK_MACS = /(^|,)(hmac-md5\S*?|hmac-md5-96\S*?|hmac-ripemd160\S*?|hmac-sha1\S*?|umac-64\S*?|umac-128@openssh\.com|hmac-sha1-96\S*?)(,|$)/;
const PQ_KEX = /(^|,)(mlkem768x25519-sha256|sntrup761x25519-sha512(@openssh\.com)?)(,|$)/;

const int = (v: string) => (/^\d+$/.test(v) ? Number(v) : NaN);

// ---- sudo ----
const SUDO_NEEDS = ['read:/etc/sudoers', 'reads:/etc/sudoers.d/*'];
const sudoers = (f: Facts) => [f.read('/etc/sudoers') ?? '', ...f.reads('/etc/sudoers.d/*').map((x) => x.content)].join('\n').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
const SUDO_DROPIN = '/etc/sudoers.d/60-syntropy-cis';
function sudoDefault(id: string, title: string, line: string, ok: (lines: string[]) => { pass: boolean; evidence: string }, bad: string): Draft {
  return {
    id,
    title,
    tags: ['sudo'],
    needs: SUDO_NEEDS,
    apply: `sudo_default ${q(line)}`,
    check: (f) => ok(sudoers(f)),
    fixture: {
      good: (fx) => fx.append(SUDO_DROPIN, `Defaults ${line}\n`),
      bad: (fx) => fx.file(SUDO_DROPIN, `${(fx.read(SUDO_DROPIN) ?? '').split('\n').filter((l) => l && l !== `Defaults ${line}`).join('\n')}\n${bad}\n`),
    },
  };
}

// ---- PAM ----
const PAM_FILES = ['common-auth', 'common-account', 'common-password', 'common-session'] as const;
const PAM_NEEDS = PAM_FILES.map((p) => `read:/etc/pam.d/${p}`);
const pam = (f: Facts, file: (typeof PAM_FILES)[number]) => f.read(`/etc/pam.d/${file}`);
export const PAM_GOOD: Record<string, string> = {
  'common-auth':
    'auth\trequired\t\t\tpam_faillock.so preauth\nauth\t[success=1 default=ignore]\tpam_unix.so\nauth\t[default=die]\t\t\tpam_faillock.so authfail\nauth\tsufficient\t\t\tpam_faillock.so authsucc\nauth\trequisite\t\t\tpam_deny.so\nauth\trequired\t\t\tpam_permit.so\n',
  'common-account': 'account\t[success=1 new_authtok_reqd=done default=ignore]\tpam_unix.so\naccount\trequisite\t\t\tpam_deny.so\naccount\trequired\t\t\tpam_permit.so\naccount\trequired\t\t\tpam_faillock.so\n',
  'common-password':
    'password\trequisite\t\t\tpam_pwquality.so retry=3\npassword\trequisite\t\t\tpam_pwhistory.so use_authtok\npassword\t[success=1 default=ignore]\tpam_unix.so obscure use_authtok try_first_pass yescrypt\npassword\trequisite\t\t\tpam_deny.so\npassword\trequired\t\t\tpam_permit.so\n',
  'common-session': 'session\t[default=1]\t\t\tpam_permit.so\nsession\trequisite\t\t\tpam_deny.so\nsession\trequired\t\t\tpam_permit.so\nsession\trequired\tpam_unix.so\n',
};
function pamModule(id: string, title: string, module: string, files: (typeof PAM_FILES)[number][]): Draft {
  return {
    id,
    title,
    tags: ['pam'],
    needs: PAM_NEEDS,
    apply: '# /etc/pam.d/common-* written by pam_stack (5.3.2.1)',
    check: (f) => all(...files.map((file) => ({ pass: pamLines(pam(f, file), module).length > 0, evidence: `${module} ${pamLines(pam(f, file), module).length ? 'in' : 'NOT in'} ${file}` }))),
    fixture: {
      good: () => {},
      bad: (fx) => fx.file(`/etc/pam.d/${files[0]}`, (fx.read(`/etc/pam.d/${files[0]}`) ?? '').split('\n').filter((l) => !l.includes(module)).join('\n')),
    },
  };
}

/**
 * Every place a pam_pwquality / pam_faillock / pam_pwhistory option is stated: the module's main
 * .conf file, its drop-ins (pwquality.conf.d), and the module's arguments in the PAM stack, in the
 * order PAM applies them (arguments last: they override the files).
 */
function moduleStatements(f: Facts, conf: string, dropins: string | null, module: string, stack: (typeof PAM_FILES)[number], key: string): { value: string; from: string }[] {
  const out: { value: string; from: string }[] = [];
  const files = [{ path: conf, content: f.read(conf) ?? '' }, ...(dropins ? f.reads(dropins) : [])];
  for (const file of files) {
    file.content.split('\n').forEach((raw, i) => {
      const line = raw.trim();
      if (!line || line.startsWith('#')) return;
      const m = /^([\w]+)\s*(?:=\s*(.*))?$/.exec(line);
      if (m && m[1] === key) out.push({ value: m[2]?.trim() ?? '', from: `${file.path}:${i + 1}` });
    });
  }
  for (const l of pamLines(pam(f, stack), module)) {
    for (const a of l.args) {
      const [k, v] = a.split('=');
      if (k === key) out.push({ value: v ?? '', from: `/etc/pam.d/${stack} ${module}` });
    }
  }
  return out;
}

/**
 * A PAM module option as the strictest common reader sees it: readers that read only the main
 * file (SCAP's pwquality rules read /etc/security/pwquality.conf), readers that read the drop-ins
 * too (the benchmark's audit greps both), and PAM itself (last statement wins). The option must
 * be stated in the main file, and every statement anywhere must comply, so no reader finds a
 * non-compliant or missing value. Apply writes it to the main file and, for pwquality, the drop-in.
 */
function pamOption(id: string, title: string, kind: 'pwquality' | 'faillock' | 'pwhistory', key: string, ok: (v: string | null) => boolean, good: string, bad: string): Draft {
  const conf = `/etc/security/${kind}.conf`;
  const dropins = kind === 'pwquality' ? '/etc/security/pwquality.conf.d/*.conf' : null;
  const stack = kind === 'faillock' ? 'common-auth' : 'common-password';
  const dropin = kind === 'pwquality' ? '/etc/security/pwquality.conf.d/60-syntropy-cis.conf' : null;
  const line = (v: string) => (v === '' ? key : `${key} = ${v}`);
  const keyRe = new RegExp(`^#?\\s*${key}\\b`);
  return {
    id,
    title,
    tags: ['pam', kind],
    needs: [...PAM_NEEDS, `read:${conf}`, ...(dropins ? [`reads:${dropins}`] : [])],
    apply: [conf, ...(dropin ? [dropin] : [])].map((t) => `conf_set ${q(t)} ${q(key)} ${q(good)}`).join('\n'),
    check: (f) => {
      const st = moduleStatements(f, conf, dropins, `pam_${kind}.so`, stack, key);
      const show = (x: { value: string; from: string }) => `${key}${x.value === '' ? '' : `=${x.value}`} (${x.from})`;
      const inMain = st.filter((x) => x.from.startsWith(`${conf}:`));
      const wrong = st.filter((x) => !ok(x.value));
      const effective = st.at(-1)?.value ?? null;
      if (!ok(effective)) return fail(`${key}${effective === null ? ' unset' : `=${effective}`} in effect${st.length ? `: ${st.map(show).join(', ')}` : ''}`);
      if (inMain.length === 0) return fail(`${key} is not stated in ${conf} (readers of the main file find it unset)${st.length ? `; stated in ${st.map((x) => x.from).join(', ')}` : ''}`);
      if (wrong.length > 0) return fail(`${key} is stated with a non-compliant value: ${wrong.map(show).join(', ')}`);
      return pass(st.map(show).join(', '));
    },
    fixture: {
      good: (fx) => {
        for (const t of [conf, ...(dropin ? [dropin] : [])]) fxSetLine(fx, t, keyRe, line(good));
      },
      // The drop-in (and PAM) stay right; only the main file is wrong or silent: a reader of the
      // main file fails it, so the check must.
      bad: (fx) => {
        if (bad === '<absent>') fx.file(conf, (fx.read(conf) ?? '').split('\n').filter((l) => !keyRe.test(l)).join('\n'));
        else fxSetLine(fx, conf, keyRe, line(bad));
      },
    },
  };
}

function pamUnixArg(id: string, title: string, test: (lines: ReturnType<typeof pamLines>, file: string) => string | null, files: (typeof PAM_FILES)[number][], breakIt: (fx: FixtureWriter) => void): Draft {
  return {
    id,
    title,
    tags: ['pam'],
    needs: PAM_NEEDS,
    apply: '# /etc/pam.d/common-* written by pam_stack (5.3.2.1)',
    check: (f) => {
      const problems = files.map((file) => test(pamLines(pam(f, file), 'pam_unix.so'), file)).filter((x): x is string => !!x);
      return problems.length ? fail(problems.join('; ')) : pass(`pam_unix lines in ${files.join(', ')} comply`);
    },
    fixture: { good: () => {}, bad: breakIt },
  };
}
const editPam = (file: string, from: RegExp, to: string) => (fx: FixtureWriter) => fx.file(`/etc/pam.d/${file}`, (fx.read(`/etc/pam.d/${file}`) ?? '').replace(from, to));

// ---- accounts ----
const today = () => Math.floor(Date.now() / 86400000);
const hasHash = (pw: string | undefined) => !!pw && /^\$/.test(pw);
function shadowUsers(f: Facts) {
  return colonEntries(f.read('/etc/shadow')).map((p) => ({ name: p[0]!, pw: p[1] ?? '', last: p[2] ?? '', max: p[4] ?? '', warn: p[5] ?? '', inactive: p[6] ?? '' }));
}
function shadowField(id: string, title: string, field: 'max' | 'warn' | 'inactive', ok: (n: number) => boolean, defs: () => Draft): Draft {
  const base = defs();
  return {
    ...base,
    id,
    title,
    needs: [...base.needs, 'read:/etc/shadow'],
    apply: `${base.apply}\nshadow_users_set ${field} ${q(String(field === 'max' ? 365 : field === 'warn' ? 7 : 45))}`,
    check: (f) => {
      const d = base.check!(f);
      const bad = shadowUsers(f).filter((u) => hasHash(u.pw) && !ok(Number(u[field] === '' ? NaN : u[field])));
      return all(d, bad.length ? fail(`users with a password and ${field} out of range: ${bad.map((u) => u.name).join(', ')}`) : pass(`every user with a password complies (${field})`));
    },
  };
}
function shadowEdit(fx: FixtureWriter, user: string, edit: (p: string[]) => void): void {
  const lines = (fx.read('/etc/shadow') ?? '').split('\n').filter(Boolean).map((l) => l.split(':'));
  const row = lines.find((p) => p[0] === user);
  if (row) edit(row);
  fx.file('/etc/shadow', `${lines.map((p) => p.join(':')).join('\n')}\n`, 0o640);
}
const NOLOGIN = /(nologin|false)$/;

/** The system-wide shell start-up files readers look in: /etc/profile first, then bash.bashrc, then profile.d. */
function shellStartupFiles(f: Facts): { path: string; content: string }[] {
  return [{ path: '/etc/profile', content: f.read('/etc/profile') ?? '' }, { path: '/etc/bash.bashrc', content: f.read('/etc/bash.bashrc') ?? '' }, ...f.reads('/etc/profile.d/*.sh')];
}

function umaskWeak(text: string): string[] {
  return [...text.matchAll(/^\s*umask\s+(\d{3,4})/gm)].map((m) => m[1]!).filter((u) => (parseInt(u, 8) & 0o027) !== 0o027);
}

export const section5: Section = () => {
  return [
    perms('5.1.1', 'Ensure access to /etc/ssh/sshd_config is configured', [
      { path: '/etc/ssh/sshd_config', max: 0o600, required: true },
      { path: '/etc/ssh/sshd_config.d/*.conf', max: 0o600 },
    ]),
    perms('5.1.2', 'Ensure access to SSH private host key files is configured', [{ path: '/etc/ssh/ssh_host_*_key', max: 0o600 }]),
    perms('5.1.3', 'Ensure access to SSH public host key files is configured', [{ path: '/etc/ssh/ssh_host_*_key.pub', max: 0o644 }]),
    {
      id: '5.1.4',
      title: 'Ensure sshd access is configured',
      tags: ['sshd'],
      needs: [...SSHD_NEEDS],
      apply: `sshd_set AllowGroups sudo`,
      check: (f) => {
        const e = sshdEffective(f);
        const set = ['allowusers', 'allowgroups', 'denyusers', 'denygroups'].filter((k) => e.get(k));
        return { pass: set.length > 0, evidence: set.length ? set.map((k) => `${k} ${e.get(k)}`).join(', ') : `no AllowUsers/AllowGroups/DenyUsers/DenyGroups (${e.source})` };
      },
      fixture: { good: (fx) => fxSshd(fx, 'AllowGroups', 'sudo'), bad: (fx) => fx.file('/etc/ssh/sshd_config', (fx.read('/etc/ssh/sshd_config') ?? '').replace(/^AllowGroups.*\n/m, '')) },
    },
    sshd('5.1.5', 'Ensure sshd Banner is configured', 'Banner', '/etc/issue.net', (v) => !!v && v !== 'none', 'none'),
    sshd('5.1.6', 'Ensure sshd Ciphers are configured', 'Ciphers', CIPHERS, (v) => !!v && !WEAK_CIPHERS.test(v) && v !== '', `${CIPHERS},aes256-cbc`),
    {
      ...sshd('5.1.7', 'Ensure sshd ClientAliveInterval and ClientAliveCountMax are configured', 'ClientAliveInterval', '15', (v) => int(v) > 0, '0'),
      apply: 'sshd_set ClientAliveInterval 15\nsshd_set ClientAliveCountMax 3',
      check: (f) => {
        const e = sshdEffective(f);
        const i = int(e.get('ClientAliveInterval'));
        const c = int(e.get('ClientAliveCountMax'));
        return { pass: i > 0 && c > 0, evidence: `ClientAliveInterval ${e.get('ClientAliveInterval')}, ClientAliveCountMax ${e.get('ClientAliveCountMax')} (${e.source})` };
      },
    },
    sshd('5.1.10', 'Ensure sshd HostbasedAuthentication is disabled', 'HostbasedAuthentication', 'no', (v) => v === 'no', 'yes'),
    sshd('5.1.11', 'Ensure sshd IgnoreRhosts is enabled', 'IgnoreRhosts', 'yes', (v) => v === 'yes', 'no'),
    sshd('5.1.12', 'Ensure sshd KexAlgorithms is configured', 'KexAlgorithms', KEX, (v) => !!v && !WEAK_KEX.test(v), `${KEX},diffie-hellman-group14-sha1`),
    { ...sshd('5.1.13', 'Ensure sshd post-quantum cryptography key exchange algorithms are configured', 'KexAlgorithms', KEX, (v) => PQ_KEX.test(v), 'curve25519-sha256'), apply: '# KexAlgorithms set by 5.1.12 leads with ML-KEM and sntrup761 hybrids' },
    sshd('5.1.14', 'Ensure sshd LoginGraceTime is configured', 'LoginGraceTime', '60', (v) => int(v.replace(/s$/, '')) >= 1 && int(v.replace(/s$/, '')) <= 60, '120'),
    sshd('5.1.15', 'Ensure sshd LogLevel is configured', 'LogLevel', 'VERBOSE', (v) => /^(INFO|VERBOSE)$/i.test(v), 'DEBUG3'),
    sshd('5.1.16', 'Ensure sshd MACs are configured', 'MACs', MACS, (v) => !!v && !WEAK_MACS.test(v), `${MACS},hmac-sha1`),
    sshd('5.1.17', 'Ensure sshd MaxAuthTries is configured', 'MaxAuthTries', '4', (v) => int(v) >= 1 && int(v) <= 4, '6'),
    sshd('5.1.18', 'Ensure sshd MaxSessions is configured', 'MaxSessions', '10', (v) => int(v) >= 1 && int(v) <= 10, '20'),
    sshd('5.1.19', 'Ensure sshd MaxStartups is configured', 'MaxStartups', '10:30:60', (v) => {
      const [a, b, c] = v.split(':').map(Number);
      return a! <= 10 && (b ?? 0) <= 30 && (c ?? a!) <= 60;
    }, '10:30:100'),
    sshd('5.1.20', 'Ensure sshd PermitEmptyPasswords is disabled', 'PermitEmptyPasswords', 'no', (v) => v === 'no', 'yes'),
    sshd('5.1.21', 'Ensure sshd PermitRootLogin is disabled', 'PermitRootLogin', 'no', (v) => v === 'no', 'prohibit-password'),
    sshd('5.1.22', 'Ensure sshd PermitUserEnvironment is disabled', 'PermitUserEnvironment', 'no', (v) => v === 'no', 'yes'),
    sshd('5.1.23', 'Ensure sshd UsePAM is enabled', 'UsePAM', 'yes', (v) => v === 'yes', 'no'),
    installed('5.2.1', 'Ensure sudo is installed', ['sudo']),
    sudoDefault('5.2.2', 'Ensure sudo commands use pty', 'use_pty', (l) => {
      const on = l.some((x) => /^Defaults\s+.*\buse_pty\b/.test(x) && !/!use_pty/.test(x));
      const off = l.some((x) => /^Defaults.*!use_pty/.test(x));
      return { pass: on && !off, evidence: on ? (off ? '!use_pty also set' : 'Defaults use_pty') : 'use_pty not set' };
    }, 'Defaults !use_pty'),
    sudoDefault('5.2.3', 'Ensure sudo log file exists', 'logfile="/var/log/sudo.log"', (l) => {
      const m = l.map((x) => /^Defaults\s+.*\blogfile\s*=\s*"?([^",\s]+)/.exec(x)).find(Boolean);
      return { pass: !!m, evidence: m ? `logfile ${m[1]}` : 'no Defaults logfile' };
    }, '# no logfile'),
    {
      id: '5.2.5',
      title: 'Ensure re-authentication for privilege escalation is not disabled globally',
      tags: ['sudo'],
      needs: SUDO_NEEDS,
      apply: `remove_sudo_noauth`,
      check: (f) => {
        const bad = sudoers(f).filter((l) => /!authenticate/.test(l));
        return bad.length ? fail(`!authenticate: ${bad.join(' | ')}`) : pass('no !authenticate in sudoers');
      },
      fixture: { good: () => {}, bad: (fx) => fx.append(SUDO_DROPIN, 'Defaults !authenticate\n') },
    },
    sudoDefault('5.2.6', 'Ensure sudo authentication timeout is configured correctly', 'timestamp_timeout=15', (l) => {
      const vals = l.map((x) => /^Defaults\s+.*\btimestamp_timeout\s*=\s*(-?\d+)/.exec(x)?.[1]).filter((x): x is string => !!x).map(Number);
      const v = vals.length ? vals[vals.length - 1]! : 15;
      return { pass: v >= 0 && v <= 15, evidence: `timestamp_timeout ${vals.length ? v : '15 (sudo default)'}` };
    }, 'Defaults timestamp_timeout=60'),
    {
      id: '5.2.7',
      title: 'Ensure access to the su command is restricted',
      tags: ['pam', 'su'],
      needs: ['read:/etc/pam.d/su', 'read:/etc/group'],
      apply: 'su_wheel sugroup',
      check: (f) => {
        const line = pamLines(f.read('/etc/pam.d/su'), 'pam_wheel.so').find((l) => l.type === 'auth' && l.control === 'required' && l.args.includes('use_uid'));
        const group = line?.args.find((a) => a.startsWith('group='))?.slice(6);
        if (!line || !group) return fail('no "auth required pam_wheel.so use_uid group=..." in /etc/pam.d/su');
        const g = colonEntries(f.read('/etc/group')).find((p) => p[0] === group);
        return { pass: !!g && !(g[3] ?? '').trim(), evidence: `su limited to group ${group} (${g ? `members: ${(g[3] ?? '').trim() || 'none'}` : 'MISSING'})` };
      },
      fixture: {
        good: (fx) => {
          fx.file('/etc/pam.d/su', 'auth sufficient pam_rootok.so\nauth required pam_wheel.so use_uid group=sugroup\n@include common-auth\n');
          fx.append('/etc/group', 'sugroup:x:990:\n');
        },
        bad: (fx) => fx.file('/etc/pam.d/su', 'auth sufficient pam_rootok.so\n@include common-auth\n'),
      },
    },
    installed('5.3.1.1', 'Ensure latest version of pam is installed', ['libpam-runtime']),
    installed('5.3.1.2', 'Ensure lastest version of libpam-modules is installed', ['libpam-modules']),
    installed('5.3.1.3', 'Ensure lastes version of libpam-pwquality is installed', ['libpam-pwquality']),
    { ...pamModule('5.3.2.1', 'Ensure pam_unix module is enabled', 'pam_unix.so', ['common-auth', 'common-account', 'common-password', 'common-session']), apply: 'pam_stack' },
    pamModule('5.3.2.2', 'Ensure pam_faillock module is enabled', 'pam_faillock.so', ['common-auth', 'common-account']),
    pamModule('5.3.2.3', 'Ensure pam_pwquality module is enabled', 'pam_pwquality.so', ['common-password']),
    pamModule('5.3.2.4', 'Ensure pam_pwhistory module is enabled', 'pam_pwhistory.so', ['common-password']),
    pamOption('5.3.3.1.1', 'Ensure password failed attempts lockout is configured', 'faillock', 'deny', (v) => v !== null && Number(v) >= 1 && Number(v) <= 5, '5', '10'),
    pamOption('5.3.3.1.2', 'Ensure password unlock time is configured', 'faillock', 'unlock_time', (v) => v !== null && (Number(v) === 0 || Number(v) >= 900), '900', '60'),
    pamOption('5.3.3.2.1', 'Ensure password number of changed characters is configured', 'pwquality', 'difok', (v) => v !== null && Number(v) >= 2, '2', '1'),
    pamOption('5.3.3.2.2', 'Ensure minimum password length is configured', 'pwquality', 'minlen', (v) => v !== null && Number(v) >= 14, '14', '8'),
    manual('5.3.3.2.3', 'Ensure password complexity is configured', 'Set minclass and/or dcredit/ucredit/lcredit/ocredit in /etc/security/pwquality.conf.d/ to the site policy (the image sets length, history and dictionary checks; no local passwords are used).'),
    pamOption('5.3.3.2.4', 'Ensure password same consecutive characters is configured', 'pwquality', 'maxrepeat', (v) => v !== null && Number(v) >= 1 && Number(v) <= 3, '3', '0'),
    pamOption('5.3.3.2.5', 'Ensure password maximum sequential characters is configured', 'pwquality', 'maxsequence', (v) => v !== null && Number(v) >= 1 && Number(v) <= 3, '3', '0'),
    pamOption('5.3.3.2.6', 'Ensure password dictionary check is enabled', 'pwquality', 'dictcheck', (v) => v === null || Number(v) !== 0, '1', '0'),
    pamOption('5.3.3.2.7', 'Ensure password quality checking is enforced', 'pwquality', 'enforcing', (v) => v === null || Number(v) !== 0, '1', '0'),
    pamOption('5.3.3.2.8', 'Ensure password quality is enforced for the root user', 'pwquality', 'enforce_for_root', (v) => v !== null, '', '<absent>'),
    pamOption('5.3.3.3.1', 'Ensure password history remember is configured', 'pwhistory', 'remember', (v) => v !== null && Number(v) >= 24, '24', '5'),
    pamOption('5.3.3.3.2', 'Ensure password history is enforced for the root user', 'pwhistory', 'enforce_for_root', (v) => v !== null, '', '<absent>'),
    {
      ...pamModule('5.3.3.3.3', 'Ensure pam_pwhistory includes use_authtok', 'pam_pwhistory.so', ['common-password']),
      check: (f) => {
        const l = pamLines(pam(f, 'common-password'), 'pam_pwhistory.so');
        return { pass: l.length > 0 && l.every((x) => x.args.includes('use_authtok')), evidence: l.length ? l.map((x) => `pam_pwhistory.so ${x.args.join(' ')}`).join(' | ') : 'pam_pwhistory not in common-password' };
      },
      fixture: { good: () => {}, bad: editPam('common-password', /pam_pwhistory\.so use_authtok/, 'pam_pwhistory.so') },
    },
    pamUnixArg('5.3.3.4.1', 'Ensure pam_unix does not include nullok', (ls, file) => (ls.some((l) => l.args.includes('nullok')) ? `nullok in ${file}` : null), ['common-auth', 'common-account', 'common-password', 'common-session'], editPam('common-auth', /pam_unix\.so/, 'pam_unix.so nullok')),
    pamUnixArg('5.3.3.4.2', 'Ensure pam_unix does not include remember', (ls, file) => (ls.some((l) => l.args.some((a) => a.startsWith('remember='))) ? `remember= in ${file}` : null), ['common-auth', 'common-account', 'common-password', 'common-session'], editPam('common-password', /pam_unix\.so obscure/, 'pam_unix.so remember=5 obscure')),
    pamUnixArg('5.3.3.4.3', 'Ensure pam_unix includes a strong password hashing algorithm', (ls, file) => {
      const pw = ls.filter((l) => l.type === 'password');
      return pw.length && pw.every((l) => l.args.includes('yescrypt') || l.args.includes('sha512')) ? null : `no yescrypt/sha512 on pam_unix in ${file}`;
    }, ['common-password'], editPam('common-password', / yescrypt/, ' md5')),
    pamUnixArg('5.3.3.4.4', 'Ensure pam_unix includes use_authtok', (ls, file) => {
      const pw = ls.filter((l) => l.type === 'password');
      return pw.length && pw.every((l) => l.args.includes('use_authtok')) ? null : `no use_authtok on pam_unix in ${file}`;
    }, ['common-password'], editPam('common-password', /pam_unix\.so obscure use_authtok/, 'pam_unix.so obscure')),
    shadowField('5.4.1.1', 'Ensure password expiration is configured', 'max', (n) => n >= 1 && n <= 365, () => loginDefs('5.4.1.1', '', 'PASS_MAX_DAYS', '365', (v) => int(v) >= 1 && int(v) <= 365, '99999')),
    shadowField('5.4.1.3', 'Ensure password expiration warning days is configured', 'warn', (n) => n >= 7, () => loginDefs('5.4.1.3', '', 'PASS_WARN_AGE', '7', (v) => int(v) >= 7, '3')),
    loginDefs('5.4.1.4', 'Ensure strong password hashing algorithm is configured', 'ENCRYPT_METHOD', 'YESCRYPT', (v) => /^(YESCRYPT|SHA512)$/i.test(v), 'MD5'),
    {
      id: '5.4.1.5',
      title: 'Ensure inactive password lock is configured',
      tags: ['accounts'],
      needs: ['read:/etc/default/useradd', 'read:/etc/shadow'],
      apply: `kv_set /etc/default/useradd INACTIVE 45 =\nshadow_users_set inactive 45\nkeyonly_accounts_unit`,
      check: (f) => {
        const v = keyValues(f.read('/etc/default/useradd'), /=/).get('INACTIVE') ?? '-1';
        const bad = shadowUsers(f).filter((u) => hasHash(u.pw) && !(int(u.inactive) >= 0 && int(u.inactive) <= 45));
        return all({ pass: int(v) >= 0 && int(v) <= 45, evidence: `useradd INACTIVE=${v}` }, bad.length ? fail(`users with a password and no inactivity lock: ${bad.map((u) => u.name).join(', ')}`) : pass('every user with a password has inactive <= 45'));
      },
      fixture: { good: (fx) => fx.file('/etc/default/useradd', 'SHELL=/bin/sh\nINACTIVE=45\n'), bad: (fx) => fx.file('/etc/default/useradd', 'SHELL=/bin/sh\n# INACTIVE=-1\n') },
    },
    {
      id: '5.4.1.6',
      title: 'Ensure all users last password change date is in the past',
      tags: ['accounts'],
      needs: ['read:/etc/shadow'],
      apply: '# verified only: a future date is a data error to investigate, not to rewrite',
      check: (f) => {
        const bad = shadowUsers(f).filter((u) => /^\d+$/.test(u.last) && Number(u.last) > today());
        return bad.length ? fail(`future last-change date: ${bad.map((u) => u.name).join(', ')}`) : pass('no last password change in the future');
      },
      fixture: { good: () => {}, bad: (fx) => shadowEdit(fx, 'admin', (p) => (p[2] = String(today() + 30))) },
    },
    {
      id: '5.4.2.1',
      title: 'Ensure root is the only UID 0 account',
      tags: ['accounts'],
      needs: ['read:/etc/passwd'],
      apply: '# verified only',
      check: (f) => {
        const z = passwdEntries(f.read('/etc/passwd')).filter((u) => u.uid === 0).map((u) => u.name);
        return { pass: z.length === 1 && z[0] === 'root', evidence: `UID 0: ${z.join(', ')}` };
      },
      fixture: { good: () => {}, bad: (fx) => fx.append('/etc/passwd', 'toor:x:0:0::/root:/bin/bash\n') },
    },
    {
      id: '5.4.2.2',
      title: 'Ensure root is the only GID 0 account',
      tags: ['accounts'],
      needs: ['read:/etc/passwd'],
      apply: '# verified only',
      check: (f) => {
        const z = passwdEntries(f.read('/etc/passwd')).filter((u) => u.gid === 0 && !['root', 'sync', 'shutdown', 'halt', 'operator'].includes(u.name)).map((u) => u.name);
        return { pass: z.length === 0, evidence: z.length ? `primary GID 0: ${z.join(', ')}` : 'only root (and sync/shutdown/halt/operator) have primary GID 0' };
      },
      fixture: { good: () => {}, bad: (fx) => fx.append('/etc/passwd', 'ops:x:1500:0::/home/ops:/bin/bash\n') },
    },
    {
      id: '5.4.2.3',
      title: 'Ensure group root is the only GID 0 group',
      tags: ['accounts'],
      needs: ['read:/etc/group'],
      apply: '# verified only',
      check: (f) => {
        const z = colonEntries(f.read('/etc/group')).filter((g) => g[2] === '0').map((g) => g[0]);
        return { pass: z.length === 1 && z[0] === 'root', evidence: `GID 0 groups: ${z.join(', ')}` };
      },
      fixture: { good: () => {}, bad: (fx) => fx.append('/etc/group', 'wheel0:x:0:\n') },
    },
    {
      id: '5.4.2.4',
      title: 'Ensure root account access is controlled',
      tags: ['accounts', 'marketplace'],
      needs: ['read:/etc/shadow'],
      apply: 'passwd -l root >/dev/null',
      check: (f) => {
        const r = shadowUsers(f).find((u) => u.name === 'root');
        const ok = !!r && (r.pw.startsWith('!') || r.pw.startsWith('*') || hasHash(r.pw));
        return { pass: ok, evidence: `root password field: ${!r ? 'MISSING' : r.pw.startsWith('!') || r.pw.startsWith('*') ? 'locked' : hasHash(r.pw) ? 'hash' : 'EMPTY'}` };
      },
      fixture: { good: (fx) => shadowEdit(fx, 'root', (p) => (p[1] = '!*')), bad: (fx) => shadowEdit(fx, 'root', (p) => (p[1] = '')) },
    },
    {
      id: '5.4.2.5',
      title: 'Ensure root path integrity',
      tags: ['accounts'],
      needs: ['cmd:root-path'],
      apply: '# verified only: ENV_SUPATH lists root-owned system directories',
      check: (f) => {
        const out = f.cmd('root-path')?.out ?? '';
        const path = /^PATH=(.*)$/m.exec(out)?.[1] ?? '';
        const problems: string[] = [];
        if (!path) problems.push('ENV_SUPATH not set');
        if (/(^|:)(\.|)(:|$)/.test(path)) problems.push('empty or "." entry');
        for (const m of out.matchAll(/^dir\|([^|]*)\|([^|]*)\|([^|]*)\|(.*)$/gm)) {
          const [, d, mode, owner, type] = m;
          if (mode === 'missing') problems.push(`${d} missing`);
          else if (type !== 'directory' && type !== 'symbolic link') problems.push(`${d} is a ${type}`);
          else if (owner !== 'root' || (parseInt(mode!, 8) & 0o022 && type === 'directory')) problems.push(`${d} ${mode} ${owner}`);
        }
        return problems.length ? fail(`root PATH ${path}: ${problems.join(', ')}`) : pass(`root PATH ${path}: root-owned, not group/world-writable`);
      },
      fixture: { good: () => {}, bad: (fx) => fxSetLine(fx, '/etc/login.defs', /^ENV_SUPATH/, 'ENV_SUPATH\tPATH=/usr/sbin:/usr/bin:.') },
    },
    {
      id: '5.4.2.6',
      title: 'Ensure root user umask is configured',
      tags: ['accounts', 'umask'],
      needs: ['read:/root/.bash_profile', 'read:/root/.bashrc', 'read:/root/.profile'],
      apply: `kv_line /root/.bashrc '^[[:space:]]*umask[[:space:]]' 'umask 0027'\nsed -i -E 's/^([[:space:]]*umask[[:space:]]+)0?22\\b/\\10027/' /root/.profile 2>/dev/null || true`,
      check: (f) => {
        const weak = ['/root/.bash_profile', '/root/.bashrc', '/root/.profile'].flatMap((p) => umaskWeak(f.read(p) ?? '').map((u) => `${p}: umask ${u}`));
        return weak.length ? fail(weak.join(', ')) : pass('no umask weaker than 027 in root\'s shell startup files');
      },
      fixture: { good: (fx) => fx.append('/root/.bashrc', 'umask 0027\n'), bad: (fx) => fx.append('/root/.bashrc', 'umask 022\n') },
    },
    {
      id: '5.4.2.7',
      title: 'Ensure system accounts do not have a valid login shell',
      tags: ['accounts'],
      needs: ['read:/etc/passwd', 'read:/etc/login.defs'],
      apply: 'system_accounts_nologin',
      check: (f) => {
        const min = Number(keyValues(f.read('/etc/login.defs')).get('UID_MIN') ?? 1000);
        const bad = passwdEntries(f.read('/etc/passwd')).filter((u) => u.uid < min && !['root', 'sync', 'shutdown', 'halt'].includes(u.name) && !NOLOGIN.test(u.shell));
        return bad.length ? fail(`system accounts with a shell: ${bad.map((u) => `${u.name}:${u.shell}`).join(', ')}`) : pass(`every account below UID ${min} (but root) has nologin`);
      },
      fixture: { good: () => {}, bad: (fx) => fx.file('/etc/passwd', (fx.read('/etc/passwd') ?? '').replace(/^(daemon:.*:)\/usr\/sbin\/nologin$/m, '$1/bin/sh'), 0o644) },
    },
    {
      id: '5.4.2.8',
      title: 'Ensure accounts without a valid login shell are locked',
      tags: ['accounts'],
      needs: ['read:/etc/passwd', 'read:/etc/shadow'],
      apply: 'nologin_accounts_locked',
      check: (f) => {
        const sh = new Map(shadowUsers(f).map((u) => [u.name, u.pw]));
        const bad = passwdEntries(f.read('/etc/passwd')).filter((u) => u.name !== 'root' && NOLOGIN.test(u.shell) && !/^[!*]/.test(sh.get(u.name) ?? ''));
        return bad.length ? fail(`unlocked accounts without a shell: ${bad.map((u) => u.name).join(', ')}`) : pass('every account without a login shell is locked');
      },
      fixture: { good: () => {}, bad: (fx) => shadowEdit(fx, 'daemon', (p) => (p[1] = '$y$j9T$abc$def')) },
    },
    {
      // In /etc/profile itself (every reader reads it; some read no profile.d), once: a second
      // readonly TMOUT anywhere a login shell reads would print "readonly variable" at login.
      id: '5.4.3.2',
      title: 'Ensure default user shell timeout is configured',
      tags: ['accounts', 'shell'],
      needs: ['reads:/etc/profile.d/*.sh', 'read:/etc/profile', 'read:/etc/bash.bashrc'],
      apply: [
        'rm -f /etc/profile.d/60-syntropy-tmout.sh',
        // Its own lines (comment included) are dropped first: a second run leaves the file as the first did.
        "sed -i -E -e '/^[[:space:]]*(readonly[[:space:]]+|export[[:space:]]+)?TMOUT([=[:space:]]|$)/d' -e '/^# CIS 5\\.4\\.3\\.2:/d' /etc/profile",
        "printf '%s\\n' '# CIS 5.4.3.2: idle shells end after 15 minutes' 'TMOUT=900' 'readonly TMOUT' 'export TMOUT' >> /etc/profile",
      ].join('\n'),
      check: (f) => {
        const files = shellStartupFiles(f);
        const main = files[0]!.content;
        const sets = files.flatMap((x) => x.content.split('\n').flatMap((l, i) => {
          const m = /^\s*(?:readonly\s+|export\s+|typeset\s+-\w+\s+|declare\s+-\w+\s+)?TMOUT=(\d+)/.exec(l);
          return m ? [{ at: `${x.path}:${i + 1}`, file: x.path, v: Number(m[1]) }] : [];
        }));
        const inMain = sets.some((x) => x.file === '/etc/profile') && /^\s*readonly\s+TMOUT\b/m.test(main) && /^\s*export\s+TMOUT\b/m.test(main);
        const bad = sets.filter((x) => !(x.v > 0 && x.v <= 900));
        const ev = sets.length ? sets.map((x) => `TMOUT=${x.v} (${x.at})`).join(', ') : 'TMOUT not set';
        if (!inMain) return fail(`${ev}; /etc/profile does not set, export and make readonly TMOUT`);
        return bad.length ? fail(`${ev}; over 900 s or 0: ${bad.map((x) => x.at).join(', ')}`) : pass(ev);
      },
      fixture: {
        good: (fx) => fx.file('/etc/profile', `${(fx.read('/etc/profile') ?? '').replace(/^.*TMOUT.*\n/gm, '')}TMOUT=900\nreadonly TMOUT\nexport TMOUT\n`),
        // Only in profile.d: a login shell gets it, a reader of /etc/profile does not.
        bad: (fx) => {
          fx.file('/etc/profile', (fx.read('/etc/profile') ?? '').replace(/^.*TMOUT.*\n/gm, ''));
          fx.file('/etc/profile.d/60-syntropy-tmout.sh', 'TMOUT=900\nreadonly TMOUT\nexport TMOUT\n', 0o644);
        },
      },
    },
    {
      // umask 027 in login.defs, /etc/profile and /etc/bash.bashrc themselves (readers that read
      // no profile.d find it), nothing weaker anywhere.
      id: '5.4.3.3',
      title: 'Ensure default user umask is configured',
      tags: ['accounts', 'umask'],
      needs: ['reads:/etc/profile.d/*.sh', 'read:/etc/profile', 'read:/etc/bash.bashrc', 'read:/etc/login.defs'],
      apply: [
        'kv_set /etc/login.defs UMASK 027',
        'rm -f /etc/profile.d/60-syntropy-umask.sh',
        "kv_line /etc/profile '^[[:space:]]*umask[[:space:]]' 'umask 027'",
        "kv_line /etc/bash.bashrc '^[[:space:]]*umask[[:space:]]' 'umask 027'",
      ].join('\n'),
      check: (f) => {
        const defs = keyValues(f.read('/etc/login.defs')).get('UMASK') ?? '';
        const files = shellStartupFiles(f);
        const weak = files.flatMap((x) => umaskWeak(x.content).map((u) => `${x.path}: umask ${u}`));
        const stated = (path: string) => /^\s*umask\s+0?[0-7][2367]7\b/m.test(files.find((x) => x.path === path)!.content);
        const missing = ['/etc/profile', '/etc/bash.bashrc'].filter((p) => !stated(p));
        const defsOk = /^0?[0-7]{2,3}$/.test(defs) && (parseInt(defs, 8) & 0o027) === 0o027;
        const ev = `login.defs UMASK ${defs || '(unset)'}; ${missing.length ? `no umask 027 in ${missing.join(', ')}` : 'umask 027 in /etc/profile and /etc/bash.bashrc'}${weak.length ? `; weaker: ${weak.join(', ')}` : ''}`;
        return { pass: defsOk && missing.length === 0 && weak.length === 0, evidence: ev };
      },
      fixture: {
        good: (fx) => {
          fxSetLine(fx, '/etc/login.defs', /^UMASK\s/, 'UMASK\t\t027');
          for (const p of ['/etc/profile', '/etc/bash.bashrc']) fxSetLine(fx, p, /^\s*umask\s/, 'umask 027');
        },
        // In profile.d only: shells get it, readers of /etc/profile and bash.bashrc do not.
        bad: (fx) => {
          fx.file('/etc/bash.bashrc', (fx.read('/etc/bash.bashrc') ?? '').replace(/^\s*umask .*\n/gm, ''));
          fx.file('/etc/profile.d/60-syntropy-umask.sh', 'umask 027\n', 0o644);
        },
      },
    },
  ];
}

