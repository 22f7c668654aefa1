// CIS Debian 13 v1.0.0, section 6: Logging and Auditing (journald + rsyslog, AIDE). auditd is Level 2.
import { all, fail, fxIni, installed, manual, pass, type Draft, type Section } from '../builders.ts';
import { exception } from '../exceptions.ts';
import { systemdConfStatements } from '../parse.ts';
import type { Facts } from '../facts.ts';

const JOURNALD_NEEDS = ['read:/etc/systemd/journald.conf', 'reads:/etc/systemd/journald.conf.d/*.conf', 'reads:/usr/lib/systemd/journald.conf.d/*.conf'];
const JOURNALD_DROPIN = '/etc/systemd/journald.conf.d/60-syntropy-cis.conf';

/**
 * A journald setting as every reader finds it: stated in /etc/systemd/journald.conf (readers of
 * the main file) and in the drop-in (readers of drop-ins, and systemd: the drop-in is read last),
 * with no statement anywhere of another value.
 */
function journaldKey(id: string, title: string, key: string, value: string, bad: string): Draft {
  const MAIN = '/etc/systemd/journald.conf';
  return {
    id,
    title,
    tags: ['logging', 'journald'],
    needs: JOURNALD_NEEDS,
    apply: `dropin_set ${MAIN} Journal ${key} ${value}\ndropin_set ${JOURNALD_DROPIN} Journal ${key} ${value}`,
    check: (f) => {
      const st = systemdConfStatements(f, MAIN, ['/usr/lib/systemd/journald.conf.d/*.conf', '/etc/systemd/journald.conf.d/*.conf'], 'Journal', key);
      const show = (x: { value: string; from: string }) => `${key}=${x.value} (${x.from})`;
      const same = (v: string) => v.toLowerCase() === value.toLowerCase();
      const effective = st.at(-1);
      if (!effective || !same(effective.value)) return fail(`${key}=${effective?.value ?? '(default)'} in effect${st.length ? `: ${st.map(show).join(', ')}` : ''}`);
      if (!st.some((x) => x.from.startsWith(`${MAIN}:`))) return fail(`${key} is not stated in ${MAIN} (readers of the main file find the default); stated in ${st.map((x) => x.from).join(', ')}`);
      const wrong = st.filter((x) => !same(x.value));
      if (wrong.length) return fail(`${key} is also stated as ${wrong.map(show).join(', ')}`);
      return pass(st.map(show).join(', '));
    },
    fixture: {
      good: (fx) => {
        fxIni(fx, MAIN, 'Journal', key, value);
        fxIni(fx, JOURNALD_DROPIN, 'Journal', key, value);
      },
      // systemd still uses the drop-in's value; a reader of the main file sees the wrong one.
      bad: (fx) => fxIni(fx, MAIN, 'Journal', key, bad),
    },
  };
}

const unitUp = (f: Facts, u: string, states = ['enabled']) => {
  const s = f.unit(u);
  return { pass: states.includes(s.enabled) && (s.active === null || s.active === 'active'), evidence: `${u} ${s.enabled}${s.active ? `, ${s.active}` : ''}` };
};

const RSYSLOG_NEEDS = ['read:/etc/rsyslog.conf', 'reads:/etc/rsyslog.d/*.conf'];
const rsyslogLines = (f: Facts) =>
  [f.read('/etc/rsyslog.conf') ?? '', ...f.reads('/etc/rsyslog.d/*.conf').map((x) => x.content)].join('\n').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));

/** Log files and the most a file of that name may allow (the benchmark's table, simplified). */
function logfileProblems(lines: string[]): string[] {
  const problems: string[] = [];
  for (const line of lines) {
    const [path, modeS, user, group] = line.split('|') as [string, string, string, string];
    const mode = parseInt(modeS, 8);
    const name = path.split('/').pop()!;
    let max = 0o640;
    let users = ['root', 'syslog', '_chrony', '_aide'];
    let groups = ['root', 'adm', 'systemd-journal'];
    if (/^(lastlog|wtmp|btmp|wtmp\.db)/.test(name) || /^(lastlog|wtmp|btmp)/.test(name)) {
      max = 0o664;
      groups = ['root', 'utmp'];
    } else if (/\.journal~?$/.test(name)) {
      groups = ['root', 'systemd-journal'];
    } else if (/^(cloud-init(-output)?\.log|localmessages|waagent\.log)/.test(name)) {
      max = 0o644;
    }
    if (path.includes('/var/log/apt/')) users = [...users, '_apt'];
    if ((mode & ~max) !== 0 || !users.includes(user) || !groups.includes(group)) problems.push(`${path} ${modeS} ${user}:${group}`);
  }
  return problems;
}

export const section6: Section = () => [
  {
    id: '6.1.1.1.1',
    title: 'Ensure journald service is active',
    tags: ['logging', 'journald'],
    needs: ['unit:systemd-journald.service'],
    apply: '# systemd-journald is static and always started',
    check: (f) => unitUp(f, 'systemd-journald.service', ['static', 'enabled']),
    fixture: { good: (fx) => fx.unit('systemd-journald.service', 'enabled'), bad: (fx) => fx.unit('systemd-journald.service', 'masked') },
  },
  manual('6.1.1.1.2', 'Ensure journald log file access is configured', 'Review tmpfiles.d overrides of /var/log/journal (the image keeps systemd\'s defaults: 2755 root:systemd-journal directories, 0640 files).'),
  manual('6.1.1.1.3', 'Ensure journald log file rotation is configured', 'Set SystemMaxUse/SystemKeepFree/MaxRetentionSec in /etc/systemd/journald.conf.d/ to the site policy (systemd defaults cap the journal at 10% of the file system).'),
  {
    ...journaldKey('6.1.1.1.4', 'Ensure journald ForwardToSyslog is disabled', 'ForwardToSyslog', 'no', 'yes'),
    apply: '',
    exception: exception('rsyslog-logging'),
  },
  journaldKey('6.1.1.1.5', 'Ensure journald Storage is configured', 'Storage', 'persistent', 'volatile'),
  journaldKey('6.1.1.1.6', 'Ensure journald Compress is configured', 'Compress', 'yes', 'no'),
  installed('6.1.1.2.1', 'Ensure systemd-journal-remote is installed', ['systemd-journal-remote']),
  manual('6.1.1.2.2', 'Ensure systemd-journal-upload authentication is configured', 'Set URL=, ServerKeyFile=, ServerCertificateFile= and TrustedCertificateFile= in /etc/systemd/journal-upload.conf for the site\'s log server, then `systemctl enable --now systemd-journal-upload`.'),
  {
    id: '6.1.1.2.3',
    title: 'Ensure systemd-journal-upload is enabled and active',
    tags: ['logging'],
    needs: ['unit:systemd-journal-upload.service'],
    apply: '',
    exception: exception('remote-log-host'),
    check: (f) => unitUp(f, 'systemd-journal-upload.service'),
  },
  {
    id: '6.1.1.2.4',
    title: 'Ensure systemd-journal-remote service is not in use',
    tags: ['logging'],
    needs: ['unit:systemd-journal-remote.socket', 'unit:systemd-journal-remote.service'],
    apply: 'units_off systemd-journal-remote.socket systemd-journal-remote.service',
    check: (f) => {
      const on = ['systemd-journal-remote.socket', 'systemd-journal-remote.service'].filter((u) => ['enabled', 'static'].includes(f.unit(u).enabled) || f.unit(u).active === 'active');
      return on.length ? fail(`in use: ${on.join(', ')}`) : pass(`systemd-journal-remote: ${f.unit('systemd-journal-remote.socket').enabled}`);
    },
    fixture: { good: (fx) => fx.unit('systemd-journal-remote.socket', 'masked'), bad: (fx) => fx.unit('systemd-journal-remote.socket', 'enabled') },
  },
  installed('6.1.2.1', 'Ensure rsyslog is installed', ['rsyslog']),
  {
    id: '6.1.2.2',
    title: 'Ensure rsyslog service is enabled and active',
    tags: ['logging', 'rsyslog'],
    needs: ['unit:rsyslog.service'],
    apply: 'unit_enable rsyslog.service',
    check: (f) => unitUp(f, 'rsyslog.service'),
    fixture: { good: (fx) => fx.unit('rsyslog.service', 'enabled'), bad: (fx) => fx.unit('rsyslog.service', 'disabled') },
  },
  journaldKey('6.1.2.3', 'Ensure journald is configured to send logs to rsyslog', 'ForwardToSyslog', 'yes', 'no'),
  {
    id: '6.1.2.4',
    title: 'Ensure rsyslog log file creation mode is configured',
    tags: ['logging', 'rsyslog'],
    needs: RSYSLOG_NEEDS,
    apply: `printf '%s\\n' '# CIS 6.1.2.4' '$FileCreateMode 0640' > /etc/rsyslog.d/00-syntropy-cis.conf`,
    check: (f) => {
      const modes = rsyslogLines(f).map((l) => /^\$FileCreateMode\s+(\d+)/.exec(l)?.[1]).filter((x): x is string => !!x);
      const last = modes.at(-1);
      return { pass: !!last && (parseInt(last, 8) & ~0o640) === 0, evidence: `$FileCreateMode ${last ?? '(unset: 0644)'}` };
    },
    fixture: { good: (fx) => fx.file('/etc/rsyslog.d/00-syntropy-cis.conf', '$FileCreateMode 0640\n'), bad: (fx) => fx.file('/etc/rsyslog.d/00-syntropy-cis.conf', '$FileCreateMode 0644\n') },
  },
  manual('6.1.2.5', 'Ensure rsyslog logging is configured', 'Review /etc/rsyslog.conf rules against the site policy (Debian\'s defaults write auth, syslog, kern and cron logs).'),
  manual('6.1.2.6', 'Ensure rsyslog is configured to send logs to a remote log host', 'Add an omfwd action for the site\'s log host in /etc/rsyslog.d/ (TLS via rsyslog-gnutls).'),
  {
    id: '6.1.2.7',
    title: 'Ensure rsyslog is not configured to receive logs from a remote client',
    tags: ['logging', 'rsyslog'],
    needs: RSYSLOG_NEEDS,
    apply: `sed -i -E 's/^([[:space:]]*(module\\(load="im(tcp|udp)"|input\\(type="im(tcp|udp)"|\\$ModLoad[[:space:]]+im(tcp|udp)|\\$(InputTCPServerRun|UDPServerRun)))/# CIS 6.1.2.7: \\1/' /etc/rsyslog.conf /etc/rsyslog.d/*.conf 2>/dev/null || true`,
    check: (f) => {
      const bad = rsyslogLines(f).filter((l) => /(module\(load="im(tcp|udp)"|input\(type="im(tcp|udp)"|^\$ModLoad\s+im(tcp|udp)|^\$(InputTCPServerRun|UDPServerRun))/.test(l));
      return bad.length ? fail(`listeners: ${bad.join(' | ')}`) : pass('no imtcp/imudp inputs');
    },
    fixture: { good: () => {}, bad: (fx) => fx.append('/etc/rsyslog.conf', 'module(load="imtcp")\ninput(type="imtcp" port="514")\n') },
  },
  manual('6.1.2.8', 'Ensure logrotate is configured', 'Review /etc/logrotate.conf and /etc/logrotate.d/ against the site\'s retention policy.'),
  {
    id: '6.1.3.1',
    title: 'Ensure access to all logfiles has been configured',
    tags: ['logging', 'permissions'],
    needs: ['cmd:logfiles'],
    apply: 'logfile_modes',
    check: (f) => {
      const lines = (f.cmd('logfiles')?.out ?? '').split('\n').filter(Boolean);
      const p = logfileProblems(lines);
      return p.length ? fail(`${p.length} log file(s) too open: ${p.slice(0, 5).join(', ')}`) : pass(`${lines.length} log files within their modes and owners`);
    },
    fixture: { good: (fx) => fx.file('/var/log/syslog', '', 0o640), bad: (fx) => fx.file('/var/log/syslog', '', 0o666) },
  },
  {
    ...installed('6.3.1', 'Ensure AIDE is installed', ['aide', 'aide-common']),
    needs: ['pkg:aide', 'pkg:aide-common', 'stat:/var/lib/aide/aide.db'],
    apply: 'aide_init',
    check: (f) => all(...['aide', 'aide-common'].map((p) => ({ pass: f.pkg(p).installed, evidence: `${p} ${f.pkg(p).installed ? f.pkg(p).version : 'NOT installed'}` })), f.stat('/var/lib/aide/aide.db') ? pass('database /var/lib/aide/aide.db present') : fail('no AIDE database')),
    fixture: {
      good: (fx) => {
        fx.pkg('aide', true);
        fx.pkg('aide-common', true);
        fx.file('/var/lib/aide/aide.db', 'db', 0o600);
      },
      bad: (fx) => fx.remove('/var/lib/aide/aide.db'),
    },
  },
  {
    id: '6.3.2',
    title: 'Ensure filesystem integrity is regularly checked',
    tags: ['aide'],
    needs: ['unit:dailyaidecheck.timer', 'stat:/etc/cron.daily/dailyaidecheck'],
    apply: 'if systemctl list-unit-files --no-legend dailyaidecheck.timer | grep -q .; then unit_enable dailyaidecheck.timer; else test -x /etc/cron.daily/dailyaidecheck; fi',
    // On a running instance a live reader asks whether the timer is active, not only enabled:
    // so does this check (t.active is known only live).
    check: (f) => {
      const t = f.unit('dailyaidecheck.timer');
      const cron = f.stat('/etc/cron.daily/dailyaidecheck');
      const timerOn = t.enabled === 'enabled' && (t.active === null || t.active === 'active');
      return { pass: timerOn || (!!cron && (cron.mode & 0o100) !== 0 && t.enabled !== 'enabled'), evidence: `dailyaidecheck.timer ${t.enabled}${t.active === null ? '' : `, ${t.active}`}${cron ? ', /etc/cron.daily/dailyaidecheck present' : ''}` };
    },
    fixture: { good: (fx) => fx.unit('dailyaidecheck.timer', 'enabled'), bad: (fx) => fx.unit('dailyaidecheck.timer', 'disabled') },
  },
];
