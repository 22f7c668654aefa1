import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildManifest, parsePackages } from '../../scripts/lib/manifest.ts';
import { loadConfig } from '../../scripts/lib/config.ts';

const ID = `sha256:${'e'.repeat(64)}`;

function fixtureDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'manifest-'));
  writeFileSync(join(d, 'packages.tsv'), 'docker.io\t26.1.5+dfsg1-9\tamd64\nnodejs\t20.19.2+dfsg-1\tamd64\n');
  writeFileSync(join(d, 'kernel.txt'), 'running=6.12.118+deb13-cloud-amd64\nlinux-image-cloud-amd64=6.12.118-1\n');
  writeFileSync(join(d, 'os-release'), 'PRETTY_NAME="Debian GNU/Linux 13 (trixie)"\nVERSION_ID="13"\n');
  writeFileSync(join(d, 'agent-image.lock'), `# comment\nAGENT_IMAGE_REF=syntropy-agent-test-double:local\nAGENT_IMAGE_DIGEST=${ID}\nAGENT_IMAGE_ID=${ID}\nAGENT_IMAGE_SOURCE=archive\n`);
  writeFileSync(join(d, 'rootfs.json'), '{"used_bytes": 924000000, "size_bytes": 8300000000}\n');
  return d;
}

describe('build manifest', () => {
  it('records packages, kernel, OS, agent image, config hash, git sha and durations', () => {
    const { config, hash } = loadConfig({});
    const m = buildManifest({
      cfg: config,
      configHash: hash,
      ctx: { buildId: 'b1', buildTime: 't', gitSha: 'abc', manifestDir: '', firstbootDir: '', hardeningDir: '', agent: { ref: 'r', digest: ID, archive: '' } },
      flavor: { version: '1.6.6', modern: false },
      baseImage: { kind: 'local-base-disk', sha256: 'f' },
      outputs: { qcow2: '/x.qcow2' },
      durations: { packer: 300, total: 320 },
      dir: fixtureDir(),
    });
    expect(m).toMatchObject({
      build_id: 'b1',
      git_sha: 'abc',
      config_sha256: hash,
      os: { pretty_name: 'Debian GNU/Linux 13 (trixie)', version_id: '13' },
      kernel: { running: '6.12.118+deb13-cloud-amd64', 'linux-image-cloud-amd64': '6.12.118-1' },
      agent_image: { AGENT_IMAGE_REF: 'syntropy-agent-test-double:local', AGENT_IMAGE_ID: ID, AGENT_IMAGE_SOURCE: 'archive' },
      rootfs: { used_bytes: 924000000 },
      durations_s: { packer: 300, total: 320 },
    });
    expect(m.packages).toEqual([
      { name: 'docker.io', version: '26.1.5+dfsg1-9', arch: 'amd64' },
      { name: 'nodejs', version: '20.19.2+dfsg-1', arch: 'amd64' },
    ]);
  });

  it('refuses a malformed package line', () => {
    expect(() => parsePackages('justaname\n')).toThrow(/malformed package line/);
  });
});
