#!/usr/bin/env -S npx tsx
// `npm run clean -- [--dry-run] [--config F] [--set k=v]`: retention of AMIs and snapshots, and
// termination of instances that builds and boot tests left behind (see config `retention`).
import { loadConfig } from './lib/config.ts';
import { runEntry } from './lib/cli/entry.ts';
import { clean } from './lib/release/retention.ts';

const USAGE = `usage: npm run clean -- [--dry-run] [--config FILE] [--set key=value]... [--region R]
Retention in every published region: keeps the newest retention.keep_newest images of this product,
deregisters older ones past retention.max_age_days (and deletes their snapshots), and terminates
instances that builds and boot tests tagged and left behind (older than retention.instance_max_age_hours). --dry-run lists what it would do and changes nothing.`;

runEntry(import.meta.url, { usage: USAGE, extraBooleans: ['dry-run'] }, async (cli) => {
  const { config } = loadConfig(cli.configInput);
  const dryRun = cli.flags['dry-run'] === true;
  const r = await clean(config, { dryRun, log: (l) => process.stdout.write(`${l}\n`) });
  process.stdout.write(
    `${dryRun ? 'would remove' : 'removed'} ${r.images.length} image(s) and ${r.parameters.length} version parameter(s), ${dryRun ? 'would terminate' : 'terminated'} ${r.instances.length} instance(s)\n`,
  );
});
