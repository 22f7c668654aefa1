// Boot-test reports: JSON (the publish gate reads "passed"), JUnit for CI, Markdown for people.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ScenarioResult } from './common.ts';
import { xml } from '../../../hardening/report.ts';
import { BootTestReportSchema, type BootTestReport } from '../../../contracts/boot-report.ts';
import { contractJson, parseContract } from '../../../contracts/parse.ts';

export type { BootTestReport };

export function bootReport(buildId: string, target: 'local' | 'aws', results: ScenarioResult[], requested: string[]): BootTestReport {
  const scenarios = results.map(({ compliance: _c, ...rest }) => rest);
  return parseContract(BootTestReportSchema, {
    schema: 1,
    build_id: buildId,
    target,
    generated_at: new Date().toISOString(),
    // Every scenario asked for ran and passed; a partial selection is recorded as such.
    passed: results.length === requested.length && results.every((r) => r.passed),
    scenarios,
  }, 'boot-test report');
}

export function bootJUnit(r: BootTestReport): string {
  const cases = r.scenarios.flatMap((s) =>
    s.steps.map((st) => `    <testcase classname="boot.${xml(s.name)}" name="${xml(st.name)}" time="${(st.ms / 1000).toFixed(1)}">${st.ok ? '' : `<failure message="${xml(st.detail ?? 'failed')}"/>`}</testcase>`),
  );
  const failures = r.scenarios.reduce((n, s) => n + s.steps.filter((st) => !st.ok).length, 0);
  return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="boot-test ${xml(r.build_id)} (${r.target})">\n  <testsuite name="boot-test" tests="${cases.length}" failures="${failures}">\n${cases.join('\n')}\n  </testsuite>\n</testsuites>\n`;
}

export function bootMarkdown(r: BootTestReport): string {
  const lines = [`# Boot test: build ${r.build_id} (${r.target})`, '', `${r.passed ? 'PASSED' : 'FAILED'}, ${r.generated_at}.`, '', '| Scenario | Result | Time | Figures |', '|---|---|---:|---|'];
  for (const s of r.scenarios) {
    const figs = Object.entries(s.figures).map(([k, v]) => `${k}=${v}`).join(', ');
    lines.push(`| ${s.name} | ${s.passed ? 'PASS' : 'FAIL'} | ${(s.ms / 1000).toFixed(0)} s | ${figs} |`);
  }
  for (const s of r.scenarios) {
    lines.push('', `## ${s.name}`, '');
    for (const st of s.steps) lines.push(`- ${st.ok ? 'ok' : '**FAILED**'} ${st.name} (${(st.ms / 1000).toFixed(1)} s)${st.detail ? `: ${st.detail.split('\n')[0]}` : ''}`);
    if (s.error) lines.push('', '```', s.error.slice(0, 3000), '```');
  }
  return `${lines.join('\n')}\n`;
}

export function writeBootReport(dir: string, r: BootTestReport): { json: string; junit: string; markdown: string } {
  mkdirSync(dir, { recursive: true });
  const files = { json: join(dir, 'boot-test.json'), junit: join(dir, 'boot-test.junit.xml'), markdown: join(dir, 'boot-test.md') };
  writeFileSync(files.json, contractJson(BootTestReportSchema, r, files.json));
  writeFileSync(files.junit, bootJUnit(r));
  writeFileSync(files.markdown, bootMarkdown(r));
  return files;
}
