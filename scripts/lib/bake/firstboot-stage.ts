// The first-boot service as Packer uploads it: the bundled Node program (one ES module for
// Debian's nodejs 20 in the image), its shell helpers, its systemd units and firstboot.conf,
// the settings it takes from the build config, written through its contract.
import { build } from 'esbuild';
import { cpSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config.ts';
import { REPO } from '../paths.ts';
import { formatFirstbootConf } from '../../../contracts/firstboot-conf.ts';

/** The programs bundled into the image: first boot, and the reference deployment's route failover. */
export const BUNDLES = [
  { entry: join(REPO, 'firstboot', 'src', 'main.ts'), out: 'syntropy-firstboot.mjs' },
  { entry: join(REPO, 'deploy', 'failover-agent.ts'), out: 'syntropy-route-failover.mjs' },
];

/** Where the modules both programs load on demand go, beside the programs. */
export const CHUNK_DIR = 'chunks';

/**
 * Both programs in one esbuild run with code splitting: what a program needs only on some paths
 * (the AWS SDK's SSM client, imported when user data names a Parameter Store token) is a separate
 * module loaded when first imported, so first boot's common path does not parse it at every start
 * (Node parses every byte of a module it loads; on a small instance that is seconds of CPU during
 * boot). Modules both programs use are shared, not duplicated. Returns the first-boot program.
 */
export async function bundleFirstboot(outDir = join(REPO, 'firstboot', 'dist')): Promise<string> {
  // No chunk of an earlier bundle may stay beside this one's (their names carry content hashes).
  rmSync(join(outDir, CHUNK_DIR), { recursive: true, force: true });
  await build({
    entryPoints: Object.fromEntries(BUNDLES.map((b) => [b.out.replace(/\.mjs$/, ''), b.entry])),
    outdir: outDir,
    outExtension: { '.js': '.mjs' },
    chunkNames: `${CHUNK_DIR}/[name]-[hash]`,
    splitting: true,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    minify: true,
    legalComments: 'none',
    // CommonJS dependencies (the AWS SDK) call require(); give each ES module one.
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
    logLevel: 'warning',
  });
  return join(outDir, BUNDLES[0]!.out);
}

/** /etc/syntropy/firstboot.conf for this build (contracts/firstboot-conf.ts). */
export function firstbootConf(cfg: Config): string {
  return formatFirstbootConf({
    SSH_PORT: cfg.ssh.port,
    DEFAULT_PORT_RANGE: cfg.firstboot.default_port_range,
    MAX_PORT_RANGE_WIDTH: cfg.firstboot.max_port_range_width,
    AGENT_NETWORK_API: cfg.agent.network_api,
  });
}

/** Bundles the first-boot service and copies it, its helpers, units and settings where Packer uploads from. */
export async function stageFirstboot(cfg: Config, dest: string): Promise<void> {
  mkdirSync(dest, { recursive: true });
  await bundleFirstboot(join(dest, 'dist'));
  cpSync(join(REPO, 'firstboot', 'units'), join(dest, 'units'), { recursive: true });
  cpSync(join(REPO, 'firstboot', 'bin'), join(dest, 'bin'), { recursive: true });
  writeFileSync(join(dest, 'firstboot.conf'), firstbootConf(cfg));
}
