#!/usr/bin/env -S npx tsx
// Builds (or reuses from cache) the local Debian 13 base disk: `npm run base-disk [-- --force]`.
import { loadConfig } from './lib/config.ts';
import { ensureBaseDisk } from './lib/bake/base-disk.ts';
import { runEntry } from './lib/cli/entry.ts';

const USAGE = `usage: npm run base-disk -- [--force] [--config FILE] [--set key=value]...
Builds (or reuses from cache) the local Debian 13 base disk, a replica of Debian's official AMI.`;

runEntry(import.meta.url, { usage: USAGE, extraBooleans: ['force'] }, async (cli) => {
  const { config } = loadConfig(cli.configInput);
  const disk = await ensureBaseDisk(config, { force: cli.flags.force === true });
  process.stdout.write(`${JSON.stringify(disk, null, 2)}\n`);
});
