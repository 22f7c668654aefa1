import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImdsDouble, imdsNetdev } from '../../scripts/lib/guest/imds-double.ts';

const imds = new ImdsDouble({ instanceId: 'i-0123456789abcdef0', publicKeys: { build: 'ssh-ed25519 AAAAC3 build' }, maxTokenTtl: 60 });
let base = '';

async function token(ttl = '30'): Promise<string> {
  const r = await fetch(`${base}/latest/api/token`, { method: 'PUT', headers: { 'X-aws-ec2-metadata-token-ttl-seconds': ttl } });
  expect(r.status).toBe(200);
  return await r.text();
}

async function get(path: string, tok?: string): Promise<{ status: number; body: string }> {
  const r = await fetch(`${base}${path}`, { headers: tok ? { 'X-aws-ec2-metadata-token': tok } : {} });
  return { status: r.status, body: await r.text() };
}

beforeAll(async () => {
  base = `http://127.0.0.1:${await imds.start()}`;
});
afterAll(() => imds.stop());

describe('IMDSv2 double', () => {
  it('refuses IMDSv1 (no token) like an instance with HttpTokens=required', async () => {
    expect((await get('/latest/meta-data/instance-id')).status).toBe(401);
  });

  it('issues tokens only by PUT with a TTL in range', async () => {
    expect((await fetch(`${base}/latest/api/token`, { method: 'PUT' })).status).toBe(400);
    expect((await fetch(`${base}/latest/api/token`, { method: 'PUT', headers: { 'X-aws-ec2-metadata-token-ttl-seconds': '61' } })).status).toBe(400);
    expect((await fetch(`${base}/latest/api/token`)).status).toBe(405);
    const proxied = await fetch(`${base}/latest/api/token`, {
      method: 'PUT',
      headers: { 'X-aws-ec2-metadata-token-ttl-seconds': '10', 'X-Forwarded-For': '1.2.3.4' },
    });
    expect(proxied.status).toBe(403);
  });

  it('rejects a forged or expired token', async () => {
    expect((await get('/latest/meta-data/instance-id', 'forged')).status).toBe(401);
    const short = await token('1');
    await new Promise((r) => setTimeout(r, 1100));
    expect((await get('/latest/meta-data/instance-id', short)).status).toBe(401);
  });

  it('serves the metadata tree with EC2 listings under any known version', async () => {
    const t = await token();
    expect(await get('/latest/meta-data/instance-id', t)).toEqual({ status: 200, body: 'i-0123456789abcdef0' });
    expect((await get('/2021-03-23/meta-data/instance-id', t)).body).toBe('i-0123456789abcdef0');
    const listing = (await get('/latest/meta-data/', t)).body.split('\n');
    expect(listing).toContain('instance-id');
    expect(listing).toContain('placement/');
    expect(listing).toContain('public-keys/');
    expect((await get('/latest/meta-data/public-keys/', t)).body).toBe('0=build');
    expect((await get('/latest/meta-data/public-keys/0/openssh-key', t)).body).toBe('ssh-ed25519 AAAAC3 build');
    expect((await get('/latest/meta-data/placement/region', t)).body).toBe('us-east-1');
    expect((await get('/latest/meta-data/network/interfaces/macs/52:54:00:12:34:56/local-ipv4s', t)).body).toBe('169.254.169.15');
    expect((await get('/latest/meta-data/nope', t)).status).toBe(404);
    expect((await get('/1999-01-01/meta-data/', t)).status).toBe(404);
    const doc = JSON.parse((await get('/latest/dynamic/instance-identity/document', t)).body) as { instanceId: string };
    expect(doc.instanceId).toBe('i-0123456789abcdef0');
  });

  it('answers 404 for user data until some is set, then serves it verbatim', async () => {
    const t = await token();
    expect((await get('/latest/user-data', t)).status).toBe(404);
    imds.setUserData('#cloud-config\nsyntropy:\n  port_range: 50000-50100\n');
    expect((await get('/latest/user-data', t)).body).toContain('port_range: 50000-50100');
    imds.setUserData(undefined);
  });

  it('records every request with its status and whether it carried a token', async () => {
    const v1 = imds.requests.filter((r) => r.path === '/latest/meta-data/instance-id' && !r.withToken);
    expect(v1.every((r) => r.status === 401)).toBe(true);
    expect(imds.requests.some((r) => r.withToken && r.status === 200)).toBe(true);
  });
});

describe('imdsNetdev', () => {
  it('forwards only the metadata address to the loopback double, with IPv6 off and a per-connection relay', () => {
    const v = imdsNetdev({ id: 'user.0', imdsPort: 4242, hostfwd: ['tcp:127.0.0.1:{{ .SSHHostPort }}-:22'] });
    expect(v).toBe(
      'user,id=user.0,net=169.254.169.0/24,ipv6=off,guestfwd=tcp:169.254.169.254:80-cmd:socat STDIO TCP:127.0.0.1:4242,hostfwd=tcp:127.0.0.1:{{ .SSHHostPort }}-:22',
    );
    // QEMU splits -netdev on commas: the relay command must not contain one.
    expect(v.split(',').find((p) => p.startsWith('guestfwd='))).toContain('TCP:127.0.0.1:4242');
  });
});
