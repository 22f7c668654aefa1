// First boot under hostile input and failing services (issue: no token on the console, no hang,
// nothing half-applied). Each case failed on the code before it was fixed.
import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { runFirstboot } from '../helpers/firstboot-run.ts';
import { forgetSecrets } from '../../firstboot/src/secrets.ts';
import { ImdsClient, readTokenParameter } from '../../firstboot/src/sources.ts';
import { parseUserData } from '../../firstboot/src/user-data.ts';
import { paths, writeState } from '../../firstboot/src/state.ts';
import { configure } from '../../firstboot/src/commands/configure.ts';
import { Console } from '../../firstboot/src/secrets.ts';
import { PlanSystem } from '../../firstboot/src/system.ts';
import { FAKE_IMAGE_ID, FakeSystem } from '../helpers/fake-system.ts';
import { ImdsDouble } from '../../scripts/lib/guest/imds-double.ts';
import { REPO } from '../../scripts/lib/paths.ts';

const TOKEN = 'hostile-test-token-0123456789abcdef';
afterEach(() => forgetSecrets());

const run = runFirstboot;
const newRoot = () => {
  const r = mkdtempSync(join(tmpdir(), 'fb-hostile-'));
  mkdirSync(join(r, 'etc'), { recursive: true });
  writeFileSync(join(r, 'etc/machine-id'), `${'b'.repeat(32)}\n`);
  return r;
};

async function server(handler: Parameters<typeof createServer>[1]): Promise<{ url: string; srv: Server }> {
  const srv = createServer(handler);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`, srv };
}

describe('the token never reaches the console', () => {
  it('the YAML library prints nothing of its own for a !tag on the token line or a collection key', () => {
    const printed: string[] = [];
    const origWarn = process.emitWarning;
    const origErr = process.stderr.write.bind(process.stderr);
    const origConsole = console.warn;
    process.emitWarning = ((w: string | Error) => void printed.push(String(w))) as typeof process.emitWarning;
    process.stderr.write = ((c: string) => (printed.push(String(c)), true)) as typeof process.stderr.write;
    console.warn = (...a: unknown[]) => void printed.push(a.map(String).join(' '));
    try {
      for (const text of [`syntropy:\n  token: !secret ${TOKEN}\n`, `syntropy:\n  ? [${TOKEN}]\n  : x\n`, `syntropy:\n  token: !!binary ${TOKEN}\n`]) {
        try {
          parseUserData(text);
        } catch (e) {
          printed.push((e as Error).message);
        }
      }
    } finally {
      process.emitWarning = origWarn;
      process.stderr.write = origErr;
      console.warn = origConsole;
    }
    expect(printed.join('\n')).not.toContain(TOKEN);
  });

  it('one redaction boundary: whatever a library writes to stdout or stderr is redacted', () => {
    const script = join(mkdtempSync(join(tmpdir(), 'redact-')), 'leak.ts');
    writeFileSync(
      script,
      `import { installRedactionBoundary, registerSecret } from '${join(REPO, 'firstboot/src/secrets.ts')}';
installRedactionBoundary();
registerSecret(process.env.T!);
console.error('lib says ' + process.env.T);
process.stdout.write(Buffer.from('raw ' + process.env.T + '\\n'));
process.emitWarning('warning with ' + process.env.T);
`,
    );
    const r = spawnSync(process.execPath, ['--import', 'tsx', script], { cwd: REPO, encoding: 'utf8', env: { ...process.env, T: TOKEN } });
    expect(r.status).toBe(0);
    expect(`${r.stdout}${r.stderr}`).toContain('[REDACTED]');
    expect(`${r.stdout}${r.stderr}`).not.toContain(TOKEN);
  });
});

describe('no hang: deadlines and size caps on every network call', () => {
  it('a metadata service that drips a byte every 300 ms is given up after the deadline', async () => {
    const { url, srv } = await server((_req, res) => {
      res.writeHead(200);
      const t = setInterval(() => res.write('x'), 300);
      res.on('close', () => clearInterval(t));
    });
    const t0 = Date.now();
    await expect(new ImdsClient(url, 1000, 1).identity()).rejects.toThrow(/no complete answer within 1000 ms/);
    expect(Date.now() - t0).toBeLessThan(4000);
    srv.close();
  });

  it('user data over EC2\'s 16 KiB limit is not read, and says so', async () => {
    const imds = new ImdsDouble({ userData: `#cloud-config\n# ${'x'.repeat(64 * 1024)}\n` });
    const port = await imds.start();
    await expect(new ImdsClient(`http://127.0.0.1:${port}`, 2000, 1).userData()).rejects.toThrow(/larger than EC2's 16 KiB limit/);
    await imds.stop();
  });

  it('a silent metadata service is waited for once, said so, and remembered', async () => {
    const { url, srv } = await server(() => undefined);
    const said: string[] = [];
    const c = new ImdsClient(url, 300, 2, (m) => said.push(m));
    await expect(c.identity()).rejects.toThrow(/did not answer/);
    const t0 = Date.now();
    await expect(c.userData()).rejects.toThrow(/did not answer/);
    expect(Date.now() - t0).toBeLessThan(100);
    expect(said).toHaveLength(1);
    expect(said[0]).toMatch(/Waiting for the instance metadata service/);
    srv.close();
  });
});

describe('Parameter Store failures say what happened', () => {
  const failing = (e: unknown) => async () => ({ send: async () => Promise.reject(e) });
  it('names connection refused, a missing region, an answer that is not JSON, and a timeout', async () => {
    await expect(readTokenParameter('/t', 'eu-west-1', failing(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' })))).rejects.toThrow(/cannot reach Parameter Store \(ECONNREFUSED/);
    await expect(readTokenParameter('/t', '', failing(new Error('Region is missing')))).rejects.toThrow(/no AWS region is known/);
    await expect(readTokenParameter('/t', 'eu-west-1', failing(Object.assign(new SyntaxError('Unexpected token < in JSON'), {})))).rejects.toThrow(/not Parameter Store's JSON/);
    await expect(readTokenParameter('/t', 'eu-west-1', failing(Object.assign(new Error('aborted'), { name: 'AbortError' })))).rejects.toThrow(/did not answer within 30 s/);
  });

  it('accepts a SecureString with a trailing newline (put-parameter --value file://...), as --token-file does', async () => {
    const client = async () => ({ send: async () => ({ Parameter: { Type: 'SecureString', Value: `${TOKEN}\n` } }) });
    await expect(readTokenParameter('/t', 'eu-west-1', client)).resolves.toBe(TOKEN);
  });
});

describe('user data in the standard cloud-init forms', () => {
  const section = `#cloud-config\nsyntropy:\n  token_ssm_parameter: /syntropy/agent-token\n  port_range: "51820-51830"\n`;
  it('reads the syntropy section from gzip-compressed and MIME multipart user data', async () => {
    const imds = new ImdsDouble({ userData: gzipSync(section) });
    const port = await imds.start();
    const text = await new ImdsClient(`http://127.0.0.1:${port}`, 2000, 1).userData();
    await imds.stop();
    expect(parseUserData(text)?.settings.tokenSsmParameter).toBe('/syntropy/agent-token');
    const mime = [
      'Content-Type: multipart/mixed; boundary="==BOUNDARY=="',
      'MIME-Version: 1.0',
      '',
      '--==BOUNDARY==',
      'Content-Type: text/x-shellscript; charset="us-ascii"',
      '',
      '#!/bin/sh\necho hi',
      '--==BOUNDARY==',
      'Content-Type: text/cloud-config; charset="us-ascii"',
      'Content-Transfer-Encoding: base64',
      '',
      Buffer.from(section).toString('base64'),
      '--==BOUNDARY==--',
      '',
    ].join('\n');
    expect(parseUserData(mime)?.settings.portRange).toBe('51820-51830');
  });
});

describe('status, recover and the command line against bad files and flags', () => {
  it('status shows a bad user-data section (last error), as the README says', async () => {
    const imds = new ImdsDouble({ userData: '#cloud-config\nsyntropy:\n  token_ssm_parameter: /x\n  port_range: "80-90"\n' });
    const port = await imds.start();
    const root = newRoot();
    await run(['boot', '--root', root, '--imds-endpoint', `http://127.0.0.1:${port}`]);
    const s = await run(['status', '--json', '--root', root, '--imds-endpoint', `http://127.0.0.1:${port}`]);
    await imds.stop();
    expect(JSON.parse(s.out).last_error).toMatch(/user data: .*1024 or above/);
  });

  it('recover and status survive a hand-corrupted journal ([]) and a state without settings', async () => {
    const root = newRoot();
    mkdirSync(join(root, 'var/lib/syntropy/firstboot'), { recursive: true });
    writeFileSync(join(root, 'var/lib/syntropy/firstboot/apply.journal'), '[]');
    const rec = await run(['recover', '--root', root]);
    expect(rec.code, rec.err).toBe(0);
    expect(existsSync(join(root, 'var/lib/syntropy/firstboot/apply.journal'))).toBe(false);
    writeFileSync(join(root, 'var/lib/syntropy/firstboot/state.json'), JSON.stringify({ status: 'configured', instanceId: `local-${'b'.repeat(32)}` }));
    const st = await run(['status', '--json', '--root', root]);
    expect(st.code, st.err).toBe(0);
    expect(JSON.parse(st.out).configured).toBe(false);
  });

  it("refuses --root '' (it would write the token into the working directory) and repeated flags", async () => {
    const empty = await run(['configure', '--non-interactive', '--root', '', '--token-stdin'], `${TOKEN}\n`);
    expect(empty.code).toBe(2);
    expect(empty.err).toMatch(/--root must be an absolute directory/);
    expect(existsSync('etc/syntropy/agent.env')).toBe(false);
    const twice = await run(['configure', '--non-interactive', '--root', newRoot(), '--token-stdin', '--port-range', '51820-51830', '--port-range', '52000-52010'], `${TOKEN}\n`);
    expect(twice.code).toBe(2);
    expect(twice.err).toMatch(/--port-range is given more than once/);
  });

  it('takes a token file with a UTF-8 byte-order mark, and echoes escape sequences in tags escaped', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bom-'));
    writeFileSync(join(dir, 't'), `\uFEFF${TOKEN}\n`, { mode: 0o600 });
    const root = newRoot();
    const ok = await run(['configure', '--non-interactive', '--root', root, '--token-file', join(dir, 't'), '--port-range', '51820-51830']);
    expect(ok.code, ok.err).toBe(0);
    expect(readFileSync(join(root, 'etc/syntropy/agent.env'), 'utf8')).toContain(`SYNTROPY_AGENT_TOKEN=${TOKEN}\n`);
    const esc = await run(['configure', '--non-interactive', '--root', newRoot(), '--token-stdin', '--tags', 'ok,\u001b[2Jx'], `${TOKEN}\n`);
    expect(esc.code).toBe(2);
    expect(esc.err).not.toContain('\u001b');
    expect(esc.err).toContain('\\u001b[2Jx');
  });
});

describe('two runs at once', () => {
  it('a non-interactive configure re-checks under the lock and does not overwrite a configuration made meanwhile', async () => {
    const root = newRoot();
    const p = paths(root);
    const out: string[] = [];
    const con = new Console({ write: (s) => void out.push(s) }, { write: (s) => void out.push(s) });
    const env = {
      con,
      p,
      sys: new PlanSystem(() => undefined),
      imds: null,
      prompt: {},
      // Another run configures the instance while this one reads its token.
      readStdin: async () => {
        writeState(p, { status: 'configured', instanceId: `local-${'b'.repeat(32)}`, configuredAt: 't', source: 'ssm', settings: { portRange: '40000-40009', agentName: 'other', tags: [], networkApi: 'none' }, boundPort: null });
        return `${TOKEN}\n`;
      },
    };
    const code = await configure(env, { nonInteractive: true, reconfigure: false, tokenStdin: true, portRange: '51820-51830' });
    expect(code).toBe(0);
    expect(out.join('')).toMatch(/configured meanwhile/);
    expect(existsSync(p.envFile)).toBe(false);
    expect(JSON.parse(readFileSync(p.stateFile, 'utf8')).settings.portRange).toBe('40000-40009');
  });

  it('the lock is never seen without its owner, a live owner is refused, a dead one replaced', async () => {
    const root = newRoot();
    const lock = join(root, 'run/syntropy/firstboot.lock');
    mkdirSync(lock, { recursive: true });
    writeFileSync(join(lock, 'pid'), String(process.pid));
    const busy = await run(['recover', '--root', root]);
    expect(busy.code).toBe(2);
    expect(busy.err).toMatch(new RegExp(`another syntropy-firstboot \\(pid ${process.pid}\\)`));
    writeFileSync(join(lock, 'pid'), '999999');
    mkdirSync(join(root, 'run/syntropy/firstboot.lock.999998'));
    const taken = await run(['recover', '--root', root]);
    expect(taken.code, taken.err).toBe(0);
    expect(existsSync(lock)).toBe(false);
    expect(existsSync(join(root, 'run/syntropy/firstboot.lock.999998'))).toBe(false);
  });
});

describe('the dialogue checks the preloaded image while the user answers', () => {
  it('asks Docker for the image before the first prompt, and a cancel changes nothing', async () => {
    const root = newRoot();
    const p = paths(root);
    mkdirSync(join(root, 'etc/syntropy'), { recursive: true });
    writeFileSync(p.lockFile, `AGENT_IMAGE_REF=syntropy-agent-test-double:local\nAGENT_IMAGE_DIGEST=${FAKE_IMAGE_ID}\nAGENT_IMAGE_ID=${FAKE_IMAGE_ID}\nAGENT_IMAGE_SOURCE=archive\n`);
    const sys = new FakeSystem();
    const sink = { write: () => undefined };
    // The first prompt is cancelled at once: whatever the dialogue does, the image check came first.
    const env = { con: new Console(sink, sink), p, sys, imds: null, prompt: { signal: AbortSignal.abort() }, readStdin: async () => '' };
    await expect(configure(env, { nonInteractive: false, reconfigure: false, tokenStdin: false })).rejects.toThrow();
    expect(sys.calls).toEqual(['imageId']);
    expect(existsSync(p.envFile)).toBe(false);
    expect(existsSync(p.stateFile)).toBe(false);
  });
});
