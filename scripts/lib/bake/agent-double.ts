// Builds the agent TEST DOUBLE as a docker-archive (the `docker save` format) from Debian
// packages, without a Docker engine: one layer from an mmdebstrap root, a config whose sha256
// is the image ID, and a manifest. Local images preload it; the aws target pulls the real agent.
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { $ } from 'zx';
import type { Config } from '../config.ts';
import { info } from '../cli/log.ts';
import { REPO, cacheRoot, inputsHash, readListFile, sha256File } from '../paths.ts';
import { requireBinaries } from './preflight.ts';

const BUILDER_REVISION = '1';
export const AGENT_DOUBLE_REPO = 'syntropy-agent-test-double';
export const AGENT_DOUBLE_TAG = 'local';
const ENTRYPOINT = '/usr/local/bin/syntropy-agent-test-double';

export interface AgentDouble {
  archive: string;
  ref: string;
  /** sha256 of the image config: the image ID Docker reports after `docker load`. */
  digest: string;
  sizeBytes: number;
  reused: boolean;
}

export function imageConfig(layerDiffId: string, created: string): Record<string, unknown> {
  return {
    architecture: 'amd64',
    os: 'linux',
    created,
    config: {
      Entrypoint: [ENTRYPOINT],
      Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      Labels: {
        'org.opencontainers.image.title': AGENT_DOUBLE_REPO,
        'org.opencontainers.image.description':
          'TEST DOUBLE of syntropynet/agent for local builds: honours SYNTROPY_AGENT_TOKEN and SYNTROPY_PORT_RANGE, binds a WireGuard port, talks to no controller',
        'io.syntropy.test-double': 'true',
      },
    },
    rootfs: { type: 'layers', diff_ids: [layerDiffId] },
    history: [{ created, created_by: 'scripts/lib/bake/agent-double.ts (mmdebstrap, Debian packages)' }],
  };
}

/** Writes manifest.json, the config blob and the layer into `dir`; returns the image ID. */
export function writeDockerArchiveLayout(dir: string, layerTar: string, layerSha: string, created: string, ref: string): string {
  const config = Buffer.from(JSON.stringify(imageConfig(`sha256:${layerSha}`, created)));
  const configSha = createHash('sha256').update(config).digest('hex');
  writeFileSync(join(dir, `${configSha}.json`), config);
  mkdirSync(join(dir, layerSha));
  renameSync(layerTar, join(dir, layerSha, 'layer.tar'));
  writeFileSync(
    join(dir, 'manifest.json'),
    JSON.stringify([{ Config: `${configSha}.json`, RepoTags: [ref], Layers: [`${layerSha}/layer.tar`] }]),
  );
  return `sha256:${configSha}`;
}

export async function ensureAgentDouble(cfg: Config): Promise<AgentDouble> {
  const entrypoint = join(REPO, 'images', 'agent-double', 'syntropy-agent-test-double');
  const inputs = {
    suite: cfg.debian.suite,
    mirror: cfg.debian.mirror,
    packages: readListFile(join(REPO, 'images', 'agent-double', 'packages.txt')),
    entrypoint: readFileSync(entrypoint, 'utf8'),
  };
  const hash = inputsHash(BUILDER_REVISION, inputs);
  const root = join(cacheRoot(), 'agent-double');
  const dir = join(root, hash);
  const ref = `${AGENT_DOUBLE_REPO}:${AGENT_DOUBLE_TAG}`;
  const metaFile = join(dir, 'meta.json');
  if (existsSync(metaFile)) {
    const meta = JSON.parse(readFileSync(metaFile, 'utf8')) as Omit<AgentDouble, 'reused'>;
    if (existsSync(meta.archive)) {
      info(`agent test double: reusing ${meta.archive} (${meta.digest})`);
      return { ...meta, reused: true };
    }
  }
  requireBinaries(['mmdebstrap', 'tar']);
  const work = join(root, `.tmp-${hash}-${process.pid}`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  try {
    const rootfs = join(work, 'rootfs');
    info(`agent test double: mmdebstrap ${inputs.suite} + ${inputs.packages.join(', ')}`);
    const args = [
      '--mode=root',
      '--variant=essential',
      '--aptopt=Acquire::Check-Valid-Until "false"',
      '--dpkgopt=path-exclude=/usr/share/{doc,man,info,locale}/*',
      '--dpkgopt=path-include=/usr/share/locale/locale.alias',
      `--include=${inputs.packages.join(',')}`,
      inputs.suite,
      rootfs,
      inputs.mirror,
    ];
    await $({ stdio: ['ignore', 'pipe', 'pipe'] })`mmdebstrap ${args}`.pipe(process.stderr);
    // A container image needs no package manager state or caches.
    await $`rm -rf ${join(rootfs, 'var/lib/apt/lists')} ${join(rootfs, 'var/cache/apt')} ${join(rootfs, 'var/log')}`;
    mkdirSync(join(rootfs, 'usr/local/bin'), { recursive: true });
    copyFileSync(entrypoint, join(rootfs, ENTRYPOINT));
    chmodSync(join(rootfs, ENTRYPOINT), 0o755);

    const layout = join(work, 'layout');
    mkdirSync(layout);
    const layerTar = join(work, 'layer.tar');
    const created = '2025-01-01T00:00:00Z';
    await $`tar --sort=name --numeric-owner --mtime=${created} --clamp-mtime -C ${rootfs} -cf ${layerTar} .`;
    const layerSha = await sha256File(layerTar);
    const digest = writeDockerArchiveLayout(layout, layerTar, layerSha, created, ref);
    const archive = join(work, 'agent-double.tar');
    await $`tar --sort=name --numeric-owner --mtime=${created} -C ${layout} -cf ${archive} .`;
    rmSync(rootfs, { recursive: true, force: true });
    rmSync(layout, { recursive: true, force: true });
    const sizeBytes = Number((await $`stat -c %s ${archive}`.quiet()).stdout.trim());
    const meta: Omit<AgentDouble, 'reused'> = { archive: join(dir, 'agent-double.tar'), ref, digest, sizeBytes };
    writeFileSync(join(work, 'meta.json'), JSON.stringify({ ...meta, packages: inputs.packages }, null, 2));
    rmSync(dir, { recursive: true, force: true });
    renameSync(work, dir);
    info(`agent test double: ${ref} ${digest} (${(sizeBytes / 2 ** 20).toFixed(1)} MiB)`);
    return { ...meta, reused: false };
  } catch (e) {
    rmSync(work, { recursive: true, force: true });
    throw e;
  }
}
