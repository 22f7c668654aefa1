// Runs syntropy-firstboot's main() in-process with captured stdout/stderr and a given stdin.
import { PassThrough } from 'node:stream';
import { main } from '../../firstboot/src/cli.ts';

export async function runFirstboot(args: string[], stdin = ''): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const input = new PassThrough();
  input.end(stdin);
  const code = await main(args, { stdout: { write: (s) => void (out += s) }, stderr: { write: (s) => void (err += s) }, stdin: input });
  return { code, out, err };
}
