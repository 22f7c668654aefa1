// Where checks run. A Host runs one probe script as root and returns its output:
//   LocalRootHost  a root directory on this machine (fixtures, an unpacked image), R=<dir>
//   SshHost        a booted VM over SSH (sudo sh -s), R=""
//   SsmHost        an EC2 instance through SSM Run Command (AWS-RunShellScript), R=""
import { spawn } from 'node:child_process';
import { gunzipSync, gzipSync } from 'node:zlib';
import { GetCommandInvocationCommand, SendCommandCommand, type SSMClient } from '@aws-sdk/client-ssm';

export interface Host {
  readonly name: string;
  /** The root the probe's paths are under ("/" for a running system). */
  readonly root: string;
  /** Largest probe output the transport carries in one round trip (undefined: no limit). */
  readonly maxOutputBytes?: number;
  run(script: string): Promise<string>;
}

function runProcess(cmd: string, args: string[], input: string, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`${what} exited ${code}: ${err.trim().slice(-500)}`));
      else resolve(Buffer.concat(out).toString('utf8'));
    });
    child.stdin.end(input);
  });
}

export class LocalRootHost implements Host {
  readonly name: string;
  constructor(readonly root: string) {
    this.name = `root directory ${root}`;
  }
  run(script: string): Promise<string> {
    return runProcess('sh', ['-s'], script, `probe in ${this.root}`);
  }
}

export interface SshTarget {
  host: string;
  port: number;
  user: string;
  keyFile: string;
}

export class SshHost implements Host {
  readonly root = '/';
  readonly name: string;
  constructor(private readonly t: SshTarget) {
    this.name = `ssh ${t.user}@${t.host}:${t.port}`;
  }
  run(script: string): Promise<string> {
    const args = [
      '-i', this.t.keyFile, '-p', String(this.t.port),
      '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR',
      '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-o', 'ConnectTimeout=10', `${this.t.user}@${this.t.host}`, 'sudo -n sh -s',
    ];
    return runProcess('ssh', args, script, this.name);
  }
}

/** SSM caps StandardOutputContent at 24,000 characters; output travels gzip+base64 inside that. */
export const SSM_OUTPUT_LIMIT = 24000;

export class SsmHost implements Host {
  readonly root = '/';
  readonly name: string;
  readonly maxOutputBytes = SSM_OUTPUT_LIMIT;
  constructor(
    private readonly ssm: SSMClient,
    private readonly instanceId: string,
    private readonly opts: { pollMs?: number; timeoutMs?: number } = {},
  ) {
    this.name = `ssm ${instanceId}`;
  }

  async run(script: string): Promise<string> {
    const payload = gzipSync(script).toString('base64');
    const command = `echo ${payload} | base64 -d | gunzip | sh | gzip -9 | base64 -w0`;
    const sent = await this.ssm.send(
      new SendCommandCommand({
        InstanceIds: [this.instanceId],
        DocumentName: 'AWS-RunShellScript',
        Parameters: { commands: [command], executionTimeout: ['600'] },
        Comment: 'syntropy compliance probe',
        TimeoutSeconds: 600,
      }),
    );
    const commandId = sent.Command?.CommandId;
    if (!commandId) throw new Error(`${this.name}: SendCommand returned no command ID`);
    const t0 = Date.now();
    const timeout = this.opts.timeoutMs ?? 600_000;
    for (;;) {
      await new Promise((r) => setTimeout(r, this.opts.pollMs ?? 2000));
      let inv;
      try {
        inv = await this.ssm.send(new GetCommandInvocationCommand({ CommandId: commandId, InstanceId: this.instanceId }));
      } catch (e) {
        // The invocation is not visible for a moment after SendCommand.
        if ((e as Error).name === 'InvocationDoesNotExist' && Date.now() - t0 < timeout) continue;
        throw new Error(`${this.name}: GetCommandInvocation failed: ${(e as Error).message}`);
      }
      const status = inv.Status ?? 'Pending';
      if (['Pending', 'InProgress', 'Delayed'].includes(status)) {
        if (Date.now() - t0 > timeout) throw new Error(`${this.name}: probe still ${status} after ${timeout / 1000}s`);
        continue;
      }
      if (status !== 'Success') throw new Error(`${this.name}: probe ${status}: ${(inv.StandardErrorContent ?? '').slice(0, 500)}`);
      const out = (inv.StandardOutputContent ?? '').trim();
      if (out.length >= SSM_OUTPUT_LIMIT) throw new Error(`${this.name}: probe output reached SSM's ${SSM_OUTPUT_LIMIT}-character limit; run with smaller batches`);
      try {
        return gunzipSync(Buffer.from(out, 'base64')).toString('utf8');
      } catch {
        throw new Error(`${this.name}: probe output is not the expected gzip+base64 (${out.length} characters)`);
      }
    }
  }
}
