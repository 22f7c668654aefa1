// A copy of the image's ufw files (test/fixtures/ufw, real ufw's output) under a temporary
// directory, with ufw's settings as a test needs them.
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import type { UfwLocations } from '../../firstboot/src/ufw-rules.ts';

const FIX = join(import.meta.dirname, '../fixtures/ufw');

export const ufwFixture = (name: string): string => readFileSync(join(FIX, name), 'utf8');

/** A copy of the image's ufw files under a temporary directory. */
export function ufwTree(opts: { ipv6?: string; enabled?: string; procIpv6?: boolean } = {}): UfwLocations {
  const root = mkdtempSync(join(tmpdir(), 'ufw-tree-'));
  const dir = join(root, 'etc/ufw');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'user.rules'), ufwFixture('image.user.rules'), { mode: 0o640 });
  writeFileSync(join(dir, 'user6.rules'), ufwFixture('image.user6.rules'), { mode: 0o640 });
  writeFileSync(join(dir, 'ufw.conf'), `# /etc/ufw/ufw.conf\n#\n\n# Set to yes to start on boot.\nENABLED=${opts.enabled ?? 'yes'}\n\nLOGLEVEL=low\n`);
  writeFileSync(join(root, 'default-ufw'), `# /etc/default/ufw\n#\n\n# Set to yes to apply rules to support IPv6\nIPV6=${opts.ipv6 ?? 'yes'}\n\nDEFAULT_INPUT_POLICY="DROP"\n`);
  const procIpv6 = join(root, 'proc-ipv6');
  if (opts.procIpv6 ?? true) mkdirSync(procIpv6);
  return { dir, defaults: join(root, 'default-ufw'), procIpv6 };
}
