// A guest's kernel panic, seen on its serial console. Neither Packer nor an SSH session notices a
// panicked guest: QEMU runs on and a connection to it waits with nothing on the other end. Local
// guests under TCG have panicked now and then (a double fault in `aide --init`; "Fatal exception
// in interrupt" early in boot), so the build (scripts/lib/bake/run-packer.ts) and every launched
// guest (scripts/lib/guest/vm.ts) watch their console and stop at once, saying why.
import { closeSync, openSync, readSync, statSync } from 'node:fs';

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
  timer.unref();
  return () => clearInterval(timer);
}

/**
 * How often work whose guest panicked is started again (a Packer build, a boot scenario, the
 * rehearsal's build): once under TCG, where such panics have come and gone between runs of the
 * same inputs; never under KVM, where a panic is taken as the image's own.
 */
export function panicRetries(accel: 'kvm' | 'tcg'): number {
  return accel === 'tcg' ? 1 : 0;
}
