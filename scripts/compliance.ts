#!/usr/bin/env -S npx tsx
// `npm run compliance -- (--root DIR | --ssh USER@HOST[:PORT] --key FILE | --ssm INSTANCE-ID --region R)
//                        [--live] [--out DIR] [--phase NAME] [--config FILE] [--set key=value]...`
// Runs the CIS catalog's checks (and the Marketplace checks) against a host in one probe round
// trip and writes reports/compliance.{json,junit.xml,md}. Exit 1 when any check FAILs.
import { join, resolve } from 'node:path';
import { SSMClient } from '@aws-sdk/client-ssm';
import { ConfigError, loadConfig } from './lib/config.ts';
import { runEntry } from './lib/cli/entry.ts';
import { catalogFor, writeReport } from './lib/compliance.ts';
import { LocalRootHost, SshHost, SsmHost, type Host } from '../hardening/host.ts';
import { runChecks } from '../hardening/runner.ts';
import { buildReport, evidenceLines } from '../hardening/report.ts';

export function hostFromFlags(flags: Record<string, string | boolean | undefined>, region: string): { host: Host; live: boolean } {
  const chosen = ['root', 'ssh', 'ssm'].filter((k) => typeof flags[k] === 'string');
  if (chosen.length !== 1) throw new ConfigError('name exactly one host: --root DIR, --ssh USER@HOST[:PORT] (with --key FILE) or --ssm INSTANCE-ID');
  if (typeof flags.root === 'string') return { host: new LocalRootHost(resolve(flags.root)), live: flags.live === true };
  if (typeof flags.ssh === 'string') {
    const m = /^([a-z_][a-z0-9_-]*)@([\w.-]+)(?::(\d+))?$/.exec(flags.ssh);
    if (!m) throw new ConfigError(`--ssh ${JSON.stringify(flags.ssh)} is not USER@HOST[:PORT]`);
    if (typeof flags.key !== 'string') throw new ConfigError('--ssh needs --key FILE (the private key of the login user)');
    return { host: new SshHost({ user: m[1]!, host: m[2]!, port: Number(m[3] ?? 22), keyFile: flags.key }), live: true };
  }
  const id = String(flags.ssm);
  if (!/^i-[0-9a-f]{8,17}$/.test(id)) throw new ConfigError(`--ssm ${JSON.stringify(id)} is not an EC2 instance ID (i-...)`);
  return { host: new SsmHost(new SSMClient({ region }), id), live: true };
}

const USAGE = `usage: npm run compliance -- (--root DIR [--live] | --ssh USER@HOST[:PORT] --key FILE | --ssm INSTANCE-ID --region R)
                          [--out DIR] [--phase NAME] [--config FILE] [--set key=value]...
Runs the CIS catalog's checks, the Marketplace checks and the defense-in-depth layer against one host;
prints each control's result and evidence (stderr) and a JSON summary (stdout); exit 1 when any fails.`;

runEntry(import.meta.url, { usage: USAGE, extraBooleans: ['live'], extraStrings: ['root', 'ssh', 'key', 'ssm', 'out', 'phase'] }, async (cli) => {
  const { config } = loadConfig(cli.configInput);
  const { host, live } = hostFromFlags(cli.flags, config.aws.region);
  const entries = catalogFor(config);
  const outcome = await runChecks(host, entries, { live, log: (l) => process.stderr.write(`${l}\n`) });
  const report = buildReport(outcome.results, { phase: String(cli.flags.phase ?? 'check'), target: host.name, mode: live ? 'live' : 'offline', probeMs: outcome.probeMs, totalMs: outcome.totalMs, roundTrips: outcome.roundTrips });
  const files = writeReport(resolve(String(cli.flags.out ?? join('output', 'reports'))), 'compliance', report);
  // Beside each control, what a reader can verify: the evidence (file:line where the check knows
  // it) and, for a deviation, where hardening/DEVIATIONS.md explains it. On stderr: stdout is JSON.
  process.stderr.write(`${evidenceLines(report.results).join('\n')}\n`);
  const s = report.summary;
  process.stdout.write(
    `${JSON.stringify({ passed: report.passed, score: s.score, automated_l1_passing: s.automated_l1_passing, automated_l1: s.automated_l1, fail: s.totals.FAIL, marketplace_fail: s.marketplace.FAIL, total_ms: outcome.totalMs, reports: files }, null, 2)}\n`,
  );
  if (!report.passed) process.exitCode = 1;
});
