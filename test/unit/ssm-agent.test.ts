// install-ssm-agent.sh (aws bake): the pinned version from AWS's regional distribution, installed
// only when its signature verifies with the pinned key. Run for real (gpg, gpgv, dpkg-deb) with a
// TEST signing key and a stand-in package made here; curl, dpkg and systemctl are stand-ins on PATH.
import { beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { REPO } from '../../scripts/lib/paths.ts';
import { makeSsmAgentRepo, makeTestSigningKey, type TestSigningKey } from '../../scripts/lib/emulator/ssm-agent-double.ts';

const SCRIPT = join(REPO, 'packer/provisioners/install-ssm-agent.sh');
const VERSION = '3.3.3572.0';
let work = '';
let testKey = '';

function gpg(home: string, args: string[], input?: string): string {
  return execFileSync('gpg', ['--homedir', home, '--batch', '--pinentry-mode', 'loopback', '--passphrase', '', ...args], { encoding: 'utf8', input });
}

/** A signing key for this test only (not AWS's): its armored public key and fingerprint files. */
function makeKey(name: string): TestSigningKey {
  return makeTestSigningKey(mkdtempSync(join(tmpdir(), `gpg-${name}-`)), name);
}

/** A stand-in amazon-ssm-agent.deb whose package version is `version`, signed with `signer`. */
function makeRepo(version: string, signer: TestSigningKey): string {
  return makeSsmAgentRepo(mkdtempSync(join(tmpdir(), 'ssm-repo-')), VERSION, signer, { debVersion: version, service: false });
}

function run(repo: string, keyAsc: string): { code: number; out: string; installed: boolean } {
  const bin = mkdtempSync(join(tmpdir(), 'ssm-bin-'));
  // curl -fsSL --retry 5 -o FILE URL: copy from the stand-in distribution (URL path under base).
  writeFileSync(join(bin, 'curl'), `#!/bin/bash\nout="" url=""\nwhile (( $# )); do case "$1" in -o) out=$2; shift 2;; --retry) shift 2;; -*) shift;; *) url=$1; shift;; esac; done\ncp "${repo}/\${url#https://ssm.test/}" "$out"\n`);
  writeFileSync(join(bin, 'dpkg'), `#!/bin/sh\necho "$@" > ${bin}/dpkg-ran\n`);
  writeFileSync(join(bin, 'systemctl'), '#!/bin/sh\nexit 0\n');
  // Debian 13 (and its official AMI) has no gpg or gpgv: the script must not need them.
  for (const tool of ['gpg', 'gpgv']) writeFileSync(join(bin, tool), `#!/bin/sh\necho "${tool}: not on Debian 13" >&2\nexit 127\n`);
  for (const f of ['curl', 'dpkg', 'systemctl', 'gpg', 'gpgv']) chmodSync(join(bin, f), 0o755);
  const r = spawnSync('bash', [SCRIPT], {
    env: { PATH: `${bin}:/usr/bin:/bin`, HOME: bin, SSM_AGENT_VERSION: VERSION, SSM_AGENT_REGION: 'eu-west-1', SYNTROPY_STAGING: '/nonexistent', SSM_AGENT_BASE_URL: 'https://ssm.test', SSM_AGENT_KEY_FILE: keyAsc },
    encoding: 'utf8',
  });
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}`, installed: existsSync(join(bin, 'dpkg-ran')) };
}

let good: TestSigningKey;
let other: TestSigningKey;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'ssm-agent-test-'));
  good = makeKey('signer');
  other = makeKey('intruder');
  testKey = good.asc;
}, 60_000);

describe('install-ssm-agent.sh', () => {
  it('installs the pinned version when it is signed by the pinned key', () => {
    const r = run(makeRepo(VERSION, good), testKey);
    expect(r.out).toContain(`amazon-ssm-agent ${VERSION}-1 installed`);
    expect(r.code).toBe(0);
    expect(r.installed).toBe(true);
  }, 30_000);

  it('refuses a package signed by any other key, even one in the same keyring format', () => {
    const r = run(makeRepo(VERSION, other), testKey);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/does not verify with AWS's key/);
    expect(r.installed).toBe(false);
  }, 30_000);

  it('refuses a package changed after signing, and a version other than the pinned one', () => {
    const repo = makeRepo(VERSION, good);
    const deb = join(repo, VERSION, 'debian_amd64', 'amazon-ssm-agent.deb');
    writeFileSync(deb, Buffer.concat([readFileSync(deb), Buffer.from('x')]));
    expect(run(repo, testKey).installed).toBe(false);
    const wrong = run(makeRepo('3.2.0.0', good), testKey);
    expect(wrong.code).toBe(1);
    expect(wrong.out).toMatch(/the package is version 3.2.0.0-1, pinned 3.3.3572.0/);
  }, 30_000);

  it('accepts a package signed while the key was valid although the key has expired since (AWS extends its key)', () => {
    const old = makeTestSigningKey(mkdtempSync(join(tmpdir(), 'gpg-old-')), 'expired', '1d', '20200101T000000');
    const r = run(makeRepo(VERSION, old), old.asc);
    expect(r.out).toContain(`amazon-ssm-agent ${VERSION}-1 installed`);
    expect(r.code).toBe(0);
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
