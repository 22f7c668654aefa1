#!/usr/bin/env -S npx tsx
// Bundles the first-boot service into one ES module for Debian's nodejs (20) in the image:
// firstboot/dist/syntropy-firstboot.mjs. `npm run bundle-firstboot`; the build runs it too.
import { runEntry } from './lib/cli/entry.ts';
import { bundleFirstboot } from './lib/bake/firstboot-stage.ts';

runEntry(import.meta.url, { usage: 'usage: npm run bundle-firstboot\nBundles the first-boot service into firstboot/dist/syntropy-firstboot.mjs.' }, async () => {
  process.stdout.write(`${await bundleFirstboot()}\n`);
});
