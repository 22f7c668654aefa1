// Beyond CIS Level 1: a named layer of defense-in-depth controls (IDs DD-n, section "DD", not CIS
// IDs and not counted in the benchmark score), each with apply, check and fixture like the
// catalog's, toggled by config (hardening.sections.DD, hardening.controls."DD-n"). On by default
// where they cost the appliance nothing; the Level 2 territory (auditd, process accounting) is
// there as options, off by default (`defaultOff`).
//
// Sources: the Kernel Self Protection Project's recommended settings (kernel.org wiki,
// "Recommended Settings": unprivileged_bpf_disabled,
// bpf_jit_harden, ldisc_autoload, protected_fifos/regular, sysrq); sshd_config(5) for the
// forwarding and session limits; Debian's unattended-upgrades (README.md of the package: #clear
// and Origins-Pattern in apt.conf.d) and needrestart(1) ($nrconf{restart}).
import { fail, pass, q, sshd, sysctl, type Draft, type Section } from '../builders.ts';
import type { Facts } from '../facts.ts';

const dd = (d: Draft): Draft => ({ ...d, section: 'DD', tags: ['defense-in-depth', ...d.tags] });

const kspp = (id: string, key: string, value: string, why: string): Draft => sysctl(id, `${key} = ${value} (${why})`, key, value);

const UU_CONF = '/etc/apt/apt.conf.d/52syntropy-unattended-upgrades';
const UU_PERIODIC = '/etc/apt/apt.conf.d/20auto-upgrades';
const UU_TEXT = [
  '// Security updates only, never a reboot (hardening DD-20). #clear drops the origins Debian\'s',
  '// 50unattended-upgrades lists (apt.conf lists add up across files).',
  '#clear Unattended-Upgrade::Origins-Pattern;',
  'Unattended-Upgrade::Origins-Pattern { "origin=Debian,codename=${distro_codename}-security,label=Debian-Security"; };',
  'Unattended-Upgrade::Automatic-Reboot "false";',
  '',
].join('\n');
const UU_PERIODIC_TEXT = 'APT::Periodic::Update-Package-Lists "1";\nAPT::Periodic::Unattended-Upgrade "1";\n';
const NR_CONF = '/etc/needrestart/conf.d/60-syntropy.conf';
const NR_TEXT = "# List services that need a restart after an upgrade; restart none by itself (hardening DD-22).\n$nrconf{restart} = 'l';\n";

/** A package and its service, off unless hardening.controls names it true. */
function option(id: string, title: string, pkg: string, unit: string): Draft {
  return {
    id,
    title,
    tags: ['package'],
    apply: `pkg_install ${pkg}\nunit_enable ${unit}`,
    needs: [`pkg:${pkg}`, `unit:${unit}`],
    check: (f) => {
      const s = f.unit(unit);
      return f.pkg(pkg).installed && s.enabled === 'enabled' ? pass(`${pkg} ${f.pkg(pkg).version}, ${unit} ${s.enabled}`) : fail(`${pkg} ${f.pkg(pkg).installed ? `installed, ${unit} ${s.enabled}` : 'not installed'}`);
    },
    fixture: {
      good: (fx) => {
        fx.pkg(pkg, true);
        fx.unit(unit, 'enabled');
      },
      bad: (fx) => fx.unit(unit, 'disabled'),
    },
    defaultOff: `an option (Level 2 territory): hardening.controls."${id}": true turns it on`,
  };
}

function fileHas(f: Facts, path: string, patterns: RegExp[]): string[] {
  const t = f.read(path) ?? '';
  return patterns.filter((p) => !p.test(t)).map((p) => `${path} lacks ${p.source}`);
}

export const defenseInDepth: Section = () => {
  const drafts: Draft[] = [
    // kptr_restrict and dmesg_restrict are CIS 1.5.8 and 1.5.5 already.
    kspp('DD-1', 'kernel.unprivileged_bpf_disabled', '1', 'no unprivileged BPF'),
    kspp('DD-2', 'net.core.bpf_jit_harden', '2', 'constant blinding in the BPF JIT'),
    kspp('DD-3', 'dev.tty.ldisc_autoload', '0', 'no line-discipline autoloading'),
    kspp('DD-4', 'fs.protected_fifos', '2', 'no FIFOs of others in sticky directories'),
    kspp('DD-5', 'fs.protected_regular', '2', 'no regular files of others in sticky directories'),
    kspp('DD-6', 'kernel.sysrq', '0', 'no magic SysRq'),
    kspp('DD-7', 'kernel.perf_event_paranoid', '3', 'no perf events for users'),
    sshd('DD-10', 'sshd AllowTcpForwarding no (no tunnels through the appliance\'s SSH)', 'AllowTcpForwarding', 'no', (v) => v === 'no', 'yes'),
    sshd('DD-11', 'sshd AllowAgentForwarding no', 'AllowAgentForwarding', 'no', (v) => v === 'no', 'yes'),
    sshd('DD-12', 'sshd X11Forwarding no', 'X11Forwarding', 'no', (v) => v === 'no', 'yes'),
    sshd('DD-13', 'sshd ClientAliveCountMax 3 (idle sessions end)', 'ClientAliveCountMax', '3', (v) => Number(v) >= 1 && Number(v) <= 3, '0'),
    sshd('DD-14', 'sshd MaxSessions 4', 'MaxSessions', '4', (v) => Number(v) >= 1 && Number(v) <= 4, '10'),
    {
      // pam-auth-update leaves the catalog's own PAM stack (5.3.2.1) alone, so the module is
      // added to common-session here, after the stack is written.
      id: 'DD-15',
      title: 'libpam-tmpdir: a private TMPDIR per login session',
      tags: ['package', 'pam'],
      needs: ['pkg:libpam-tmpdir', 'read:/etc/pam.d/common-session'],
      apply: `pkg_install libpam-tmpdir\ngrep -qE '^[[:space:]]*session[[:space:]]+optional[[:space:]]+pam_tmpdir\\.so' /etc/pam.d/common-session || printf 'session\\toptional\\tpam_tmpdir.so\\n' >> /etc/pam.d/common-session`,
      check: (f) => {
        const line = (f.read('/etc/pam.d/common-session') ?? '').split('\n').find((l) => /^\s*session\s+\S+\s+pam_tmpdir\.so\b/.test(l));
        const p = [...(f.pkg('libpam-tmpdir').installed ? [] : ['libpam-tmpdir not installed']), ...(line ? [] : ['pam_tmpdir.so not in /etc/pam.d/common-session'])];
        return p.length ? fail(p.join('; ')) : pass(`libpam-tmpdir ${f.pkg('libpam-tmpdir').version}; /etc/pam.d/common-session: ${line!.trim()}`);
      },
      fixture: {
        good: (fx) => {
          fx.pkg('libpam-tmpdir', true);
          const cur = fx.read('/etc/pam.d/common-session') ?? '';
          if (!/pam_tmpdir\.so/.test(cur)) fx.file('/etc/pam.d/common-session', `${cur}session\toptional\tpam_tmpdir.so\n`);
        },
        // Installed, but not in the session stack: it does nothing.
        bad: (fx) => fx.file('/etc/pam.d/common-session', (fx.read('/etc/pam.d/common-session') ?? '').replace(/^session\toptional\tpam_tmpdir\.so\n/m, '')),
      },
    },
    {
      id: 'DD-20',
      title: 'Automatic security updates: the Debian security suite only, no automatic reboot',
      tags: ['package', 'updates'],
      needs: ['pkg:unattended-upgrades', `read:${UU_CONF}`, `read:${UU_PERIODIC}`, 'unit:apt-daily-upgrade.timer'],
      apply: `pkg_install unattended-upgrades\nprintf '%s' ${q(UU_TEXT)} > ${UU_CONF}\nprintf '%s' ${q(UU_PERIODIC_TEXT)} > ${UU_PERIODIC}\nunit_enable apt-daily-upgrade.timer`,
      check: (f) => {
        const p = [
          ...(f.pkg('unattended-upgrades').installed ? [] : ['unattended-upgrades not installed']),
          ...fileHas(f, UU_CONF, [/^#clear Unattended-Upgrade::Origins-Pattern;/m, /^Unattended-Upgrade::Origins-Pattern \{ "origin=Debian,codename=\$\{distro_codename\}-security,label=Debian-Security"; \};/m, /^Unattended-Upgrade::Automatic-Reboot "false";/m]),
          ...fileHas(f, UU_PERIODIC, [/APT::Periodic::Update-Package-Lists "1";/, /APT::Periodic::Unattended-Upgrade "1";/]),
        ];
        const t = f.unit('apt-daily-upgrade.timer');
        if (t.enabled !== 'enabled') p.push(`apt-daily-upgrade.timer ${t.enabled}`);
        return p.length ? fail(p.join('; ')) : pass(`${UU_CONF}: security suite only, Automatic-Reboot false; ${UU_PERIODIC}: daily; apt-daily-upgrade.timer enabled`);
      },
      fixture: {
        good: (fx) => {
          fx.pkg('unattended-upgrades', true);
          fx.file(UU_CONF, UU_TEXT);
          fx.file(UU_PERIODIC, UU_PERIODIC_TEXT);
          fx.unit('apt-daily-upgrade.timer', 'enabled');
        },
        // Reboots by itself: an appliance that routes a VPC must not.
        bad: (fx) => fx.file(UU_CONF, UU_TEXT.replace('Automatic-Reboot "false"', 'Automatic-Reboot "true"')),
      },
    },
    {
      id: 'DD-21',
      title: 'Password hashing cost: YESCRYPT_COST_FACTOR 8 in login.defs (for any password set later)',
      tags: ['login.defs'],
      needs: ['read:/etc/login.defs'],
      apply: `kv_set /etc/login.defs ENCRYPT_METHOD YESCRYPT\nkv_set /etc/login.defs YESCRYPT_COST_FACTOR 8`,
      check: (f) => {
        const t = f.read('/etc/login.defs') ?? '';
        const method = /^\s*ENCRYPT_METHOD\s+(\S+)/m.exec(t)?.[1];
        const cost = Number(/^\s*YESCRYPT_COST_FACTOR\s+(\d+)/m.exec(t)?.[1] ?? 0);
        return method === 'YESCRYPT' && cost >= 8 ? pass(`ENCRYPT_METHOD ${method}, YESCRYPT_COST_FACTOR ${cost}`) : fail(`ENCRYPT_METHOD ${method ?? '(unset)'}, YESCRYPT_COST_FACTOR ${cost || '(unset)'}`);
      },
      fixture: {
        good: (fx) => fx.file('/etc/login.defs', `${(fx.read('/etc/login.defs') ?? '').replace(/^\s*(ENCRYPT_METHOD|YESCRYPT_COST_FACTOR)\s.*\n?/gm, '')}ENCRYPT_METHOD YESCRYPT\nYESCRYPT_COST_FACTOR 8\n`),
        bad: (fx) => fx.file('/etc/login.defs', (fx.read('/etc/login.defs') ?? '').replace(/^YESCRYPT_COST_FACTOR 8$/m, 'YESCRYPT_COST_FACTOR 3')),
      },
    },
    {
      id: 'DD-22',
      title: 'needrestart lists services running old libraries after an upgrade, restarts none by itself',
      tags: ['package', 'updates'],
      needs: ['pkg:needrestart', `read:${NR_CONF}`],
      apply: `pkg_install needrestart\ninstall -d -m 0755 /etc/needrestart/conf.d\nprintf '%s' ${q(NR_TEXT)} > ${NR_CONF}`,
      check: (f) => {
        const p = [...(f.pkg('needrestart').installed ? [] : ['needrestart not installed']), ...fileHas(f, NR_CONF, [/^\$nrconf\{restart\} = 'l';/m])];
        return p.length ? fail(p.join('; ')) : pass(`needrestart ${f.pkg('needrestart').version}, restart mode l (list) in ${NR_CONF}`);
      },
      fixture: {
        good: (fx) => {
          fx.pkg('needrestart', true);
          fx.file(NR_CONF, NR_TEXT);
        },
        bad: (fx) => fx.file(NR_CONF, "$nrconf{restart} = 'a';\n"),
      },
    },
    option('DD-30', 'auditd installed and running (option; Level 2 territory)', 'auditd', 'auditd.service'),
    option('DD-31', 'process accounting (acct) installed and running (option; Level 2 territory)', 'acct', 'acct.service'),
  ];
  return drafts.map(dd);
};
