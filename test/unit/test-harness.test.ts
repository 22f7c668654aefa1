import { describe, expect, it } from 'vitest';
import { tmpdir } from 'node:os';
import { execFileSync } from 'node:child_process';

// test/global-setup.ts gives each run its own TMPDIR and removes it afterwards; without it every
// `npm test` leaves a few hundred directories in /tmp.
describe('test harness', () => {
  it('runs every test under a per-run temporary directory', () => {
    expect(tmpdir()).toMatch(/\/vt-[A-Za-z0-9]{6}$/);
    expect(process.env.TMPDIR).toBe(tmpdir());
    // Shell scripts the tests drive use mktemp, which reads the same variable.
    const made = execFileSync('mktemp', ['-d'], { encoding: 'utf8' }).trim();
    expect(made.startsWith(`${tmpdir()}/`)).toBe(true);
  });
});
