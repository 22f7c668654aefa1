// How every contract is read: a value that does not fit its schema fails with the file and the
// field named ("build-manifest.json: outputs.amis: expected object, received array"), so a bad
// or old file is never half-understood by the step that reads it.
import { readFileSync } from 'node:fs';
import type { z } from 'zod';

export class ContractError extends Error {
  override name = 'ContractError';
}

/** Parses `value` with `schema`; problems name `source` and each field's path. */
export function parseContract<S extends z.ZodTypeAny>(schema: S, value: unknown, source: string): z.output<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data as z.output<S>;
  const problems = r.error.issues.map((i) => `${i.path.length > 0 ? i.path.join('.') : '(top level)'}: ${i.message}`);
  throw new ContractError(`${source}: ${problems.join('; ')}`);
}

/** Reads a JSON file and parses it with its contract. */
export function readJsonContract<S extends z.ZodTypeAny>(schema: S, file: string): z.output<S> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ContractError(`${file}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new ContractError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  return parseContract(schema, value, file);
}

/** The JSON text a writer puts on disk: the value as its schema produced it. */
export function contractJson<S extends z.ZodTypeAny>(schema: S, value: z.input<S>, what: string): string {
  return `${JSON.stringify(parseContract(schema, value, what), null, 2)}\n`;
}

/** KEY=value lines, as systemd's EnvironmentFile= and the shell helpers read them. */
export function parseKeyValues(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

/** Writes KEY=value lines under a comment; values must be single-line and unquoted. */
export function formatKeyValues(comment: string, kv: Record<string, string | number>): string {
  const lines = Object.entries(kv).map(([k, v]) => {
    const s = String(v);
    if (/[\n\r"'\\$`]/.test(s)) throw new ContractError(`${k}: the value ${JSON.stringify(s)} cannot be written as KEY=value`);
    return `${k}=${s}`;
  });
  return `${comment.split('\n').map((l) => `# ${l}`).join('\n')}\n${lines.join('\n')}\n`;
}
