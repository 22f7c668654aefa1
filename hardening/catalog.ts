// The CIS Debian 13 v1.0.0 Level 1 Server catalog: every section's controls, with levels and
// Automated/Manual taken from the benchmark's list (cis-debian13-v1.0.0.tsv), and the project's
// toggles and named exceptions applied from config (hardening.*).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Control, Level } from './types.ts';
import type { Draft } from './builders.ts';
import { section1 } from './sections/s1-initial-setup.ts';
import { section2 } from './sections/s2-services.ts';
import { section3 } from './sections/s3-network.ts';
import { section4 } from './sections/s4-firewall.ts';
import { section5 } from './sections/s5-access.ts';
import { section6 } from './sections/s6-logging.ts';
import { section7 } from './sections/s7-maintenance.ts';
import { marketplace } from './sections/marketplace.ts';
import { defenseInDepth } from './sections/defense-in-depth.ts';
import { EXCEPTION_NAMES } from './exceptions.ts';

export const BENCHMARK_TSV = join(import.meta.dirname, 'cis-debian13-v1.0.0.tsv');

export interface BenchmarkEntry {
  id: string;
  levels: string[];
  automated: boolean;
}

export function benchmarkEntries(text = readFileSync(BENCHMARK_TSV, 'utf8')): BenchmarkEntry[] {
  return text
    .split('\n')
    .filter((l) => l.trim() && !l.startsWith('#') && !l.startsWith('id\t'))
    .map((l) => {
      const [id, levels, assessment] = l.split('\t');
      return { id: id!.trim(), levels: (levels ?? '').split(',').map((s) => s.trim()), automated: (assessment ?? '').trim() === 'Automated' };
    });
}

/** The project's hardening settings (config `hardening`). */
export interface HardeningSettings {
  levels: Level[];
  sections: Record<string, boolean>;
  controls: Record<string, boolean>;
  exceptions: string[];
}

/** Every named exception is in force unless the config says otherwise (hardening/exceptions.ts). */
export const DEFAULT_EXCEPTIONS: string[] = [...EXCEPTION_NAMES];

export interface CatalogOptions {
  sshPort: number;
  sshUser: string;
}

export interface CatalogEntry extends Control {
  /** Why the control is not applied in this configuration (config toggle or level), if so. */
  disabled?: string;
  /** The named exception is in force (listed in hardening.exceptions). */
  excepted: boolean;
}

/** Every control, in benchmark order, with config toggles resolved. */
export function catalog(opts: CatalogOptions, settings?: HardeningSettings): CatalogEntry[] {
  const s: HardeningSettings = settings ?? { levels: ['l1_server'], sections: {}, controls: {}, exceptions: DEFAULT_EXCEPTIONS };
  const bench = new Map(benchmarkEntries().map((e) => [e.id, e]));
  const drafts: Draft[] = [section1, section2, section3, section4, section5, section6, section7].flatMap((section) => section(opts));
  const out: CatalogEntry[] = [];
  for (const d of drafts) {
    const b = bench.get(d.id);
    if (!b) throw new Error(`catalog control ${d.id} is not in the benchmark list ${BENCHMARK_TSV}`);
    const level: Level = b.levels.includes('l1_server') ? 'l1_server' : 'l2_server';
    const section = d.id.split('.')[0]!;
    out.push(resolve({ ...d, section, level, automated: b.automated }, s));
  }
  for (const d of marketplace(opts)) out.push(resolve({ ...d, section: 'MP', level: 'l1_server', automated: true }, s));
  // Beyond Level 1 (hardening/sections/defense-in-depth.ts): applied with Level 1, never counted in its score.
  for (const d of defenseInDepth(opts)) out.push(resolve({ ...d, section: 'DD', level: 'l1_server', automated: true }, s));
  return out;
}

function resolve(c: Control, s: HardeningSettings): CatalogEntry {
  let disabled: string | undefined;
  if (s.controls[c.id] === false) disabled = `disabled by config hardening.controls."${c.id}"`;
  else if (s.sections[c.section] === false && s.controls[c.id] !== true) disabled = `section ${c.section} disabled by config hardening.sections."${c.section}"`;
  else if (!s.levels.includes(c.level) && !c.exception) disabled = `${c.level} is not in hardening.levels`;
  else if (c.defaultOff && s.controls[c.id] !== true) disabled = c.defaultOff;
  const excepted = !!c.exception && s.exceptions.includes(c.exception.name);
  return { ...c, disabled, excepted };
}

/** Exception names the catalog knows, for validating config. */
export function exceptionNames(opts: CatalogOptions): string[] {
  return [...new Set(catalog(opts).flatMap((c) => (c.exception ? [c.exception.name] : [])))];
}
