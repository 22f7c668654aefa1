// Builds the local base disk: a bootable Debian 13 qcow2 made from Debian's packages with
// mmdebstrap, an MBR partition with GRUB, cached under a hash of every input.
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync, copyFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { $ } from 'zx';
import type { Config } from '../config.ts';
import { info } from '../cli/log.ts';
import { requireBinaries, requireFreeSpace } from './preflight.ts';
import { REPO, cacheRoot, inputsHash, readListFile, sha256File } from '../paths.ts';
/** Bump when the assembly below changes in a way the inputs do not show. */
const BUILDER_REVISION = '2';

export interface BaseDiskInputs {
  suite: string;
  mirror: string;
  securityMirror: string;
  sizeGib: number;
  packages: string[];
  customizeScript: string;
}

export interface BaseDisk {
  hash: string;
  dir: string;
  qcow2: string;
  sha256: string;
  kernel: string;
  vmlinuz: string;
  initrd: string;
  reused: boolean;
}

export function baseDiskInputs(cfg: Config): BaseDiskInputs {
  return {
    suite: cfg.debian.suite,
    mirror: cfg.debian.mirror,
    securityMirror: cfg.debian.security_mirror,
    sizeGib: cfg.local.base_disk_gib,
    packages: readListFile(join(REPO, 'base', 'packages.txt')),
    customizeScript: readFileSync(join(REPO, 'base', 'customize.sh'), 'utf8'),
  };
}

export function baseDiskHash(inputs: BaseDiskInputs): string {
  return inputsHash(BUILDER_REVISION, { ...inputs, packages: [...inputs.packages].sort() });
}

function readMeta(dir: string): BaseDisk | null {
  const metaFile = join(dir, 'meta.json');
  if (!existsSync(metaFile)) return null;
  const meta = JSON.parse(readFileSync(metaFile, 'utf8')) as Omit<BaseDisk, 'reused'>;
  return existsSync(meta.qcow2) ? { ...meta, reused: true } : null;
}

export async function ensureBaseDisk(cfg: Config, opts: { force?: boolean } = {}): Promise<BaseDisk> {
  const inputs = baseDiskInputs(cfg);
  const hash = baseDiskHash(inputs);
  const root = join(cacheRoot(), 'base');
  const dir = join(root, `debian13-${hash}`);
  const cached = opts.force ? null : readMeta(dir);
  if (cached) {
    info(`base disk: reusing ${cached.qcow2} (inputs hash ${hash})`);
    return cached;
  }
  requireBinaries(['mmdebstrap', 'mkfs.ext4', 'sfdisk', 'qemu-img']);
  if (process.getuid?.() !== 0) throw new Error('building the base disk needs root (mmdebstrap --mode=root, device nodes in the root filesystem)');
  mkdirSync(root, { recursive: true });
  requireFreeSpace(root, (inputs.sizeGib + 3) * 2 ** 30, 'the base disk build');

  // Build beside the final place and rename at the end: a failed build leaves no output.
  const work = join(root, `.tmp-${hash}-${process.pid}`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  try {
    const rootfs = join(work, 'rootfs');
    const uuid = randomUUID();
    // Updates and security from the start, so a bake only fetches what is newer than this disk.
    const sources = [
      inputs.mirror,
      `deb ${inputs.mirror} ${inputs.suite}-updates main`,
      `deb ${inputs.securityMirror} ${inputs.suite}-security main`,
    ];
    info(`base disk: mmdebstrap ${inputs.suite} from ${inputs.mirror} (${inputs.packages.length} extra packages)`);
    await $({
      env: {
        ...process.env,
        BASE_ROOT_UUID: uuid,
        BASE_MIRROR: inputs.mirror,
        BASE_SECURITY_MIRROR: inputs.securityMirror,
        BASE_SUITE: inputs.suite,
      },
    })`mmdebstrap --mode=root --variant=important --aptopt=${'Acquire::Check-Valid-Until "false"'} --include=${inputs.packages.join(',')} --customize-hook=${`bash ${join(REPO, 'base', 'customize.sh')} "$1"`} ${inputs.suite} ${rootfs} ${sources}`.pipe(
      process.stderr,
    );

    const kernel = readdirSync(join(rootfs, 'boot'))
      .filter((f) => f.startsWith('vmlinuz-'))
      .map((f) => f.slice('vmlinuz-'.length))
      .sort()
      .at(-1);
    if (!kernel) throw new Error('base disk: no kernel was installed');

    info('base disk: assembling MBR disk with GRUB');
    const raw = join(work, 'disk.raw');
    const totalBytes = inputs.sizeGib * 2 ** 30;
    const offset = 2048 * 512;
    await $`truncate -s ${totalBytes} ${raw}`;
    await $({ input: 'label: dos\nstart=2048, type=83, bootable\n' })`sfdisk --quiet ${raw}`;
    const fsKiB = (totalBytes - offset) / 1024;
    await $`mkfs.ext4 -q -F -L root -U ${uuid} -E offset=${offset} -d ${rootfs} ${raw} ${`${fsKiB}k`}`;
    // boot.img's code area only (the partition table lives after byte 440); core.img right after the MBR.
    await $`dd if=${join(rootfs, 'usr/lib/grub/i386-pc/boot.img')} of=${raw} bs=440 count=1 conv=notrunc status=none`;
    await $`dd if=${join(rootfs, 'boot/grub/i386-pc/core.img')} of=${raw} bs=512 seek=1 conv=notrunc status=none`;
    const qcow2 = join(work, 'disk.qcow2');
    await $`qemu-img convert -f raw -O qcow2 ${raw} ${qcow2}`;
    rmSync(raw);
    copyFileSync(join(rootfs, 'boot', `vmlinuz-${kernel}`), join(work, 'vmlinuz'));
    copyFileSync(join(rootfs, 'boot', `initrd.img-${kernel}`), join(work, 'initrd.img'));
    rmSync(rootfs, { recursive: true, force: true });

    const meta: Omit<BaseDisk, 'reused'> = {
      hash,
      dir,
      qcow2: join(dir, 'disk.qcow2'),
      sha256: await sha256File(qcow2),
      kernel,
      vmlinuz: join(dir, 'vmlinuz'),
      initrd: join(dir, 'initrd.img'),
    };
    writeFileSync(join(work, 'meta.json'), JSON.stringify({ ...meta, inputs: { ...inputs, customizeScript: undefined }, built: new Date().toISOString() }, null, 2));
    rmSync(dir, { recursive: true, force: true });
    renameSync(work, dir);
    info(`base disk: ready ${meta.qcow2} (kernel ${kernel})`);
    return { ...meta, reused: false };
  } catch (e) {
    rmSync(work, { recursive: true, force: true });
    throw e;
  }
}
