// syntropy-firstboot end to end against a root directory: flags, user data through the IMDSv2
// double, the SSM SecureString path, bad input that writes nothing, and no token in any output.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { mockClient } from 'aws-sdk-client-mock';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { runFirstboot } from '../helpers/firstboot-run.ts';
import { forgetSecrets } from '../../firstboot/src/secrets.ts';
import { ImdsDouble } from '../../scripts/lib/guest/imds-double.ts';
import { REPO } from '../../scripts/lib/paths.ts';

const TOKEN = 'cli-test-token-0123456789abcdefXYZ';

function tokenFile(content = `${TOKEN}\n`): string {
  const f = join(mkdtempSync(join(tmpdir(), 'fb-tok-')), 'token');
  writeFileSync(f, content, { mode: 0o600 });
  return f;
}

const run = runFirstboot;

const newRoot = () => mkdtempSync(join(tmpdir(), 'fb-root-'));
const listFiles = (root: string): string[] => readdirSync(root, { recursive: true }) as string[];

afterEach(() => forgetSecrets());

describe('configure --non-interactive --root', () => {
  it('writes the 0600 env file under DIR, prints the plan of system steps, and exits 0', async () => {
    const root = newRoot();
    const r = await run(['configure', '--non-interactive', '--root', root, '--token-file', tokenFile(), '--port-range', '51820-51830', '--agent-name', 'relay-1', '--tags', 'edge,core']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const env = join(root, 'etc/syntropy/agent.env');
    expect(statSync(env).mode & 0o777).toBe(0o600);
    expect(readFileSync(env, 'utf8')).toBe(`SYNTROPY_AGENT_TOKEN=${TOKEN}\nSYNTROPY_PORT_RANGE=51820-51830\nSYNTROPY_AGENT_NAME=relay-1\nSYNTROPY_TAGS=edge,core\n`);
    expect(r.out).toContain("plan: ufw allow proto udp from any to any port 51820:51830 comment 'syntropy-agent wireguard'");
    expect(r.out).toContain('plan: systemctl enable syntropy-agent.service');
    expect(r.out + r.err).not.toContain(TOKEN);
    const status = await run(['status', '--json', '--root', root]);
    expect(JSON.parse(status.out)).toMatchObject({ configured: true, source: 'flags', port_range: '51820-51830', agent_name: 'relay-1', tags: ['edge', 'core'] });
    expect(status.out).not.toContain(TOKEN);
    // Already configured: configure leaves it alone, reconfigure replaces it.
    expect((await run(['configure', '--non-interactive', '--root', root, '--token-file', tokenFile()])).out).toMatch(/already configured/);
    const re = await run(['reconfigure', '--non-interactive', '--root', root, '--token-stdin', '--port-range', '40000-40009'], `${TOKEN}-2\n`);
    expect(re.code).toBe(0);
    expect(readFileSync(env, 'utf8')).toContain('SYNTROPY_PORT_RANGE=40000-40009');
    expect(re.out).toContain('plan: ufw delete allow proto udp from any to any port 51820:51830');
  });

  const invalid: [string, string[], RegExp][] = [
    ['a port range below 1024', ['--port-range', '80-90'], /--port-range: The range must start at 1024/],
    ['a reversed port range', ['--port-range', '52000-51000'], /write the lower port first/],
    ['a too wide range', ['--port-range', '20000-29999'], /spans 10000 ports; at most 1000/],
    ['a bad agent name', ['--agent-name', 'no spaces please'], /--agent-name: The agent name/],
    ['unsafe tags', ['--tags', 'abc,$(id)'], /--tags: The tag "\$\(id\)" may contain only/],
    ['a missing token file', ['--token-file', '/nonexistent/token'], /--token-file \/nonexistent\/token: cannot read it \(ENOENT\)/],
    ['two token sources', ['--token-stdin', '--token-ssm-parameter', '/p'], /exactly one of --token-file/],
    ['a bad SSM name', ['--token-ssm-parameter', 'bad name'], /--token-ssm-parameter: The SSM parameter name/],
    ['an unknown flag', ['--tokn-file', 'x'], /Unknown option '--tokn-file'/],
  ];
  for (const [what, extra, msg] of invalid) {
    it(`refuses ${what} with exit 2, naming the problem and writing nothing`, async () => {
      const root = newRoot();
      const hasTokenFlag = extra.some((a) => a.startsWith('--token') || a.startsWith('--tokn'));
      const args = ['configure', '--non-interactive', '--root', root, ...(hasTokenFlag ? [] : ['--token-file', tokenFile()]), ...extra];
      const r = await run(args);
      expect(r.code).toBe(2);
      expect(r.err).toMatch(msg);
      expect(listFiles(root)).toEqual([]);
    });
  }

  it('refuses a malformed token without echoing it', async () => {
    const root = newRoot();
    const r = await run(['configure', '--non-interactive', '--root', root, '--token-file', tokenFile('has a space-secretvalue\n')]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--token-file: The agent token must not contain spaces/);
    expect(r.err).not.toContain('secretvalue');
    expect(listFiles(root)).toEqual([]);
  });

  it('runs as the issue states it: npm run --silent firstboot -- configure ... (real process)', () => {
    const root = newRoot();
    const ok = spawnSync('npm', ['run', '--silent', 'firstboot', '--', 'configure', '--non-interactive', '--root', root, '--token-file', tokenFile(), '--port-range', '45000-45010'], { cwd: REPO, encoding: 'utf8' });
    expect(ok.status, ok.stderr).toBe(0);
    expect(statSync(join(root, 'etc/syntropy/agent.env')).mode & 0o777).toBe(0o600);
    expect(ok.stdout + ok.stderr).not.toContain(TOKEN);
    const badRoot = newRoot();
    const bad = spawnSync('npm', ['run', '--silent', 'firstboot', '--', 'configure', '--non-interactive', '--root', badRoot, '--token-file', tokenFile(), '--port-range', '45010-45000'], { cwd: REPO, encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--port-range: The start \(45010\) is above the end \(45000\)/);
    expect(listFiles(badRoot)).toEqual([]);
  }, 30_000);
});

describe('boot: user data through IMDSv2, SSM SecureString, or the dialogue', () => {
  const imds = new ImdsDouble({ instanceId: 'i-0fedcba9876543210', region: 'eu-west-1' });
  const ssm = mockClient(SSMClient);
  let endpoint = '';
  beforeAll(async () => {
    endpoint = `http://127.0.0.1:${await imds.start()}`;
  });
  afterAll(() => imds.stop());
  afterEach(() => {
    ssm.reset();
    imds.setUserData(undefined);
  });

  it('configures from a token in user data, warning that user data is readable', async () => {
    const root = newRoot();
    imds.setUserData(`#cloud-config\nsyntropy:\n  token: ${TOKEN}\n  port_range: 50000-50010\n`);
    const r = await run(['boot', '--root', root, '--imds-endpoint', endpoint]);
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/Warning: The agent token was given in plain user data/);
    expect(r.out).toContain('Syntropy agent configured (user-data)');
    expect(r.out + r.err).not.toContain(TOKEN);
    const state = JSON.parse(readFileSync(join(root, 'var/lib/syntropy/firstboot/state.json'), 'utf8')) as { instanceId: string };
    expect(state.instanceId).toBe('i-0fedcba9876543210');
    expect(existsSync(join(root, 'run/syntropy/needs-dialogue'))).toBe(false);
    // A second boot of the same instance leaves it as it is; no dialogue.
    const again = await run(['boot', '--root', root, '--imds-endpoint', endpoint]);
    expect(again.out).toMatch(/Syntropy agent configured \(user-data\); ports 50000-50010/);
  });

  it('reads the token from the SecureString parameter named in user data', async () => {
    const root = newRoot();
    imds.setUserData('syntropy:\n  token_ssm_parameter: /syntropy/agent-token\n  agent_name: relay-ssm\n');
    ssm.on(GetParameterCommand).resolves({ Parameter: { Type: 'SecureString', Value: TOKEN } });
    const r = await run(['boot', '--root', root, '--imds-endpoint', endpoint]);
    expect(r.code).toBe(0);
    // The source is where the configuration came from (user data), wherever the token was kept.
    expect(r.out).toContain('configured (user-data)');
    expect(ssm.commandCalls(GetParameterCommand)[0]!.args[0].input).toEqual({ Name: '/syntropy/agent-token', WithDecryption: true });
    expect(readFileSync(join(root, 'etc/syntropy/agent.env'), 'utf8')).toContain(`SYNTROPY_AGENT_TOKEN=${TOKEN}\nSYNTROPY_PORT_RANGE=51820-51919\nSYNTROPY_AGENT_NAME=relay-ssm\n`);
  });

  it('falls back to the dialogue when the SSM parameter cannot be read, naming why', async () => {
    const root = newRoot();
    imds.setUserData('syntropy:\n  token_ssm_parameter: /syntropy/missing\n');
    ssm.on(GetParameterCommand).rejects(Object.assign(new Error('x'), { name: 'ParameterNotFound' }));
    const r = await run(['boot', '--root', root, '--imds-endpoint', endpoint]);
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/Configuration from user data failed: SSM parameter \/syntropy\/missing in eu-west-1 does not exist/);
    expect(existsSync(join(root, 'etc/syntropy/agent.env'))).toBe(false);
    expect(readFileSync(join(root, 'run/syntropy/needs-dialogue'), 'utf8')).toContain('i-0fedcba9876543210');
  });

  it('with no user data at all, leaves the instance to the dialogue and says how to configure it', async () => {
    const root = newRoot();
    const r = await run(['boot', '--root', root, '--imds-endpoint', endpoint]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/not configured yet.*\n.*Log in over SSH as admin/);
    expect(existsSync(join(root, 'run/syntropy/needs-dialogue'))).toBe(true);
    expect(existsSync(join(root, 'etc/syntropy/agent.env'))).toBe(false);
  });

  it('configures with --token-ssm-parameter as the SSM document does', async () => {
    const root = newRoot();
    ssm.on(GetParameterCommand).resolves({ Parameter: { Type: 'SecureString', Value: TOKEN } });
    const r = await run(['configure', '--non-interactive', '--root', root, '--imds-endpoint', endpoint, '--token-ssm-parameter', '/syntropy/agent-token', '--port-range', '41000-41010']);
    expect(r.code).toBe(0);
    expect(r.out).toContain('configured (ssm)');
    expect(await ssm.commandCalls(GetParameterCommand)[0]!.args[0].input).toMatchObject({ WithDecryption: true });
  });

  it('forgets a configuration that belongs to another instance (an image made from a configured one)', async () => {
    const root = newRoot();
    mkdirSync(join(root, 'var/lib/syntropy/firstboot'), { recursive: true });
    mkdirSync(join(root, 'etc/syntropy'), { recursive: true });
    writeFileSync(join(root, 'etc/syntropy/agent.env'), `SYNTROPY_AGENT_TOKEN=${TOKEN}\n`, { mode: 0o600 });
    writeFileSync(
      join(root, 'var/lib/syntropy/firstboot/state.json'),
      JSON.stringify({ status: 'configured', instanceId: 'i-0other', source: 'dialogue', configuredAt: 't', settings: { portRange: '50000-50003', agentName: 'a', tags: [], networkApi: 'none' }, boundPort: null }),
    );
    const r = await run(['boot', '--root', root, '--imds-endpoint', endpoint]);
    expect(r.err).toMatch(/belongs to another instance/);
    expect(existsSync(join(root, 'etc/syntropy/agent.env'))).toBe(false);
    expect(existsSync(join(root, 'run/syntropy/needs-dialogue'))).toBe(true);
  });
});

describe('instance identity', () => {
  it('keeps a configuration when the metadata service does not answer, instead of wiping it', async () => {
    const root = newRoot();
    mkdirSync(join(root, 'var/lib/syntropy/firstboot'), { recursive: true });
    mkdirSync(join(root, 'etc/syntropy'), { recursive: true });
    writeFileSync(join(root, 'etc/machine-id'), `${'a'.repeat(32)}\n`);
    writeFileSync(join(root, 'etc/syntropy/agent.env'), `SYNTROPY_AGENT_TOKEN=${TOKEN}\n`, { mode: 0o600 });
    writeFileSync(
      join(root, 'var/lib/syntropy/firstboot/state.json'),
      JSON.stringify({ status: 'configured', instanceId: 'i-0123456789abcdef0', source: 'dialogue', configuredAt: 't', settings: { portRange: '50000-50001', agentName: 'a', tags: [], networkApi: 'none' }, boundPort: 50000 }),
    );
    const r = await run(['boot', '--root', root, '--imds-endpoint', 'http://127.0.0.1:1']);
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/Instance metadata did not answer .*; keeping the configuration of i-0123456789abcdef0/);
    expect(r.out).toMatch(/configured \(dialogue\); ports 50000-50001/);
    expect(existsSync(join(root, 'etc/syntropy/agent.env'))).toBe(true);
  }, 60_000);
});

describe('instance identity on EC2 without a metadata answer', () => {
  it('refuses to configure rather than key the configuration on the machine ID', async () => {
    const root = newRoot();
    mkdirSync(join(root, 'sys/class/dmi/id'), { recursive: true });
    writeFileSync(join(root, 'sys/class/dmi/id/sys_vendor'), 'Amazon EC2\n');
    mkdirSync(join(root, 'etc'), { recursive: true });
    writeFileSync(join(root, 'etc/machine-id'), `${'b'.repeat(32)}\n`);
    const r = await run(['configure', '--non-interactive', '--root', root, '--imds-endpoint', 'http://127.0.0.1:1', '--token-file', tokenFile()]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/cannot tell which EC2 instance this is: .*nothing was changed, try again/);
    expect(existsSync(join(root, 'etc/syntropy/agent.env'))).toBe(false);
    // At boot the same leaves the instance to the dialogue instead of failing.
    const b = await run(['boot', '--root', root, '--imds-endpoint', 'http://127.0.0.1:1']);
    expect(b.code).toBe(0);
    expect(b.err).toMatch(/The setup dialogue will ask again at login/);
    expect(existsSync(join(root, 'run/syntropy/needs-dialogue'))).toBe(true);
  }, 120_000);

  it('off EC2 (no DMI vendor) uses the machine ID', async () => {
    const root = newRoot();
    mkdirSync(join(root, 'etc'), { recursive: true });
    writeFileSync(join(root, 'etc/machine-id'), `${'c'.repeat(32)}\n`);
    const r = await run(['configure', '--non-interactive', '--root', root, '--imds-endpoint', 'http://127.0.0.1:1', '--token-file', tokenFile()]);
    expect(r.code).toBe(0);
    expect(JSON.parse(readFileSync(join(root, 'var/lib/syntropy/firstboot/state.json'), 'utf8')).instanceId).toBe(`local-${'c'.repeat(32)}`);
  }, 120_000);
});
