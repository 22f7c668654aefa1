// The first-boot service as Packer uploads it: the bundled Node program (one ES module for
// Debian's nodejs 20 in the image), its shell helpers, its systemd units and firstboot.conf,
// the settings it takes from the build config, written through its contract.
import { build } from 'esbuild';
import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config.ts';
import { REPO } from '../paths.ts';
import { formatFirstbootConf } from '../../../contracts/firstboot-conf.ts';

/** The programs bundled into the image: first boot, and the reference deployment's route failover. */
export const BUNDLES = [
  { entry: join(REPO, 'firstboot', 'src', 'main.ts'), out: 'syntropy-firstboot.mjs' },
  { entry: join(REPO, 'deploy', 'failover-agent.ts'), out: 'syntropy-route-failover.mjs' },
];

export async function bundleFirstboot(outDir = join(REPO, 'firstboot', 'dist')): Promise<string> {
  for (const b of BUNDLES.slice(1)) await bundleOne(b.entry, join(outDir, b.out));
  return bundleOne(BUNDLES[0]!.entry, join(outDir, BUNDLES[0]!.out));
}

async function bundleOne(entry: string, outfile: string): Promise<string> {
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    minify: true,
    legalComments: 'none',
    // CommonJS dependencies (the AWS SDK) call require(); give the ES module one.
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
    logLevel: 'warning',
  });
  return outfile;
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
