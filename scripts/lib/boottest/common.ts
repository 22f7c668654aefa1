// What the local and aws boot tests share: the step recorder, the scenario result (a boot-test
// report entry plus the compliance report a scenario may produce), the test token, the test
// ranges and user data, and the pool that runs scenarios a few at a time.
import { randomBytes } from 'node:crypto';
import type { ScenarioRecord, StepRecord } from '../../../contracts/boot-report.ts';
import type { Report } from '../../../hardening/report.ts';

export type { StepRecord };

export interface ScenarioResult extends ScenarioRecord {
  compliance?: Report;
}

export class Recorder {
  readonly steps: StepRecord[] = [];
  readonly figures: Record<string, number | string> = {};
  /** The compliance report a scenario produced, attached to its result. */
  report?: Report;
  constructor(
    readonly scenario: string,
    private readonly log: (line: string) => void,
  ) {}

  async step<T>(name: string, fn: () => Promise<T>, detail?: (v: T) => string): Promise<T> {
    const t0 = Date.now();
    this.log(`[${this.scenario}] ${name} ...`);
    try {
      const v = await fn();
      const d = detail?.(v);
      this.steps.push({ name, ms: Date.now() - t0, ok: true, ...(d ? { detail: d } : {}) });
      this.log(`[${this.scenario}] ${name}: ok (${((Date.now() - t0) / 1000).toFixed(1)}s)${d ? ` ${d}` : ''}`);
      return v;
    } catch (e) {
      this.steps.push({ name, ms: Date.now() - t0, ok: false, detail: (e as Error).message });
      this.log(`[${this.scenario}] ${name}: FAILED: ${(e as Error).message.split('\n')[0]}`);
      throw e;
    }
  }
}

export function check(ok: boolean, message: string): void {
  if (!ok) throw new Error(message);
}

/** A token in the agent's format, made for this run; it must never show up outside agent.env. */
export function testToken(): string {
  return `boot-test-${randomBytes(18).toString('base64url')}`;
}


/** The UDP range the SSM-document and dialogue scenarios configure, and the user-data one. */
export const TEST_RANGE = '51820-51830';
export const USER_DATA_RANGE = '51900-51910';

/** The `syntropy:` section of the boot tests' user data (token from Parameter Store). */
export function syntropyUserData(param: string, range: string): string[] {
  return ['syntropy:', `  token_ssm_parameter: ${param}`, `  port_range: "${range}"`, '  tags: [boot-test]'];
}

/** Runs one scenario body with a recorder; a thrown error fails the scenario, never the run. */
export async function recordScenario(name: string, label: string, log: (l: string) => void, body: (rec: Recorder) => Promise<void>): Promise<ScenarioResult> {
  const rec = new Recorder(label, log);
  const t0 = Date.now();
  try {
    await body(rec);
    return { name, passed: true, ms: Date.now() - t0, steps: rec.steps, figures: rec.figures, compliance: rec.report };
  } catch (e) {
    return { name, passed: false, ms: Date.now() - t0, steps: rec.steps, figures: rec.figures, error: (e as Error).message, compliance: rec.report };
  }
}

/** Runs scenarios with at most `parallel` guests at once, keeping the given order in the results. */
export async function runPool<T>(items: string[], parallel: number, fn: (name: string) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(parallel, items.length)) }, worker));
  return out;
}

/**
 * Boot reached its end with nothing dropped or failed: `systemctl is-system-running` says
 * `running` (not `degraded`: a failed unit), and systemd logged no ordering cycle (it breaks one
 * by deleting a start job, so the unit silently never starts; systemd's wording: "Found ordering
 * cycle on ...", "Job ... deleted to break ordering cycle"). Those lines are written while the
 * unit graph is loaded, before journald runs, so they reach the journal through the kernel
 * buffer: in guests of build 20261206T181756Z a match on _PID=1 alone missed them and one on
 * SYSLOG_IDENTIFIER=systemd found them. An unreadable or empty journal is a problem too, never a
 * pass.
 */
export const BOOT_CLEAN = `state=$(timeout 600 systemctl is-system-running --wait 2>&1); echo "state=$state"
systemctl --failed --no-legend --plain --no-pager
if ! j=$(sudo journalctl -b -o cat --no-pager _PID=1 + SYSLOG_IDENTIFIER=systemd 2>&1) || [ -z "$j" ]; then echo "journal of this boot unreadable: $j"; fi
printf '%s\\n' "$j" | grep -E 'ordering cycle' || true`;

export function bootCleanProblems(out: string): string[] {
  const lines = out.split('\n').map((l) => l.trim()).filter(Boolean);
  const state = lines.find((l) => l.startsWith('state='))?.slice(6);
  return [...(state === 'running' ? [] : [`system state ${state ?? '(none)'}, want running`]), ...lines.filter((l) => !l.startsWith('state='))];
}

export const BOOT_CLEAN_STEP = 'boot finished: no failed unit, no start job dropped by an ordering cycle';

/** The boot-end step of every boot scenario; `exec` runs BOOT_CLEAN on the instance and returns its stdout. */
export function checkBootEnded(rec: Recorder, exec: (script: string) => Promise<string>): Promise<void> {
  return rec.step(BOOT_CLEAN_STEP, async () => {
    const problems = bootCleanProblems(await exec(BOOT_CLEAN));
    check(problems.length === 0, problems.join('; '));
  });
}
