// Static checks that are part of the test command: every shell script passes shellcheck,
// every script under packer/provisioners is strict, and the TypeScript is `strict`-clean.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { REPO } from '../../scripts/lib/paths.ts';

const firstLines = (f: string, n: number) => readFileSync(join(REPO, f), 'utf8').split('\n').slice(0, n).join('\n');

/** Shell files meant to be sourced (login hooks): they declare their shell to shellcheck instead of a shebang. */
const isSourced = (f: string) => !firstLines(f, 1).startsWith('#!') && /^# shellcheck shell=(sh|bash)$/m.test(firstLines(f, 3));

/** Tracked and untracked-but-not-ignored files that are shell: a bash/sh shebang, or sourced shell. */
function shellScripts(): string[] {
  const r = spawnSync('git', ['ls-files', '--cached', '--others', '--exclude-standard'], { cwd: REPO, encoding: 'utf8' });
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .filter((f) => {
      try {
        return /^#!.*\b(bash|sh)\b/.test(firstLines(f, 1)) || isSourced(f);
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
    expect(scripts).toContain('firstboot/bin/profile.sh');
  });

  it('shellcheck passes on every shell script', () => {
    const r = spawnSync('shellcheck', ['--severity=style', ...scripts], { cwd: REPO, encoding: 'utf8' });
    expect(r.error, 'shellcheck is not installed (npm run setup)').toBeUndefined();
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('every script is strict (set -euo pipefail) and says what it does and why', () => {
    // A sourced login hook must not set -e: it would end the user's shell on any error.
    for (const f of scripts.filter((x) => !isSourced(x))) {
      const head = firstLines(f, 8);
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

describe('npm install scripts', () => {
  it('are run only for dependencies package.json approves (allowScripts; npm 12 blocks the others)', () => {
    const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { allowScripts?: Record<string, boolean> };
    const lock = JSON.parse(readFileSync(join(REPO, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version?: string; hasInstallScript?: boolean }> };
    const withScripts = Object.entries(lock.packages)
      .filter(([path, p]) => path !== '' && p.hasInstallScript)
      .map(([path, p]) => ({ name: path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length), version: p.version }));
    expect(withScripts.length).toBeGreaterThan(0);
    const allowed = pkg.allowScripts ?? {};
    for (const d of withScripts) expect(allowed[d.name] === true || allowed[`${d.name}@${d.version}`] === true, `${d.name}@${d.version} has an unreviewed install script`).toBe(true);
    // Nothing approved that the lock file does not install with a script.
    for (const key of Object.keys(allowed)) expect(withScripts.some((d) => key === d.name || key === `${d.name}@${d.version}`), `allowScripts ${key} matches nothing`).toBe(true);
  });
});
