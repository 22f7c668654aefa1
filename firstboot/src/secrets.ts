// The agent token is a secret: it is never printed, logged, put in argv or written anywhere but
// the 0600 env file. Everything the service prints goes through `say`/`warn`, which redact any
// registered secret as a last line of defence (the code itself never formats the token).

const secrets = new Set<string>();

export function registerSecret(value: string): void {
  if (value.length >= 4) secrets.add(value);
}

export function forgetSecrets(): void {
  secrets.clear();
}

export function redact(text: string): string {
  let out = text;
  for (const s of secrets) out = out.split(s).join('[REDACTED]');
  return out;
}

/** The only form of the token ever shown: its last 4 characters. */
export function tokenHint(token: string): string {
  return `…${token.slice(-4)}`;
}

export interface Output {
  write(text: string): void;
}

export class Console {
  constructor(
    private readonly out: Output = process.stdout,
    private readonly err: Output = process.stderr,
  ) {}

  say(msg: string): void {
    this.out.write(`${redact(msg)}\n`);
  }

  warn(msg: string): void {
    this.err.write(`${redact(msg)}\n`);
  }
}

/**
 * The one redaction boundary: every write to the process's stdout and stderr, whoever makes it
 * (this code, a library's console.warn or process.emitWarning, an uncaught error), passes
 * through `redact` first. Installed once by the entry point, before any secret is read.
 */
export function installRedactionBoundary(streams: NodeJS.WriteStream[] = [process.stdout, process.stderr]): void {
  for (const s of streams) {
    const original = s.write.bind(s) as (chunk: unknown, ...rest: unknown[]) => boolean;
    s.write = ((chunk: unknown, ...rest: unknown[]) => {
      if (secrets.size === 0) return original(chunk, ...rest);
      const text = typeof chunk === 'string' ? chunk : Buffer.isBuffer(chunk) || chunk instanceof Uint8Array ? Buffer.from(chunk).toString('utf8') : String(chunk);
      const encoding = typeof rest[0] === 'string' ? rest[0] : undefined;
      const plain = encoding && encoding !== 'utf8' && typeof chunk === 'string' ? Buffer.from(chunk, encoding as BufferEncoding).toString('utf8') : text;
      return original(redact(plain), ...(encoding ? rest.slice(1) : rest));
    }) as typeof s.write;
  }
}
