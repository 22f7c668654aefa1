// Runs the catalog's checks against a host: one probe round trip collects every fact, then each
// control is judged. Prints `<id> | AUDIT | <title> | <result>` per control.
import type { Host } from './host.ts';
import { Facts, probeScript, parseProbeOutput } from './facts.ts';
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

export async function collectFacts(host: Host, entries: CatalogEntry[], live: boolean): Promise<{ facts: Facts; ms: number; roundTrips: number }> {
  const keys = entries.filter((c) => !c.manual && !c.disabled).flatMap((c) => c.needs);
  const probe = probeScript(keys, { root: host.root, live });
  const t0 = Date.now();
  const out = await host.run(probe.script);
  const raw = parseProbeOutput(out, probe.nonce);
  return { facts: new Facts(raw, live), ms: Date.now() - t0, roundTrips: 1 };
}

export async function runChecks(host: Host, entries: CatalogEntry[], opts: RunOptions): Promise<RunOutcome> {
  const t0 = Date.now();
  const { facts, ms, roundTrips } = await collectFacts(host, entries, opts.live);
  const results = entries.map((c) => judge(c, facts));
  for (const r of results) opts.log?.(`${r.id} | AUDIT | ${r.title} | ${r.result}`);
  return { results, probeMs: ms, totalMs: Date.now() - t0, roundTrips };
}
