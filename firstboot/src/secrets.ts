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
