// The rehearsal's own parts, without the emulator: the loopback guard, the fault proxy, the
// registry double, and the config the rehearsal builds with. (The rehearsal itself runs in CI:
// `npm run rehearse`, .ci/run.)
import { afterEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { DescribeImagesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { emulatorEnv, requireLoopbackEndpoints } from '../../scripts/lib/rehearsal/env.ts';
import { FaultProxy } from '../../scripts/lib/rehearsal/fault-proxy.ts';
import { imageFromDockerArchive, MANIFEST_V2, RegistryDouble } from '../../scripts/lib/emulator/registry-double.ts';
import { previousRelease, rehearsalConfig } from '../../scripts/lib/rehearsal/run.ts';
import { loadConfig, validateConfig } from '../../scripts/lib/config.ts';
import { ec2EndpointFromEnv, packerVars, stageKeys } from '../../scripts/lib/bake/packer.ts';
import { debianOfficialAmi } from '../../scripts/lib/emulator/moto.ts';
import { leftovers, newImages, type Inventory } from '../../scripts/lib/rehearsal/inventory.ts';

const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (stops.length) await stops.pop()!();
});

const sha = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe('loopback guard', () => {
  const base = { AWS_ENDPOINT_URL: 'http://127.0.0.1:5000', AWS_EC2_METADATA_DISABLED: 'true' };

  it('accepts the emulator environment it builds, and strips the parent\'s AWS settings', () => {
    const env = emulatorEnv('http://127.0.0.1:5000', 'us-east-1', { PATH: '/bin', AWS_PROFILE: 'prod', AWS_ENDPOINT_URL_SSM: 'https://ssm.us-east-1.amazonaws.com' });
    expect(env.AWS_PROFILE).toBeUndefined();
    expect(env.AWS_ENDPOINT_URL_SSM).toBeUndefined();
    expect(env.AWS_ENDPOINT_URL).toBe('http://127.0.0.1:5000');
    expect(env.AWS_EC2_METADATA_DISABLED).toBe('true');
    expect(env.PATH).toBe('/bin');
  });

  it('refuses any endpoint that is not loopback, a missing endpoint, other credentials and IMDS', () => {
    expect(() => requireLoopbackEndpoints({ ...base, AWS_ENDPOINT_URL_EC2: 'https://ec2.us-east-1.amazonaws.com' })).toThrow(/AWS_ENDPOINT_URL_EC2 points at ec2.us-east-1.amazonaws.com, not loopback/);
    expect(() => requireLoopbackEndpoints({ ...base, AWS_ENDPOINT_URL: 'http://10.0.0.5:5000' })).toThrow(/not loopback/);
    expect(() => requireLoopbackEndpoints({ AWS_EC2_METADATA_DISABLED: 'true' })).toThrow(/needs AWS_ENDPOINT_URL/);
    expect(() => requireLoopbackEndpoints({ ...base, AWS_PROFILE: 'prod' })).toThrow(/credentials other than/);
    expect(() => requireLoopbackEndpoints({ AWS_ENDPOINT_URL: 'http://127.0.0.1:5000' })).toThrow(/AWS_EC2_METADATA_DISABLED/);
    expect(() => requireLoopbackEndpoints({ ...base, AWS_ENDPOINT_URL_S3: 'not a url' })).toThrow(/is not a URL/);
    expect(() => requireLoopbackEndpoints({ ...base, AWS_ENDPOINT_URL_SSM: 'http://localhost:1' })).not.toThrow();
  });

  it('Packer gets the EC2 endpoint the SDK would use', () => {
    expect(ec2EndpointFromEnv({ AWS_ENDPOINT_URL: 'http://127.0.0.1:1' })).toBe('http://127.0.0.1:1');
    expect(ec2EndpointFromEnv({ AWS_ENDPOINT_URL: 'http://127.0.0.1:1', AWS_ENDPOINT_URL_EC2: 'http://127.0.0.1:2' })).toBe('http://127.0.0.1:2');
    expect(ec2EndpointFromEnv({})).toBe('');
  });
});

/** A stand-in upstream that records what reached it and answers like EC2/SSM would. */
async function upstream(): Promise<{ port: number; seen: string[] }> {
  const seen: string[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const target = req.headers['x-amz-target'];
      if (typeof target === 'string') {
        seen.push(target);
        res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
        res.end(JSON.stringify({ Parameter: { Name: '/p', Value: 'v', Type: 'String' } }));
        return;
      }
      seen.push(new URLSearchParams(Buffer.concat(chunks).toString()).get('Action') ?? '');
      res.writeHead(200, { 'content-type': 'text/xml' });
      res.end('<DescribeImagesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r</requestId><imagesSet/></DescribeImagesResponse>');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  stops.push(() => new Promise((r) => server.close(() => r())));
  return { port: (server.address() as AddressInfo).port, seen };
}

describe('fault proxy', () => {
  it('fails exactly the armed call, in the protocol the SDK parses, and forwards the rest', async () => {
    const up = await upstream();
    const proxy = new FaultProxy(up.port);
    const endpoint = await proxy.start();
    stops.push(() => proxy.stop());
    const credentials = { accessKeyId: 'AKIAREHEARSAL0000000', secretAccessKey: 'x' };
    const ec2 = new EC2Client({ region: 'us-east-1', endpoint, credentials, maxAttempts: 1 });
    const ssm = new SSMClient({ region: 'us-east-1', endpoint, credentials, maxAttempts: 1 });
    proxy.arm([{ action: 'DescribeImages', nth: 2 }, { action: 'GetParameter', nth: 1 }]);
    await expect(ec2.send(new DescribeImagesCommand({}))).resolves.toBeDefined();
    const err = await ec2.send(new DescribeImagesCommand({})).catch((e: Error) => e);
    expect((err as Error).name).toBe('UnauthorizedOperation');
    expect((err as Error).message).toMatch(/injected by the rehearsal: DescribeImages call 2 fails/);
    await expect(ec2.send(new DescribeImagesCommand({}))).resolves.toBeDefined();
    const serr = await ssm.send(new GetParameterCommand({ Name: '/p' })).catch((e: Error) => e);
    expect((serr as Error).name).toBe('AccessDeniedException');
    await expect(ssm.send(new GetParameterCommand({ Name: '/p' }))).resolves.toMatchObject({ Parameter: { Value: 'v' } });
    expect(up.seen).toEqual(['DescribeImages', 'DescribeImages', 'AmazonSSM.GetParameter']);
    expect(proxy.injected).toEqual([{ action: 'DescribeImages', nth: 2 }, { action: 'GetParameter', nth: 1 }]);
  });
});

describe('fault proxy hooks', () => {
  it('holds a call until its hook is done (the build instance powers its guest off before EC2 stops it)', async () => {
    const up = await upstream();
    const proxy = new FaultProxy(up.port);
    const endpoint = await proxy.start();
    stops.push(() => proxy.stop());
    const order: string[] = [];
    proxy.onCall('DescribeImages', async (request) => {
      order.push(`hook saw ${/Action=DescribeImages/.test(request) ? 'the request' : 'nothing'}`);
      await new Promise((r) => setTimeout(r, 300));
      order.push('hook done');
    });
    const ec2 = new EC2Client({ region: 'us-east-1', endpoint, credentials: { accessKeyId: 'AKIAREHEARSAL0000000', secretAccessKey: 'x' }, maxAttempts: 1 });
    const t0 = Date.now();
    await ec2.send(new DescribeImagesCommand({}));
    order.push('answered');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    expect(order).toEqual(['hook saw the request', 'hook done', 'answered']);
    expect(up.seen).toEqual(['DescribeImages']);
    proxy.onCall('DescribeImages', null);
    await ec2.send(new DescribeImagesCommand({}));
    expect(order).toHaveLength(3);
  });
});

describe('registry double', () => {
  function archive(): string {
    const dir = mkdtempSync(join(tmpdir(), 'reg-'));
    const config = JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha('layer')] } });
    writeFileSync(join(dir, 'cfg.json'), config);
    mkdirSync(join(dir, 'l1'));
    writeFileSync(join(dir, 'l1', 'layer.tar'), 'layer');
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify([{ Config: 'cfg.json', RepoTags: ['x:y'], Layers: ['l1/layer.tar'] }]));
    return dir;
  }

  it('serves a schema-2 manifest whose sha256 is the pinned digest, and blobs that match their digests', async () => {
    const image = imageFromDockerArchive(archive(), 'syntropynet/agent');
    const m = JSON.parse(image.manifest.toString()) as { mediaType: string; config: { digest: string }; layers: { digest: string; mediaType: string }[] };
    expect(image.digest).toBe(sha(image.manifest));
    expect(m.mediaType).toBe(MANIFEST_V2);
    expect(m.layers[0]!.mediaType).toBe('application/vnd.docker.image.rootfs.diff.tar.gzip');
    const reg = new RegistryDouble(image);
    const port = await reg.start();
    stops.push(() => reg.stop());
    const base = `http://127.0.0.1:${port}/v2`;
    expect((await fetch(`${base}/`)).status).toBe(200);
    const man = await fetch(`${base}/syntropynet/agent/manifests/${image.digest}`);
    expect(man.headers.get('content-type')).toBe(MANIFEST_V2);
    expect(man.headers.get('docker-content-digest')).toBe(image.digest);
    expect(sha(Buffer.from(await man.arrayBuffer()))).toBe(image.digest);
    const layer = Buffer.from(await (await fetch(`${base}/syntropynet/agent/blobs/${m.layers[0]!.digest}`)).arrayBuffer());
    expect(sha(layer)).toBe(m.layers[0]!.digest);
    expect(gunzipSync(layer).toString()).toBe('layer');
    const cfg = Buffer.from(await (await fetch(`${base}/syntropynet/agent/blobs/${m.config.digest}`)).arrayBuffer());
    expect(sha(cfg)).toBe(m.config.digest);
    // By digest only, this repository only, reads only.
    expect((await fetch(`${base}/syntropynet/agent/manifests/latest`)).status).toBe(404);
    expect((await fetch(`${base}/library/other/manifests/${image.digest}`)).status).toBe(404);
    expect((await fetch(`${base}/syntropynet/agent/blobs/uploads/`, { method: 'POST' })).status).toBe(405);
  });
});

describe('the rehearsal config', () => {
  it('is a valid project config for an aws build that reaches the doubles', () => {
    const dir = mkdtempSync(join(tmpdir(), 'keys-'));
    writeFileSync(join(dir, 'amazon-ssm-agent.asc'), 'key');
    writeFileSync(join(dir, 'amazon-ssm-agent.fingerprint'), `${'A'.repeat(40)}\n`);
    const raw = rehearsalConfig({ outputDir: '/tmp/o', sshPort: 2222, agentDigest: `sha256:${'b'.repeat(64)}`, ssmKeyFile: join(dir, 'amazon-ssm-agent.asc') });
    const cfg = validateConfig(raw, 'rehearsal');
    expect(cfg.target).toBe('aws');
    expect(cfg.agent.registry_mirror).toBe('http://169.254.169.252');
    const ctx = { buildId: 'b', buildTime: 't', gitSha: 'g', manifestDir: '', firstbootDir: '', hardeningDir: '', keysDir: '', agent: { ref: 'r', digest: 'd', archive: '' }, ec2Endpoint: 'http://127.0.0.1:9' };
    const vars = packerVars(cfg, ctx);
    expect(vars).toMatchObject({ aws_ec2_endpoint: 'http://127.0.0.1:9', aws_ssh_host: '127.0.0.1', aws_ssh_port: 2222 });
    expect((vars.provisioner_env as Record<string, string[]>)['install-ssm-agent.sh']).toContain('SSM_AGENT_BASE_URL=http://169.254.169.251');
    expect((vars.provisioner_env as Record<string, string[]>)['preload-agent.sh']).toContain('AGENT_REGISTRY_MIRROR=http://169.254.169.252');
    const staged = mkdtempSync(join(tmpdir(), 'staged-'));
    stageKeys(cfg, staged);
  });

  it('stageKeys refuses a key without its fingerprint file, and a registry mirror that is not a registry root', () => {
    const dir = mkdtempSync(join(tmpdir(), 'keys-'));
    writeFileSync(join(dir, 'k.asc'), 'key');
    const { config } = loadConfig({ overrides: [{ aws: { ssm_agent_key_file: join(dir, 'k.asc') } }] });
    expect(() => stageKeys(config, mkdtempSync(join(tmpdir(), 's-')))).toThrow(/k.fingerprint does not exist/);
    expect(() => loadConfig({ overrides: [{ agent: { registry_mirror: 'http://mirror.example/v2/x' } }] })).toThrow(/agent.registry_mirror: must be a registry root URL/);
  });

  it('seeds the emulator with a Debian 13 AMI the build\'s source filter finds, and an old release of this product', () => {
    const { config } = loadConfig({});
    const deb = debianOfficialAmi(config, new Date('2026-12-01T00:00:00Z'));
    expect(deb.name).toMatch(new RegExp(`^${config.aws.source_ami_name.replace('*', '.*')}$`));
    expect(deb).toMatchObject({ owner_id: '136693071363', architecture: 'x86_64', virtualization_type: 'hvm', root_device_type: 'ebs' });
    const old = previousRelease(config, new Date('2026-12-01T00:00:00Z'));
    expect(Date.parse(old.creation_date)).toBeLessThan(Date.parse('2026-12-01') - config.retention.max_age_days * 86_400_000);
    expect(old.tags['syntropy:image']).toBe(config.image.name);
  });
});

describe('inventory', () => {
  const empty = { instances: [], images: [], snapshots: [], keyPairs: [], securityGroups: [], parameters: {} };
  it('names what a step left behind and what it registered', () => {
    const before: Inventory = { 'us-east-1': { ...empty, images: [{ id: 'ami-1', name: 'a', buildId: '', snapshots: [] }], snapshots: ['snap-1'] } };
    const after: Inventory = {
      'us-east-1': {
        ...empty,
        instances: [{ id: 'i-1', state: 'stopped', role: 'packer-builder' }],
        keyPairs: ['syntropy-build-x'],
        securityGroups: ['sg-1 packer_x'],
        images: [{ id: 'ami-1', name: 'a', buildId: '', snapshots: [] }, { id: 'ami-2', name: 'b', buildId: 'x', snapshots: ['snap-2'] }],
        snapshots: ['snap-1', 'snap-2'],
      },
    };
    expect(leftovers(after)).toEqual(['us-east-1: instance i-1 (stopped, role packer-builder)', 'us-east-1: key pair syntropy-build-x', 'us-east-1: security group sg-1 packer_x']);
    expect(newImages(before, after)).toEqual(['us-east-1: image ami-2 b', 'us-east-1: snapshot snap-2']);
    expect(leftovers(before)).toEqual([]);
  });
});
