// AWS Marketplace AMI policy as checks (tag `marketplace`), judged on every image. Offline scans
// judge the image as shipped; on a running instance the login user's key and host keys are expected.
import { all, fail, pass, sshd, type Draft, type Section } from '../builders.ts';
import { colonEntries, sshdEffective, SSHD_NEEDS } from '../parse.ts';

const mp = (d: Omit<Draft, 'tags'> & { tags?: string[] }): Draft => ({ ...d, section: 'MP', tags: ['marketplace', ...(d.tags ?? [])] });

export const marketplace: Section = ({ sshUser, sshPort }) => {
  return [
    mp({
      id: 'MP-2',
      title: 'No password of any kind: every account is locked or has no password hash',
      needs: ['read:/etc/shadow'],
      apply: '',
      check: (f) => {
        const hashes = colonEntries(f.read('/etc/shadow')).filter((p) => /^\$/.test(p[1] ?? '') || (p[1] ?? '') === '');
        return hashes.length ? fail(`password hash or empty field: ${hashes.map((p) => p[0]).join(', ')}`) : pass('no password hashes and no empty password fields');
      },
      fixture: { good: () => {}, bad: (fx) => fx.append('/etc/shadow', 'ops:$y$j9T$salt$hash:20000:0:365:7:45::\n') },
    }),
    mp({ ...sshd('MP-3a', 'sshd PasswordAuthentication no', 'PasswordAuthentication', 'no', (v) => v === 'no', 'yes'), apply: '' }),
    mp({ ...sshd('MP-3b', 'sshd KbdInteractiveAuthentication no', 'KbdInteractiveAuthentication', 'no', (v) => v === 'no', 'yes'), apply: '' }),
    mp({
      id: 'MP-4a',
      title: 'No authorized_keys in the image (only the login user\'s, from instance metadata, on a running instance)',
      needs: ['cmd:fs-scan', 'read:/root/.ssh/authorized_keys'],
      apply: '',
      check: (f) => {
        const found = (f.cmd('fs-scan')?.out ?? '').split('\n').filter((l) => l.startsWith('k ')).map((l) => l.slice(2));
        // Live, cloud-init writes the login user's key and, for root, only its disable_root stub.
        const rootStub = (f.read('/root/.ssh/authorized_keys') ?? '').split('\n').filter(Boolean).every((l) => /command="echo 'Please login as the user/.test(l));
        const allowed = f.live ? found.filter((p) => p !== `/home/${sshUser}/.ssh/authorized_keys` && !(p === '/root/.ssh/authorized_keys' && rootStub)) : found;
        return allowed.length ? fail(`authorized_keys: ${allowed.join(', ')}`) : pass(found.length ? `only ${found.join(', ')} (written at boot from instance metadata)` : 'none');
      },
      fixture: { good: () => {}, bad: (fx) => fx.file('/root/.ssh/authorized_keys', 'ssh-ed25519 AAAA build\n', 0o600) },
    }),
    mp({
      id: 'MP-4b',
      title: 'No SSH host keys in the image (generated per instance at first boot)',
      needs: ['stats:/etc/ssh/ssh_host_*'],
      apply: '',
      check: (f) => {
        const keys = f.stats('/etc/ssh/ssh_host_*');
        if (f.live) return keys.length ? pass(`${keys.length} host key file(s) generated on this instance`) : fail('no host keys on a running instance');
        return keys.length ? fail(`host keys baked in: ${keys.map((k) => k.path).join(', ')}`) : pass('no host keys');
      },
      fixture: { good: () => {}, bad: (fx) => fx.file('/etc/ssh/ssh_host_ed25519_key', 'KEY\n', 0o600) },
    }),
    mp({
      id: 'MP-4c',
      title: 'No shell history in the image',
      needs: ['cmd:histories'],
      apply: '',
      check: (f) => {
        const h = (f.cmd('histories')?.out ?? '').split('\n').filter(Boolean);
        if (f.live) return pass(`history files on the running instance: ${h.length} (not judged live)`);
        return h.length ? fail(`history files: ${h.join(', ')}`) : pass('no shell history files');
      },
      fixture: { good: () => {}, bad: (fx) => fx.file('/root/.bash_history', 'ls\n', 0o600) },
    }),
    mp({
      id: 'MP-6',
      title: `SSH administration works on port ${sshPort}: sshd listens there and ufw allows it`,
      needs: [...SSHD_NEEDS, 'read:/etc/ufw/user.rules', 'read:/etc/ufw/user6.rules'],
      apply: '',
      check: (f) => {
        const port = sshdEffective(f).get('Port');
        const rules = f.read('/etc/ufw/user.rules') ?? '';
        const allowed = new RegExp(`### tuple ### allow tcp ${sshPort} 0\\.0\\.0\\.0/0 any 0\\.0\\.0\\.0/0`).test(rules);
        return all({ pass: port === String(sshPort), evidence: `sshd Port ${port}` }, { pass: allowed, evidence: allowed ? `ufw allows ${sshPort}/tcp` : `ufw has no allow rule for ${sshPort}/tcp` });
      },
      fixture: { good: (fx) => fx.file('/etc/ufw/user.rules', `${fx.read('/etc/ufw/user.rules') ?? ''}### tuple ### allow tcp ${sshPort} 0.0.0.0/0 any 0.0.0.0/0 in\n`), bad: (fx) => fx.file('/etc/ufw/user.rules', (fx.read('/etc/ufw/user.rules') ?? '').replace(/^### tuple ### allow tcp .*\n/m, '')) },
    }),
    mp({
      id: 'MP-7',
      title: 'Works without user data: the first-boot service and its console dialogue are enabled',
      needs: ['unit:syntropy-firstboot.service', 'unit:syntropy-firstboot-console@ttyS0.service', 'stat:/etc/profile.d/syntropy-firstboot.sh'],
      apply: '',
      check: (f) =>
        all(
          { pass: f.unit('syntropy-firstboot.service').enabled === 'enabled', evidence: `syntropy-firstboot.service ${f.unit('syntropy-firstboot.service').enabled}` },
          { pass: f.unit('syntropy-firstboot-console@ttyS0.service').enabled === 'enabled', evidence: `console dialogue ${f.unit('syntropy-firstboot-console@ttyS0.service').enabled}` },
          f.stat('/etc/profile.d/syntropy-firstboot.sh') ? pass('first-login dialogue hook installed') : fail('no first-login dialogue hook'),
        ),
      fixture: {
        good: (fx) => {
          fx.unit('syntropy-firstboot.service', 'enabled');
          fx.unit('syntropy-firstboot-console@ttyS0.service', 'enabled');
          fx.file('/etc/profile.d/syntropy-firstboot.sh', '# hook\n', 0o644);
        },
        bad: (fx) => fx.unit('syntropy-firstboot.service', 'disabled'),
      },
    }),
    mp({
      id: 'MP-8',
      title: 'External connections are disclosed (agent controller and image registry)',
      needs: ['read:/usr/share/doc/syntropy-agent-image/EXTERNAL-CONNECTIONS'],
      apply: '',
      check: (f) => {
        const t = f.read('/usr/share/doc/syntropy-agent-image/EXTERNAL-CONNECTIONS') ?? '';
        const ok = /controller/i.test(t) && /registry|docker hub|docker\.io/i.test(t);
        return { pass: ok, evidence: t ? `EXTERNAL-CONNECTIONS names ${ok ? 'the controller and the registry' : 'not both connections'}` : 'disclosure file missing' };
      },
      fixture: {
        good: (fx) => fx.file('/usr/share/doc/syntropy-agent-image/EXTERNAL-CONNECTIONS', 'controller-prod-platform-agents.syntropystack.com\nregistry-1.docker.io (Docker Hub)\n'),
        bad: (fx) => fx.remove('/usr/share/doc/syntropy-agent-image/EXTERNAL-CONNECTIONS'),
      },
    }),
    mp({
      id: 'MP-11',
      title: `The OS login user is ${sshUser} in every version`,
      needs: ['reads:/etc/cloud/cloud.cfg.d/*.cfg', 'read:/etc/cloud/cloud.cfg'],
      apply: '',
      check: (f) => {
        const texts = [f.read('/etc/cloud/cloud.cfg') ?? '', ...f.reads('/etc/cloud/cloud.cfg.d/*.cfg').map((x) => x.content)];
        const names = texts.flatMap((t) => [...t.matchAll(/default_user:\s*\n\s+name:\s*(\S+)/g)].map((m) => m[1]));
        const last = names.at(-1);
        return { pass: last === sshUser, evidence: `cloud-init default_user ${last ?? '(none)'}` };
      },
      fixture: {
        good: (fx) => fx.file('/etc/cloud/cloud.cfg.d/01_debian_cloud.cfg', `system_info:\n  default_user:\n    name: ${sshUser}\n    lock_passwd: true\n`),
        bad: (fx) => fx.file('/etc/cloud/cloud.cfg.d/99_other.cfg', 'system_info:\n  default_user:\n    name: debian\n'),
      },
    }),
    mp({
      id: 'MP-12',
      title: 'No AWS access keys or credentials files in the image',
      needs: ['cmd:aws-credentials'],
      apply: '',
      check: (f) => {
        const found = (f.cmd('aws-credentials')?.out ?? '').split('\n').filter(Boolean);
        return found.length ? fail(`credentials: ${found.join(', ')}`) : pass('no ~/.aws/credentials and no AKIA/ASIA key IDs in /etc, /root, /home');
      },
      fixture: { good: () => {}, bad: (fx) => fx.file('/root/.aws/credentials', '[default]\naws_access_key_id = AKIAABCDEFGHIJKLMNOP\n', 0o600) },
    }),
  ];
}
