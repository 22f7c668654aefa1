// Every test run gets its own temporary directory, removed when the run ends: the tests and the
// scripts they drive make a few hundred directories per run (mkdtemp in tests, mktemp in shell
// scripts, Node's os.tmpdir() in the code under test), and a CI machine that runs the suite
// repeatedly must not fill /tmp with them. os.tmpdir() and mktemp both honour TMPDIR, and the
// workers are forked after this runs, so they inherit it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function setup(): () => void {
  // Short prefix: Unix socket paths made below it must stay under 108 bytes.
  const dir = mkdtempSync(join(tmpdir(), 'vt-'));
  const previous = process.env.TMPDIR;
  process.env.TMPDIR = dir;
  return () => {
    if (previous === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = previous;
    if (process.env.KEEP_TEST_TMP === '1') {
      console.log(`test temporary files kept in ${dir}`);
      return;
    }
    rmSync(dir, { recursive: true, force: true });
  };
}
