#!/usr/bin/env -S npx tsx
// `npm run rehearse [-- --work DIR] [--config F] [--set k=v]`: the aws release (build, boot-test,
// publish, clean) end to end against the AWS emulator on loopback, with injected failures; see
// README "Rehearse the aws release". Changes nothing outside this machine.
import { join, resolve } from 'node:path';
import { loadConfig } from './lib/config.ts';
import { runEntry } from './lib/cli/entry.ts';
import { info } from './lib/cli/log.ts';
import { REPO } from './lib/paths.ts';
import { rehearse } from './lib/rehearsal/run.ts';

const USAGE = `usage: npm run rehearse -- [--work DIR] [--config FILE] [--set key=value]...
Runs the aws release against moto (the AWS emulator, from Debian 13's python3-moto, on 127.0.0.1):
  build      npm run build -- --target aws: Packer amazon-ebs against the emulator; its SSH lands on
             a local guest booted from the base disk for the emulator's instance
  boot-test  npm run boot-test -- --target aws: launch, metadata options, waits, always-terminate
             (also on Ctrl-C); SSM Run Command parts stop at the emulator's gap
  publish    gate, Marketplace checks, copies to two regions, launch permissions, Parameter Store;
             twice, nothing duplicated
  clean      retention; twice, the second finds nothing
with failures injected into AWS calls and the emulator's inventory checked after each.
Writes DIR/rehearsal.json (default DIR: output/rehearsal/<time>); exit 1 if any check fails.
No AWS account, credentials or network beyond this machine and Debian's mirror is used.`;

runEntry(import.meta.url, { usage: USAGE, extraStrings: ['work'] }, async (cli) => {
  const { config } = loadConfig(cli.configInput);
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  const work = resolve(REPO, (cli.flags.work as string | undefined) ?? join(config.output_dir, 'rehearsal', stamp));
  const report = await rehearse(config, { work, log: info });
  const failed = report.checks.filter((c) => !c.ok);
  for (const s of report.steps) process.stdout.write(`${s.step.padEnd(10)} ${s.seconds.toFixed(1).padStart(7)} s\n`);
  process.stdout.write(`${report.checks.length - failed.length}/${report.checks.length} checks passed; report ${join(work, 'rehearsal.json')}\n`);
  for (const g of report.gaps) process.stdout.write(`emulator gap: ${g}\n`);
  for (const f of failed) process.stdout.write(`FAILED [${f.step}] ${f.name}: ${f.detail}\n`);
  if (!report.passed) process.exitCode = 1;
});
