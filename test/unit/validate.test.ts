// validate.sh against root directories: a clean one passes, and each kind of leftover
// that sanitize.list names makes it fail with a message that says what was found.
import { beforeAll, describe, expect, it } from 'vitest';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { REPO } from '../../scripts/lib/paths.ts';

const LIST = join(REPO, 'packer', 'provisioners', 'sanitize.list');
const SCRIPT = join(REPO, 'packer', 'provisioners', 'validate.sh');

function put(root: string, path: string, content = ''): void {
  mkdirSync(dirname(join(root, path)), { recursive: true });
  writeFileSync(join(root, path), content);
}

/** A root directory that satisfies every rule, shaped like a sanitized Debian image. */
function cleanRoot(): string {
  const root = mkdtempSync(join(tmpdir(), 'validate-root-'));
  put(root, 'etc/machine-id', 'uninitialized\n');
  put(root, 'etc/shadow', 'root:!*:20000:0:99999:7:::\nadmin:!:20000:0:99999:7:::\nsshd:*:20000:0:99999:7:::\n');
  put(
    root,
    'etc/ssh/sshd_config',
    'PermitEmptyPasswords no\nKbdInteractiveAuthentication no\nPasswordAuthentication no\nInclude /etc/ssh/sshd_config.d/*.conf\nUsePAM yes\n',
  );
  put(root, 'etc/ssh/sshd_config.d/50-other.conf', 'X11Forwarding no\n');
  put(root, 'etc/ssh/ssh_config', 'Host *\n');
  put(root, 'home/admin/.bashrc', '# ok\n');
  mkdirSync(join(root, 'home/admin/.ssh'), { recursive: true });
  mkdirSync(join(root, 'var/lib/cloud/instances'), { recursive: true });
  put(root, 'var/lib/cloud/scripts/per-boot/.keep');
  put(root, 'var/log/apt/history.log', '');
  mkdirSync(join(root, 'var/log/journal'), { recursive: true });
  put(root, 'var/lib/apt/lists/lock', '');
  mkdirSync(join(root, 'var/tmp'), { recursive: true });
  mkdirSync(join(root, 'root'), { recursive: true });
  return root;
}

function validate(root: string): { code: number; out: string } {
  const r = spawnSync('bash', [SCRIPT, root], { env: { ...process.env, SANITIZE_LIST: LIST }, encoding: 'utf8' });
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

/** One seeded leftover per rule kind and target; `expect` is what the failure must mention. */
const LEFTOVERS: { name: string; seed: (root: string) => void; expect: RegExp }[] = [
  { name: 'build key in admin authorized_keys', seed: (r) => put(r, 'home/admin/.ssh/authorized_keys', 'ssh-ed25519 AAAA build'), expect: /absent-name authorized_keys: found \/home\/admin\/\.ssh\/authorized_keys/ },
  { name: 'root authorized_keys', seed: (r) => put(r, 'root/.ssh/authorized_keys', 'ssh-rsa AAAA x'), expect: /found \/root\/\.ssh\/authorized_keys/ },
  { name: 'authorized_keys2 elsewhere', seed: (r) => put(r, 'srv/x/authorized_keys2', 'k'), expect: /authorized_keys2: found \/srv\/x\/authorized_keys2/ },
  { name: 'SSH host key', seed: (r) => put(r, 'etc/ssh/ssh_host_ed25519_key', 'key'), expect: /absent \/etc\/ssh\/ssh_host_\*: found \/etc\/ssh\/ssh_host_ed25519_key/ },
  { name: 'bash history', seed: (r) => put(r, 'home/admin/.bash_history', 'sudo su'), expect: /\.bash_history: found \/home\/admin\/\.bash_history/ },
  { name: 'root python history', seed: (r) => put(r, 'root/.python_history', 'x'), expect: /\.python_history/ },
  { name: 'cloud-init instance state', seed: (r) => put(r, 'var/lib/cloud/instances/i-0abc/obj.pkl', 'x'), expect: /absent \/var\/lib\/cloud\/instances\/\*: found \/var\/lib\/cloud\/instances\/i-0abc/ },
  { name: 'cloud-init instance link', seed: (r) => symlinkSync('/var/lib/cloud/instances/i-0abc', join(r, 'var/lib/cloud/instance')), expect: /found \/var\/lib\/cloud\/instance$/m },
  { name: 'cloud-init rendered network config', seed: (r) => put(r, 'etc/netplan/50-cloud-init.yaml', 'network: {}'), expect: /50-cloud-init\.yaml/ },
  { name: 'machine-id of the build VM', seed: (r) => put(r, 'etc/machine-id', '0123456789abcdef0123456789abcdef\n'), expect: /content \/etc\/machine-id: expected 'uninitialized'/ },
  { name: 'machine-id missing', seed: (r) => rmSync(join(r, 'etc/machine-id')), expect: /content \/etc\/machine-id: file is missing/ },
  { name: 'non-empty log', seed: (r) => put(r, 'var/log/apt/history.log', 'Start-Date: today'), expect: /empty-files \/var\/log: \/var\/log\/apt\/history\.log is not empty/ },
  { name: 'persistent journal', seed: (r) => put(r, 'var/log/journal/0123/system.journal', ''), expect: /absent \/var\/log\/journal\/\*\/\*: found/ },
  { name: 'apt package lists', seed: (r) => put(r, 'var/lib/apt/lists/deb.debian.org_debian_dists_trixie_main_binary-amd64_Packages', 'P'), expect: /absent \/var\/lib\/apt\/lists\/\*_\*: found/ },
  { name: 'apt archive cache', seed: (r) => put(r, 'var/cache/apt/archives/docker.io_26_amd64.deb', 'deb'), expect: /\.deb/ },
  { name: 'a baked agent env file', seed: (r) => put(r, 'etc/syntropy/agent.env', 'SYNTROPY_AGENT_TOKEN=x'), expect: /absent \/etc\/syntropy\/agent\.env: found/ },
  { name: 'first-boot state of the build VM', seed: (r) => put(r, 'var/lib/syntropy/firstboot/state.json', '{}'), expect: /absent \/var\/lib\/syntropy\/firstboot\/\*: found/ },
  { name: 'build-only apt setting', seed: (r) => put(r, 'etc/apt/apt.conf.d/99syntropy-build', 'x'), expect: /99syntropy-build/ },
  { name: 'staging directory', seed: (r) => put(r, 'var/tmp/syntropy-build/rootfs/x', 'x'), expect: /\/var\/tmp\/syntropy-build/ },
  { name: 'root password not locked', seed: (r) => put(r, 'etc/shadow', 'root:$6$salt$hash:20000:0:99999:7:::\n'), expect: /shadow-locked root: password of root is not locked/ },
  { name: 'password hash baked in', seed: (r) => put(r, 'etc/shadow', 'root:!*:1::::::\nadmin:$6$salt$hash:1::::::\n'), expect: /shadow-no-hashes: account admin has a password/ },
  { name: 'blank password', seed: (r) => put(r, 'etc/shadow', 'root:!*:1::::::\nguest::1::::::\n'), expect: /account guest has a password or an empty password field/ },
  {
    name: 'password authentication on in sshd_config',
    seed: (r) => put(r, 'etc/ssh/sshd_config', 'PasswordAuthentication yes\nKbdInteractiveAuthentication no\nPermitEmptyPasswords no\n'),
    expect: /sshd PasswordAuthentication: effective value is 'yes', expected 'no'/,
  },
  {
    name: 'a drop-in read before sshd_config turns passwords on',
    seed: (r) => {
      put(r, 'etc/ssh/sshd_config', 'Include /etc/ssh/sshd_config.d/*.conf\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitEmptyPasswords no\n');
      put(r, 'etc/ssh/sshd_config.d/50-cloud-init.conf', 'PasswordAuthentication yes\n');
    },
    expect: /sshd PasswordAuthentication: effective value is 'yes'/,
  },
  {
    name: 'setting only in a drop-in (scanners read sshd_config itself)',
    seed: (r) => {
      put(r, 'etc/ssh/sshd_config', 'Include /etc/ssh/sshd_config.d/*.conf\nKbdInteractiveAuthentication no\nPermitEmptyPasswords no\n');
      put(r, 'etc/ssh/sshd_config.d/10-pw.conf', 'PasswordAuthentication no\n');
    },
    expect: /sshd PasswordAuthentication: \/etc\/ssh\/sshd_config itself does not say 'PasswordAuthentication no'/,
  },
  {
    name: 'setting only inside a Match block',
    seed: (r) => put(r, 'etc/ssh/sshd_config', 'KbdInteractiveAuthentication no\nPermitEmptyPasswords no\nMatch User admin\n  PasswordAuthentication no\n'),
    expect: /sshd PasswordAuthentication: effective value is 'unset'/,
  },
];

describe('validate.sh', () => {
  let clean: string;
  beforeAll(() => {
    clean = cleanRoot();
  });

  it('passes a clean root directory and says how many rules it checked', () => {
    const r = validate(clean);
    expect(r.out).toMatch(/validate: image is clean \(\d+ rules checked\)/);
    expect(r.code).toBe(0);
  });

  it('covers every rule kind that sanitize.list uses', () => {
    const kinds = new Set(
      readFileSync(LIST, 'utf8')
        .split('\n')
        .filter((l) => l.trim() && !l.startsWith('#'))
        .map((l) => l.split(/\s+/)[0]),
    );
    expect([...kinds].sort()).toEqual(['absent', 'absent-name', 'content', 'empty-files', 'shadow-locked', 'shadow-no-hashes', 'sshd']);
  });

  for (const leftover of LEFTOVERS) {
    it(`fails on a leftover: ${leftover.name}`, () => {
      const root = mkdtempSync(join(tmpdir(), 'validate-dirty-'));
      cpSync(clean, root, { recursive: true, verbatimSymlinks: true });
      leftover.seed(root);
      const r = validate(root);
      expect(r.code).toBe(1);
      expect(r.out).toContain('validate: FAILED');
      expect(r.out).toMatch(leftover.expect);
      rmSync(root, { recursive: true, force: true });
    });
  }

  it('refuses to run without its rule list or on a missing root', () => {
    const noList = spawnSync('bash', [SCRIPT, clean], { env: { ...process.env, SANITIZE_LIST: '/nonexistent' }, encoding: 'utf8' });
    expect(noList.status).toBe(2);
    expect(noList.stderr).toContain('rule list /nonexistent is missing');
    expect(validate('/nonexistent-root').code).toBe(2);
  });
});
