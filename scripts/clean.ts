#!/usr/bin/env -S npx tsx
// `npm run clean -- [--dry-run] [--config F] [--set k=v]`: retention of AMIs and snapshots, and
// termination of instances that builds and boot tests left behind (see config `retention`).
import { loadConfig } from './lib/config.ts';
import { parseCli } from './lib/cli.ts';
import { clean } from './lib/retention.ts';

async function main(): Promise<void> {
  const cli = parseCli(process.argv.slice(2), { extraBooleans: ['dry-run'] });
  const { config } = loadConfig(cli.configInput);
  const dryRun = cli.flags['dry-run'] === true;
  const r = await clean(config, { dryRun, log: (l) => process.stdout.write(`${l}\n`) });
  process.stdout.write(`${dryRun ? 'would remove' : 'removed'} ${r.images.length} image(s), ${dryRun ? 'would terminate' : 'terminated'} ${r.instances.length} instance(s)\n`);
}

main().catch((e: Error) => {
  process.stderr.write(`error: ${e.message}\n`);
  process.exit(1);
});
