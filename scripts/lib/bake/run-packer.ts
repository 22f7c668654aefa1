// Runs Packer with its output streamed, time-stamped and split into steps (the manifest's
// durations), and, for a local guest, watches the guest's serial console for a kernel panic.
// Why the watch: Packer never notices a panicked guest. QEMU keeps running and the SSH session
// to it stays open with nothing on the other end, so a provisioner step waits until CI's limit
// (seen on TCG: a double fault in `aide --init`). The build stops at once instead, and says why.
import { existsSync, renameSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { execa } from 'execa';
import { info } from '../cli/log.ts';
import { watchForPanic } from '../guest/panic.ts';

export interface RunPackerOptions {
  cwd: string;
  logFile: string;
  durations: Record<string, number>;
  /** Prefix of the step names in `durations`. */
  prefix?: string;
  /** The guest's serial log, watched for a kernel panic (local target). */
  serialLog?: string;
  panicPollMs?: number;
}

/** A build guest's kernel panicked; Packer was stopped. */
export class GuestPanicError extends Error {
  constructor(
    readonly line: string,
    readonly during: string,
    serialLog: string,
  ) {
    super(`the build guest's kernel panicked during ${during} ("${line}"); Packer was stopped. The guest's console is ${basename(serialLog)} among the build's logs`);
  }
}

/** Streams Packer's output with timestamps and marks each provisioner step as a phase. */
export async function runPacker(args: string[], o: RunPackerOptions): Promise<void> {
  const prefix = o.prefix ?? 'packer';
  const log: string[] = [];
  let current: { name: string; t0: number } | null = null;
  let step = 0;
  const close = () => {
    if (current) o.durations[`${prefix}:${current.name}`] = Math.round((Date.now() - current.t0) / 100) / 10;
    current = null;
  };
  const child = execa('packer', args, { cwd: o.cwd, all: true, reject: false, env: { PACKER_NO_COLOR: '1', CHECKPOINT_DISABLE: '1' } });
  let panic: { line: string; during: string } | null = null;
  const stopWatch = o.serialLog
    ? watchForPanic(
        o.serialLog,
        (line) => {
          panic = { line, during: current?.name ?? 'start-up' };
          // Packer cancels cleanly on SIGTERM: it stops the guest and removes its output.
          child.kill('SIGTERM');
        },
        o.panicPollMs,
      )
    : () => {};
  try {
    for await (const line of child.iterable({ from: 'all' })) {
      const text = String(line);
      log.push(text);
      const m = /Provisioning with (?:shell script|shell): (.+)$/.exec(text) ?? /Uploading (.+) =>/.exec(text) ?? /Downloading (.+) =>/.exec(text);
      if (m) {
        close();
        step += 1;
        const name = m[1]!.split('/').filter(Boolean).pop()!;
        current = { name, t0: Date.now() };
        info(`packer step ${step}: ${name}`);
      } else if (/Gracefully halting|Converting hard drive|Creating AMI|Waiting for AMI/.test(text)) {
        close();
        current = { name: text.includes('AMI') ? 'register-ami' : 'finalize-disk', t0: Date.now() };
      }
      process.stderr.write(`  ${new Date().toISOString().slice(11, 19)} ${text}\n`);
    }
  } finally {
    stopWatch();
  }
  close();
  const res = await child;
  writeFileSync(o.logFile, `${log.join('\n')}\n`);
  const p = panic as { line: string; during: string } | null;
  if (p) throw new GuestPanicError(p.line, p.during, o.serialLog!);
  if (res.exitCode !== 0) throw new Error(`packer ${args[0]} failed (exit ${res.exitCode}); full log: ${o.logFile}`);
}

/** A panic that was retried: where it hit, and where its console and Packer log were kept. */
export interface RetriedPanic {
  build: 'layer' | 'image';
  line: string;
  during: string;
  serial_log: string;
  packer_log: string;
}

/**
 * runPacker, started again from scratch when the build guest's kernel panicked, at most `retries`
 * times. Only for a guest under QEMU's TCG emulator: two such panics were seen among the many
 * bakes on this project's CI machine (a double fault in `aide --init`; "Fatal exception in
 * interrupt" some 12 s into boot, before any provisioner ran), each gone on the next bake of the
 * same inputs. A panic under KVM, a second panic, or any other failure still fails the build.
 * Each panicked attempt's console and Packer log are kept (`serial-<build>-panic-<n>.log`,
 * `<packer log>-panic-<n>.log`) and returned, so the manifest can say the build was retried and
 * why. `beforeRetry` removes what the stopped attempt may have left (its output directory). The
 * number of retries is the caller's (panicRetries, scripts/lib/guest/panic.ts).
 */
export async function runPackerRetryingPanics(
  args: string[],
  o: RunPackerOptions & { serialLog: string },
  retry: { build: 'layer' | 'image'; retries: number; beforeRetry: () => void },
): Promise<RetriedPanic[]> {
  const retried: RetriedPanic[] = [];
  for (;;) {
    try {
      await runPacker(args, o);
      return retried;
    } catch (e) {
      if (!(e instanceof GuestPanicError) || retried.length >= retry.retries) {
        if (e instanceof GuestPanicError && retried.length > 0) {
          throw new Error(`${e.message} (attempt ${retried.length + 1}; the earlier panics: ${retried.map((r) => `${r.during}, console ${r.serial_log}`).join('; ')})`);
        }
        throw e;
      }
      const n = retried.length + 1;
      const keep = (f: string, kept: string) => {
        if (existsSync(f)) renameSync(f, kept);
        return basename(kept);
      };
      const kept: RetriedPanic = {
        build: retry.build,
        line: e.line,
        during: e.during,
        serial_log: keep(o.serialLog, join(dirname(o.serialLog), `serial-${retry.build}-panic-${n}.log`)),
        packer_log: keep(o.logFile, o.logFile.replace(/(\.log)?$/, `-panic-${n}.log`)),
      };
      retried.push(kept);
      info(
        `warning: the build guest's kernel panicked during ${e.during} ("${e.line}"); its console is kept as ${kept.serial_log}. ` +
          `Under TCG such panics have come and gone between bakes of the same inputs: starting the Packer build again (retry ${n} of ${retry.retries})`,
      );
      retry.beforeRetry();
    }
  }
}
