// Compliance reports: JSON (per control: id, title, level, result, evidence), JUnit XML for CI and
// a Markdown summary with per-section counts and a score.
import { deviationLinks } from './deviations.ts';
import { BENCHMARK, type ControlResult, type Status } from './types.ts';
import { ComplianceReportSchema, type ComplianceReport, type ComplianceSummary, type Counts } from '../contracts/compliance-report.ts';
import { parseContract } from '../contracts/parse.ts';

// The report's shape is its contract (contracts/compliance-report.ts); reports are built through it.
export type Report = ComplianceReport;
export type { ComplianceSummary as Summary, Counts } from '../contracts/compliance-report.ts';

const empty = (): Counts => ({ PASS: 0, FAIL: 0, SKIP: 0, EXCEPTION: 0, ERROR: 0, manual: 0 });

export function summarize(results: ControlResult[]): ComplianceSummary {
  const sections: Record<string, Counts> = {};
  const totals = empty();
  const marketplace = empty();
  let auto = 0;
  let autoPass = 0;
  for (const r of results) {
    const bucket = r.section === 'MP' ? marketplace : (sections[r.section] ??= empty());
    bucket[r.result] += 1;
    if (r.manual) bucket.manual += 1;
    if (r.section === 'MP') continue;
    totals[r.result] += 1;
    if (r.manual) totals.manual += 1;
    // The benchmark's score counts benchmark recommendations only (not the DD layer).
    if (r.level === 'l1_server' && r.automated && r.section !== 'DD') {
      auto += 1;
      if (r.result === 'PASS') autoPass += 1;
    }
  }
  return { automated_l1: auto, automated_l1_passing: autoPass, score: auto ? Math.round((autoPass / auto) * 1000) / 10 : 0, sections, totals, marketplace };
}

export function buildReport(raw: ControlResult[], meta: { phase: string; target: string; mode: 'offline' | 'live'; probeMs: number; totalMs: number; roundTrips: number }): Report {
  const links = deviationLinks();
  const results = raw.map((r) => (links.has(r.id) ? { ...r, deviation: links.get(r.id)! } : r));
  const summary = summarize(results);
  return parseContract(ComplianceReportSchema, {
    schema: 1,
    benchmark: BENCHMARK,
    phase: meta.phase,
    target: meta.target,
    mode: meta.mode,
    generated_at: new Date().toISOString(),
    timing: { probe_ms: meta.probeMs, total_ms: meta.totalMs, round_trips: meta.roundTrips },
    summary,
    passed: summary.totals.FAIL === 0 && summary.totals.ERROR === 0 && summary.marketplace.FAIL === 0 && summary.marketplace.ERROR === 0,
    results,
  }, `compliance report (${meta.phase})`);
}

/** Escapes text for XML attributes and content (drops characters XML 1.0 forbids). */
export const xml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '');

export function toJUnit(r: Report): string {
  const bySection = new Map<string, ControlResult[]>();
  for (const x of r.results) bySection.set(x.section, [...(bySection.get(x.section) ?? []), x]);
  const suites = [...bySection.entries()].map(([section, list]) => {
    const failures = list.filter((x) => x.result === 'FAIL').length;
    const errors = list.filter((x) => x.result === 'ERROR').length;
    const skipped = list.filter((x) => x.result === 'SKIP' || x.result === 'EXCEPTION').length;
    const cases = list
      .map((x) => {
        const name = xml(`${x.id} ${x.title}`);
        const body =
          x.result === 'FAIL'
            ? `<failure message="${xml(x.evidence)}"/>`
            : x.result === 'ERROR'
              ? `<error message="${xml(x.evidence)}"/>`
              : x.result === 'SKIP' || x.result === 'EXCEPTION'
                ? `<skipped message="${xml(`${x.result}: ${x.exception ? `${x.exception.name}: ${x.exception.reason}` : x.evidence}`)}"/>`
                : `<system-out>${xml(x.evidence)}</system-out>`;
        return `    <testcase classname="cis.section${section}" name="${name}">${body}</testcase>`;
      })
      .join('\n');
    return `  <testsuite name="${xml(section === 'MP' ? 'Marketplace policy' : `CIS section ${section}`)}" tests="${list.length}" failures="${failures}" errors="${errors}" skipped="${skipped}">\n${cases}\n  </testsuite>`;
  });
  return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="${xml(`${BENCHMARK.name} ${BENCHMARK.version} ${r.phase}`)}">\n${suites.join('\n')}\n</testsuites>\n`;
}

const SECTION_NAMES: Record<string, string> = {
  '1': 'Initial Setup',
  '2': 'Services',
  '3': 'Network',
  '4': 'Host Based Firewall',
  '5': 'Access Control',
  '6': 'Logging and Auditing',
  '7': 'System Maintenance',
  MP: 'AWS Marketplace policy',
  DD: 'Beyond Level 1: defense in depth (DD-*, not scored)',
};

export function toMarkdown(r: Report, baseline?: Report): string {
  const s = r.summary;
  const lines = [
    `# Compliance: ${BENCHMARK.name} ${BENCHMARK.version}, ${BENCHMARK.profile}`,
    '',
    `Phase **${r.phase}**, target ${r.target}, ${r.mode} scan, ${r.generated_at}. Probe ${r.timing.probe_ms} ms in ${r.timing.round_trips} round trip(s), total ${r.timing.total_ms} ms.`,
    '',
    `**Score: ${s.automated_l1_passing}/${s.automated_l1} automated Level 1 Server recommendations passing (${s.score}%)**${baseline ? `; baseline before hardening: ${baseline.summary.automated_l1_passing}/${baseline.summary.automated_l1} (${baseline.summary.score}%)` : ''}. Result: ${r.passed ? 'PASSED (no FAIL, no ERROR)' : 'FAILED'}.`,
    '',
    '| Section | PASS | FAIL | EXCEPTION | SKIP (manual) | ERROR |',
    '|---|---:|---:|---:|---:|---:|',
  ];
  const row = (k: string, c: Counts) => `| ${k === 'MP' ? '' : `${k} `}${SECTION_NAMES[k] ?? ''} | ${c.PASS} | ${c.FAIL} | ${c.EXCEPTION} | ${c.SKIP} (${c.manual}) | ${c.ERROR} |`;
  for (const k of Object.keys(s.sections).sort()) lines.push(row(k, s.sections[k]!));
  lines.push(`| **Total** | ${s.totals.PASS} | ${s.totals.FAIL} | ${s.totals.EXCEPTION} | ${s.totals.SKIP} (${s.totals.manual}) | ${s.totals.ERROR} |`);
  lines.push(row('MP', s.marketplace));
  const pick = (st: Status[]) => r.results.filter((x) => st.includes(x.result));
  const fails = pick(['FAIL', 'ERROR']);
  if (fails.length) lines.push('', '## Failing', '', ...fails.map((x) => `- **${x.id}** ${x.title}: ${x.result} — ${x.evidence}`));
  const exc = pick(['EXCEPTION']);
  if (exc.length) lines.push('', '## Named exceptions', '', ...exc.map((x) => `- **${x.id}** ${x.title} — \`${x.exception?.name}\`: ${x.exception?.reason} (observed: ${x.evidence})${x.deviation ? ` — [why](${x.deviation})` : ''}`));
  const chosen = r.results.filter((x) => x.deviation && x.result !== 'EXCEPTION');
  if (chosen.length) lines.push('', '## Deliberate choices some readers fail', '', ...chosen.map((x) => `- **${x.id}** ${x.title}: ${x.result} — ${x.evidence} — [why](${x.deviation})`));
  const man = r.results.filter((x) => x.manual);
  if (man.length) lines.push('', '## Manual (operator action)', '', ...man.map((x) => `- **${x.id}** ${x.title}: ${x.manual}`));
  return `${lines.join('\n')}\n`;
}

/** One line per control for a reader: result, ID, title, evidence, and the deviation's link. */
export function evidenceLines(results: ControlResult[]): string[] {
  return results.map((x) => `${x.result.padEnd(9)} ${x.id.padEnd(10)} ${x.title} — ${x.evidence}${x.deviation ? ` [see ${x.deviation}]` : ''}`);
}
