import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mockClient } from 'aws-sdk-client-mock';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import {
  checkAgentName,
  checkSsmParameterName,
  checkToken,
  parsePortRange,
  parseProcNetUdp,
  parseTags,
  type PortRules,
} from '../../firstboot/src/validate.ts';
import { ImdsClient, readTokenParameter, SourceError } from '../../firstboot/src/sources.ts';
import { parseUserData } from '../../firstboot/src/user-data.ts';
import { ImdsDouble } from '../../scripts/lib/guest/imds-double.ts';

const TOKEN = 'sy-tok-9f8e7d6c5b4a3210ZZYX';
const rules = (bound: number[] = [], maxWidth = 1000, sshPort = 22): PortRules => ({ maxWidth, sshPort, boundUdpPorts: () => new Set(bound) });

describe('validation rules', () => {
  it('accepts a well-formed token and refuses empty, spaced, control, non-ASCII, short and long ones', () => {
    expect(checkToken(TOKEN)).toBe(true);
    expect(checkToken('')).toMatch(/empty/);
    expect(checkToken('abcdefgh ijklmnopqrst')).toMatch(/spaces/);
    expect(checkToken('abcdefghijklmnopqrst\n')).toMatch(/spaces, tabs or line breaks/);
    expect(checkToken('abcdefghijklmnop\x07qrst')).toMatch(/control characters/);
    expect(checkToken('abcdefghijklmnopqrsté')).toMatch(/printable ASCII/);
    expect(checkToken('short')).toMatch(/too short \(5 characters/);
    expect(checkToken('x'.repeat(2049))).toMatch(/too long/);
    // The message never repeats the token itself.
    expect(String(checkToken('sekret-value-with space'))).not.toContain('sekret');
  });

  it('accepts port ranges inside the rules and explains each refusal', () => {
    expect(parsePortRange('51820-51919', rules())).toEqual({ start: 51820, end: 51919 });
    // The agent's four WireGuard interfaces each take a port from the range: four is the least.
    expect(parsePortRange('1024-1027', rules())).toEqual({ start: 1024, end: 1027 });
    expect(parsePortRange('1024-1026', rules())).toMatch(/spans 3 ports; it needs at least 4: the agent opens up to 4 WireGuard interfaces/);
    expect(parsePortRange('51820-51820', rules())).toMatch(/spans 1 port; it needs at least 4/);
    // The syntax is one form only: no spaces around the dash, no padding.
    expect(parsePortRange(' 1024 - 1030 ', rules())).toMatch(/no spaces/);
    expect(parsePortRange('51820 -51830', rules())).toMatch(/no spaces/);
    expect(parsePortRange('65000-65535', rules())).toEqual({ start: 65000, end: 65535 });
    expect(parsePortRange('51820', rules())).toMatch(/form START-END/);
    expect(parsePortRange('a-b', rules())).toMatch(/form START-END/);
    expect(parsePortRange('51820-51919-2', rules())).toMatch(/form START-END/);
    expect(parsePortRange('1023-2000', rules())).toMatch(/start at 1024 or above.*got 1023/);
    expect(parsePortRange('65000-65536', rules())).toMatch(/end at 65535 or below; got 65536/);
    expect(parsePortRange('52000-51000', rules())).toMatch(/start \(52000\) is above the end \(51000\)/);
    expect(parsePortRange('10000-11000', rules())).toMatch(/spans 1001 ports; at most 1000/);
    expect(parsePortRange('10000-10010', rules([], 5))).toMatch(/spans 11 ports; at most 5/);
    expect(parsePortRange('2000-2300', rules([], 1000, 2222))).toMatch(/contains the SSH port 2222/);
    expect(parsePortRange('51820-51919', rules([53, 51830, 51825]))).toMatch(/UDP port 51825 in the range is already in use/);
  });

  it('refuses tags the agent would drop, and bad agent names', () => {
    expect(parseTags('edge, eu-west-1')).toEqual(['edge', 'eu-west-1']);
    expect(parseTags(['relay01'])).toEqual(['relay01']);
    expect(parseTags('')).toEqual([]);
    // The agent keeps every non-empty tag (internal/config/agent.go, syntropy-agent 1.0.0).
    expect(parseTags('edge,eu')).toEqual(['edge', 'eu']);
    expect(parseTags('abc')).toEqual(['abc']);
    expect(parseTags('x'.repeat(65))).toMatch(/1-64 characters/);
    expect(parseTags('ok,\u001b[31mred')).toMatch(/may contain only/);
    expect(parseTags('good,bad tag')).toMatch(/may contain only/);
    expect(parseTags('edge,edge')).toMatch(/twice/);
    expect(checkAgentName('relay-eu-1')).toBe(true);
    expect(checkAgentName('-bad')).toMatch(/agent name/);
    expect(checkAgentName('x'.repeat(64))).toMatch(/1-63/);
  });

  it('accepts SSM parameter names and ARNs, refuses reserved or odd names', () => {
    expect(checkSsmParameterName('/syntropy/agent-token')).toBe(true);
    expect(checkSsmParameterName('arn:aws:ssm:eu-west-1:123456789012:parameter/syntropy/token')).toBe(true);
    expect(checkSsmParameterName('/aws/reserved')).not.toBe(true);
    expect(checkSsmParameterName('bad name')).not.toBe(true);
    expect(checkSsmParameterName('$(reboot)')).not.toBe(true);
  });

  it('reads bound UDP ports from /proc/net/udp', () => {
    const text = [
      '   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops',
      '  123: 00000000:CA6C 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 0 2 0000000000000000 0',
      '  124: 3500007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000   101        0 1 2 0000000000000000 0',
    ].join('\n');
    expect([...parseProcNetUdp(text)].sort()).toEqual([51820, 53].sort());
  });
});

describe('user data', () => {
  it('is absent for empty, shell-script, multipart or unrelated user data', () => {
    expect(parseUserData(null)).toBeNull();
    expect(parseUserData('')).toBeNull();
    expect(parseUserData('#!/bin/bash\necho hi\n')).toBeNull();
    expect(parseUserData('Content-Type: multipart/mixed; boundary="x"\n\n--x\n')).toBeNull();
    expect(parseUserData('#cloud-config\npackages: [htop]\n')).toBeNull();
    expect(parseUserData('not: [valid')).toBeNull();
  });

  it('reads a syntropy section inside a cloud-config, preferring the SSM parameter', () => {
    const r = parseUserData('#cloud-config\npackages: [htop]\nsyntropy:\n  port_range: 50000-50100\n  agent_name: relay-1\n  tags: [edge, eu-west]\n  token_ssm_parameter: /syntropy/token\n');
    expect(r).toEqual({ settings: { portRange: '50000-50100', agentName: 'relay-1', tags: ['edge', 'eu-west'], tokenSsmParameter: '/syntropy/token' }, warnings: [] });
  });

  it('reads JSON too, and warns when the token itself is in user data', () => {
    const r = parseUserData(JSON.stringify({ syntropy: { token: TOKEN, tags: 'edge,core' } }))!;
    expect(r.settings).toEqual({ token: TOKEN, tags: ['edge', 'core'], portRange: undefined, agentName: undefined });
    expect(r.warnings[0]).toMatch(/visible|can see/);
    expect(r.warnings.join()).not.toContain(TOKEN);
  });

  const bad: [string, RegExp][] = [
    ['syntropy: [1, 2]\n', /must be a mapping/],
    ['syntropy:\n  port_rnage: 1-2\n  token_ssm_parameter: /x\n', /syntropy\.port_rnage is not a known setting/],
    ['syntropy:\n  port_range: 50000-50100\n', /token_ssm_parameter \(preferred\) or syntropy\.token is required/],
    [`syntropy:\n  token: ${TOKEN}\n  token_ssm_parameter: /x\n`, /either .* not both/],
    ['syntropy:\n  token: short-one\n', /syntropy\.token: The agent token is too short/],
    ['syntropy:\n  tags: [a;b]\n  token_ssm_parameter: /x\n', /syntropy\.tags: The tag "a;b" may contain only/],
    ['syntropy:\n  agent_name: "bad name"\n  token_ssm_parameter: /x\n', /syntropy\.agent_name/],
    ['syntropy:\n  token_ssm_parameter: "bad name"\n', /token_ssm_parameter/],
    ['syntropy: {token: [unclosed\n', /not valid YAML or JSON/],
  ];
  for (const [text, msg] of bad) {
    it(`refuses ${JSON.stringify(text.slice(0, 40))} naming the problem`, () => {
      expect(() => parseUserData(text)).toThrow(SourceError);
      expect(() => parseUserData(text)).toThrow(msg);
    });
  }

  it('never echoes a token in its errors', () => {
    const secret = 'abcdefghijklmnopqrstu vwxyz-secret';
    try {
      parseUserData(`syntropy:\n  token: "${secret}"\n`);
      expect.unreachable();
    } catch (e) {
      expect((e as Error).message).not.toContain('vwxyz-secret');
      expect((e as Error).message).toMatch(/spaces/);
    }
  });
});

describe('IMDSv2 client against the metadata double', () => {
  const double = new ImdsDouble({ instanceId: 'i-0abc1234def567890', region: 'eu-west-1' });
  let client: ImdsClient;
  beforeAll(async () => {
    client = new ImdsClient(`http://127.0.0.1:${await double.start()}`, 1000, 1);
  });
  afterAll(() => double.stop());

  it('reads identity and user data with a session token, never without', async () => {
    expect(await client.identity()).toEqual({ instanceId: 'i-0abc1234def567890', region: 'eu-west-1' });
    expect(await client.userData()).toBeNull();
    double.setUserData('syntropy:\n  token_ssm_parameter: /p\n');
    expect(await client.userData()).toContain('token_ssm_parameter');
    expect(double.requests.filter((r) => r.method === 'GET').every((r) => r.withToken)).toBe(true);
    expect(double.requests.some((r) => r.method === 'PUT' && r.path === '/latest/api/token')).toBe(true);
  });

  it('reports an unreachable metadata service by its address', async () => {
    const dead = new ImdsClient('http://127.0.0.1:1', 200, 1);
    await expect(dead.identity()).rejects.toThrow('instance metadata service at http://127.0.0.1:1 did not answer');
  });
});

describe('SSM SecureString token', () => {
  const ssm = mockClient(SSMClient);
  afterEach(() => ssm.reset());
  const client = async (region: string) => new SSMClient({ region });

  it('reads the parameter with decryption', async () => {
    ssm.on(GetParameterCommand).resolves({ Parameter: { Name: '/syntropy/token', Type: 'SecureString', Value: TOKEN } });
    expect(await readTokenParameter('/syntropy/token', 'eu-west-1', client)).toBe(TOKEN);
    expect(ssm.commandCalls(GetParameterCommand)[0]!.args[0].input).toEqual({ Name: '/syntropy/token', WithDecryption: true });
  });

  const failures: [string, RegExp][] = [
    ['ParameterNotFound', /SSM parameter \/syntropy\/token in eu-west-1 does not exist/],
    ['AccessDeniedException', /instance role may not read SSM parameter \/syntropy\/token in eu-west-1: allow ssm:GetParameter .* kms:Decrypt/],
    ['ThrottlingException', /reading SSM parameter \/syntropy\/token in eu-west-1 failed: ThrottlingException/],
  ];
  for (const [name, msg] of failures) {
    it(`explains ${name}`, async () => {
      ssm.on(GetParameterCommand).rejects(Object.assign(new Error(`${name} happened`), { name }));
      await expect(readTokenParameter('/syntropy/token', 'eu-west-1', client)).rejects.toThrow(msg);
    });
  }

  it('refuses a plain String parameter and an invalid token without echoing the value', async () => {
    ssm.on(GetParameterCommand).resolves({ Parameter: { Type: 'String', Value: TOKEN } });
    const e1 = await readTokenParameter('/p', 'r', client).catch((e: Error) => e);
    expect((e1 as Error).message).toMatch(/is a String parameter; store the agent token as a SecureString/);
    expect((e1 as Error).message).not.toContain(TOKEN);
    ssm.reset();
    ssm.on(GetParameterCommand).resolves({ Parameter: { Type: 'SecureString', Value: 'has a space in it here' } });
    const e2 = await readTokenParameter('/p', 'r', client).catch((e: Error) => e);
    expect((e2 as Error).message).toMatch(/spaces/);
    expect((e2 as Error).message).not.toContain('has a space');
  });
});
