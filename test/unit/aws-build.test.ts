// The aws target's calls around Packer, against a registry double on loopback and the real
// AWS SDK v3 mocked at the client boundary.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mockClient } from 'aws-sdk-client-mock';
import { DescribeImagesCommand, EC2Client, ModifyImageAttributeCommand } from '@aws-sdk/client-ec2';
import { resolveDigest, repositoryPath } from '../../scripts/lib/bake/registry.ts';
import { findSourceAmi, requireImdsV2 } from '../../scripts/lib/bake/source-ami.ts';
import { amisOfArtifact } from '../../contracts/packer-manifest.ts';
import { loadConfig } from '../../scripts/lib/config.ts';

const DIGEST = `sha256:${'b'.repeat(64)}`;
// One mock for the whole file: mockClient stubs the class prototype.
const ec2 = mockClient(EC2Client);
afterEach(() => ec2.reset());
let server: Server;
let base = '';
const seen: { path: string; auth?: string; accept?: string }[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push({ path: req.url ?? '', auth: req.headers.authorization, accept: req.headers.accept });
    if (req.url?.startsWith('/token')) {
      const u = new URL(req.url, 'http://x');
      if (u.searchParams.get('scope') !== 'repository:syntropynet/agent:pull') return res.writeHead(403).end();
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: 'tok-1' }));
      return;
    }
    if (req.url === '/v2/syntropynet/agent/manifests/stable') {
      if (req.headers.authorization !== 'Bearer tok-1') {
        res
          .writeHead(401, {
            'www-authenticate': `Bearer realm="${base}/token",service="registry.test",scope="repository:syntropynet/agent:pull"`,
          })
          .end();
        return;
      }
      res.writeHead(200, { 'docker-content-digest': DIGEST }).end();
      return;
    }
    if (req.url === '/v2/syntropynet/agent/manifests/broken') return res.writeHead(200, { 'docker-content-digest': 'md5:x' }).end();
    if (req.url === '/v2/syntropynet/agent/manifests/down') return res.writeHead(503).end();
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe('agent digest resolution (registry API v2)', () => {
  it('follows the Bearer challenge and returns the manifest digest', async () => {
    expect(await resolveDigest('syntropynet/agent', 'stable', { registry: base })).toBe(DIGEST);
    const manifestCalls = seen.filter((s) => s.path.includes('/manifests/stable'));
    expect(manifestCalls.at(-1)?.auth).toBe('Bearer tok-1');
    expect(manifestCalls.at(-1)?.accept).toContain('application/vnd.oci.image.index.v1+json');
  });

  it('names the image and registry when the tag is missing, the digest is bad or the registry fails', async () => {
    await expect(resolveDigest('syntropynet/agent', 'nope', { registry: base })).rejects.toThrow(`tag not found: syntropynet/agent:nope at ${base}`);
    await expect(resolveDigest('syntropynet/agent', 'broken', { registry: base })).rejects.toThrow(/no valid Docker-Content-Digest/);
    await expect(resolveDigest('syntropynet/agent', 'down', { registry: base })).rejects.toThrow(/HTTP 503/);
    await expect(resolveDigest('syntropynet/agent', 'stable', { registry: 'http://127.0.0.1:1' })).rejects.toThrow(/cannot reach the registry/);
  });

  it('maps official images to library/', () => {
    expect(repositoryPath('alpine')).toBe('library/alpine');
    expect(repositoryPath('syntropynet/agent')).toBe('syntropynet/agent');
  });
});

describe('source AMI lookup', () => {
  const cfg = loadConfig({ overrides: [{ target: 'aws', aws: { region: 'eu-west-1' } }] }).config;

  it('picks the newest image the Packer filter would pick, asking with the same filter', async () => {
    ec2.on(DescribeImagesCommand).resolves({
      Images: [
        { ImageId: 'ami-old', Name: 'debian-13-amd64-20250101', CreationDate: '2025-01-01T00:00:00Z' },
        { ImageId: 'ami-new', Name: 'debian-13-amd64-20251101', CreationDate: '2025-11-01T00:00:00Z' },
      ],
    });
    const ami = await findSourceAmi(cfg, new EC2Client({ region: 'eu-west-1' }));
    expect(ami.imageId).toBe('ami-new');
    const input = ec2.commandCalls(DescribeImagesCommand)[0]!.args[0].input;
    expect(input.Owners).toEqual(['136693071363']);
    expect(input.Filters).toContainEqual({ Name: 'name', Values: ['debian-13-amd64-*'] });
    expect(input.Filters).toContainEqual({ Name: 'root-device-type', Values: ['ebs'] });
  });

  it('stops early with the filter in the message when nothing matches', async () => {
    ec2.on(DescribeImagesCommand).resolves({ Images: [] });
    await expect(findSourceAmi(cfg, new EC2Client({ region: 'eu-west-1' }))).rejects.toThrow(
      'no source AMI matches aws.source_ami_name="debian-13-amd64-*" owned by 136693071363 in eu-west-1',
    );
  });

  it('names the call and region when EC2 refuses', async () => {
    ec2.on(DescribeImagesCommand).rejects(Object.assign(new Error('not authorized'), { name: 'UnauthorizedOperation' }));
    await expect(findSourceAmi(cfg, new EC2Client({ region: 'eu-west-1' }))).rejects.toThrow(
      'EC2 DescribeImages in eu-west-1 failed: UnauthorizedOperation: not authorized',
    );
  });
});

describe('IMDSv2-only for AMIs built by Packer 1.6', () => {

  it('parses Packer artifact ids per region', () => {
    expect(amisOfArtifact('us-east-1:ami-0a1a1a1a1a1a1a1a1,eu-west-1:ami-0b2b2b2b2b2b2b2b2', 'packer-manifest.json')).toEqual({ 'us-east-1': 'ami-0a1a1a1a1a1a1a1a1', 'eu-west-1': 'ami-0b2b2b2b2b2b2b2b2' });
    expect(() => amisOfArtifact('garbage', 'packer-manifest.json')).toThrow(/packer-manifest.json: artifact_id .* is not region:ami-id/);
  });

  it('sets ImdsSupport=v2.0 on every copy and names the failing one', async () => {
    ec2.on(ModifyImageAttributeCommand).resolves({});
    await requireImdsV2({ 'us-east-1': 'ami-0a1a1a1a1a1a1a1a1', 'eu-west-1': 'ami-0b2b2b2b2b2b2b2b2' }, (region) => new EC2Client({ region }));
    const calls = ec2.commandCalls(ModifyImageAttributeCommand).map((c) => c.args[0].input);
    expect(calls).toEqual([
      { ImageId: 'ami-0a1a1a1a1a1a1a1a1', ImdsSupport: { Value: 'v2.0' } },
      { ImageId: 'ami-0b2b2b2b2b2b2b2b2', ImdsSupport: { Value: 'v2.0' } },
    ]);
    ec2.reset();
    ec2.on(ModifyImageAttributeCommand).rejects(new Error('InvalidAMIID.NotFound'));
    await expect(requireImdsV2({ 'eu-west-1': 'ami-0b2b2b2b2b2b2b2b2' }, (region) => new EC2Client({ region }))).rejects.toThrow(
      'for ami-0b2b2b2b2b2b2b2b2 in eu-west-1 failed: InvalidAMIID.NotFound',
    );
  });
});

describe('the aws build instance key (Debian 13 refuses ssh-rsa signatures)', () => {
  it('Packer 1.6.6: imports an ed25519 key pair tagged as the build\'s, hands it to Packer, deletes it once', async () => {
    const { importBuildKey } = await import('../../scripts/lib/bake/build-key.ts');
    const { throwawayKey } = await import('../../scripts/lib/guest/vm.ts');
    const { mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { ImportKeyPairCommand, DeleteKeyPairCommand } = await import('@aws-sdk/client-ec2');
    ec2.on(ImportKeyPairCommand).resolves({ KeyName: 'syntropy-build-b1', KeyFingerprint: 'x' });
    ec2.on(DeleteKeyPairCommand).resolves({});
    const key = await throwawayKey(mkdtempSync(join(tmpdir(), 'key-')), 'test');
    const k = await importBuildKey('eu-west-1', 'b1', key, new EC2Client({ region: 'eu-west-1' }));
    const input = ec2.commandCalls(ImportKeyPairCommand)[0]!.args[0].input;
    expect(input.KeyName).toBe('syntropy-build-b1');
    expect(Buffer.from(input.PublicKeyMaterial!).toString()).toMatch(/^ssh-ed25519 /);
    expect(input.TagSpecifications?.[0]?.Tags).toContainEqual({ Key: 'syntropy:role', Value: 'packer-builder' });
    expect(k.privateKeyFile).toBe(key.privateKey);
    await k.remove();
    await k.remove();
    expect(ec2.commandCalls(DeleteKeyPairCommand).map((c) => c.args[0].input)).toEqual([{ KeyName: 'syntropy-build-b1' }]);
    await expect(importBuildKey('eu-west-1', 'b2', { privateKey: '/x', publicKey: 'ssh-rsa AAAA' })).rejects.toThrow(/must be ed25519/);
  });

  it('packer: modern Packer makes an ed25519 temporary key pair; 1.6.6 gets the imported one through variables', async () => {
    const { readFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { REPO } = await import('../../scripts/lib/paths.ts');
    const { packerVars, stripModernOnly } = await import('../../scripts/lib/bake/packer.ts');
    const src = readFileSync(join(REPO, 'packer/sources.pkr.hcl'), 'utf8');
    expect(src).toMatch(/temporary_key_pair_type\s+= "ed25519"/);
    expect(stripModernOnly(src, 'sources.pkr.hcl')).not.toMatch(/temporary_key_pair_type/);
    expect(src).toMatch(/ssh_keypair_name\s+= var\.aws_ssh_keypair_name/);
    const { config } = loadConfig({ overrides: [{ target: 'aws' }] });
    const ctx = { buildId: 'b', buildTime: 't', gitSha: 'g', manifestDir: '', firstbootDir: '', hardeningDir: '', keysDir: '', agent: { ref: 'r', digest: DIGEST, archive: '' } };
    expect(packerVars(config, { ...ctx, awsKey: { name: 'syntropy-build-b', privateKeyFile: '/k/id_ed25519' } })).toMatchObject({ aws_ssh_keypair_name: 'syntropy-build-b', aws_ssh_private_key_file: '/k/id_ed25519' });
    expect(packerVars(config, ctx)).toMatchObject({ aws_ssh_keypair_name: '', aws_ssh_private_key_file: '' });
  });
});
