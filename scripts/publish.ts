#!/usr/bin/env -S npx tsx
// `npm run publish -- [--manifest output/<id>/build-manifest.json] [--dry-run] [--force] [--config F] [--set k=v]`
// Copies, shares and records an AMI from an aws build manifest; see README "Release pipeline".
import { writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { loadConfig } from './lib/config.ts';
import { runEntry } from './lib/cli/entry.ts';
import { info } from './lib/cli/log.ts';
import { REPO } from './lib/paths.ts';
import { publish } from './lib/release/publish.ts';
import { readJsonContract } from '../contracts/parse.ts';
import { BuildManifestSchema } from '../contracts/build-manifest.ts';
import { contractJson } from '../contracts/parse.ts';
import { PublishManifestSchema } from '../contracts/publish-manifest.ts';

const USAGE = `usage: npm run publish -- [--manifest FILE] [--dry-run] [--force] [--config FILE] [--set key=value]...
Publishes the AMI of an aws build (default manifest: <output_dir>/latest/build-manifest.json):
checks its compliance and boot-test reports, copies it to publish.regions, shares it, records the
AMI IDs in Parameter Store and writes publish-manifest.json. --dry-run prints the plan and calls no
AWS API; --force publishes despite missing or failing reports and records that it did.`;

runEntry(import.meta.url, { usage: USAGE, extraBooleans: ['dry-run', 'force'], extraStrings: ['manifest'] }, async (cli) => {
  const { config } = loadConfig(cli.configInput);
  const manifestPath = resolve(REPO, (cli.flags.manifest as string | undefined) ?? join(config.output_dir, 'latest', 'build-manifest.json'));
  const manifest = readJsonContract(BuildManifestSchema, manifestPath);
  const buildDir = dirname(manifestPath);
  const dryRun = cli.flags['dry-run'] === true;
  const out = await publish(manifest, config, buildDir, {
    dryRun,
    force: cli.flags.force === true,
    log: (l) => (dryRun ? process.stdout.write(`${l}\n`) : info(l)),
  });
  if (!out) return;
  const file = join(buildDir, 'publish-manifest.json');
  writeFileSync(file, contractJson(PublishManifestSchema, out, file));
  info(`publish manifest: ${file}${out.forced ? ' (FORCED: see forced.reasons)' : ''}`);
  process.stdout.write(`${out.next_step}\n`);
});
