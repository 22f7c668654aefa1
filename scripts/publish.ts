#!/usr/bin/env -S npx tsx
// `npm run publish -- [--manifest output/<id>/build-manifest.json] [--dry-run] [--force] [--config F] [--set k=v]`
// Copies, shares and records an AMI from an aws build manifest; see README "Release pipeline".
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { loadConfig } from './lib/config.ts';
import { parseCli } from './lib/cli.ts';
import { info } from './lib/log.ts';
import { REPO } from './lib/paths.ts';
import { publish, type BuildManifestLike } from './lib/publish.ts';

async function main(): Promise<void> {
  const cli = parseCli(process.argv.slice(2), { extraBooleans: ['dry-run', 'force'], extraStrings: ['manifest'] });
  const { config } = loadConfig(cli.configInput);
  const manifestPath = resolve(REPO, (cli.flags.manifest as string | undefined) ?? join(config.output_dir, 'latest', 'build-manifest.json'));
  if (!existsSync(manifestPath)) throw new Error(`build manifest ${manifestPath} does not exist (pass --manifest FILE)`);
  let manifest: BuildManifestLike;
  try {
    manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as BuildManifestLike;
  } catch {
    throw new Error(`build manifest ${manifestPath} is not valid JSON`);
  }
  const buildDir = dirname(manifestPath);
  const force = cli.flags.force === true;
  const out = await publish(manifest, config, buildDir, {
    dryRun: cli.flags['dry-run'] === true,
    force,
    log: (l) => (cli.flags['dry-run'] ? process.stdout.write(`${l}\n`) : info(l)),
  });
  if (!out) return;
  const file = join(buildDir, 'publish-manifest.json');
  writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
  info(`publish manifest: ${file}${out.forced ? ' (FORCED: see forced.reasons)' : ''}`);
  process.stdout.write(`${out.next_step}\n`);
}

main().catch((e: Error) => {
  process.stderr.write(`error: ${e.message}\n`);
  process.exit(1);
});
