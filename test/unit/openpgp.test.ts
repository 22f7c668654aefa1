// OpenPGP fingerprints computed without gpg (scripts/lib/bake/openpgp.ts), checked against keys
// whose fingerprints their publishers state: AWS's SSM Agent key (packer/keys, pinned beside it)
// and Debian's trixie archive key on this host (gpg --show-keys: 41587F7D...B2C39DE4).
import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from '../../scripts/lib/paths.ts';
import { openpgpFingerprint } from '../../scripts/lib/bake/openpgp.ts';

describe('openpgpFingerprint', () => {
  it('reads an armored v4 key: AWS SSM Agent key = its pinned fingerprint', () => {
    const key = readFileSync(join(REPO, 'packer/keys/amazon-ssm-agent.asc'), 'utf8');
    expect(openpgpFingerprint(key)).toBe(readFileSync(join(REPO, 'packer/keys/amazon-ssm-agent.fingerprint'), 'utf8').trim());
  });

  it.runIf(existsSync('/usr/share/keyrings/debian-archive-trixie-stable.gpg'))('reads a binary keyring: Debian trixie stable release key', () => {
    expect(openpgpFingerprint(readFileSync('/usr/share/keyrings/debian-archive-trixie-stable.gpg'))).toBe('41587F7DB8C774BCCF131416762F67A0B2C39DE4');
  });

  it('refuses what is not a public key', () => {
    expect(() => openpgpFingerprint('hello')).toThrow(/not an ASCII-armored OpenPGP public key/);
    expect(() => openpgpFingerprint(Buffer.from([0x01, 0x02]))).toThrow(/not OpenPGP packet data/);
    // A signature packet (tag 2) where the key should be.
    expect(() => openpgpFingerprint(Buffer.from([0x88, 0x03, 0x04, 0x00, 0x00]))).toThrow(/tag 2, not a public key/);
  });
});
