// The bundle the image runs (esbuild, code splitting: modules such as the AWS SDK's SSM client and
// the user-data parser are loaded on demand from chunks/) does what the sources do on the paths
// that load those modules: user data naming a Parameter Store token, read from a Parameter Store
// double on loopback. The sources' own tests cannot see a module that arrives in another shape
// once bundled (a CommonJS module imported on demand comes as its default export only).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { bundleFirstboot } from '../../scripts/lib/bake/firstboot-stage.ts';
import { ImdsDouble } from '../../scripts/lib/guest/imds-double.ts';
import { SsmDouble } from '../../scripts/lib/boottest/parameter-store-double.ts';

const TOKEN = 'bundle-test-token-0123456789abcdefXYZ';
let bundle: string;
const imds = new ImdsDouble();
const ssm = new SsmDouble({ '/syntropy/agent-token': { value: TOKEN, type: 'SecureString' } });
let imdsUrl: string;
let ssmUrl: string;

function cli(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bundle, ...args], {
      // Static keys: the double only checks that the request is signed.
      env: { PATH: process.env.PATH ?? '', AWS_ACCESS_KEY_ID: 'AKIDBUNDLETEST', AWS_SECRET_ACCESS_KEY: 'secret', AWS_EC2_METADATA_DISABLED: 'true' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    child.on('close', (code) => resolve({ code, out }));
  });
}

beforeAll(async () => {
  bundle = await bundleFirstboot(mkdtempSync(join(tmpdir(), 'fb-bundle-')));
  imdsUrl = `http://127.0.0.1:${await imds.start()}`;
  ssmUrl = `http://127.0.0.1:${await ssm.start()}`;
}, 60_000);

afterAll(async () => {
  await imds.stop();
  await ssm.stop();
});

describe('the bundled first boot', () => {
  it('keeps the on-demand modules beside the program', () => {
    const chunks = readdirSync(join(bundle, '..', 'chunks'));
    expect(chunks.some((c) => c.startsWith('user-data-'))).toBe(true);
    // The program itself stays small: the SDK and the YAML parser are not in it.
    expect(readFileSync(bundle, 'utf8').length).toBeLessThan(200_000);
  });

  it('applies user data whose token is a Parameter Store SecureString', async () => {
    const root = mkdtempSync(join(tmpdir(), 'fb-root-'));
    imds.setUserData('#cloud-config\nsyntropy:\n  token_ssm_parameter: /syntropy/agent-token\n  port_range: 41000-41010\n');
    const r = await cli(['boot', '--root', root, '--imds-endpoint', imdsUrl, '--ssm-endpoint', ssmUrl, '--region', 'eu-west-1']);
    expect(r.out).not.toMatch(/failed|not a constructor/i);
    expect(r.code, r.out).toBe(0);
    expect(readFileSync(join(root, 'etc/syntropy/agent.env'), 'utf8')).toContain(`SYNTROPY_AGENT_TOKEN=${TOKEN}\n`);
    expect(r.out).not.toContain(TOKEN);
    expect(ssm.requests.at(-1)).toMatchObject({ name: '/syntropy/agent-token', withDecryption: true, status: 200 });
  });

  it('configures with --token-ssm-parameter', async () => {
    const root = mkdtempSync(join(tmpdir(), 'fb-root-'));
    imds.setUserData(undefined);
    const r = await cli(['configure', '--non-interactive', '--root', root, '--imds-endpoint', imdsUrl, '--ssm-endpoint', ssmUrl, '--region', 'eu-west-1', '--token-ssm-parameter', '/syntropy/agent-token', '--port-range', '41000-41010']);
    expect(r.code, r.out).toBe(0);
    expect(existsSync(join(root, 'etc/syntropy/agent.env'))).toBe(true);
    expect(r.out).not.toContain(TOKEN);
  });
});
