// Fixture root directories for the check tests: an in-memory tree (files, packages, units) that
// controls' fixture sides edit, written out as a directory the LocalRootHost probes.
import { chmodSync, chownSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { tmpdir } from 'node:os';
import type { FixtureWriter } from './types.ts';
import { PAM_GOOD } from './sections/s5-access.ts';

interface Entry {
  content?: string;
  dir?: boolean;
  link?: string;
  mode: number;
  uid: number;
  gid: number;
}

export class Fixture implements FixtureWriter {
  files = new Map<string, Entry>();
  pkgs = new Map<string, { installed: boolean; version: string }>();
  units = new Map<string, 'enabled' | 'disabled' | 'masked' | 'absent'>();

  clone(): Fixture {
    const f = new Fixture();
    for (const [k, v] of this.files) f.files.set(k, { ...v });
    f.pkgs = new Map(this.pkgs);
    f.units = new Map(this.units);
    return f;
  }

  /** Without mode/owner, an existing file keeps its own. */
  file(path: string, content: string, mode?: number, owner?: { uid: number; gid: number }): void {
    const old = this.files.get(path);
    this.files.set(path, { content, mode: mode ?? old?.mode ?? 0o644, uid: owner?.uid ?? old?.uid ?? 0, gid: owner?.gid ?? old?.gid ?? 0 });
  }
  append(path: string, content: string): void {
    const e = this.files.get(path);
    if (e?.content !== undefined) e.content += content;
    else this.file(path, content);
  }
  remove(path: string): void {
    this.files.delete(path);
  }
  dir(path: string, mode = 0o755, owner = { uid: 0, gid: 0 }): void {
    this.files.set(path, { dir: true, mode, ...owner });
  }
  symlink(path: string, target: string): void {
    this.files.set(path, { link: target, mode: 0o777, uid: 0, gid: 0 });
  }
  pkg(name: string, installed: boolean, version = '1.0-1'): void {
    this.pkgs.set(name, { installed, version });
  }
  unit(name: string, state: 'enabled' | 'disabled' | 'masked' | 'absent'): void {
    this.units.set(name, state);
  }
  read(path: string): string | undefined {
    return this.files.get(path)?.content;
  }

  /** Writes the tree to a new directory and returns its path. */
  materialize(parent = tmpdir()): string {
    const root = mkdtempSync(join(parent, 'cis-fixture-'));
    const put = (p: string, e: Entry) => {
      const full = join(root, p);
      mkdirSync(dirname(full), { recursive: true });
      if (e.dir) mkdirSync(full, { recursive: true });
      else if (e.link !== undefined) symlinkSync(e.link, full);
      else writeFileSync(full, e.content ?? '');
      if (e.link === undefined) {
        chmodSync(full, e.mode);
        chownSync(full, e.uid, e.gid);
      }
    };
    const status: string[] = [];
    for (const [name, p] of this.pkgs) {
      if (p.installed) status.push(`Package: ${name}\nStatus: install ok installed\nVersion: ${p.version}\nArchitecture: amd64\n`);
    }
    const extra = new Map<string, Entry>();
    extra.set('/var/lib/dpkg/status', { content: status.join('\n'), mode: 0o644, uid: 0, gid: 0 });
    extra.set('/var/lib/dpkg/info', { dir: true, mode: 0o755, uid: 0, gid: 0 });
    for (const [unit, state] of this.units) {
      if (state === 'absent') continue;
      const at = unit.indexOf('@');
      const file = at >= 0 ? `${unit.slice(0, at + 1)}${unit.slice(unit.lastIndexOf('.'))}` : unit;
      const target = unit.endsWith('.timer') ? 'timers.target' : unit.endsWith('.socket') ? 'sockets.target' : 'multi-user.target';
      extra.set(`/usr/lib/systemd/system/${file}`, { content: `[Unit]\nDescription=${unit}\n[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=${target}\n`, mode: 0o644, uid: 0, gid: 0 });
      if (state === 'enabled') extra.set(`/etc/systemd/system/${target}.wants/${unit}`, { link: `/usr/lib/systemd/system/${file}`, mode: 0o777, uid: 0, gid: 0 });
      if (state === 'masked') extra.set(`/etc/systemd/system/${unit}`, { link: '/dev/null', mode: 0o777, uid: 0, gid: 0 });
    }
    // Directories first, so a file's mode is not changed by creating its parent later.
    const all = [...this.files, ...extra].sort(([a, x], [b, y]) => Number(!!y.dir) - Number(!!x.dir) || (a < b ? -1 : 1));
    for (const [p, e] of all) put(p, e);
    return root;
  }
}

const PASSWD = `root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
bin:x:2:2:bin:/bin:/usr/sbin/nologin
sys:x:3:3:sys:/dev:/usr/sbin/nologin
sync:x:4:65534:sync:/bin:/bin/sync
_apt:x:42:65534::/nonexistent:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
_chrony:x:100:102:Chrony daemon,,,:/var/lib/chrony:/usr/sbin/nologin
admin:x:1000:1000:Debian:/home/admin:/bin/bash
`;
const GROUP = `root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:admin
shadow:x:42:
sudo:x:27:admin
_chrony:x:102:
nogroup:x:65534:
admin:x:1000:
`;
const SHADOW = `root:!*:20000:0:99999:7:::
daemon:*:20000:0:99999:7:::
bin:*:20000:0:99999:7:::
sys:*:20000:0:99999:7:::
sync:*:20000:0:99999:7:::
_apt:*:20000:0:99999:7:::
nobody:*:20000:0:99999:7:::
_chrony:!:20000::::::
admin:!:20000:0:99999:7:::
`;

/** A Debian 13 root as the build leaves it before hardening, but with compliant PAM stacks. */
export function baseFixture(): Fixture {
  const fx = new Fixture();
  for (const d of ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/root', '/home', '/var/tmp', '/var/log', '/tmp', '/etc/ssh/sshd_config.d', '/etc/sysctl.d', '/etc/modprobe.d']) fx.dir(d, d === '/root' ? 0o700 : d.endsWith('tmp') ? 0o1777 : 0o755);
  fx.symlink('/sbin', 'usr/sbin');
  fx.symlink('/bin', 'usr/bin');
  fx.dir('/home/admin', 0o750, { uid: 1000, gid: 1000 });
  fx.file('/etc/passwd', PASSWD, 0o644);
  fx.file('/etc/group', GROUP, 0o644);
  fx.file('/etc/shadow', SHADOW, 0o640);
  fx.file('/etc/gshadow', GROUP.replace(/:x:\d+:/g, ':!::'), 0o640);
  fx.file('/etc/shells', '/bin/sh\n/bin/bash\n', 0o644);
  fx.file(
    '/etc/login.defs',
    'MAIL_DIR\t/var/mail\nPASS_MAX_DAYS\t99999\nPASS_MIN_DAYS\t0\nPASS_WARN_AGE\t7\nUID_MIN\t\t\t 1000\nUMASK\t\t022\nENV_SUPATH\tPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nENCRYPT_METHOD SHA512\n',
  );
  fx.file('/etc/default/useradd', 'SHELL=/bin/sh\n');
  fx.file('/etc/profile', 'if [ -d /etc/profile.d ]; then\n  for i in /etc/profile.d/*.sh; do . "$i"; done\nfi\n');
  fx.file('/etc/bash.bashrc', '[ -z "$PS1" ] && return\n');
  fx.file('/etc/ssh/sshd_config', 'Include /etc/ssh/sshd_config.d/*.conf\nKbdInteractiveAuthentication no\nUsePAM yes\nX11Forwarding yes\nPrintMotd no\nAcceptEnv LANG LC_*\nSubsystem sftp /usr/lib/openssh/sftp-server\n');
  fx.file('/etc/fstab', 'UUID=0a1b2c3d / ext4 defaults,discard,errors=remount-ro 0 1\n');
  const mods = ['fs/cramfs/cramfs', 'fs/freevxfs/freevxfs', 'fs/hfs/hfs', 'fs/hfsplus/hfsplus', 'fs/jffs2/jffs2', 'fs/overlayfs/overlay', 'drivers/firewire/firewire-core', 'drivers/usb/storage/usb-storage', 'net/atm/atm', 'net/can/can', 'net/dccp/dccp', 'net/rds/rds', 'net/sctp/sctp', 'net/tipc/tipc', 'net/wireguard/wireguard'];
  fx.file('/lib/modules/6.12.0-cloud-amd64/modules.dep', mods.map((m) => `kernel/${m}.ko.xz:\n`).join(''));
  for (const [name, text] of Object.entries(PAM_GOOD)) fx.file(`/etc/pam.d/${name}`, text);
  fx.file('/etc/pam.d/su', 'auth sufficient pam_rootok.so\n@include common-auth\n');
  fx.file('/etc/sudoers', 'Defaults\tenv_reset\nroot\tALL=(ALL:ALL) ALL\n@includedir /etc/sudoers.d\n', 0o440);
  fx.file('/etc/chrony/chrony.conf', 'pool 2.debian.pool.ntp.org iburst\nsourcedir /etc/chrony/sources.d\n');
  fx.file('/etc/rsyslog.conf', 'module(load="imuxsock")\nmodule(load="imklog")\n*.*;auth,authpriv.none -/var/log/syslog\n');
  fx.file('/etc/systemd/journald.conf', '[Journal]\n#Storage=auto\n');
  fx.file('/etc/systemd/coredump.conf', '[Coredump]\n#Storage=external\n');
  fx.file('/etc/os-release', 'PRETTY_NAME="Debian GNU/Linux 13 (trixie)"\nID=debian\n');
  for (const p of ['sudo', 'libpam-runtime', 'libpam-modules', 'openssh-server']) fx.pkg(p, true);
  return fx;
}
