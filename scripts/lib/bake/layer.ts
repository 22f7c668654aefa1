// The local target's hardened layer: the base disk after every step up to hardening (Packer's
// qemu.layer), cached under a key of everything those steps depend on, so a rebuild where only
// the agent image (or a later step) changed boots the layer instead of hardening again.
//
// Why a stale layer is never used:
// - the key covers every input of the layer's steps: the base disk's sha256, the apt suites'
//   InRelease files as the mirrors serve them now (a new package version changes them), the
//   Packer templates, the scripts qemu.layer runs, the files it uploads (rootfs, keys, the
//   rendered hardening script and probe), and the environment
//   each of those scripts gets from the config;
// - the layer is stored under its key only after qemu.layer succeeded (built beside, renamed);
// - Packer checks the layer file's sha256 (recorded when it was stored) before booting it;
// - inside the guest, open-layer.sh refuses a disk whose recorded key is not this build's.
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { Config } from '../config.ts';
import { REPO, cacheRoot, inputsHash, sha256File } from '../paths.ts';
import { PreflightError } from './preflight.ts';
import type { ProvisionerScript } from './packer.ts';

/** Bump when what the layer holds changes in a way the inputs below do not show. */
const LAYER_REVISION = '1';

/** The scripts qemu.layer runs (packer/build.pkr.hcl; a test checks the two agree). */
export const LAYER_SCRIPTS = [
  'wait-cloud-init.sh',
  'update-system.sh',
  'install-rootfs.sh',
  'install-docker.sh',
  'install-node.sh',
  'probe-compliance.sh',
  'harden.sh',
  'save-layer.sh',
] as const satisfies readonly ProvisionerScript[];

/** How many layers the cache keeps (the newest); each is about a gigabyte. */
export const KEEP_LAYERS = 2;

export interface LayerInputs {
  baseDiskSha256: string;
  /** sha256 of each apt suite's InRelease file, by URL. */
  release: Record<string, string>;
  templates: string;
  scripts: Record<string, string>;
  uploads: Record<string, string>;
  /** The hardening script and the probe as rendered (the probe with its per-build nonce blanked). */
  hardening: { apply: string; probe: string };
  /** Each layer script's environment (scripts/lib/bake/packer.ts provisionerEnv). */
  env: Record<string, string[]>;
  guest: { diskGib: number; sshUser: string };
}

export interface Layer {
  key: string;
  qcow2: string;
  sha256: string;
  /** The nonce of the probe that recorded the layer's baseline facts (hardening/facts.ts). */
  baselineNonce: string;
  reused: boolean;
}

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

/** One hash of a directory tree: every entry's path, type, mode and content, in sorted order. */
export function treeHash(dir: string): string {
  const h = createHash('sha256');
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = lstatSync(p);
      const rel = relative(dir, p);
      if (st.isSymbolicLink()) h.update(`l ${rel} ${readlinkSync(p)}\n`);
      else if (st.isDirectory()) {
        h.update(`d ${rel} ${(st.mode & 0o7777).toString(8)}\n`);
        walk(p);
      } else h.update(`f ${rel} ${(st.mode & 0o7777).toString(8)} ${sha256(readFileSync(p))}\n`);
    }
  };
  walk(dir);
  return h.digest('hex');
}

/** The InRelease files the layer's apt reads: the suite, its updates and security, and Docker's when used. */
export function releaseUrls(cfg: Config): string[] {
  const base = (m: string) => m.replace(/\/+$/, '');
  const urls = [
    `${base(cfg.debian.mirror)}/dists/${cfg.debian.suite}/InRelease`,
    `${base(cfg.debian.mirror)}/dists/${cfg.debian.suite}-updates/InRelease`,
    `${base(cfg.debian.security_mirror)}/dists/${cfg.debian.suite}-security/InRelease`,
  ];
  if (cfg.docker.source === 'docker-ce') urls.push(`${base(cfg.docker.ce_repo)}/dists/${cfg.debian.suite}/InRelease`);
  return urls;
}

/** sha256 of each InRelease file as served now: a new package anywhere in the suites changes one. */
export async function releaseDigests(urls: string[], fetchImpl: typeof fetch = fetch): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  await Promise.all(
    urls.map(async (url) => {
      let body: Buffer;
      try {
        const r = await fetchImpl(url, { signal: AbortSignal.timeout(30_000) });
        if (!r.ok) throw new Error(`HTTP ${r.status}`);
        body = Buffer.from(await r.arrayBuffer());
      } catch (e) {
        throw new PreflightError(`hardened layer: cannot read ${url} (${(e as Error).message}); the layer's key needs the suites' current Release files`);
      }
      if (!body.subarray(0, 200).toString('latin1').includes('BEGIN PGP SIGNED MESSAGE')) {
        throw new PreflightError(`hardened layer: ${url} is not a signed InRelease file`);
      }
      out[url] = sha256(body);
    }),
  );
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
}

export interface LayerSources {
  cfg: Config;
  baseDiskSha256: string;
  release: Record<string, string>;
  /** Staged directories Packer uploads into the layer: keys, hardening (rootfs is the repo's). */
  keysDir: string;
  hardeningDir: string;
  /** probe.sh as staged, and the nonce written into it (probe.json). */
  probeNonce: string;
  env: Record<ProvisionerScript, string[]>;
}

export function layerInputs(s: LayerSources, repo = REPO): LayerInputs {
  const templates = createHash('sha256');
  for (const f of readdirSync(join(repo, 'packer')).filter((n) => n.endsWith('.pkr.hcl')).sort()) {
    templates.update(`${f} ${sha256(readFileSync(join(repo, 'packer', f)))}\n`);
  }
  const probe = readFileSync(join(s.hardeningDir, 'probe.sh'), 'utf8');
  if (!s.probeNonce || !probe.includes(s.probeNonce)) throw new Error(`hardened layer: the staged probe does not carry its nonce ${s.probeNonce}`);
  return {
    baseDiskSha256: s.baseDiskSha256,
    release: s.release,
    templates: templates.digest('hex'),
    scripts: Object.fromEntries(LAYER_SCRIPTS.map((n) => [n, sha256(readFileSync(join(repo, 'packer', 'provisioners', n)))])),
    uploads: {
      rootfs: treeHash(join(repo, 'rootfs')),
      'sanitize.list': sha256(readFileSync(join(repo, 'packer', 'provisioners', 'sanitize.list'))),
      keys: treeHash(s.keysDir),
    },
    hardening: { apply: sha256(readFileSync(join(s.hardeningDir, 'apply.sh'))), probe: sha256(probe.replaceAll(s.probeNonce, '<nonce>')) },
    // save-layer.sh's LAYER_KEY is this key itself: not an input.
    env: Object.fromEntries(LAYER_SCRIPTS.filter((n) => n !== 'save-layer.sh').map((n) => [n, s.env[n]])),
    guest: { diskGib: s.cfg.image.disk_gib, sshUser: s.cfg.ssh.user },
  };
}

export function layerKey(inputs: LayerInputs): string {
  return inputsHash(LAYER_REVISION, inputs);
}

export function layersRoot(): string {
  return join(cacheRoot(), 'layers');
}

interface LayerMeta {
  key: string;
  sha256: string;
  baseline_nonce: string;
  built: string;
  inputs: LayerInputs;
}

/** The cached layer of `key`, or null. A layer whose files are incomplete counts as absent. */
export function findLayer(key: string, root = layersRoot()): Layer | null {
  const dir = join(root, key);
  const metaFile = join(dir, 'meta.json');
  const qcow2 = join(dir, 'layer.qcow2');
  if (!existsSync(metaFile) || !existsSync(qcow2)) return null;
  let meta: LayerMeta;
  try {
    meta = JSON.parse(readFileSync(metaFile, 'utf8')) as LayerMeta;
  } catch {
    return null; // damaged (stored layers get it complete, before the rename): qemu.layer makes it again
  }
  if (meta?.key !== key || !/^[a-f0-9]{64}$/.test(meta.sha256) || !meta.baseline_nonce) return null;
  return { key, qcow2, sha256: meta.sha256, baselineNonce: meta.baseline_nonce, reused: true };
}

/** The directory qemu.layer writes into (Packer wants it absent), beside the cache. */
export function layerWorkDir(key: string, root = layersRoot()): string {
  mkdirSync(root, { recursive: true });
  const work = join(root, `.tmp-${key}-${process.pid}`);
  rmSync(work, { recursive: true, force: true });
  return work;
}

/**
 * Stores what qemu.layer wrote in `work` under `key` (renamed into place: a failed or killed
 * build leaves no layer), then drops all but the newest KEEP_LAYERS layers.
 */
export async function storeLayer(key: string, work: string, inputs: LayerInputs, baselineNonce: string, root = layersRoot()): Promise<Layer> {
  const built = join(work, 'layer.qcow2');
  if (!existsSync(built)) throw new Error(`hardened layer: Packer wrote no ${built}`);
  const meta: LayerMeta = { key, sha256: await sha256File(built), baseline_nonce: baselineNonce, built: new Date().toISOString(), inputs };
  writeFileSync(join(work, 'meta.json'), `${JSON.stringify(meta, null, 2)}\n`);
  const dir = join(root, key);
  rmSync(dir, { recursive: true, force: true });
  renameSync(work, dir);
  pruneLayers(root, KEEP_LAYERS, key);
  return { key, qcow2: join(dir, 'layer.qcow2'), sha256: meta.sha256, baselineNonce, reused: false };
}

/** Removes all but the newest `keep` layers (never `current`) and any leftover work directories. */
export function pruneLayers(root: string, keep: number, current: string): string[] {
  if (!existsSync(root)) return [];
  const removed: string[] = [];
  const layers = readdirSync(root)
    .filter((n) => /^[a-f0-9]{16}$/.test(n))
    .map((n) => ({ n, t: statSync(join(root, n)).mtimeMs }))
    .sort((a, b) => b.t - a.t);
  for (const { n } of layers.slice(keep)) {
    if (n === current) continue;
    rmSync(join(root, n), { recursive: true, force: true });
    removed.push(n);
  }
  for (const n of readdirSync(root).filter((x) => x.startsWith('.tmp-'))) {
    const pid = Number(n.split('-').at(-1));
    if (pid !== process.pid && !processAlive(pid)) {
      rmSync(join(root, n), { recursive: true, force: true });
      removed.push(n);
    }
  }
  return removed;
}

function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
