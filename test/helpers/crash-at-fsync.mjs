// Preload for crash tests: counts fsync calls (each durable step of first boot ends with one) and
// kills the process with SIGKILL right after the Nth, as a power cut would at that point.
// Usage: CRASH_AT_FSYNC=N node --import ./test/helpers/crash-at-fsync.mjs program.mjs ...
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';

const crashAt = Number(process.env.CRASH_AT_FSYNC ?? 0);
let count = 0;
const fsyncSync = fs.fsyncSync;
fs.fsyncSync = (fd) => {
  fsyncSync(fd);
  count += 1;
  if (crashAt > 0 && count === crashAt) process.kill(process.pid, 'SIGKILL');
};
syncBuiltinESMExports();
