// Repository and cache locations, and small file helpers shared by the build steps.
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const REPO = resolve(import.meta.dirname, '..', '..');

export function cacheRoot(): string {
  return process.env.SYNTROPY_CACHE_DIR ?? join(REPO, '.cache');
}

/** Reads a list file: one entry per line, `#` comments and blank lines ignored. */
export function readListFile(file: string): string[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter(Boolean);
}

export async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Short, stable hash of build inputs, for cache directory names. */
export function inputsHash(revision: string, inputs: unknown): string {
  return createHash('sha256').update(`rev=${revision}\n${JSON.stringify(inputs)}`).digest('hex').slice(0, 16);
}
