// Static checks that are part of the test command: every shell script passes shellcheck,
// every script under packer/provisioners is strict, and the TypeScript is `strict`-clean.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { REPO } from '../../scripts/lib/paths.ts';

/** Tracked and untracked-but-not-ignored files whose first line is a bash/sh shebang. */
function shellScripts(): string[] {
  const r = spawnSync('git', ['ls-files', '--cached', '--others', '--exclude-standard'], { cwd: REPO, encoding: 'utf8' });
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .filter((f) => {
      try {
        return /^#!.*\b(bash|sh)\b/.test(readFileSync(join(REPO, f), 'utf8').split('\n', 1)[0]!);
      } catch {
        return false;
      }
    });
}

describe('lint', () => {
  const scripts = shellScripts();

  it('finds the project shell scripts', () => {
    expect(scripts).toContain('packer/provisioners/validate.sh');
    expect(scripts).toContain('.ci/run');
    expect(scripts).toContain('images/agent-double/syntropy-agent-test-double');
  });

  it('shellcheck passes on every shell script', () => {
    const r = spawnSync('shellcheck', ['--severity=style', ...scripts], { cwd: REPO, encoding: 'utf8' });
    expect(r.error, 'shellcheck is not installed (npm run setup)').toBeUndefined();
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('every script is strict (set -euo pipefail) and says what it does and why', () => {
    for (const f of scripts) {
      const head = readFileSync(join(REPO, f), 'utf8').split('\n').slice(0, 8).join('\n');
      expect(head, f).toMatch(/^set -euo pipefail$/m);
      if (f.startsWith('packer/provisioners/')) expect(head, f).toMatch(/^# Why: /m);
    }
  });

  it('TypeScript typechecks under strict', () => {
    const tsconfig = JSON.parse(readFileSync(join(REPO, 'tsconfig.json'), 'utf8')) as { compilerOptions: { strict: boolean } };
    expect(tsconfig.compilerOptions.strict).toBe(true);
    const r = spawnSync(process.execPath, [join(REPO, 'node_modules/typescript/bin/tsc'), '--noEmit', '-p', REPO], { encoding: 'utf8' });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  }, 120_000);
});
