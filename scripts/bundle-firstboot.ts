#!/usr/bin/env -S npx tsx
// Bundles the first-boot service into one ES module for Debian's nodejs (20) in the image:
// firstboot/dist/syntropy-firstboot.mjs. `npm run bundle-firstboot`; the build runs it too.
import { build } from 'esbuild';
import { join } from 'node:path';
import { REPO } from './lib/paths.ts';

export async function bundleFirstboot(outDir = join(REPO, 'firstboot', 'dist')): Promise<string> {
  const outfile = join(outDir, 'syntropy-firstboot.mjs');
  await build({
    entryPoints: [join(REPO, 'firstboot', 'src', 'main.ts')],
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

if (import.meta.url === `file://${process.argv[1]}`) {
  process.stdout.write(`${await bundleFirstboot()}\n`);
}
