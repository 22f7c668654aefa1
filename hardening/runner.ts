// Runs the catalog's checks against a host: one probe round trip collects every fact, then each
// control is judged. Prints `<id> | AUDIT | <title> | <result>` per control.
import type { Host } from './host.ts';
import { Facts, probeScript, parseProbeOutput, type RawFact } from './facts.ts';
import type { CatalogEntry } from './catalog.ts';
import type { ControlResult, Status } from './types.ts';

export interface RunOptions {
  /** Judge runtime state too (a running system); false for a root directory or an image. */
  live: boolean;
  log?: (line: string) => void;
}

export interface RunOutcome {
  results: ControlResult[];
  probeMs: number;
  totalMs: number;
  roundTrips: number;
}

export function judge(c: CatalogEntry, facts: Facts | null, strict = false): ControlResult {
  const base = { id: c.id, title: c.title, level: c.level, section: c.section, automated: c.automated, tags: c.tags };
  let result: Status;
  let evidence = '';
  if (c.manual) {
    result = 'SKIP';
    evidence = `manual: ${c.manual}`;
  } else if (c.disabled) {
    result = 'SKIP';
    evidence = c.disabled;
  } else if (!c.check || !facts) {
    result = 'ERROR';
    evidence = 'no check';
  } else {
    try {
      const v = c.check(strict ? facts.withDeclared(c.needs) : facts);
      result = c.excepted ? 'EXCEPTION' : v.pass ? 'PASS' : 'FAIL';
      evidence = v.evidence;
    } catch (e) {
      result = 'ERROR';
      evidence = `check failed to run: ${(e as Error).message}`;
    }
  }
  return { ...base, result, evidence, ...(c.excepted ? { exception: c.exception } : {}), ...(c.manual ? { manual: c.manual } : {}) };
}

const AGGREGATE = new Set(['pkgs', 'units']);

/**
 * One probe round trip for the whole run; a host whose transport caps the output (SSM's 24,000
 * characters) gets one round trip per benchmark section instead.
 */
export async function collectFacts(host: Host, entries: CatalogEntry[], live: boolean): Promise<{ facts: Facts; ms: number; roundTrips: number }> {
  const active = entries.filter((c) => !c.manual && !c.disabled);
  const batches = host.maxOutputBytes === undefined ? [active] : [...new Set(active.map((c) => c.section))].map((s) => active.filter((c) => c.section === s));
  const t0 = Date.now();
  const raw = new Map<string, RawFact>();
  for (const batch of batches) {
    const probe = probeScript(batch.flatMap((c) => c.needs), { root: host.root, live });
    for (const [k, v] of parseProbeOutput(await host.run(probe.script), probe.nonce)) {
      // `pkgs` and `units` list only what their batch asked for: keep every batch's lines.
      const prev = raw.get(k);
      raw.set(k, prev && AGGREGATE.has(k) ? { out: `${prev.out}\n${v.out}`, rc: Math.max(prev.rc, v.rc) } : v);
    }
  }
  return { facts: new Facts(raw, live), ms: Date.now() - t0, roundTrips: batches.length };
}

export async function runChecks(host: Host, entries: CatalogEntry[], opts: RunOptions): Promise<RunOutcome> {
  const t0 = Date.now();
  const { facts, ms, roundTrips } = await collectFacts(host, entries, opts.live);
  const results = entries.map((c) => judge(c, facts));
  for (const r of results) opts.log?.(`${r.id} | AUDIT | ${r.title} | ${r.result}`);
  return { results, probeMs: ms, totalMs: Date.now() - t0, roundTrips };
}
