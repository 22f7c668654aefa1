// Timestamped progress lines for long-running scripts: "[+12.3s] step 2/7 bake: ...".
const started = Date.now();

export function elapsed(): string {
  return `+${((Date.now() - started) / 1000).toFixed(1)}s`;
}

export function info(msg: string): void {
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)} ${elapsed()}] ${msg}\n`);
}

export function fail(msg: string): never {
  process.stderr.write(`error: ${msg}\n`);
  process.exit(1);
}

/** Times an async phase and records its duration in seconds. */
export async function phase<T>(durations: Record<string, number>, name: string, fn: () => Promise<T>): Promise<T> {
  const t0 = Date.now();
  info(`phase ${name}: start`);
  try {
    return await fn();
  } finally {
    durations[name] = Math.round((Date.now() - t0) / 100) / 10;
    info(`phase ${name}: ${durations[name]}s`);
  }
}
