// check-updates.sh (every bake): fails naming each package older than the image's APT sources
// offer, held ones included. apt's answers are stand-ins on PATH, in the format `apt list
// --upgradable` prints (apt 3.0, Debian 13).
import { describe, expect, it } from 'vitest';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { REPO } from '../../scripts/lib/paths.ts';

function run(upgradable: string[], held: string[] = []): { code: number; out: string } {
  const bin = mkdtempSync(join(tmpdir(), 'apt-'));
  writeFileSync(join(bin, 'apt-get'), '#!/bin/sh\nexit 0\n');
  writeFileSync(join(bin, 'apt'), `#!/bin/sh\necho 'WARNING: apt does not have a stable CLI interface.' >&2\necho 'Listing...'\ncat <<'X'\n${upgradable.join('\n')}\nX\n`);
  writeFileSync(join(bin, 'apt-mark'), `#!/bin/sh\nprintf '%s\\n' ${held.map((h) => `'${h}'`).join(' ')}\n`);
  for (const f of ['apt-get', 'apt', 'apt-mark']) chmodSync(join(bin, f), 0o755);
  const r = spawnSync('bash', [join(REPO, 'packer/provisioners/check-updates.sh')], { env: { PATH: `${bin}:/usr/bin:/bin` }, encoding: 'utf8' });
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

describe('check-updates.sh', () => {
  it('passes when nothing is upgradable', () => {
    const r = run([]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/every installed package is at the newest version/);
  });

  it('fails naming a package held back from its security update, with installed and fixed versions', () => {
    const r = run(['libssl3t64/trixie-security 3.5.1-1+deb13u1 amd64 [upgradable from: 3.5.1-1]', 'tzdata/trixie-updates 2026c-0+deb13u1 all [upgradable from: 2026a-0+deb13u1]'], ['libssl3t64']);
    expect(r.code).toBe(1);
    expect(r.out).toContain('2 package(s) are older than the mirror offers');
    expect(r.out).toContain('libssl3t64 3.5.1-1 -> 3.5.1-1+deb13u1 (trixie-security), held');
    expect(r.out).toContain('tzdata 2026a-0+deb13u1 -> 2026c-0+deb13u1 (trixie-updates)\n');
  });
});
