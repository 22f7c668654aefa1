// The build's side of the CIS catalog: render the guest's apply script and probe script before
// Packer runs, and turn the facts the guest recorded into the compliance reports afterwards.
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from './config.ts';
import { catalog, type CatalogEntry } from '../../hardening/catalog.ts';
import { renderApply } from '../../hardening/render.ts';
import { Facts, parseProbeOutput, probeScript } from '../../hardening/facts.ts';
import { judge } from '../../hardening/runner.ts';
import { buildReport, toJUnit, toMarkdown, type Report } from '../../hardening/report.ts';

export function catalogFor(cfg: Config): CatalogEntry[] {
  return catalog({ sshPort: cfg.ssh.port, sshUser: cfg.ssh.user }, cfg.hardening);
}

/** Writes apply.sh and probe.sh (+ probe.json, its nonce) into `dir`, which Packer uploads. */
export function stageHardening(cfg: Config, dir: string): { controls: number } {
  mkdirSync(dir, { recursive: true });
  const entries = catalogFor(cfg);
  writeFileSync(join(dir, 'apply.sh'), renderApply(entries), { mode: 0o755 });
  // The in-build scan judges the image as it will ship (offline: configuration, not this boot's runtime).
  const probe = probeScript(entries.filter((c) => !c.manual && !c.disabled).flatMap((c) => c.needs), { root: '/', live: false });
  writeFileSync(join(dir, 'probe.sh'), probe.script);
  writeFileSync(join(dir, 'probe.json'), JSON.stringify({ nonce: probe.nonce, keys: probe.keys.length }));
  return { controls: entries.length };
}

export interface ReportFiles {
  json: string;
  junit: string;
  markdown: string;
}

export function writeReport(dir: string, base: string, report: Report, baseline?: Report): ReportFiles {
  mkdirSync(dir, { recursive: true });
  const files = { json: join(dir, `${base}.json`), junit: join(dir, `${base}.junit.xml`), markdown: join(dir, `${base}.md`) };
  writeFileSync(files.json, `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(files.junit, toJUnit(report));
  writeFileSync(files.markdown, toMarkdown(report, baseline));
  return files;
}

/** Judges recorded probe output (from the guest) against the catalog. */
export function judgeRecorded(cfg: Config, raw: string, nonce: string, phase: string, entries = catalogFor(cfg)): Report {
  const t0 = Date.now();
  const facts = new Facts(parseProbeOutput(raw, nonce), false);
  const results = entries.map((c) => judge(c, facts));
  return buildReport(results, { phase, target: cfg.target, mode: 'offline', probeMs: 0, totalMs: Date.now() - t0, roundTrips: 1 });
}

/** Baseline and hardened reports next to the build manifest (reports/compliance*.{json,junit.xml,md}). */
/** `baselineNonce`: the nonce of the probe that recorded the baseline, when an earlier build did (a reused hardened layer). */
export function buildReports(cfg: Config, buildDir: string, stageDir: string, baselineNonce?: string): { baseline: Report | null; hardened: Report | null } {
  const { nonce } = JSON.parse(readFileSync(join(stageDir, 'probe.json'), 'utf8')) as { nonce: string };
  const reports = join(buildDir, 'reports');
  const read = (f: string) => (existsSync(join(buildDir, f)) ? readFileSync(join(buildDir, f), 'utf8') : null);
  const rawBase = read('compliance-baseline.raw');
  const rawHard = read('compliance-hardened.raw');
  const entries = catalogFor(cfg);
  const baseline = rawBase === null ? null : judgeRecorded(cfg, rawBase, baselineNonce ?? nonce, 'baseline (before hardening)', entries);
  const hardened = rawHard === null ? null : judgeRecorded(cfg, rawHard, nonce, cfg.hardening.enabled ? 'hardened image' : 'image (hardening disabled)', entries);
  if (baseline) writeReport(reports, 'compliance-baseline', baseline);
  if (hardened) writeReport(reports, 'compliance', hardened, baseline ?? undefined);
  return { baseline, hardened };
}
