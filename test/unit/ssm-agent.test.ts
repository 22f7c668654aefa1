// install-ssm-agent.sh (aws bake): the pinned version from AWS's regional distribution, installed
// only when its signature verifies with the pinned key. Run for real (gpg, gpgv, dpkg-deb) with a
// TEST signing key and a stand-in package made here; curl, dpkg and systemctl are stand-ins on PATH.
import { beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { REPO } from '../../scripts/lib/paths.ts';

const SCRIPT = join(REPO, 'packer/provisioners/install-ssm-agent.sh');
const VERSION = '3.3.3572.0';
let work = '';
let testKey = '';

function gpg(home: string, args: string[], input?: string): string {
  return execFileSync('gpg', ['--homedir', home, '--batch', '--pinentry-mode', 'loopback', '--passphrase', '', ...args], { encoding: 'utf8', input });
}

/** A signing key for this test only (not AWS's): its armored public key and fingerprint files. */
function makeKey(name: string): { home: string; asc: string } {
  const home = mkdtempSync(join(tmpdir(), `gpg-${name}-`));
  gpg(home, ['--quick-gen-key', `${name} TEST key <test@invalid>`, 'ed25519', 'sign', '1d']);
  const fpr = gpg(home, ['--with-colons', '--fingerprint']).split('\n').find((l) => l.startsWith('fpr:'))!.split(':')[9]!;
  const asc = join(home, `${name}.asc`);
  writeFileSync(asc, gpg(home, ['--armor', '--export']));
  writeFileSync(join(home, `${name}.fingerprint`), `${fpr}\n`);
  return { home, asc };
}

/** A stand-in amazon-ssm-agent.deb of `version`, signed (detached) with `home`'s key. */
function makeRepo(version: string, signer: string): string {
  const repo = mkdtempSync(join(tmpdir(), 'ssm-repo-'));
  const pkg = join(repo, 'pkg');
  mkdirSync(join(pkg, 'DEBIAN'), { recursive: true });
  writeFileSync(join(pkg, 'DEBIAN/control'), `Package: amazon-ssm-agent\nVersion: ${version}-1\nArchitecture: amd64\nMaintainer: test <test@invalid>\nDescription: TEST stand-in\n`);
  const dir = join(repo, VERSION, 'debian_amd64');
  mkdirSync(dir, { recursive: true });
  execFileSync('dpkg-deb', ['--build', '--root-owner-group', pkg, join(dir, 'amazon-ssm-agent.deb')], { stdio: 'ignore' });
  gpg(signer, ['--detach-sign', '-o', join(dir, 'amazon-ssm-agent.deb.sig'), join(dir, 'amazon-ssm-agent.deb')]);
  return repo;
}

function run(repo: string, keyAsc: string): { code: number; out: string; installed: boolean } {
  const bin = mkdtempSync(join(tmpdir(), 'ssm-bin-'));
  // curl -fsSL --retry 5 -o FILE URL: copy from the stand-in distribution (URL path under base).
  writeFileSync(join(bin, 'curl'), `#!/bin/bash\nout="" url=""\nwhile (( $# )); do case "$1" in -o) out=$2; shift 2;; --retry) shift 2;; -*) shift;; *) url=$1; shift;; esac; done\ncp "${repo}/\${url#https://ssm.test/}" "$out"\n`);
  writeFileSync(join(bin, 'dpkg'), `#!/bin/sh\necho "$@" > ${bin}/dpkg-ran\n`);
  writeFileSync(join(bin, 'systemctl'), '#!/bin/sh\nexit 0\n');
  for (const f of ['curl', 'dpkg', 'systemctl']) chmodSync(join(bin, f), 0o755);
  const r = spawnSync('bash', [SCRIPT], {
    env: { PATH: `${bin}:/usr/bin:/bin`, HOME: bin, SSM_AGENT_VERSION: VERSION, SSM_AGENT_REGION: 'eu-west-1', SYNTROPY_STAGING: '/nonexistent', SSM_AGENT_BASE_URL: 'https://ssm.test', SSM_AGENT_KEY_FILE: keyAsc },
    encoding: 'utf8',
  });
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}`, installed: existsSync(join(bin, 'dpkg-ran')) };
}

let good: { home: string; asc: string };
let other: { home: string; asc: string };
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'ssm-agent-test-'));
  good = makeKey('signer');
  other = makeKey('intruder');
  testKey = good.asc;
}, 60_000);

describe('install-ssm-agent.sh', () => {
  it('installs the pinned version when it is signed by the pinned key', () => {
    const r = run(makeRepo(VERSION, good.home), testKey);
    expect(r.out).toContain(`amazon-ssm-agent ${VERSION}-1 installed`);
    expect(r.code).toBe(0);
    expect(r.installed).toBe(true);
  }, 30_000);

  it('refuses a package signed by any other key, even one in the same keyring format', () => {
    const r = run(makeRepo(VERSION, other.home), testKey);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/does not verify with AWS's key/);
    expect(r.installed).toBe(false);
  }, 30_000);

  it('refuses a package changed after signing, and a version other than the pinned one', () => {
    const repo = makeRepo(VERSION, good.home);
    const deb = join(repo, VERSION, 'debian_amd64', 'amazon-ssm-agent.deb');
    writeFileSync(deb, Buffer.concat([readFileSync(deb), Buffer.from('x')]));
    expect(run(repo, testKey).installed).toBe(false);
    const wrong = run(makeRepo('3.2.0.0', good.home), testKey);
    expect(wrong.code).toBe(1);
    expect(wrong.out).toMatch(/the package is version 3.2.0.0-1, pinned 3.3.3572.0/);
  }, 30_000);

  it('the committed key is AWS\'s SSM Agent signer with the pinned fingerprint', () => {
    const home = mkdtempSync(join(work, 'show-'));
    cpSync(join(REPO, 'packer/keys/amazon-ssm-agent.asc'), join(home, 'k.asc'));
    const out = gpg(home, ['--show-keys', '--with-colons', join(home, 'k.asc')]);
    const fpr = out.split('\n').find((l) => l.startsWith('fpr:'))!.split(':')[9];
    expect(fpr).toBe(readFileSync(join(REPO, 'packer/keys/amazon-ssm-agent.fingerprint'), 'utf8').trim());
    expect(out).toContain('SSM Agent <ssm-agent-signer@amazon.com>');
  });
});
