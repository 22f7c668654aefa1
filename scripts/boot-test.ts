#!/usr/bin/env -S npx tsx
// `npm run boot-test [-- --target local|aws] [--manifest FILE] [--scenario a,b] [--parallel N]`
// Launches the image a build produced and runs the boot scenarios (dialogue, user-data, reboot,
// interrupted, compliance), each on a fresh overlay (local) or instance (aws). Writes
// reports/boot-test.{json,junit.xml,md} next to the build manifest; exit 1 if any scenario fails.
import { existsSync, realpathSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { ConfigError, type Config } from './lib/config.ts';
import { runEntry } from './lib/cli/entry.ts';
import { readJsonContract } from '../contracts/parse.ts';
import { BuildManifestSchema, localImage, type BuildManifest } from '../contracts/build-manifest.ts';
import { info } from './lib/cli/log.ts';
import { REPO } from './lib/paths.ts';
import { catalogFor, writeReport } from './lib/compliance.ts';
import { chooseAccelerator } from './lib/guest/qemu.ts';
import { ensureBaseDisk } from './lib/bake/base-disk.ts';
import { LOCAL_SCENARIOS, runScenario } from './lib/boottest/local.ts';
import { runPool, type ScenarioResult } from './lib/boottest/common.ts';
import { bootReport, writeBootReport } from './lib/boottest/report.ts';
import { AWS_SCENARIOS, planAwsBootTest, runAwsBootTest } from './lib/boottest/aws.ts';

const USAGE = `usage: npm run boot-test -- [--target local|aws] [--manifest FILE] [--scenario NAME[,NAME]] [--parallel N]
                          [--accel auto|kvm|tcg] [--dry-run]
Scenarios: ${Object.keys(LOCAL_SCENARIOS).join(', ')} (default: all). Default manifest: output/latest/build-manifest.json.
--dry-run (aws) prints the instances it would launch and launches nothing.`;

/** The build manifest, parsed with its contract; the config recorded in it is the image's own. */
export function readManifest(path: string): { manifest: BuildManifest; cfg: Config; dir: string } {
  if (!existsSync(path)) throw new ConfigError(`no build manifest at ${path}: run npm run build first, or pass --manifest FILE`);
  const manifest = readJsonContract(BuildManifestSchema, path);
  return { manifest, cfg: manifest.config, dir: dirname(realpathSync(path)) };
}

export function selectScenarios(flag: string | undefined, known: string[]): string[] {
  if (!flag) return known;
  const want = flag.split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = want.filter((s) => !known.includes(s));
  if (unknown.length) throw new ConfigError(`unknown scenario ${unknown.join(', ')} (known: ${known.join(', ')})`);
  return want;
}

runEntry(import.meta.url, { usage: USAGE, extraBooleans: ['dry-run'], extraStrings: ['manifest', 'scenario', 'parallel'] }, async (cli) => {
  if (cli.configInput.configFile) throw new ConfigError('boot-test uses the config recorded in the build manifest (the image was built with it); --config is not accepted');
  const manifestPath = resolve(String(cli.flags.manifest ?? join(REPO, 'output', 'latest', 'build-manifest.json')));
  const { manifest, cfg: built, dir } = readManifest(manifestPath);
  const target = (cli.configInput.overrides ?? []).map((o) => o.target).filter(Boolean).pop() as 'local' | 'aws' | undefined ?? manifest.target;
  if (target !== manifest.target) throw new ConfigError(`--target ${target} does not match the ${manifest.target} build in ${manifestPath}`);
  const parallel = Number(cli.flags.parallel ?? (target === 'aws' ? 5 : 2));
  if (!Number.isInteger(parallel) || parallel < 1 || parallel > 8) throw new ConfigError('--parallel must be an integer from 1 to 8');
  const log = (l: string) => info(l);
  let results: ScenarioResult[];
  let requested: string[];
  if (target === 'local') {
    requested = selectScenarios(cli.flags.scenario as string | undefined, Object.keys(LOCAL_SCENARIOS));
    const image = localImage(manifest);
    if (!image || !existsSync(image)) throw new ConfigError(`the image ${image ?? '(none)'} named by ${manifestPath} is missing`);
    const accelSetting = (cli.configInput.overrides ?? []).map((o) => (o.local as { accelerator?: string } | undefined)?.accelerator).filter(Boolean).pop() ?? built.local.accelerator;
    const base = await ensureBaseDisk(built);
    const accel = await chooseAccelerator(accelSetting as 'auto', base.vmlinuz, base.kernel);
    info(`boot-test ${manifest.build_id}: ${requested.join(', ')} on ${accel.accel} (${accel.reason}), ${parallel} at a time`);
    const ctx = { image, accel: accel.accel, catalog: catalogFor(built), sshUser: built.ssh.user, log, cpus: 1, memoryMib: 1024, sbom: manifest.sbom ? join(dir, manifest.sbom.file) : null };
    results = await runPool(requested, parallel, (name) => runScenario(name, LOCAL_SCENARIOS[name]!, ctx));
  } else {
    requested = selectScenarios(cli.flags.scenario as string | undefined, Object.keys(AWS_SCENARIOS));
    if (cli.flags['dry-run']) {
      process.stdout.write(`${planAwsBootTest(built, manifest, requested).join('\n')}\n`);
      return;
    }
    results = await runAwsBootTest(built, manifest, requested, { log, parallel });
  }
  const report = bootReport(manifest.build_id, target, results, requested);
  const files = writeBootReport(join(dir, 'reports'), report);
  const compliance = results.find((r) => r.compliance)?.compliance;
  if (compliance) writeReport(join(dir, 'reports'), 'compliance-boot', compliance);
  for (const r of results) info(`${r.passed ? 'PASS' : 'FAIL'} ${r.name} (${(r.ms / 1000).toFixed(0)}s)${r.error ? `: ${r.error.split('\n')[0]}` : ''}`);
  process.stdout.write(`${JSON.stringify({ passed: report.passed, scenarios: report.scenarios.map((s) => ({ name: s.name, passed: s.passed, figures: s.figures })), reports: files }, null, 2)}\n`);
  if (!report.passed) process.exitCode = 1;
});
