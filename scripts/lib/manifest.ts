// The build manifest: what the image is made of and how long each phase took, written next to
// the image so publishing and audits can trace every AMI or qcow2 back to its inputs.
import { cpSync, mkdirSync, readFileSync } from 'node:fs';
import { bundleFirstboot } from '../bundle-firstboot.ts';
import { join } from 'node:path';
import type { Config } from './config.ts';
import type { BuildContext, PackerFlavor } from './packer.ts';
import { REPO } from './paths.ts';
import { parseKeyValues } from '../../firstboot/src/state.ts';

export interface PackageEntry {
  name: string;
  version: string;
  arch: string;
}

export function parsePackages(tsv: string): PackageEntry[] {
  return tsv
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [name, version, arch] = line.split('\t');
      if (!name || !version) throw new Error(`malformed package line ${JSON.stringify(line)}`);
      return { name, version, arch: arch ?? '' };
    });
}

/** Bundles the first-boot service and copies it, its helpers and its units where Packer uploads from. */
export async function stageFirstboot(dest: string): Promise<void> {
  mkdirSync(dest, { recursive: true });
  await bundleFirstboot(join(dest, 'dist'));
  cpSync(join(REPO, 'firstboot', 'units'), join(dest, 'units'), { recursive: true });
  cpSync(join(REPO, 'firstboot', 'bin'), join(dest, 'bin'), { recursive: true });
}

export interface ManifestInput {
  cfg: Config;
  configHash: string;
  ctx: BuildContext;
  flavor: PackerFlavor;
  baseImage: Record<string, unknown>;
  outputs: Record<string, unknown>;
  durations: Record<string, number>;
  /** Directory holding what collect-manifest.sh downloaded. */
  dir: string;
}

export function buildManifest(m: ManifestInput): Record<string, unknown> {
  const read = (f: string) => readFileSync(join(m.dir, f), 'utf8');
  const kernel = Object.fromEntries(
    read('kernel.txt')
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split('=') as [string, string]),
  );
  const osRelease = parseKeyValues(read('os-release').replace(/"/g, ''));
  return {
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
    os: { pretty_name: osRelease.PRETTY_NAME, version_id: osRelease.VERSION_ID },
    kernel,
    agent_image: { ...parseKeyValues(read('agent-image.lock')) },
    rootfs: JSON.parse(read('rootfs.json')) as unknown,
    outputs: m.outputs,
    durations_s: m.durations,
    packages: parsePackages(read('packages.tsv')),
  };
}
