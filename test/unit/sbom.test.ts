// The image's CycloneDX SBOM (scripts/lib/bake/sbom.ts): valid against the CycloneDX 1.6 schema
// (the library's strict JSON validator), listing every package of the image's dpkg database, the
// agent image and the npm packages bundled into the image; and its sha256 tagged onto the AMIs.
import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mockClient } from 'aws-sdk-client-mock';
import { CreateTagsCommand, DescribeImagesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { JsonStrictValidator } from '@cyclonedx/cyclonedx-library/Validation';
import { Version } from '@cyclonedx/cyclonedx-library/Spec';
import { bundledNpmPackages, DPKG_LIST_FORMAT, makeSbom, sbomDpkgMismatch, serializeSbom, writeSbom } from '../../scripts/lib/bake/sbom.ts';
import { tagImages } from '../../scripts/lib/bake/source-ami.ts';
import { PackageURL } from 'packageurl-js';
import { buildOutput } from '../helpers/build-output.ts';

interface CdxComponent {
  type: string;
  name: string;
  group?: string;
  version?: string;
  purl?: string;
  properties?: { name: string; value: string }[];
}

const { manifest } = buildOutput('aws');

describe('SBOM', () => {
  it('is valid CycloneDX 1.6 and lists every package of the dpkg database, the agent image and the bundled npm packages', async () => {
    const npm = await bundledNpmPackages();
    const text = serializeSbom(makeSbom(manifest, npm).bom);
    expect(await new JsonStrictValidator(Version.v1dot6).validate(text)).toBeNull();
    const doc = JSON.parse(text) as { specVersion: string; components: CdxComponent[]; metadata: { component: CdxComponent } };
    expect(doc.specVersion).toBe('1.6');
    expect(doc.metadata.component).toMatchObject({ type: 'operating-system', name: manifest.image.name, version: manifest.image.version });
    for (const p of manifest.packages) {
      const c = doc.components.find((x) => x.name === p.name && x.version === p.version);
      expect(c, `${p.name} ${p.version}`).toBeDefined();
      // Read back with the purl reference implementation: type, namespace, name, version, qualifiers.
      const purl = PackageURL.fromString(c!.purl!);
      // upstream= names the source package when it differs (and its version when that differs), as Syft writes it.
      const up = p.source === p.name && p.source_version === p.version ? {} : { upstream: p.source_version === p.version ? p.source : `${p.source}@${p.source_version}` };
      expect({ type: purl.type, namespace: purl.namespace, name: purl.name, version: purl.version, qualifiers: purl.qualifiers }).toEqual({ type: 'deb', namespace: 'debian', name: p.name, version: p.version, qualifiers: { arch: p.arch, distro: 'debian-13', ...up } });
      expect(c!.properties).toContainEqual({ name: 'syntropy:deb-source', value: `${p.source} ${p.source_version}` });
    }
    expect(PackageURL.fromString(doc.components.find((c) => c.name === 'libxtables12')!.purl!).qualifiers).toEqual({ arch: 'amd64', distro: 'debian-13', upstream: 'iptables@1.8.11-2' });
    expect(PackageURL.fromString(doc.components.find((c) => c.name === 'libc6')!.purl!).qualifiers).toEqual({ arch: 'amd64', distro: 'debian-13', upstream: 'glibc' });
    expect(doc.components.filter((c) => c.purl?.startsWith('pkg:deb/'))).toHaveLength(manifest.packages.length);
    const docker = doc.components.find((c) => c.name === 'docker.io')!;
    expect(docker.properties).toContainEqual({ name: 'syntropy:role', value: 'container-runtime' });
    const agent = doc.components.find((c) => c.type === 'container')!;
    expect(agent).toMatchObject({ group: 'syntropynet', name: 'agent', version: manifest.agent_image.digest });
    const ap = PackageURL.fromString(agent.purl!);
    expect({ type: ap.type, name: ap.name, version: ap.version, repo: ap.qualifiers?.repository_url }).toEqual({ type: 'oci', name: 'agent', version: manifest.agent_image.digest, repo: 'docker.io/syntropynet/agent' });
    // The agent image's own packages, nested under it, with apk purls.
    const inner = (agent as CdxComponent & { components?: CdxComponent[] }).components ?? [];
    expect(inner.map((c) => c.purl).sort()).toEqual(['pkg:apk/alpine/iptables@1.8.11-r1?arch=x86_64', 'pkg:apk/alpine/libxtables@1.8.11-r1?arch=x86_64&upstream=iptables', 'pkg:apk/alpine/musl@1.2.5-r10?arch=x86_64']);
    expect(inner).toHaveLength(manifest.agent_packages!.length);
    // What esbuild put into the image, not what the repository happens to install.
    const npmNames = doc.components.filter((c) => c.purl?.startsWith('pkg:npm/')).map((c) => (c.group ? `${c.group}/${c.name}` : c.name));
    expect(npmNames).toContain('@aws-sdk/client-ssm');
    expect(npmNames).toContain('@aws-sdk/client-ec2');
    expect(npmNames).toContain('zod');
    for (const devOnly of ['vitest', 'aws-cdk-lib', 'typescript', 'esbuild', 'zx']) expect(npmNames).not.toContain(devOnly);
    const lock = JSON.parse(readFileSync('package-lock.json', 'utf8')) as { packages: Record<string, { version: string }> };
    expect(npm.find((n) => n.name === 'zod')?.version).toBe(lock.packages['node_modules/zod']!.version);
  });

  it('marks the kernel and is reproducible for the same build', async () => {
    const withKernel = { ...manifest, packages: [...manifest.packages, { name: 'linux-image-6.12.118+deb13-cloud-amd64', version: '6.12.118-1', arch: 'amd64' }] };
    const a = serializeSbom(makeSbom(withKernel, []).bom);
    const b = serializeSbom(makeSbom(withKernel, []).bom);
    expect(a).toBe(b);
    const kernel = (JSON.parse(a) as { components: CdxComponent[] }).components.find((c) => c.name.startsWith('linux-image-6'))!;
    expect(kernel.properties).toEqual(expect.arrayContaining([{ name: 'syntropy:role', value: 'kernel' }, { name: 'syntropy:kernel-running', value: '6.12.118+deb13-cloud-amd64' }]));
  });

  it('is written beside the manifest with the figures and sha256 the manifest records', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sbom-'));
    const rec = await writeSbom(manifest, dir);
    const text = readFileSync(join(dir, rec.file), 'utf8');
    expect(rec.sha256).toBe(createHash('sha256').update(text).digest('hex'));
    expect(rec.debian_packages).toBe(manifest.packages.length);
    expect(rec.agent_packages).toBe(3);
    expect(rec.components).toBe(rec.debian_packages + rec.npm_packages + rec.agent_images + rec.agent_packages!);
  });

  it("tags each AMI and its snapshots with the SBOM's sha256", async () => {
    const ec2 = mockClient(EC2Client);
    ec2.on(DescribeImagesCommand).resolves({ Images: [{ ImageId: 'ami-0123456789abcdef0', BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { SnapshotId: 'snap-0abc' } }] }] });
    ec2.on(CreateTagsCommand).resolves({});
    await tagImages({ 'us-east-1': 'ami-0123456789abcdef0' }, { 'syntropy:sbom-sha256': 'f'.repeat(64) });
    expect(ec2.commandCalls(CreateTagsCommand)[0]!.args[0].input).toEqual({ Resources: ['ami-0123456789abcdef0', 'snap-0abc'], Tags: [{ Key: 'syntropy:sbom-sha256', Value: 'f'.repeat(64) }] });
    ec2.restore();
  });

  it("is compared with a dpkg database as the boot test reads it (this host's, through the same format)", async () => {
    const { execFileSync } = await import('node:child_process');
    const list = execFileSync('dpkg-query', ['-W', '-f', DPKG_LIST_FORMAT], { encoding: 'utf8' });
    const installed = list.split('\n').filter((l) => /^[ih]i/.test(l)).map((l) => l.split('\t'));
    expect(installed.length).toBeGreaterThan(50);
    const packages = installed.map(([, name, version, arch]) => ({ name: name!, version: version!, arch: arch! }));
    const sbom = serializeSbom(makeSbom({ ...manifest, packages }, []).bom);
    expect(sbomDpkgMismatch(sbom, list)).toEqual([]);
    const [, n, v, a] = installed[0]!;
    const fewer = serializeSbom(makeSbom({ ...manifest, packages: packages.slice(1) }, []).bom);
    expect(sbomDpkgMismatch(fewer, list)).toEqual([`installed but not in the SBOM: ${n} ${v} ${a}`]);
    const extra = serializeSbom(makeSbom({ ...manifest, packages: [...packages, { name: 'ghost', version: '1.0', arch: 'amd64' }] }, []).bom);
    expect(sbomDpkgMismatch(extra, list)).toEqual(['in the SBOM but not installed: ghost 1.0 amd64']);
  });
});
