// Talks to a remote terminal like an operator: `ssh -tt` gives the far side a real pty (the
// dialogue sees a terminal); this side only reads its output and types answers.
import { spawn, type ChildProcess } from 'node:child_process';

export class TerminalSession {
  private buf = '';
  /** Everything the far side printed, for the report on failure. */
  transcript = '';
  private readonly child: ChildProcess;
  private closed = false;

  constructor(sshArgs: string[], command?: string) {
    this.child = spawn('ssh', ['-tt', ...sshArgs, ...(command ? [command] : [])], { stdio: ['pipe', 'pipe', 'pipe'] });
    const take = (b: Buffer) => {
      const t = b.toString('utf8');
      this.buf += t;
      this.transcript += t;
    };
    this.child.stdout!.on('data', take);
    this.child.stderr!.on('data', take);
    this.child.on('close', () => (this.closed = true));
  }

  /** Waits until the output since the last match matches `re`; returns the matched text. */
  async expect(re: RegExp, timeoutMs = 120_000): Promise<string> {
    const t0 = Date.now();
    for (;;) {
      const plain = this.buf.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
      const m = re.exec(plain);
      if (m) {
        this.buf = '';
        return m[0];
      }
      if (this.closed) throw new Error(`session ended while waiting for ${re}; last output: ${JSON.stringify(plain.slice(-400))}`);
      if (Date.now() - t0 > timeoutMs) throw new Error(`no ${re} after ${timeoutMs / 1000}s; last output: ${JSON.stringify(plain.slice(-400))}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async send(text: string, pauseMs = 300): Promise<void> {
    this.child.stdin!.write(text);
    await new Promise((r) => setTimeout(r, pauseMs));
  }

  /** Deletes n characters of the current answer (backspace). */
  async erase(n: number): Promise<void> {
    await this.send('\x7f'.repeat(n));
  }

  async close(): Promise<void> {
    if (!this.closed) {
      this.child.stdin!.end();
      this.child.kill('SIGTERM');
    }
  }
}
