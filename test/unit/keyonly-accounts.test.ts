// The boot-time script hardening installs (apply-lib.sh, keyonly_accounts_unit) exempts exactly
// the key-only login users from password ageing: locked password, UID >= 1000, a login shell.
// It is taken from apply-lib.sh as the image gets it; getent and chage are stand-ins on PATH, and
// /etc/shadow is a fixture.
import { describe, expect, it } from 'vitest';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { REPO } from '../../scripts/lib/paths.ts';

function script(): string {
  const lib = readFileSync(join(REPO, 'hardening/apply-lib.sh'), 'utf8');
  const m = /cat > \/usr\/lib\/syntropy-hardening\/keyonly-accounts <<'SH'\n([\s\S]*?)\nSH\n/.exec(lib);
  if (!m) throw new Error('keyonly-accounts script not found in apply-lib.sh');
  return m[1]!;
}

describe('keyonly-accounts (boot-time exemption from password ageing)', () => {
  it('runs chage for locked users with UID >= 1000 and a login shell, and nobody else', () => {
    const dir = mkdtempSync(join(tmpdir(), 'keyonly-'));
    const shadow = join(dir, 'shadow');
    writeFileSync(
      shadow,
      [
        'root:*:20000:0:99999:7:::',
        'daemon:*:20000:0:99999:7:::',
        'admin:!:20000:0:99999:7:::',
        'deploy:*:20000:0:99999:7:::',
        'svc:!:20000:0:99999:7:::',
        'alice:$y$j9T$abc$def:20000:0:365:7:::',
        'ghost:!:20000:0:99999:7:::',
        'legacy:!*:20000:0:99999:7:::',
      ].join('\n') + '\n',
    );
    const passwd = [
      'root:x:0:0:root:/root:/bin/bash',
      'daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin',
      'admin:x:1000:1000:Debian:/home/admin:/bin/bash',
      'deploy:x:1001:1001::/home/deploy:/bin/sh',
      'svc:x:1002:1002::/srv:/usr/sbin/nologin',
      'alice:x:1003:1003::/home/alice:/bin/bash',
      'legacy:x:1004:1004::/home/legacy:/bin/false',
    ];
    const bin = join(dir, 'bin');
    spawnSync('mkdir', [bin]);
    writeFileSync(join(bin, 'getent'), `#!/bin/sh\n[ "$1" = passwd ] || exit 2\ncat <<'P'\n${passwd.join('\n')}\nP\n`);
    writeFileSync(join(bin, 'chage'), `#!/bin/sh\necho "$*" >> ${join(dir, 'chage.log')}\n`);
    chmodSync(join(bin, 'getent'), 0o755);
    chmodSync(join(bin, 'chage'), 0o755);
    const r = spawnSync('sh', ['-c', script().replaceAll('/etc/shadow', shadow)], { env: { ...process.env, PATH: `${bin}:${process.env.PATH}` }, encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    // ghost has no passwd entry; alice has a password; svc and legacy no login shell; root/daemon < 1000.
    expect(readFileSync(join(dir, 'chage.log'), 'utf8').trim().split('\n')).toEqual(['-M -1 -I -1 admin', '-M -1 -I -1 deploy']);
  });
});
