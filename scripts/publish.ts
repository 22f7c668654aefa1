#!/usr/bin/env -S npx tsx
// `npm run publish -- [--manifest output/<id>/build-manifest.json] [--dry-run] [--force] [--config F] [--set k=v]`
// Copies, shares and records an AMI from an aws build manifest; see README "Release pipeline".
import { writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { loadConfig } from './lib/config.ts';
import { runEntry } from './lib/cli/entry.ts';
import { info } from './lib/cli/log.ts';
import { REPO } from './lib/paths.ts';
import { publish, validateMarketplace } from './lib/release/publish.ts';
import { readJsonContract } from '../contracts/parse.ts';
import { BuildManifestSchema } from '../contracts/build-manifest.ts';
import { contractJson } from '../contracts/parse.ts';
import { PublishManifestSchema } from '../contracts/publish-manifest.ts';

const USAGE = `usage: npm run publish -- [--manifest FILE] [--dry-run | --validate] [--force] [--resubmit] [--config FILE] [--set key=value]...
Publishes the AMI of an aws build (default manifest: <output_dir>/latest/build-manifest.json):
checks its compliance and boot-test reports, Amazon Inspector's findings and the Marketplace access
role, copies it to publish.regions, records the AMI IDs in Parameter Store, submits the new version
to AWS Marketplace (publish.marketplace.product_id) and waits for it, and writes publish-manifest.json.
  --dry-run   print the plan and the Marketplace change set; calls no AWS API
  --validate  check the access role and send the change set with Intent VALIDATE for the us-east-1
              AMI; changes nothing
  --force     publish despite missing or failing reports; recorded in the publish manifest
  --resubmit  a new Marketplace request even if the same details were sent before (after a SERVER_FAULT)`;

runEntry(import.meta.url, { usage: USAGE, extraBooleans: ['dry-run', 'validate', 'force', 'resubmit'], extraStrings: ['manifest'] }, async (cli) => {
  const { config } = loadConfig(cli.configInput);
  const manifestPath = resolve(REPO, (cli.flags.manifest as string | undefined) ?? join(config.output_dir, 'latest', 'build-manifest.json'));
  const manifest = readJsonContract(BuildManifestSchema, manifestPath);
  const buildDir = dirname(manifestPath);
  const dryRun = cli.flags['dry-run'] === true;
  if (cli.flags.validate === true) {
    if (dryRun) throw new Error('--validate and --dry-run exclude each other: --dry-run calls no AWS API, --validate asks Marketplace');
    const v = await validateMarketplace(manifest, config, { log: info });
    process.stdout.write(`Marketplace change set ${v.change_set_id} (VALIDATE): ${v.status}\n`);
    if (v.status !== 'SUCCEEDED') throw new Error(`Marketplace would not take this version: ${v.errors.join('; ') || v.status}`);
    return;
  }
  const out = await publish(manifest, config, buildDir, {
    dryRun,
    force: cli.flags.force === true,
    resubmit: cli.flags.resubmit === true ? new Date().toISOString() : undefined,
    log: (l) => (dryRun ? process.stdout.write(`${l}\n`) : info(l)),
  });
  if (!out) return;
  const file = join(buildDir, 'publish-manifest.json');
  writeFileSync(file, contractJson(PublishManifestSchema, out, file));
  info(`publish manifest: ${file}${out.forced ? ' (FORCED: see forced.reasons)' : ''}`);
  process.stdout.write(`${out.next_step}\n`);
  // Written first, so a rerun and the release workflow see what happened; then the exit status.
  if (out.marketplace && out.marketplace.status !== 'SUCCEEDED') throw new Error(out.next_step);
});
