// hardening/DEVIATIONS.md names every exception the catalog can report, with the controls that
// carry it, and every control it names exists in the catalog.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from '../../scripts/lib/paths.ts';
import { EXCEPTION_NAMES } from '../../hardening/exceptions.ts';
import { loadConfig } from '../../scripts/lib/config.ts';
import { catalogFor } from '../../scripts/lib/compliance.ts';

const doc = readFileSync(join(REPO, 'hardening', 'DEVIATIONS.md'), 'utf8');

describe('hardening/DEVIATIONS.md', () => {
  const catalog = catalogFor(loadConfig({}).config);
  const byException = new Map<string, string[]>();
  for (const c of catalog) {
    const name = (c as { exception?: { name: string } }).exception?.name;
    if (name) byException.set(name, [...(byException.get(name) ?? []), c.id]);
  }

  it('has a row for every named exception, listing exactly the controls that carry it', () => {
    for (const name of EXCEPTION_NAMES) {
      const row = doc.split('\n').find((l) => l.includes(`(exception \`${name}\`)`));
      expect(row, `no row for exception ${name}`).toBeDefined();
      const ids = (row!.split('|')[1]!.match(/\d+(\.\d+)+/g) ?? []).sort();
      expect(ids, name).toEqual([...(byException.get(name) ?? [])].sort());
    }
  });

  it('names only controls the catalog has', () => {
    const known = new Set(catalog.map((c) => c.id));
    const rows = doc.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| control') && !l.startsWith('| ---'));
    for (const r of rows) for (const id of r.split('|')[1]!.match(/\d+\.\d+(\.\d+)*/g) ?? []) expect(known.has(id), id).toBe(true);
  });
});

describe('deviation links in the compliance report', () => {
  it('link every control a DEVIATIONS table names to that table, in the report and the evidence lines', async () => {
    const { deviationLinks, headingAnchor } = await import('../../hardening/deviations.ts');
    const { buildReport, evidenceLines, toMarkdown } = await import('../../hardening/report.ts');
    const links = deviationLinks();
    expect(links.get('3.3.1.2')).toBe(`hardening/DEVIATIONS.md#${headingAnchor('Named exceptions (reported as EXCEPTION)')}`);
    expect(links.get('5.1.15')).toBe('hardening/DEVIATIONS.md#deliberate-choices-that-pass-our-check-but-that-some-readers-fail');
    expect(links.get('2.3.3.1')).toBe(links.get('5.1.15'));
    // Every heading a link points to exists in the file.
    const anchors = new Set(doc.split('\n').filter((l) => l.startsWith('## ')).map((l) => headingAnchor(l.slice(3))));
    for (const l of links.values()) expect(anchors.has(l.split('#')[1]!), l).toBe(true);
    const report = buildReport(
      [
        { id: '3.3.1.2', title: 'fwd', level: 'l1_server', section: '3', automated: true, tags: [], result: 'EXCEPTION', evidence: '1', exception: { name: 'router', reason: 'routes VPC traffic' } },
        { id: '5.1.15', title: 'LogLevel', level: 'l1_server', section: '5', automated: true, tags: [], result: 'PASS', evidence: 'LogLevel VERBOSE (sshd -T)' },
        { id: '1.1.1.1', title: 'cramfs', level: 'l1_server', section: '1', automated: true, tags: [], result: 'PASS', evidence: 'not loadable' },
      ],
      { phase: 'p', target: 't', mode: 'offline', probeMs: 0, totalMs: 0, roundTrips: 1 },
    );
    expect(report.results.map((r) => r.deviation ?? null)).toEqual([links.get('3.3.1.2'), links.get('5.1.15'), null]);
    const md = toMarkdown(report);
    expect(md).toContain(`— [why](${links.get('3.3.1.2')})`);
    expect(md).toMatch(/## Deliberate choices some readers fail\n\n- \*\*5\.1\.15\*\* LogLevel: PASS — LogLevel VERBOSE \(sshd -T\) — \[why\]/);
    expect(evidenceLines(report.results)[1]).toBe(`PASS      5.1.15     LogLevel — LogLevel VERBOSE (sshd -T) [see ${links.get('5.1.15')}]`);
  });
});
