// scripts/attach-release-assets.sh (release workflow, attach job) with a recording `gh` on PATH:
// the SBOM and manifests of the one build in the artifact, renamed after the tag, with checksums.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO } from '../../scripts/lib/paths.ts';

function setup(opts: { sbom?: boolean; releaseExists?: boolean; twoBuilds?: boolean } = {}) {
  const d = mkdtempSync(join(tmpdir(), 'assets-'));
  const art = join(d, 'art');
  for (const b of ['20261201T100000Z', 'latest', ...(opts.twoBuilds ? ['20261201T110000Z'] : [])]) {
    mkdirSync(join(art, b), { recursive: true });
    writeFileSync(join(art, b, 'build-manifest.json'), '{"build_id":"x"}');
    if (opts.sbom !== false) writeFileSync(join(art, b, 'sbom.cdx.json'), '{"bomFormat":"CycloneDX"}');
    writeFileSync(join(art, b, 'publish-manifest.json'), '{}');
  }
  const bin = join(d, 'bin');
  mkdirSync(bin);
  const log = join(d, 'gh.log');
  // Records its arguments, and what upload was given (the staging folder is removed on exit).
  writeFileSync(
    join(bin, 'gh'),
    `#!/bin/sh\necho "$*" >> ${log}\nif [ "$1 $2" = "release view" ]; then exit ${opts.releaseExists ? 0 : 1}; fi\nif [ "$2" = upload ]; then for f in "$@"; do [ -f "$f" ] && { echo "== $(basename "$f")"; cat "$f"; echo; } >> ${log}.files; done; fi\nexit 0\n`,
  );
  chmodSync(join(bin, 'gh'), 0o755);
  const r = spawnSync(join(REPO, 'scripts', 'attach-release-assets.sh'), ['v1.2.0', art], { encoding: 'utf8', env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } });
  const read = (f: string) => {
    try {
      return readFileSync(f, 'utf8');
    } catch {
      return '';
    }
  };
  return { r, gh: read(log), files: read(`${log}.files`) };
}

describe('attach-release-assets.sh', () => {
  it('creates the release if needed and uploads the SBOM, the manifests and their checksums, renamed after the tag', () => {
    const { r, gh, files } = setup();
    expect(r.status, r.stderr).toBe(0);
    expect(gh).toMatch(/^release create v1\.2\.0 --verify-tag --title v1\.2\.0 --notes AMI build 20261201T100000Z/m);
    expect(gh).toMatch(/^release upload v1\.2\.0 .*--clobber$/m);
    expect(files).toMatch(/== v1\.2\.0\.sbom\.cdx\.json\n\{"bomFormat":"CycloneDX"\}/);
    expect(files).toContain('== v1.2.0.build-manifest.json');
    expect(files).toContain('== v1.2.0.publish-manifest.json');
    expect(files).toMatch(/== v1\.2\.0\.SHA256SUMS\n[0-9a-f]{64} {2}v1\.2\.0\.build-manifest\.json/);
    // Exactly the three assets, never the sums file itself (a pipeline race once listed it, empty).
    const sums = /== v1\.2\.0\.SHA256SUMS\n([\s\S]*?)\n\n/.exec(files)?.[1] ?? '';
    expect(sums.split('\n').map((l) => l.replace(/^[0-9a-f]{64} {2}/, ''))).toEqual(['v1.2.0.build-manifest.json', 'v1.2.0.publish-manifest.json', 'v1.2.0.sbom.cdx.json']);
    const again = setup({ releaseExists: true });
    expect(again.gh).not.toMatch(/release create/);
  });

  it('refuses without an SBOM, or with two builds, and uploads nothing', () => {
    const none = setup({ sbom: false });
    expect(none.r.status).toBe(1);
    expect(none.r.stderr).toMatch(/has no sbom\.cdx\.json/);
    expect(none.gh).toBe('');
    const two = setup({ twoBuilds: true });
    expect(two.r.status).toBe(1);
    expect(two.r.stderr).toMatch(/more than one build/);
  });
});
