// CIS Debian 13 v1.0.0, section 1: Initial Setup.
import { all, fail, fxIni, installed, kmod, manual, mountOpt, notInUse, pass, perms, q, sameAs, sysctl, type Draft, type Section } from '../builders.ts';
import { exception } from '../exceptions.ts';
import { systemdConf } from '../parse.ts';
import type { Facts } from '../facts.ts';

const mod = (id: string, m: string) => kmod(id, `Ensure ${m} kernel module is not available`, m);
const mnt = (id: string, mp: string, opt: 'nodev' | 'nosuid' | 'noexec') => mountOpt(id, `Ensure ${opt} option set on ${mp} partition`, mp, opt);

/**
 * The login banner: the benchmark's example sentence, extended so that keyword-counting readers
 * (Lynis BANN-7126/7130 count words such as access, authorized, evidence, law, monitor, owner,
 * policy, private, prohibited, restricted, this system, unauthorized) find a legal warning too.
 * No OS name, version or escape sequence (1.6.2/1.6.3).
 */
export const BANNER =
  'Authorized uses only. This system is private and access is restricted to users authorized by its owner under the owner\'s policy. ' +
  'Unauthorized use is prohibited. All activity may be monitored and recorded, and evidence of unauthorized use may be reported to law enforcement.';

function banner(id: string, path: string): Draft {
  return {
    id,
    title: `Ensure ${path} is configured`,
    tags: ['banner'],
    needs: [`read:${path}`],
    apply: `write_banner ${q(path)}`,
    check: (f) => {
      const t = f.read(path);
      // Readers look for a warning in the file: absent or empty is no banner at all.
      if (t === null || t.trim() === '') return fail(`${path} ${t === null ? 'is absent' : 'is empty'}: no warning banner`);
      const bad = [
        /\\[mrsv]/.test(t) ? 'escape sequences (\\m \\r \\s \\v)' : '',
        /debian|gnu\/linux/i.test(t) ? 'OS name' : '',
        /\bauthori[sz]ed\b/i.test(t) ? '' : 'no statement that use must be authorized',
      ].filter(Boolean);
      return { pass: bad.length === 0, evidence: bad.length ? `${path} reveals ${bad.join(' and ')}` : `${path}: ${JSON.stringify(t.trim().slice(0, 60))}` };
    },
    fixture: { good: (fx) => fx.file(path, `${BANNER}\n`, 0o644), bad: (fx) => fx.file(path, 'Debian GNU/Linux 13 \\n \\l\n', 0o644) },
  };
}

function grubCmdline(f: Facts): string[] {
  return (f.read('/boot/grub/grub.cfg') ?? '').split('\n').filter((l) => /^\s*linux\s/.test(l));
}

const GRUB_FIXTURE = (extra: string) =>
  `set timeout=0\n${extra}menuentry 'Debian GNU/Linux' --class debian --unrestricted {\n  linux /boot/vmlinuz-6.12 root=UUID=x ro console=ttyS0 apparmor=1 security=apparmor\n}\n`;

function gdm(id: string, title: string, first = false): Draft {
  return {
    id,
    title,
    tags: ['gdm'],
    needs: ['pkg:gdm3'],
    apply: first ? 'pkg_purge gdm3' : '# gdm3 is kept off the image (1.7.2)',
    check: (f) =>
      f.pkg('gdm3').installed
        ? fail('gdm3 is installed: its dconf settings are not managed by this catalog')
        : pass('gdm3 not installed: no graphical login to configure'),
    fixture: { good: (fx) => fx.pkg('gdm3', false), bad: (fx) => fx.pkg('gdm3', true) },
  };
}

const ptrace = sysctl('1.5.3', 'Ensure kernel.yama.ptrace_scope is configured', 'kernel.yama.ptrace_scope', '1');

export const section1: Section = () => [
  mod('1.1.1.1', 'cramfs'),
  mod('1.1.1.2', 'freevxfs'),
  mod('1.1.1.3', 'hfs'),
  mod('1.1.1.4', 'hfsplus'),
  mod('1.1.1.5', 'jffs2'),
  {
    ...mod('1.1.1.6', 'overlay'),
    exception: exception('docker-overlay'),
  },
  mod('1.1.1.9', 'firewire-core'),
  mod('1.1.1.10', 'usb-storage'),
  manual('1.1.1.11', 'Ensure unused filesystems kernel modules are not available', 'Review `lsmod` and /lib/modules for filesystem modules the site does not use and add `install <mod> /bin/false` + `blacklist <mod>` in /etc/modprobe.d/.'),
  mountOpt('1.1.2.1.1', 'Ensure /tmp is tmpfs or a separate partition', '/tmp', null),
  mnt('1.1.2.1.2', '/tmp', 'nodev'),
  mnt('1.1.2.1.3', '/tmp', 'nosuid'),
  mnt('1.1.2.1.4', '/tmp', 'noexec'),
  mountOpt('1.1.2.2.1', 'Ensure /dev/shm is tmpfs or a separate partition', '/dev/shm', null),
  mnt('1.1.2.2.2', '/dev/shm', 'nodev'),
  mnt('1.1.2.2.3', '/dev/shm', 'nosuid'),
  mnt('1.1.2.2.4', '/dev/shm', 'noexec'),
  mnt('1.1.2.3.2', '/home', 'nodev'),
  mnt('1.1.2.3.3', '/home', 'nosuid'),
  mnt('1.1.2.4.2', '/var', 'nodev'),
  mnt('1.1.2.4.3', '/var', 'nosuid'),
  mnt('1.1.2.5.2', '/var/tmp', 'nodev'),
  mnt('1.1.2.5.3', '/var/tmp', 'nosuid'),
  mnt('1.1.2.5.4', '/var/tmp', 'noexec'),
  mnt('1.1.2.6.2', '/var/log', 'nodev'),
  mnt('1.1.2.6.3', '/var/log', 'nosuid'),
  mnt('1.1.2.6.4', '/var/log', 'noexec'),
  mnt('1.1.2.7.2', '/var/log/audit', 'nodev'),
  mnt('1.1.2.7.3', '/var/log/audit', 'nosuid'),
  mnt('1.1.2.7.4', '/var/log/audit', 'noexec'),
  manual('1.2.1.1', 'Ensure the source.list and .source files use the Signed-By option', 'Every APT source added later must name its key with Signed-By (the image ships /etc/apt/sources.list.d/debian.sources that way).'),
  perms('1.2.1.3', 'Ensure access to gpg key files are configured', [
    { path: '/etc/apt/trusted.gpg.d/*', max: 0o644 },
    { path: '/usr/share/keyrings/*', max: 0o644 },
  ]),
  perms('1.2.1.4', 'Ensure access to /etc/apt/trusted.gpg.d directory is configured', [{ path: '/etc/apt/trusted.gpg.d', max: 0o755, required: true, dir: true }]),
  perms('1.2.1.5', 'Ensure access to /etc/apt/auth.conf.d directory is configured', [{ path: '/etc/apt/auth.conf.d', max: 0o755, required: true, dir: true }]),
  perms('1.2.1.6', 'Ensure access to files in the /etc/apt/auth.conf.d/ directory is configured', [{ path: '/etc/apt/auth.conf.d/*', max: 0o640 }]),
  perms('1.2.1.7', 'Ensure access to /usr/share/keyrings directory is configured', [{ path: '/usr/share/keyrings', max: 0o755, required: true, dir: true }]),
  perms('1.2.1.8', 'Ensure access to /etc/apt/sources.list.d directory is configured', [{ path: '/etc/apt/sources.list.d', max: 0o755, required: true, dir: true }]),
  perms('1.2.1.9', 'Ensure access to files in /etc/apt/sources.list.d are configured', [{ path: '/etc/apt/sources.list.d/*', max: 0o644 }]),
  manual('1.2.2.1', 'Ensure updates, patches, and additional security software are installed', 'Rebuild the image for every Debian security update (the build runs `apt-get full-upgrade`); on instances, run `apt-get update && apt-get upgrade` or replace them with a newer AMI.'),
  installed('1.3.1.1', 'Ensure apparmor packages are installed', ['apparmor', 'apparmor-utils']),
  {
    id: '1.3.1.2',
    title: 'Ensure AppArmor is enabled',
    tags: ['apparmor', 'bootloader'],
    needs: ['read:/boot/grub/grub.cfg', 'cmd:apparmor-enabled'],
    apply: `grub_cmdline_add apparmor=1 security=apparmor`,
    check: (f) => {
      const lines = grubCmdline(f);
      const ok = lines.length > 0 && lines.every((l) => /\bapparmor=1\b/.test(l) && /\bsecurity=apparmor\b/.test(l));
      const vs = [{ pass: ok, evidence: `${lines.length} kernel line(s) in grub.cfg${ok ? ' with apparmor=1 security=apparmor' : ' lacking apparmor=1 security=apparmor'}` }];
      const live = f.cmd('apparmor-enabled');
      if (live) vs.push({ pass: live.out.startsWith('Y'), evidence: `kernel AppArmor enabled=${live.out.split('\n')[0] || '(unknown)'}` });
      return all(...vs);
    },
    fixture: {
      good: (fx) => fx.file('/boot/grub/grub.cfg', GRUB_FIXTURE('set superusers="root"\npassword_pbkdf2 root grub.pbkdf2.sha512.10000.AA.BB\n'), 0o600),
      bad: (fx) => fx.file('/boot/grub/grub.cfg', (fx.read('/boot/grub/grub.cfg') ?? '').replace(/ apparmor=1 security=apparmor/g, ''), 0o600),
    },
  },
  sysctl('1.3.1.4', 'Ensure apparmor_restrict_unprivileged_unconfined is enabled', 'kernel.apparmor_restrict_unprivileged_unconfined', '1'),
  {
    id: '1.4.1',
    title: 'Ensure bootloader password is set',
    tags: ['bootloader'],
    needs: ['read:/boot/grub/grub.cfg'],
    apply: 'grub_password',
    check: (f) => {
      const cfg = f.read('/boot/grub/grub.cfg') ?? '';
      const su = /^\s*set\s+superusers=/m.test(cfg);
      const pw = /^\s*password_pbkdf2\s+\S+\s+grub\.pbkdf2\./m.test(cfg);
      return { pass: su && pw, evidence: `grub.cfg: superusers ${su ? 'set' : 'MISSING'}, password_pbkdf2 ${pw ? 'set' : 'MISSING'}` };
    },
    fixture: {
      good: (fx) => fx.file('/boot/grub/grub.cfg', GRUB_FIXTURE('set superusers="root"\npassword_pbkdf2 root grub.pbkdf2.sha512.10000.AA.BB\n'), 0o600),
      bad: (fx) => fx.file('/boot/grub/grub.cfg', (fx.read('/boot/grub/grub.cfg') ?? '').replace(/^password_pbkdf2.*\n/m, ''), 0o600),
    },
  },
  perms('1.4.2', 'Ensure access to bootloader config is configured', [{ path: '/boot/grub/grub.cfg', max: 0o600, required: true }]),
  sysctl('1.5.1', 'Ensure fs.protected_hardlinks is configured', 'fs.protected_hardlinks', '1'),
  ptrace,
  sysctl('1.5.4', 'Ensure fs.suid_dumpable is configured', 'fs.suid_dumpable', '0'),
  sysctl('1.5.5', 'Ensure kernel.dmesg_restrict is configured', 'kernel.dmesg_restrict', '1'),
  notInUse('1.5.6', 'Ensure prelink is not installed', ['prelink'], []),
  notInUse('1.5.7', 'Ensure Automatic Error Reporting is configured', ['apport'], ['apport.service']),
  sysctl('1.5.8', 'Ensure kernel.kptr_restrict is configured', 'kernel.kptr_restrict', '2'),
  sysctl('1.5.9', 'Ensure kernel.randomize_va_space is configured', 'kernel.randomize_va_space', '2'),
  sameAs('1.5.10', 'Ensure kernel.yama.ptrace_scope is configured', ptrace),
  {
    id: '1.5.11',
    title: 'Ensure core file size is configured',
    tags: ['coredump'],
    needs: ['read:/etc/security/limits.conf', 'reads:/etc/security/limits.d/*.conf'],
    apply: `install -d -m 0755 /etc/security/limits.d\nprintf '* hard core 0\\n' > /etc/security/limits.d/60-syntropy-cis.conf`,
    check: (f) => {
      const files = [{ path: '/etc/security/limits.conf', content: f.read('/etc/security/limits.conf') ?? '' }, ...f.reads('/etc/security/limits.d/*.conf')];
      const hit = files.find((x) => /^\s*\*\s+hard\s+core\s+0\s*$/m.test(x.content));
      return hit ? pass(`${hit.path}: * hard core 0`) : fail('no "* hard core 0" in limits.conf or limits.d');
    },
    fixture: { good: (fx) => fx.file('/etc/security/limits.d/60-syntropy-cis.conf', '* hard core 0\n'), bad: (fx) => fx.remove('/etc/security/limits.d/60-syntropy-cis.conf') },
  },
  ...(['ProcessSizeMax=0:1.5.12:Ensure systemd-coredump ProcessSizeMax is configured', 'Storage=none:1.5.13:Ensure systemd-coredump Storage is configured'].map((spec) => {
    const [kv, id, title] = spec.split(':') as [string, string, string];
    const [key, value] = kv.split('=') as [string, string];
    const dropin = '/etc/systemd/coredump.conf.d/60-syntropy-cis.conf';
    return {
      id,
      title,
      tags: ['coredump'],
      needs: ['read:/etc/systemd/coredump.conf', 'reads:/etc/systemd/coredump.conf.d/*.conf', 'reads:/usr/lib/systemd/coredump.conf.d/*.conf'],
      apply: `dropin_set ${dropin} Coredump ${key} ${value}`,
      check: (f: Facts) => {
        const v = systemdConf(f, '/etc/systemd/coredump.conf', ['/usr/lib/systemd/coredump.conf.d/*.conf', '/etc/systemd/coredump.conf.d/*.conf'], 'Coredump').get(key);
        return { pass: v?.value === value, evidence: `${key}=${v?.value ?? '(default)'}${v ? ` in ${v.file}` : ''}` };
      },
      fixture: {
        good: (fx) => fxIni(fx, dropin, 'Coredump', key, value),
        bad: (fx) => fx.file('/etc/systemd/coredump.conf.d/99-zz-local.conf', `[Coredump]\n${key}=${value === 'none' ? 'external' : '2G'}\n`),
      },
    } satisfies Draft;
  })),
  banner('1.6.1', '/etc/motd'),
  banner('1.6.2', '/etc/issue'),
  banner('1.6.3', '/etc/issue.net'),
  perms('1.6.4', 'Ensure access to /etc/motd is configured', [{ path: '/etc/motd', max: 0o644 }]),
  perms('1.6.5', 'Ensure access to /etc/issue is configured', [{ path: '/etc/issue', max: 0o644 }]),
  perms('1.6.6', 'Ensure access to /etc/issue.net is configured', [{ path: '/etc/issue.net', max: 0o644 }]),
  gdm('1.7.2', 'Ensure GDM login banner is configured', true),
  gdm('1.7.3', 'Ensure GDM disable-user-list option is enabled'),
  gdm('1.7.4', 'Ensure GDM screen locks when the user is idle'),
  gdm('1.7.5', 'Ensure GDM screen locks cannot be overridden'),
  gdm('1.7.6', 'Ensure GDM automatic mounting of removable media is disabled'),
  gdm('1.7.7', 'Ensure GDM disabling automatic mounting of removable media is not overridden'),
  gdm('1.7.8', 'Ensure GDM autorun-never is enabled'),
  gdm('1.7.9', 'Ensure GDM autorun-never is not overridden'),
  gdm('1.7.10', 'Ensure XDMCP is not enabled'),
];
