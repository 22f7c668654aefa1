// firstboot/bin/boot, the ExecStart of syntropy-firstboot.service: it settles a first boot with
// nothing to apply without Node, and leaves every other case to `syntropy-firstboot boot`. Run
// for real (bash, curl) against the project's IMDSv2 double on loopback, with a copy of the
// script whose three path lines point at a scratch root, the double and a stand-in program.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ImdsDouble } from '../../scripts/lib/guest/imds-double.ts';
import { REPO } from '../../scripts/lib/paths.ts';
import { NOT_CONFIGURED_NOTICE } from '../../firstboot/src/commands/boot.ts';
import { paths } from '../../firstboot/src/state.ts';
import { runFirstboot } from '../helpers/firstboot-run.ts';

const SCRIPT = join(REPO, 'firstboot/bin/boot');
const ID = 'i-0123456789abcdef0';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  /** Arguments the stand-in for /usr/sbin/syntropy-firstboot was started with, or null. */
  program: string | null;
}

/** A scratch root with /run/syntropy (the unit's RuntimeDirectory) and a copy of the script. */
function install(endpoint: string) {
  const root = mkdtempSync(join(tmpdir(), 'fb-boot-'));
  mkdirSync(join(root, 'run/syntropy'), { recursive: true });
  const calls = join(root, 'program-args');
  const program = join(root, 'syntropy-firstboot');
  writeFileSync(program, `#!/bin/sh\necho "$*" > ${calls}\necho from-node\nexit 7\n`, { mode: 0o755 });
  const text = readFileSync(SCRIPT, 'utf8');
  for (const line of [/^root=$/m, /^imds=http:\/\/169\.254\.169\.254$/m, /^program=\/usr\/sbin\/syntropy-firstboot$/m]) expect(text).toMatch(line);
  const script = join(root, 'boot');
  writeFileSync(script, text.replace(/^root=$/m, `root=${root}`).replace(/^imds=.*$/m, `imds=${endpoint}`).replace(/^program=.*$/m, `program=${program}`), { mode: 0o755 });
  const run = (env: Record<string, string> = {}) =>
    new Promise<Run>((resolve) => {
      // Asynchronous: the double answers from this process's event loop.
      execFile(script, [], { encoding: 'utf8', env: { ...process.env, ...env } }, (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout, stderr, program: existsSync(calls) ? readFileSync(calls, 'utf8').trim() : null });
      });
    });
  // The program's own file layout: the script's paths must stay the ones it uses.
  return { root, run, p: paths(root), marker: paths(root).needsDialogue };
}

describe('firstboot/bin/boot (the first boot without Node)', () => {
  const imds = new ImdsDouble({ instanceId: ID });
  let endpoint = '';
  beforeAll(async () => {
    endpoint = `http://127.0.0.1:${await imds.start()}`;
  });
  afterAll(() => imds.stop());
  afterEach(() => {
    imds.setUserData(undefined);
    imds.requests.length = 0;
  });

  it('leaves the answer to the dialogue when nothing is configured and there is no user data, as the program would', async () => {
    const s = install(endpoint);
    const r = await s.run();
    expect(r.code, r.stderr).toBe(0);
    expect(r.program).toBeNull();
    expect(r.stdout).toBe(`${NOT_CONFIGURED_NOTICE}\n`);
    expect(readFileSync(s.marker, 'utf8')).toBe(`${ID}\n`);
    expect(statSync(s.marker).mode & 0o777).toBe(0o644);
    expect(readdirSync(join(s.root, 'run/syntropy'))).toEqual(['needs-dialogue']);
    // IMDSv2: a session token first, then every read carries it; nothing else was asked.
    expect(imds.requests.map((q) => `${q.method} ${q.path} ${q.status} ${q.withToken}`)).toEqual([
      'PUT /latest/api/token 200 false',
      'GET /latest/user-data 404 true',
      'GET /latest/meta-data/instance-id 200 true',
    ]);

    // The program, in the same situation, takes the same decision with the same words.
    const root = mkdtempSync(join(tmpdir(), 'fb-boot-node-'));
    const n = await runFirstboot(['boot', '--root', root, '--imds-endpoint', endpoint]);
    expect(n.code, n.err).toBe(0);
    expect(n.out).toBe(r.stdout);
    expect(readFileSync(join(root, 'run/syntropy/needs-dialogue'), 'utf8')).toBe(`${ID}\n`);
  });

  it('keeps the metadata session token out of curl\'s argv', async () => {
    const s = install(endpoint);
    const bin = mkdtempSync(join(tmpdir(), 'fb-boot-curl-'));
    const log = join(bin, 'argv');
    const real = execFileSync('sh', ['-c', 'command -v curl'], { encoding: 'utf8' }).trim();
    writeFileSync(join(bin, 'curl'), `#!/bin/sh\nprintf '%s\\n' "$*" >> ${log}\nexec ${real} "$@"\n`, { mode: 0o755 });
    const r = await s.run({ PATH: `${bin}:${process.env.PATH}` });
    expect(r.code, r.stderr).toBe(0);
    expect(r.program).toBeNull();
    const argv = readFileSync(log, 'utf8');
    expect(argv.split('\n').filter(Boolean)).toHaveLength(3);
    expect(argv).not.toMatch(/x-aws-ec2-metadata-token:/i);
  });

  it('takes empty user data (200, no bytes) as none, as the program does', async () => {
    imds.setUserData('');
    const s = install(endpoint);
    const r = await s.run();
    expect(r.code, r.stderr).toBe(0);
    expect(r.program).toBeNull();
    expect(readFileSync(s.marker, 'utf8')).toBe(`${ID}\n`);
  });

  it('ignores a proxy in its environment (EC2 refuses token requests that went through one)', async () => {
    const s = install(endpoint);
    const r = await s.run({ http_proxy: 'http://127.0.0.1:1', HTTP_PROXY: 'http://127.0.0.1:1', all_proxy: 'http://127.0.0.1:1' });
    expect(r.code, r.stderr).toBe(0);
    expect(r.program).toBeNull();
  });

  it('leaves any user data to the program', async () => {
    for (const ud of ['#cloud-config\nsyntropy:\n  port_range: 50000-50010\n', '#!/bin/sh\necho hi\n', ' \n']) {
      imds.setUserData(ud);
      const s = install(endpoint);
      const r = await s.run();
      expect(r.program, JSON.stringify(ud)).toBe('boot');
      // exec: the program's output and exit status are the unit's.
      expect(r.code).toBe(7);
      expect(r.stdout).toBe('from-node\n');
      expect(existsSync(s.marker)).toBe(false);
      // Handed over after the token and the user data's status: the program asks the rest.
      expect(imds.requests.map((q) => `${q.method} ${q.path}`)).toEqual(['PUT /latest/api/token', 'GET /latest/user-data']);
      imds.requests.length = 0;
    }
  });

  it('leaves a configured instance, one of another instance, and an interrupted apply to the program, before asking metadata', async () => {
    for (const file of ['stateFile', 'journalFile'] as const) {
      const s = install(endpoint);
      mkdirSync(dirname(s.p[file]), { recursive: true });
      writeFileSync(s.p[file], '{}\n');
      const r = await s.run();
      expect(r.program, file).toBe('boot');
      expect(r.code).toBe(7);
      expect(existsSync(s.marker)).toBe(false);
    }
    expect(imds.requests).toEqual([]);
  });

  it('leaves a metadata service that is down, refuses a token, or gives no valid instance ID to the program', async () => {
    const down = install('http://127.0.0.1:1');
    expect((await down.run()).program).toBe('boot');
    // A token request answered with an error (here a 404 from a wrong path).
    const refused = install(`${endpoint}/nothing-here`);
    expect((await refused.run()).program).toBe('boot');
    const odd = new ImdsDouble({ instanceId: 'local-1234' });
    const oddEndpoint = `http://127.0.0.1:${await odd.start()}`;
    try {
      const s = install(oddEndpoint);
      const r = await s.run();
      expect(r.program).toBe('boot');
      expect(existsSync(s.marker)).toBe(false);
    } finally {
      await odd.stop();
    }
  });

  it('leaves it to the program when the marker cannot be written, leaving no temporary file', async () => {
    const s = install(endpoint);
    rmSync(join(s.root, 'run/syntropy'), { recursive: true });
    mkdirSync(join(s.root, 'run'), { recursive: true });
    writeFileSync(join(s.root, 'run/syntropy'), 'not a directory\n');
    const r = await s.run();
    expect(r.program).toBe('boot');
    expect(readdirSync(join(s.root, 'run'))).toEqual(['syntropy']);
  });

  it('is what syntropy-firstboot.service starts, and hands over to the installed program', () => {
    const unit = readFileSync(join(REPO, 'firstboot/units/syntropy-firstboot.service'), 'utf8');
    expect(unit).toMatch(/^ExecStart=\/usr\/lib\/syntropy-firstboot\/boot$/m);
    expect(readFileSync(SCRIPT, 'utf8')).toMatch(/^decide_in_node\(\) \{ exec "\$program" boot; \}$/m);
    const install = readFileSync(join(REPO, 'packer/provisioners/install-firstboot.sh'), 'utf8');
    expect(install).toContain('install -m 0755 "$src/bin/boot" /usr/lib/syntropy-firstboot/boot');
  });
});
