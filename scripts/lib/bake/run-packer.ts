// Runs Packer with its output streamed, time-stamped and split into steps (the manifest's
// durations), and, for a local guest, watches the guest's serial console for a kernel panic.
// Why the watch: Packer never notices a panicked guest. QEMU keeps running and the SSH session
// to it stays open with nothing on the other end, so a provisioner step waits until CI's limit
// (seen on TCG: a double fault in `aide --init`). The build stops at once instead, and says why.
import { closeSync, openSync, readSync, statSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { execa } from 'execa';
import { info } from '../cli/log.ts';

/** The kernel's last word before it stops (kernel/panic.c). */
export const PANIC_PATTERN = /Kernel panic - not syncing:[^\n]*/;

/**
 * Reads `file` every `everyMs` from where the last read ended and calls `onPanic` once with the
 * panic line. A file that does not exist yet is waited for. Returns the function that stops it.
 */
export function watchForPanic(file: string, onPanic: (line: string) => void, everyMs = 2000): () => void {
  let offset = 0;
  let tail = '';
  let found = false;
  const timer = setInterval(() => {
    if (found) return;
    let size: number;
    try {
      size = statSync(file).size;
    } catch {
      return;
    }
    if (size < offset) offset = 0; // truncated: QEMU's `-serial file:` reopened it
    if (size === offset) return;
    const buf = Buffer.alloc(size - offset);
    const fd = openSync(file, 'r');
    try {
      readSync(fd, buf, 0, buf.length, offset);
    } finally {
      closeSync(fd);
    }
    offset = size;
    // The tail of the previous read is kept, so a line split between two reads still matches.
    const text = tail + buf.toString('latin1');
    tail = text.slice(-200);
    const m = PANIC_PATTERN.exec(text);
    if (m) {
      found = true;
      onPanic(m[0].trim());
    }
  }, everyMs);
  return () => clearInterval(timer);
}

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
  if (p) throw new Error(`the build guest's kernel panicked during ${p.during} ("${p.line}"); Packer was stopped. The guest's console is ${basename(o.serialLog!)} among the build's logs`);
  if (res.exitCode !== 0) throw new Error(`packer ${args[0]} failed (exit ${res.exitCode}); full log: ${o.logFile}`);
}
