// CIS Debian 13 v1.0.0, section 7: System Maintenance (account files, ownership, account consistency).
import { fail, manual, pass, perms, type Draft, type PermSpec , type Section } from '../builders.ts';
import { colonEntries, passwdEntries } from '../parse.ts';
import type { Facts } from '../facts.ts';

/** Container layers keep their images' owners and modes; the host's rules do not apply inside them. */
export const CONTAINER_STORE = /^\/var\/lib\/(docker|containerd)\//;
const f644 = (path: string, required = true): PermSpec => ({ path, max: 0o644, required });
const f640 = (path: string, required = true): PermSpec => ({ path, max: 0o640, required, groups: ['root', 'shadow'] });

const NOLOGIN = /(nologin|false)$/;
const interactive = (f: Facts) => passwdEntries(f.read('/etc/passwd')).filter((u) => !NOLOGIN.test(u.shell) && !/(sync|shutdown|halt)$/.test(u.shell));

function dup(id: string, title: string, file: '/etc/passwd' | '/etc/group', col: 0 | 2, what: string, bad: string): Draft {
  return {
    id,
    title,
    tags: ['accounts'],
    needs: [`read:${file}`],
    apply: '# verified only: duplicates need a person to decide which account is real',
    check: (f) => {
      const seen = new Map<string, number>();
      for (const p of colonEntries(f.read(file))) seen.set(p[col]!, (seen.get(p[col]!) ?? 0) + 1);
      const d = [...seen.entries()].filter(([, n]) => n > 1).map(([k]) => k);
      return d.length ? fail(`duplicate ${what}: ${d.join(', ')}`) : pass(`no duplicate ${what} in ${file}`);
    },
    fixture: { good: () => {}, bad: (fx) => fx.append(file, `${bad}\n`) },
  };
}

export const section7: Section = () => [
  perms('7.1.1', 'Ensure access to /etc/passwd is configured', [f644('/etc/passwd')]),
  perms('7.1.2', 'Ensure access to /etc/passwd- is configured', [f644('/etc/passwd-', false)]),
  perms('7.1.3', 'Ensure access to /etc/group is configured', [f644('/etc/group')]),
  perms('7.1.4', 'Ensure access to /etc/group- is configured', [f644('/etc/group-', false)]),
  perms('7.1.5', 'Ensure access to /etc/shadow is configured', [f640('/etc/shadow')]),
  perms('7.1.6', 'Ensure access to /etc/shadow- is configured', [f640('/etc/shadow-', false)]),
  perms('7.1.7', 'Ensure access to /etc/gshadow is configured', [f640('/etc/gshadow')]),
  perms('7.1.8', 'Ensure access to /etc/gshadow- is configured', [f640('/etc/gshadow-', false)]),
  perms('7.1.9', 'Ensure access to /etc/shells is configured', [f644('/etc/shells')]),
  (() => {
    const d = perms('7.1.10', 'Ensure access to /etc/security/opasswd is configured', [
      { path: '/etc/security/opasswd', max: 0o600, required: true },
      { path: '/etc/security/opasswd.old', max: 0o600 },
    ]);
    // pam_pwhistory keeps its history here; create it root-only before anyone changes a password.
    return { ...d, apply: `[[ -e /etc/security/opasswd ]] || install -m 0600 -o root -g root /dev/null /etc/security/opasswd\n${d.apply}` };
  })(),
  {
    id: '7.1.11',
    title: 'Ensure world writable files and directories are secured',
    tags: ['permissions'],
    needs: ['cmd:fs-scan'],
    apply: 'world_writable_fix',
    check: (f) => {
      const found = (f.cmd('fs-scan')?.out ?? '').split('\n').filter((l) => l.startsWith('w ')).map((l) => l.slice(2)).filter((p) => !CONTAINER_STORE.test(p));
      return found.length ? fail(`world-writable without sticky bit: ${found.slice(0, 8).join(', ')}`) : pass('none on the root file system (container layers under /var/lib/docker keep their images\' modes and are not scanned)');
    },
    fixture: { good: () => {}, bad: (fx) => fx.file('/etc/open.conf', 'x\n', 0o666) },
  },
  {
    id: '7.1.12',
    title: 'Ensure no files or directories without an owner and a group exist',
    tags: ['permissions'],
    needs: ['cmd:fs-scan', 'read:/etc/passwd', 'read:/etc/group'],
    apply: 'unowned_fix',
    check: (f) => {
      const uids = new Set(passwdEntries(f.read('/etc/passwd')).map((u) => String(u.uid)));
      const gids = new Set(colonEntries(f.read('/etc/group')).map((g) => g[2]!));
      const bad = (f.cmd('fs-scan')?.out ?? '').split('\n').filter((l) => l.startsWith('o ')).map((l) => l.slice(2)).filter((pair) => {
        const [u, g] = pair.split(':');
        return !uids.has(u!) || !gids.has(g!);
      });
      return bad.length ? fail(`owners not in passwd/group (uid:gid): ${bad.join(', ')}`) : pass('every file has a known owner and group (container layers under /var/lib/docker excluded)');
    },
    fixture: { good: () => {}, bad: (fx) => fx.file('/etc/orphan', 'x\n', 0o644, { uid: 4242, gid: 4242 }) },
  },
  manual('7.1.13', 'Ensure SUID and SGID files are reviewed', 'Review `find / -xdev -perm /6000 -type f` against the packages that ship those files (`dpkg -S`); the image adds no SUID/SGID files of its own.'),
  {
    id: '7.2.1',
    title: 'Ensure accounts in /etc/passwd use shadowed passwords',
    tags: ['accounts'],
    needs: ['read:/etc/passwd'],
    apply: 'pwconv',
    check: (f) => {
      const bad = passwdEntries(f.read('/etc/passwd')).filter((u) => u.raw[1] !== 'x');
      return bad.length ? fail(`not shadowed: ${bad.map((u) => u.name).join(', ')}`) : pass('every account is shadowed');
    },
    fixture: { good: () => {}, bad: (fx) => fx.append('/etc/passwd', 'legacy::1600:1600::/home/legacy:/bin/sh\n') },
  },
  {
    id: '7.2.2',
    title: 'Ensure /etc/shadow password fields are not empty',
    tags: ['accounts', 'marketplace'],
    needs: ['read:/etc/shadow'],
    apply: 'empty_passwords_lock',
    check: (f) => {
      const bad = colonEntries(f.read('/etc/shadow')).filter((p) => (p[1] ?? '') === '');
      return bad.length ? fail(`empty password: ${bad.map((p) => p[0]).join(', ')}`) : pass('no empty password field');
    },
    fixture: { good: () => {}, bad: (fx) => fx.append('/etc/shadow', 'blank::20000:0:99999:7:::\n') },
  },
  {
    id: '7.2.3',
    title: 'Ensure all groups in /etc/passwd exist in /etc/group',
    tags: ['accounts'],
    needs: ['read:/etc/passwd', 'read:/etc/group'],
    apply: '# verified only',
    check: (f) => {
      const gids = new Set(colonEntries(f.read('/etc/group')).map((g) => Number(g[2])));
      const bad = passwdEntries(f.read('/etc/passwd')).filter((u) => !gids.has(u.gid));
      return bad.length ? fail(`primary group missing: ${bad.map((u) => `${u.name}(${u.gid})`).join(', ')}`) : pass('every primary group exists');
    },
    fixture: { good: () => {}, bad: (fx) => fx.append('/etc/passwd', 'lost:x:1700:1799::/home/lost:/usr/sbin/nologin\n') },
  },
  {
    id: '7.2.4',
    title: 'Ensure shadow group is empty',
    tags: ['accounts'],
    needs: ['read:/etc/passwd', 'read:/etc/group'],
    apply: `sed -i -E 's/^(shadow:[^:]*:[^:]*:).*/\\1/' /etc/group`,
    check: (f) => {
      const g = colonEntries(f.read('/etc/group')).find((p) => p[0] === 'shadow');
      const members = (g?.[3] ?? '').trim();
      const primary = g ? passwdEntries(f.read('/etc/passwd')).filter((u) => String(u.gid) === g[2]).map((u) => u.name) : [];
      return { pass: !members && primary.length === 0, evidence: `shadow group members: ${members || 'none'}; primary: ${primary.join(', ') || 'none'}` };
    },
    fixture: { good: () => {}, bad: (fx) => fx.file('/etc/group', (fx.read('/etc/group') ?? '').replace(/^shadow:x:42:$/m, 'shadow:x:42:admin'), 0o644) },
  },
  dup('7.2.5', 'Ensure no duplicate UIDs exist', '/etc/passwd', 2, 'UIDs', 'twin:x:1000:1000::/home/twin:/usr/sbin/nologin'),
  dup('7.2.6', 'Ensure no duplicate GIDs exist', '/etc/group', 2, 'GIDs', 'twins:x:1000:'),
  dup('7.2.7', 'Ensure no duplicate user names exist', '/etc/passwd', 0, 'user names', 'admin:x:1800:1000::/home/admin2:/usr/sbin/nologin'),
  dup('7.2.8', 'Ensure no duplicate group names exist', '/etc/group', 0, 'group names', 'admin:x:1801:'),
  {
    id: '7.2.9',
    title: 'Ensure local interactive user home directories are configured',
    tags: ['accounts', 'permissions'],
    needs: ['cmd:homes', 'read:/etc/passwd'],
    apply: 'home_dirs_fix',
    check: (f) => {
      const names = new Set(interactive(f).map((u) => u.name));
      const problems: string[] = [];
      for (const line of (f.cmd('homes')?.out ?? '').split('\n')) {
        const p = line.split('|');
        if (p[0] !== 'home' || !names.has(p[1]!)) continue;
        const [, user, uid, home, mode, owner] = p as string[];
        if (mode === 'missing') problems.push(`${user}: ${home} missing`);
        else if (owner !== uid || (parseInt(mode!, 8) & 0o027) !== 0) problems.push(`${user}: ${home} ${mode} uid ${owner}`);
      }
      return problems.length ? fail(problems.join(', ')) : pass(`${names.size} interactive user home(s) exist, owned by their user, mode <= 750`);
    },
    fixture: { good: (fx) => fx.dir('/home/admin', 0o750, { uid: 1000, gid: 1000 }), bad: (fx) => fx.dir('/home/admin', 0o755, { uid: 1000, gid: 1000 }) },
  },
  {
    id: '7.2.10',
    title: 'Ensure local interactive user dot files access is configured',
    tags: ['accounts', 'permissions'],
    needs: ['cmd:homes', 'read:/etc/passwd'],
    apply: 'dot_files_fix',
    check: (f) => {
      const users = new Map(interactive(f).map((u) => [u.name, u]));
      const problems: string[] = [];
      for (const line of (f.cmd('homes')?.out ?? '').split('\n')) {
        const p = line.split('|');
        if (p[0] !== 'dot' || !users.has(p[1]!)) continue;
        const [, user, name, modeS, uid, gid] = p as string[];
        const mode = parseInt(modeS!, 8);
        const u = users.get(user!)!;
        if (['.forward', '.rhosts'].includes(name!)) problems.push(`${user}: ${name} present`);
        else if (['.netrc', '.bash_history'].includes(name!) && (mode & 0o177) !== 0) problems.push(`${user}: ${name} ${modeS}`);
        else if ((mode & 0o133) !== 0) problems.push(`${user}: ${name} ${modeS}`);
        if (Number(uid) !== u.uid || Number(gid) !== u.gid) problems.push(`${user}: ${name} owned ${uid}:${gid}`);
      }
      return problems.length ? fail(problems.slice(0, 8).join(', ')) : pass('dot files of interactive users are theirs and not group/world writable');
    },
    fixture: { good: (fx) => fx.file('/home/admin/.profile', '# profile\n', 0o644, { uid: 1000, gid: 1000 }), bad: (fx) => fx.file('/home/admin/.profile', '# profile\n', 0o666, { uid: 1000, gid: 1000 }) },
  },
];
