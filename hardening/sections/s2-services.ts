// CIS Debian 13 v1.0.0, section 2: Services.
import { all, fail, installed, manual, notInUse, pass, permCheck, perms, q, type Draft, type Section } from '../builders.ts';
import { exception } from '../exceptions.ts';
import { keyValues } from '../parse.ts';
import type { Facts } from '../facts.ts';

const TIMESYNC_EXCEPTION = exception('timesync-chrony');

/** The Amazon Time Sync Service, link-local on every EC2 instance. */
const CHRONY_SERVER = 'server 169.254.169.123 prefer iburst minpoll 4 maxpoll 4';
const CHRONY_NEEDS = ['read:/etc/chrony/chrony.conf', 'reads:/etc/chrony/conf.d/*.conf', 'reads:/etc/chrony/sources.d/*.sources'];
const chronyLines = (f: Facts) =>
  [f.read('/etc/chrony/chrony.conf') ?? '', ...f.reads('/etc/chrony/conf.d/*.conf').map((x) => x.content), ...f.reads('/etc/chrony/sources.d/*.sources').map((x) => x.content)]
    .join('\n')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));

function timesyncd(f: Facts): Map<string, string> {
  const out = keyValues(f.read('/etc/systemd/timesyncd.conf'), /=/);
  for (const d of f.reads('/etc/systemd/timesyncd.conf.d/*.conf')) for (const [k, v] of keyValues(d.content, /=/)) out.set(k, v);
  return out;
}

const unitOn = (f: Facts, u: string) => {
  const s = f.unit(u);
  return s.enabled === 'enabled' && (s.active === null || s.active === 'active');
};

export const section2: Section = () => [
  notInUse('2.1.1', 'Ensure autofs services are not in use', ['autofs'], ['autofs.service']),
  notInUse('2.1.2', 'Ensure avahi daemon services are not in use', ['avahi-daemon'], ['avahi-daemon.socket', 'avahi-daemon.service']),
  notInUse('2.1.3', 'Ensure dhcp server services are not in use', ['isc-dhcp-server', 'kea-dhcp4-server', 'kea-dhcp6-server'], ['isc-dhcp-server.service', 'kea-dhcp4-server.service', 'kea-dhcp6-server.service']),
  notInUse('2.1.4', 'Ensure dns server services are not in use', ['bind9'], ['named.service']),
  notInUse('2.1.5', 'Ensure dnsmasq services are not in use', ['dnsmasq'], ['dnsmasq.service']),
  notInUse('2.1.6', 'Ensure ftp server services are not in use', ['vsftpd'], ['vsftpd.service']),
  notInUse('2.1.7', 'Ensure ldap server services are not in use', ['slapd'], ['slapd.service']),
  notInUse('2.1.8', 'Ensure message access server services are not in use', ['dovecot-imapd', 'dovecot-pop3d'], ['dovecot.socket', 'dovecot.service']),
  notInUse('2.1.9', 'Ensure network file system services are not in use', ['nfs-kernel-server'], ['nfs-server.service']),
  notInUse('2.1.10', 'Ensure nis server services are not in use', ['ypserv'], ['ypserv.service']),
  notInUse('2.1.11', 'Ensure print server services are not in use', ['cups'], ['cups.socket', 'cups.service']),
  notInUse('2.1.12', 'Ensure rpcbind services are not in use', ['rpcbind'], ['rpcbind.socket', 'rpcbind.service']),
  notInUse('2.1.13', 'Ensure rsync services are not in use', ['rsync'], ['rsync.service']),
  notInUse('2.1.14', 'Ensure samba file server services are not in use', ['samba'], ['smbd.service']),
  notInUse('2.1.15', 'Ensure snmp services are not in use', ['snmpd'], ['snmpd.service']),
  notInUse('2.1.16', 'Ensure telnet server services are not in use', ['telnetd', 'inetutils-telnetd'], []),
  notInUse('2.1.17', 'Ensure tftp server services are not in use', ['tftpd-hpa'], ['tftpd-hpa.service']),
  notInUse('2.1.18', 'Ensure web proxy server services are not in use', ['squid'], ['squid.service']),
  notInUse('2.1.19', 'Ensure web server services are not in use', ['apache2', 'nginx'], ['apache2.service', 'nginx.service']),
  notInUse('2.1.20', 'Ensure xinetd services are not in use', ['xinetd'], ['xinetd.service']),
  {
    id: '2.1.22',
    title: 'Ensure mail transfer agent is configured for local-only mode',
    tags: ['service', 'mta'],
    needs: ['pkg:exim4-daemon-light', 'pkg:exim4-daemon-heavy', 'pkg:postfix', 'read:/etc/exim4/update-exim4.conf.conf', 'read:/etc/postfix/main.cf', 'cmd:listening'],
    apply: 'mta_local_only',
    check: (f) => {
      const vs = [];
      const exim = f.pkg('exim4-daemon-light').installed || f.pkg('exim4-daemon-heavy').installed;
      if (exim) {
        const v = keyValues(f.read('/etc/exim4/update-exim4.conf.conf'), /=/).get('dc_local_interfaces') ?? '';
        vs.push({ pass: /^(127\.0\.0\.1|::1|\s|;)+$/.test(v), evidence: `exim4 dc_local_interfaces='${v}'` });
      }
      if (f.pkg('postfix').installed) {
        const v = keyValues(f.read('/etc/postfix/main.cf'), /=/).get('inet_interfaces') ?? 'all';
        vs.push({ pass: v === 'loopback-only', evidence: `postfix inet_interfaces=${v}` });
      }
      const ss = f.cmd('listening');
      if (ss) {
        const open = ss.out.split('\n').filter((l) => /[:.](25|465|587)\s/.test(l) && !/(127\.0\.0\.1|\[::1\]|::1):/.test(l));
        vs.push({ pass: open.length === 0, evidence: open.length ? `mail ports open: ${open.join(' | ')}` : 'no mail port on a non-loopback address' });
      }
      return vs.length ? all(...vs) : pass('no MTA installed');
    },
    fixture: {
      good: (fx) => {
        fx.pkg('postfix', false);
        fx.pkg('exim4-daemon-light', false);
      },
      bad: (fx) => {
        fx.pkg('postfix', true);
        fx.file('/etc/postfix/main.cf', 'inet_interfaces = all\n');
      },
    },
  },
  manual('2.1.23', 'Ensure only approved services are listening on a network interface', 'Review `ss -plntu`: the image listens on SSH only; the agent adds its WireGuard UDP port in the range chosen at first boot (and its metrics port if SYNTROPY_EXPORTER_PORT is set).'),
  notInUse('2.2.1', 'Ensure NIS Client is not installed', ['nis'], []),
  notInUse('2.2.2', 'Ensure rsh client is not installed', ['rsh-client'], []),
  notInUse('2.2.3', 'Ensure talk client is not installed', ['talk'], []),
  notInUse('2.2.4', 'Ensure telnet client is not installed', ['telnet', 'inetutils-telnet'], []),
  notInUse('2.2.5', 'Ensure ldap client is not installed', ['ldap-utils'], []),
  notInUse('2.2.6', 'Ensure ftp client is not installed', ['ftp', 'tnftp'], []),
  {
    id: '2.3.1.1',
    title: 'Ensure a single time synchronization daemon is in use',
    tags: ['timesync'],
    needs: ['pkg:chrony', 'pkg:systemd-timesyncd', 'unit:chrony.service', 'unit:systemd-timesyncd.service'],
    apply: 'pkg_install chrony\npkg_purge systemd-timesyncd\nunit_enable chrony.service',
    check: (f) => {
      const on = ['chrony.service', 'systemd-timesyncd.service'].filter((u) => f.unit(u).enabled === 'enabled');
      return { pass: on.length === 1, evidence: `enabled time daemons: ${on.join(', ') || 'none'}` };
    },
    fixture: {
      good: (fx) => {
        fx.pkg('chrony', true);
        fx.unit('chrony.service', 'enabled');
        fx.pkg('systemd-timesyncd', false);
        fx.unit('systemd-timesyncd.service', 'absent');
      },
      bad: (fx) => {
        fx.pkg('systemd-timesyncd', true);
        fx.unit('systemd-timesyncd.service', 'enabled');
      },
    },
  },
  {
    id: '2.3.2.1',
    title: 'Ensure systemd-timesyncd configured with authorized timeserver',
    tags: ['timesync'],
    needs: ['read:/etc/systemd/timesyncd.conf', 'reads:/etc/systemd/timesyncd.conf.d/*.conf'],
    apply: '',
    exception: TIMESYNC_EXCEPTION,
    check: (f) => {
      const c = timesyncd(f);
      return { pass: !!(c.get('NTP') || c.get('FallbackNTP')), evidence: `NTP=${c.get('NTP') ?? ''} FallbackNTP=${c.get('FallbackNTP') ?? ''}` };
    },
  },
  {
    id: '2.3.2.2',
    title: 'Ensure systemd-timesyncd is enabled and running',
    tags: ['timesync'],
    needs: ['unit:systemd-timesyncd.service'],
    apply: '',
    exception: TIMESYNC_EXCEPTION,
    check: (f) => ({ pass: unitOn(f, 'systemd-timesyncd.service'), evidence: `systemd-timesyncd.service ${f.unit('systemd-timesyncd.service').enabled}` }),
  },
  {
    id: '2.3.3.1',
    title: 'Ensure chrony is configured with authorized timeserver',
    tags: ['timesync'],
    needs: CHRONY_NEEDS,
    // The Amazon Time Sync Service is the one authorized source: reachable in every VPC without
    // internet egress, and inert in local guests (nothing leaves the machine for a pool). Stated
    // in chrony.conf itself, which every reader reads (some read no sources.d); Debian's pool
    // lines are commented out, and nothing else names a source.
    // Idempotent: the lines it appended before are dropped first, so a second run leaves the
    // file as the first did.
    apply: [
      `sed -i -E -e '/^# Amazon Time Sync Service \\(link-local/d' -e '/^server 169\\.254\\.169\\.123 /d' -e 's/^(pool|server)[[:space:]]/# Amazon Time Sync Service only: &/' /etc/chrony/chrony.conf`,
      'rm -f /etc/chrony/sources.d/syntropy-aws.sources',
      `printf '%s\\n' ${q('# Amazon Time Sync Service (link-local on every EC2 instance)')} ${q(CHRONY_SERVER)} >> /etc/chrony/chrony.conf`,
    ].join('\n'),
    check: (f) => {
      const main = (f.read('/etc/chrony/chrony.conf') ?? '').split('\n').map((l) => l.trim()).filter((l) => /^(server|pool)\s+\S+/.test(l));
      const anywhere = chronyLines(f).filter((l) => /^(server|pool)\s+\S+/.test(l));
      if (main.length === 0) return fail(anywhere.length ? `no server or pool line in /etc/chrony/chrony.conf itself (only in conf.d/sources.d: ${anywhere.join(' | ')})` : 'no server or pool line');
      return pass(`/etc/chrony/chrony.conf: ${main.join(' | ')}${anywhere.length > main.length ? `; also ${anywhere.filter((l) => !main.includes(l)).join(' | ')}` : ''}`);
    },
    fixture: {
      good: (fx) => fx.file('/etc/chrony/chrony.conf', `confdir /etc/chrony/conf.d\n${CHRONY_SERVER}\ndriftfile /var/lib/chrony/chrony.drift\nsourcedir /etc/chrony/sources.d\nuser _chrony\n`),
      // The server only in sources.d: chrony uses it, a reader of chrony.conf finds none.
      bad: (fx) => {
        fx.file('/etc/chrony/chrony.conf', 'confdir /etc/chrony/conf.d\ndriftfile /var/lib/chrony/chrony.drift\nsourcedir /etc/chrony/sources.d\nuser _chrony\n');
        fx.file('/etc/chrony/sources.d/syntropy-aws.sources', `${CHRONY_SERVER}\n`);
      },
    },
  },
  {
    id: '2.3.3.2',
    title: 'Ensure chrony is running as user _chrony',
    tags: ['timesync'],
    needs: [...CHRONY_NEEDS, 'read:/etc/default/chrony', 'cmd:chronyd-user'],
    // Stated in chrony.conf (chronyd's compiled-in default is _chrony, but readers of the file
    // look for the directive), and nowhere else another user.
    apply: `sed -i -E '/^[[:space:]]*user[[:space:]]/d' /etc/chrony/chrony.conf\nprintf 'user _chrony\\n' >> /etc/chrony/chrony.conf`,
    check: (f) => {
      const users = chronyLines(f).filter((l) => /^user\s/.test(l)).map((l) => l.split(/\s+/)[1]);
      const inMain = (f.read('/etc/chrony/chrony.conf') ?? '').split('\n').some((l) => /^\s*user\s+_chrony\s*$/.test(l));
      const opts = keyValues(f.read('/etc/default/chrony'), /=/).get('DAEMON_OPTS') ?? '';
      const vs = [
        { pass: inMain && users.every((u) => u === '_chrony') && !/-u\s+(?!_chrony\b)/.test(opts), evidence: `user directive: ${users.join(',') || 'none'}${inMain ? ' (in chrony.conf)' : ' (not stated in /etc/chrony/chrony.conf)'}; DAEMON_OPTS="${opts}"` },
      ];
      const ps = f.cmd('chronyd-user');
      if (ps) vs.push({ pass: ps.out.trim().split('\n').every((u) => u.trim() === '_chrony') && ps.out.trim() !== '', evidence: `chronyd runs as ${ps.out.trim().split('\n').join(',') || '(not running)'}` });
      return all(...vs);
    },
    fixture: {
      good: (fx) => fx.file('/etc/default/chrony', 'DAEMON_OPTS="-F 1"\n'),
      bad: (fx) => fx.file('/etc/chrony/chrony.conf', (fx.read('/etc/chrony/chrony.conf') ?? '').replace(/^user _chrony\n/m, '')),
    },
  },
  {
    id: '2.3.3.3',
    title: 'Ensure chrony is enabled and running',
    tags: ['timesync'],
    needs: ['unit:chrony.service'],
    apply: 'unit_enable chrony.service',
    check: (f) => {
      const s = f.unit('chrony.service');
      return { pass: unitOn(f, 'chrony.service'), evidence: `chrony.service ${s.enabled}${s.active === null ? '' : `, ${s.active}`}` };
    },
    fixture: { good: (fx) => fx.unit('chrony.service', 'enabled'), bad: (fx) => fx.unit('chrony.service', 'disabled') },
  },
  {
    ...installed('2.4.1.1', 'Ensure cron daemon is enabled and active', ['cron']),
    needs: ['pkg:cron', 'unit:cron.service'],
    apply: 'pkg_install cron\nunit_enable cron.service',
    check: (f) => ({ pass: f.pkg('cron').installed && unitOn(f, 'cron.service'), evidence: `cron ${f.pkg('cron').installed ? 'installed' : 'NOT installed'}, cron.service ${f.unit('cron.service').enabled}` }),
    fixture: {
      good: (fx) => {
        fx.pkg('cron', true);
        fx.unit('cron.service', 'enabled');
      },
      bad: (fx) => fx.unit('cron.service', 'disabled'),
    },
  },
  perms('2.4.1.2', 'Ensure access to /etc/crontab are configured', [{ path: '/etc/crontab', max: 0o600, required: true }]),
  perms('2.4.1.3', 'Ensure access to /etc/cron.hourly are configured', [{ path: '/etc/cron.hourly', max: 0o700, required: true, dir: true }]),
  perms('2.4.1.4', 'Ensure access to /etc/cron.daily is configured', [{ path: '/etc/cron.daily', max: 0o700, required: true, dir: true }]),
  perms('2.4.1.5', 'Ensure access to /etc/cron.weekly are configured', [{ path: '/etc/cron.weekly', max: 0o700, required: true, dir: true }]),
  perms('2.4.1.6', 'Ensure access to /etc/cron.monthly are configured', [{ path: '/etc/cron.monthly', max: 0o700, required: true, dir: true }]),
  perms('2.4.1.7', 'Ensure access to /etc/cron.yearly is configured', [{ path: '/etc/cron.yearly', max: 0o700, required: true, dir: true }]),
  perms('2.4.1.8', 'Ensure access to /etc/cron.d are configured', [{ path: '/etc/cron.d', max: 0o700, required: true, dir: true }]),
  ...(
    [
      ['2.4.1.9', 'Ensure access to crontab is configured', 'cron', ['root', 'crontab']],
      ['2.4.2.1', 'Ensure access to at is configured', 'at', ['root', 'daemon']],
    ] as const
  ).map(([id, title, name, groups]): Draft => {
    const allow = { path: `/etc/${name}.allow`, max: 0o640, required: true, groups: [...groups] };
    const deny = { path: `/etc/${name}.deny`, max: 0o640, groups: [...groups] };
    return {
      id,
      title,
      tags: ['permissions', name],
      needs: [`stat:${allow.path}`, `stat:${deny.path}`],
      apply: `allow_file ${q(allow.path)} ${q(deny.path)}`,
      check: (f) => all(permCheck(f, allow), f.stat(deny.path) ? permCheck(f, deny) : pass(`${deny.path} absent`)),
      fixture: { good: (fx) => fx.file(allow.path, 'root\n', 0o640), bad: (fx) => fx.remove(allow.path) },
    };
  }),
];
