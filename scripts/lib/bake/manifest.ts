// The build manifest: what the image is made of and how long each phase took, written next to
// the image so publishing and audits can trace every AMI or qcow2 back to its inputs. This is
// the only writer of build-manifest.json; its shape is contracts/build-manifest.ts.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { parseApkInstalled, parseDpkgStatus } from './package-db.ts';
import { join } from 'node:path';
import type { Config } from '../config.ts';
import type { BuildContext, PackerFlavor } from './packer.ts';
import type { Report } from '../../../hardening/report.ts';
import type { RetriedPanic } from './run-packer.ts';
import { BuildManifestSchema, type BuildManifest, type PackageEntry } from '../../../contracts/build-manifest.ts';
import { parseAgentImageLock } from '../../../contracts/agent-image-lock.ts';
import { contractJson, parseContract, parseKeyValues } from '../../../contracts/parse.ts';

export function parsePackages(tsv: string): PackageEntry[] {
  return tsv
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [name, version, arch, source, sourceVersion] = line.split('\t');
      if (!name || !version) throw new Error(`malformed package line ${JSON.stringify(line)}`);
      return { name, version, arch: arch ?? '', ...(source ? { source } : {}), ...(sourceVersion ? { source_version: sourceVersion } : {}) };
    });
}

export interface ManifestInput {
  cfg: Config;
  configHash: string;
  ctx: BuildContext;
  flavor: PackerFlavor;
  baseImage: BuildManifest['base_image'];
  outputs: BuildManifest['outputs'];
  durations: Record<string, number>;
  /** Build guests whose kernel panicked and were started again (scripts/lib/bake/run-packer.ts). */
  guestPanics?: RetriedPanic[];
  /** Directory holding what collect-manifest.sh downloaded (image-info.tar, unpacked). */
  dir: string;
  compliance: { hardened: Report; baseline: Report | null };
}

export function buildManifest(m: ManifestInput): BuildManifest {
  const file = (f: string) => join(m.dir, f);
  const read = (f: string) => readFileSync(file(f), 'utf8');
  const kernel = Object.fromEntries(
    read('kernel.txt')
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split('=') as [string, string]),
  );
  const osRelease = parseKeyValues(read('os-release').replace(/"/g, ''));
  const { hardened, baseline } = m.compliance;
  const packages = parsePackages(read('packages.tsv'));
  const agentPackages = [
    ...(existsSync(file('agent-packages/dpkg-status')) ? parseDpkgStatus(read('agent-packages/dpkg-status')) : []),
    ...(existsSync(file('agent-packages/apk-installed')) ? parseApkInstalled(read('agent-packages/apk-installed')) : []),
  ];
  const ssm = packages.find((p) => p.name === 'amazon-ssm-agent');
  return parseContract(
    BuildManifestSchema,
    {
      schema: 1,
      build_id: m.ctx.buildId,
      built_at: m.ctx.buildTime,
      target: m.cfg.target,
      image: { name: m.cfg.image.name, version: m.cfg.image.version },
      git_sha: m.ctx.gitSha,
      config_sha256: m.configHash,
      config: m.cfg,
      packer: m.flavor,
      base_image: m.baseImage,
      os: { pretty_name: osRelease.PRETTY_NAME ?? '', version_id: osRelease.VERSION_ID ?? '' },
      kernel,
      agent_image: parseAgentImageLock(read('agent-image.lock'), file('agent-image.lock')),
      ssm_agent: ssm ? { version: ssm.version } : null,
      rootfs: JSON.parse(read('rootfs.json')) as unknown,
      outputs: m.outputs,
      durations_s: m.durations,
      ...(m.guestPanics?.length ? { guest_panics: m.guestPanics } : {}),
      packages,
      agent_packages: agentPackages,
      compliance: {
        benchmark: hardened.benchmark,
        passed: hardened.passed,
        hardened: hardened.summary,
        baseline: baseline?.summary ?? null,
        reports: 'reports/compliance.{json,junit.xml,md}',
      },
    },
    `build manifest of ${m.ctx.buildId}`,
  );
}

export function writeBuildManifest(file: string, manifest: BuildManifest): void {
  writeFileSync(file, contractJson(BuildManifestSchema, manifest, file));
}
