// Preflight checks: required host binaries and free disk space, reported before any work starts.
import { statfsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { accessSync, constants } from 'node:fs';

/** Debian package that provides each binary, so the error says how to fix it. */
export const BINARY_PACKAGES: Record<string, string> = {
  packer: 'packer',
  'qemu-system-x86_64': 'qemu-system-x86',
  'qemu-img': 'qemu-utils',
  mmdebstrap: 'mmdebstrap',
  'mkfs.ext4': 'e2fsprogs',
  sfdisk: 'fdisk',
  socat: 'socat',
  'ssh-keygen': 'openssh-client',
  shellcheck: 'shellcheck',
};

export function which(bin: string, path = process.env.PATH ?? ''): string | null {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, bin);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* keep looking */
    }
  }
  return null;
}

export class PreflightError extends Error {}

export function requireBinaries(bins: string[], path?: string): void {
  const missing = bins.filter((b) => which(b, path) === null);
  if (missing.length > 0) {
    const pkgs = [...new Set(missing.map((b) => BINARY_PACKAGES[b] ?? b))];
    throw new PreflightError(
      `missing required program(s): ${missing.join(', ')} (Debian packages: ${pkgs.join(' ')}); run \`npm run setup\` or apt-get install them`,
    );
  }
}

export function freeBytes(dir: string): number {
  const s = statfsSync(dir);
  return Number(s.bavail) * Number(s.bsize);
}

export function requireFreeSpace(dir: string, bytes: number, what: string): void {
  const free = freeBytes(dir);
  if (free < bytes) {
    const gib = (n: number) => (n / 2 ** 30).toFixed(1);
    throw new PreflightError(`not enough free disk for ${what} in ${dir}: ${gib(free)} GiB free, ${gib(bytes)} GiB needed`);
  }
}
