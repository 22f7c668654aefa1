// The image's software bill of materials, CycloneDX 1.6 JSON, written beside the build manifest
// (sbom.cdx.json) with @cyclonedx/cyclonedx-library: every Debian package of the image's dpkg
// database (the kernel and Docker among them, marked), the preloaded agent image, and the npm
// packages bundled into first boot and the route failover (read from the bundler's own record
// of its inputs, with versions from package-lock.json).
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';
import { Bom, Component, ExternalReference, Property } from '@cyclonedx/cyclonedx-library/Models';
import { ComponentType, ExternalReferenceType } from '@cyclonedx/cyclonedx-library/Enums';
import { JsonSerializer, JSON as CdxJson } from '@cyclonedx/cyclonedx-library/Serialize';
import { Spec1dot6 } from '@cyclonedx/cyclonedx-library/Spec';
import { PackageURL } from 'packageurl-js';
import { REPO } from '../paths.ts';
import type { AgentPackage, BuildManifest, PackageEntry } from '../../../contracts/build-manifest.ts';
import { BUNDLES } from './firstboot-stage.ts';

export interface NpmPackage {
  name: string;
  version: string;
  /** The bundle(s) it is compiled into. */
  bundles: string[];
}

/** The npm packages esbuild actually put into the image's bundles, with their locked versions. */
export async function bundledNpmPackages(lockFile = join(REPO, 'package-lock.json')): Promise<NpmPackage[]> {
  const lock = JSON.parse(readFileSync(lockFile, 'utf8')) as { packages: Record<string, { version?: string }> };
  const found = new Map<string, NpmPackage>();
  for (const b of BUNDLES) {
    const r = await build({ entryPoints: [b.entry], bundle: true, platform: 'node', target: 'node20', format: 'esm', write: false, metafile: true, logLevel: 'silent', outfile: '/dev/null' });
    for (const input of Object.keys(r.metafile!.inputs)) {
      // node_modules/<name>/... or node_modules/@scope/name/..., innermost node_modules wins.
      const m = /(?:^|\/)node_modules\/((?:@[^/]+\/)?[^/]+)\/(?!.*node_modules\/)/.exec(input);
      if (!m) continue;
      // The lockfile's key: from the first node_modules/ on (esbuild may report the path through
      // a symlinked node_modules, e.g. ../../elsewhere/node_modules/x).
      const full = input.slice(0, input.lastIndexOf(`node_modules/${m[1]}/`) + `node_modules/${m[1]}`.length);
      const dir = full.slice(full.indexOf('node_modules/'));
      const version = lock.packages[dir]?.version;
      if (!version) throw new Error(`${dir} is bundled into ${b.out} but package-lock.json has no version for it`);
      const key = `${m[1]}@${version}`;
      const entry = found.get(key) ?? { name: m[1]!, version, bundles: [] };
      if (!entry.bundles.includes(b.out)) entry.bundles.push(b.out);
      found.set(key, entry);
    }
  }
  return [...found.values()].sort((a, b) => (a.name === b.name ? a.version.localeCompare(b.version) : a.name.localeCompare(b.name)));
}

const KERNEL = /^linux-image-/;
const DOCKER = /^(docker\.io|docker-cli|containerd|runc)$/;

/** The purl `upstream` qualifier for a binary package built from another source (or version): `src` or `src@ver`, as Syft writes it and Grype reads it. */
function upstream(p: { name: string; version: string; source?: string; source_version?: string }): Record<string, string> {
  const src = p.source ?? p.name;
  const ver = p.source_version ?? p.version;
  if (src === p.name && ver === p.version) return {};
  return { upstream: ver === p.version ? src : `${src}@${ver}` };
}

/** purl of a Debian binary package (purl-spec: pkg:deb/debian/<name>@<version>?arch=&distro=, plus upstream=<source> when it differs). */
export function debPurl(p: PackageEntry, distro: string): string {
  return new PackageURL('deb', 'debian', p.name, p.version, { arch: p.arch, distro, ...upstream(p) }, undefined).toString();
}

/** purl of a package inside the agent image: pkg:apk/alpine/... or pkg:deb/debian/... (no distro: the image's own). */
export function agentPackagePurl(p: AgentPackage): string {
  return new PackageURL(p.kind, p.kind === 'apk' ? 'alpine' : 'debian', p.name, p.version, { arch: p.arch, ...upstream(p) }, undefined).toString();
}

export interface SbomFigures {
  components: number;
  debian_packages: number;
  npm_packages: number;
  agent_images: number;
  agent_packages: number;
}

export function makeSbom(m: Pick<BuildManifest, 'build_id' | 'built_at' | 'image' | 'os' | 'packages' | 'agent_image' | 'agent_packages' | 'kernel' | 'git_sha'>, npm: NpmPackage[]): { bom: Bom; figures: SbomFigures } {
  const distro = `debian-${m.os.version_id}`;
  const bom = new Bom({ serialNumber: `urn:uuid:${uuidFrom(m.build_id + m.git_sha)}` });
  bom.metadata.timestamp = new Date(m.built_at);
  bom.metadata.tools.components.add(new Component(ComponentType.Application, 'syntropy-ami sbom', { group: 'syntropy', version: '1' }));
  bom.metadata.component = new Component(ComponentType.OperatingSystem, m.image.name, {
    version: m.image.version,
    description: `Syntropy agent appliance on CIS-hardened ${m.os.pretty_name}, build ${m.build_id}`,
    bomRef: `image:${m.image.name}@${m.image.version}+${m.build_id}`,
  });
  const running = m.kernel.running ?? '';
  for (const p of m.packages) {
    const c = new Component(ComponentType.Library, p.name, { version: p.version, purl: debPurl(p, distro), bomRef: `deb:${p.name}@${p.version}:${p.arch}` });
    if (KERNEL.test(p.name)) {
      c.properties.add(new Property('syntropy:role', 'kernel'));
      if (p.name.endsWith(running)) c.properties.add(new Property('syntropy:kernel-running', running));
    }
    if (DOCKER.test(p.name)) c.properties.add(new Property('syntropy:role', 'container-runtime'));
    if (p.source) c.properties.add(new Property('syntropy:deb-source', `${p.source} ${p.source_version ?? p.version}`));
    bom.components.add(c);
  }
  const a = m.agent_image;
  const [repo] = a.ref.split('@');
  const agent = new Component(ComponentType.Container, repo!.split('/').pop()!, {
    group: repo!.includes('/') ? repo!.slice(0, repo!.lastIndexOf('/')) : undefined,
    version: a.digest,
    purl: new PackageURL('oci', undefined, repo!.split('/').pop()!, a.digest, { repository_url: a.source === 'registry' ? `docker.io/${repo}` : repo! }, undefined).toString(),
    bomRef: `oci:${a.ref}`,
    description: a.source === 'registry' ? 'the Syntropy agent, preloaded by digest' : 'TEST DOUBLE of the Syntropy agent (local builds only)',
  });
  agent.properties.add(new Property('syntropy:image-id', a.id));
  agent.properties.add(new Property('syntropy:source', a.source));
  agent.externalReferences.add(new ExternalReference('https://hub.docker.com/r/syntropynet/agent', ExternalReferenceType.Distribution));
  // The image's layers' packages, nested under it (CycloneDX component.components).
  const agentPackages = m.agent_packages ?? [];
  for (const p of agentPackages) {
    const c = new Component(ComponentType.Library, p.name, { version: p.version, purl: agentPackagePurl(p), bomRef: `oci:${a.digest}:${p.kind}:${p.name}@${p.version}` });
    c.properties.add(new Property('syntropy:in-container-image', a.ref));
    agent.components.add(c);
  }
  bom.components.add(agent);
  for (const n of npm) {
    const [ns, name] = n.name.startsWith('@') ? n.name.split('/') : [undefined, n.name];
    const c = new Component(ComponentType.Library, name!, { group: ns, version: n.version, purl: new PackageURL('npm', ns, name!, n.version, undefined, undefined).toString(), bomRef: `npm:${n.name}@${n.version}` });
    c.properties.add(new Property('syntropy:bundled-into', n.bundles.join(',')));
    bom.components.add(c);
  }
  return {
    bom,
    figures: { components: bom.components.size + agentPackages.length, debian_packages: m.packages.length, npm_packages: npm.length, agent_images: 1, agent_packages: agentPackages.length },
  };
}

export function serializeSbom(bom: Bom): string {
  const serializer = new JsonSerializer(new CdxJson.Normalize.Factory(Spec1dot6));
  return `${serializer.serialize(bom, { sortLists: true, space: 2 })}\n`;
}

/** A stable UUID (version 5 style layout) from a name, so a rebuild of the same build ID agrees. */
function uuidFrom(name: string): string {
  const h = createHash('sha1').update(name).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

export const SBOM_FILE = 'sbom.cdx.json';

/** Writes <dir>/sbom.cdx.json for a build; returns what the build manifest records of it. */
export async function writeSbom(m: Parameters<typeof makeSbom>[0], dir: string): Promise<NonNullable<BuildManifest['sbom']>> {
  const { bom, figures } = makeSbom(m, await bundledNpmPackages());
  const text = serializeSbom(bom);
  writeFileSync(join(dir, SBOM_FILE), text);
  return { file: SBOM_FILE, format: 'CycloneDX 1.6 JSON', sha256: createHash('sha256').update(text).digest('hex'), ...figures };
}

/** The `dpkg-query` format whose output `sbomDpkgMismatch` compares with (one package per line). */
export const DPKG_LIST_FORMAT = '${db:Status-Abbrev}\\t${Package}\\t${Version}\\t${Architecture}\\n';

/**
 * How an SBOM and an image's dpkg database disagree: installed packages (status ii/hi) the SBOM
 * lacks, and Debian components of the SBOM the image does not have installed. Empty: they agree.
 */
export function sbomDpkgMismatch(sbomJson: string, dpkgList: string): string[] {
  const doc = JSON.parse(sbomJson) as { components?: { purl?: string }[] };
  const inSbom = new Set<string>();
  for (const c of doc.components ?? []) {
    if (!c.purl?.startsWith('pkg:deb/')) continue;
    const p = PackageURL.fromString(c.purl);
    inSbom.add(`${p.name} ${p.version} ${p.qualifiers?.arch ?? ''}`);
  }
  const installed = new Set<string>();
  for (const line of dpkgList.split('\n')) {
    const [status, name, version, arch] = line.split('\t');
    if (!name || !status || !/^[ih]i/.test(status)) continue;
    installed.add(`${name} ${version} ${arch}`);
  }
  return [
    ...[...installed].filter((x) => !inSbom.has(x)).map((x) => `installed but not in the SBOM: ${x}`),
    ...[...inSbom].filter((x) => !installed.has(x)).map((x) => `in the SBOM but not installed: ${x}`),
  ];
}
