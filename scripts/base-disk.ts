#!/usr/bin/env -S npx tsx
// Builds (or reuses from cache) the local Debian 13 base disk: `npm run base-disk [-- --force]`.
import { loadConfig } from './lib/config.ts';
import { ensureBaseDisk } from './lib/basedisk.ts';
import { parseCli } from './lib/cli.ts';
import { fail } from './lib/log.ts';

try {
  const cli = parseCli(process.argv.slice(2), { extraBooleans: ['force'] });
  const { config } = loadConfig(cli.configInput);
  const disk = await ensureBaseDisk(config, { force: cli.flags.force === true });
  process.stdout.write(`${JSON.stringify(disk, null, 2)}\n`);
} catch (e) {
  fail((e as Error).message);
}
