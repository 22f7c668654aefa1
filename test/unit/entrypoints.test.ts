// Every entry script (scripts/*.ts) answers --help with its usage and exit 0 before it reads
// config or credentials or runs a tool, and refuses an unknown flag with exit 2 naming it.
// The tools it could start (packer, qemu, mmdebstrap, ssh, docker) are tripwires on PATH, and no
// AWS credentials or metadata are reachable: `clean --help` once started a real retention sweep.
import { describe, expect, it } from 'vitest';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { REPO } from '../../scripts/lib/paths.ts';

const ENTRIES = readdirSync(join(REPO, 'scripts')).filter((f) => f.endsWith('.ts'));
const TRIP = mkdtempSync(join(tmpdir(), 'tripwire-'));
for (const tool of ['packer', 'qemu-system-x86_64', 'qemu-img', 'mmdebstrap', 'ssh', 'docker', 'aws', 'curl']) {
  writeFileSync(join(TRIP, tool), `#!/bin/sh\necho "$0 $*" >> ${TRIP}/ran\nexit 99\n`);
  chmodSync(join(TRIP, tool), 0o755);
}

function run(script: string, args: string[]) {
  const env: Record<string, string> = {
    PATH: `${TRIP}:${dirname(process.execPath)}:/usr/bin:/bin`,
    HOME: mkdtempSync(join(tmpdir(), 'home-')),
    AWS_EC2_METADATA_DISABLED: 'true',
    // Any AWS call would go here and be refused at once.
    AWS_ENDPOINT_URL: 'http://127.0.0.1:9',
  };
  return spawnSync(process.execPath, ['--import', 'tsx', join(REPO, 'scripts', script), ...args], { cwd: REPO, env, encoding: 'utf8', timeout: 60_000 });
}

describe('entry scripts', () => {
  it('all end through the one entry epilogue (scripts/lib/cli/entry.ts)', () => {
    expect(ENTRIES.length).toBeGreaterThanOrEqual(10);
    for (const f of ENTRIES) expect(readFileSync(join(REPO, 'scripts', f), 'utf8'), f).toMatch(/runEntry\(import\.meta\.url, \{ usage/);
  });

  for (const script of ENTRIES) {
    it(`${script} --help prints its usage, exits 0 and acts on nothing`, () => {
      const r = run(script, ['--help']);
      expect(r.stderr, script).toBe('');
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(/^usage: npm run/);
      expect(existsSync(join(TRIP, 'ran')) ? readFileSync(join(TRIP, 'ran'), 'utf8') : '').toBe('');
    }, 60_000);
  }

  it('shows no AWS SDK Node-version notice, and pins the SDK to exact versions that support Node 20', () => {
    // clean --dry-run makes real SDK clients and calls: with no credentials it prints its plan.
    const r = run('clean.ts', ['--dry-run']);
    expect(r.stderr).not.toMatch(/NodeVersionSupportWarning|upgrade to node/);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/retention plan for syntropy-agent-debian13 in us-east-1/);
    expect(r.stdout).toMatch(/no AWS credentials: nothing was listed/);
    const deps = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }).dependencies;
    const sdk = Object.entries(deps).filter(([k]) => k.startsWith('@aws-sdk/'));
    expect(sdk.length).toBeGreaterThan(0);
    for (const [k, v] of sdk) expect(v, k).toMatch(/^\d+\.\d+\.\d+$/);
  }, 60_000);

  it('refuses an unknown flag with exit 2, naming it (clean and publish change AWS state)', () => {
    for (const script of ['clean.ts', 'publish.ts']) {
      const r = run(script, ['--dryrun']);
      expect(r.status, script).toBe(2);
      expect(r.stderr).toMatch(/Unknown option '--dryrun'/);
      expect(r.stderr).toMatch(/--dry-run/);
    }
  }, 60_000);
});
