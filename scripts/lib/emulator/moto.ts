// The AWS emulator of the rehearsal: moto (https://github.com/getmoto/moto, written by another
// team) in server mode, from Debian 13's python3-moto, run in a trixie root file system that
// mmdebstrap builds and the cache keeps (keyed by deps/moto-packages.txt, suite and mirror).
// It listens on 127.0.0.1 only. The project's code reaches it through the SDK's own endpoint
// settings (AWS_ENDPOINT_URL) and Packer's custom_endpoint_ec2: the same code paths as AWS.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { $ } from 'zx';
import type { Config } from '../config.ts';
import { info } from '../cli/log.ts';
import { REPO, cacheRoot, inputsHash, readListFile } from '../paths.ts';
import { requireBinaries } from '../bake/preflight.ts';
import { freePort } from '../guest/vm.ts';

const BUILDER_REVISION = '1';

export interface MotoRootfs {
  dir: string;
  hash: string;
  reused: boolean;
  seconds: number;
}

export function motoRootfsInputs(cfg: Config) {
  return { suite: cfg.debian.suite, mirror: cfg.debian.mirror, packages: readListFile(join(REPO, 'deps', 'moto-packages.txt')).sort() };
}

/** The emulator's root file system, built once per package list (about 40 s, ~290 MiB). */
export async function ensureMotoRootfs(cfg: Config): Promise<MotoRootfs> {
  const inputs = motoRootfsInputs(cfg);
  const hash = inputsHash(BUILDER_REVISION, inputs);
  const root = join(cacheRoot(), 'moto');
  const dir = join(root, `rootfs-${hash}`);
  if (existsSync(join(dir, '.complete'))) return { dir, hash, reused: true, seconds: 0 };
  requireBinaries(['mmdebstrap', 'chroot']);
  if (process.getuid?.() !== 0) throw new Error('building the emulator root file system needs root (mmdebstrap --mode=root)');
  mkdirSync(root, { recursive: true });
  const work = join(root, `.tmp-${hash}-${process.pid}`);
  rmSync(work, { recursive: true, force: true });
  const t0 = Date.now();
  info(`emulator: mmdebstrap ${inputs.suite} with ${inputs.packages.join(', ')}`);
  try {
    await $`mmdebstrap --mode=root --variant=apt --aptopt=${'Acquire::Check-Valid-Until "false"'} --include=${inputs.packages.join(',')} --dpkgopt=${'path-exclude=/usr/share/doc/*'} --dpkgopt=${'path-exclude=/usr/share/man/*'} --dpkgopt=${'path-exclude=/usr/share/locale/*'} ${inputs.suite} ${work} ${inputs.mirror}`.quiet();
    writeFileSync(join(work, '.complete'), JSON.stringify({ inputs, built: new Date().toISOString() }));
    rmSync(dir, { recursive: true, force: true });
    renameSync(work, dir);
  } catch (e) {
    rmSync(work, { recursive: true, force: true });
    throw e;
  }
  return { dir, hash, reused: false, seconds: Math.round((Date.now() - t0) / 100) / 10 };
}

/**
 * An AMI moto lists as if its owner had registered it, in the shape of moto's own AMI list
 * (moto/ec2/resources/amis.json, loaded from MOTO_AMIS_PATH; moto/ec2/models/amis.py `Ami`).
 */
export interface SeedAmi {
  ami_id: string;
  name: string;
  description: string;
  owner_id: string;
  public: boolean;
  virtualization_type: 'hvm';
  architecture: 'x86_64' | 'arm64';
  state: 'available';
  creation_date: string;
  root_device_type: 'ebs';
  root_device_name: string;
  hypervisor: 'xen';
  sriov: 'simple';
  boot_mode: 'uefi-preferred' | 'legacy-bios' | 'uefi';
}

/**
 * The replica of Debian's official Debian 13 AMI the local base disk stands for. Debian's cloud
 * team publishes it from account 136693071363 as `debian-13-amd64-<yyyymmdd>-<build>`
 * (https://wiki.debian.org/Cloud/AmazonEC2Image/Trixie), x86_64, HVM, EBS, root /dev/xvda.
 */
export function debianOfficialAmi(cfg: Config, date = new Date()): SeedAmi {
  const ymd = date.toISOString().slice(0, 10).replaceAll('-', '');
  return {
    ami_id: 'ami-0deb13000000000a1',
    name: `debian-13-amd64-${ymd}-2309`,
    description: 'Debian 13 (20261201-2309)',
    owner_id: cfg.aws.source_ami_owner,
    public: true,
    virtualization_type: 'hvm',
    architecture: 'x86_64',
    state: 'available',
    creation_date: date.toISOString().replace(/\.\d+Z$/, '.000Z'),
    root_device_type: 'ebs',
    root_device_name: '/dev/xvda',
    hypervisor: 'xen',
    sriov: 'simple',
    boot_mode: 'uefi-preferred',
  };
}

/** Dummy credentials: moto accepts any; real ones must never be handed to a rehearsal. */
export const EMULATOR_CREDENTIALS = { AWS_ACCESS_KEY_ID: 'AKIAREHEARSAL0000000', AWS_SECRET_ACCESS_KEY: 'rehearsal-not-a-secret' };

export class MotoServer {
  private proc: ChildProcess | null = null;
  private amisFile = '';
  port = 0;
  readonly log: string[] = [];

  constructor(private readonly rootfs: string) {}

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(amis: SeedAmi[], port?: number): Promise<string> {
    this.port = port ?? (await freePort());
    // moto reads MOTO_AMIS_PATH inside its root file system; one file per server. AWS managed
    // policies (AWSMarketplaceAmiIngestion for the access role) exist only when asked for
    // (moto/settings.py, MOTO_IAM_LOAD_MANAGED_POLICIES).
    this.amisFile = `/tmp/syntropy-amis-${process.pid}-${this.port}.json`;
    writeFileSync(join(this.rootfs, this.amisFile), JSON.stringify(amis));
    this.proc = spawn('chroot', [this.rootfs, '/usr/bin/env', '-i', 'HOME=/tmp', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin', `MOTO_AMIS_PATH=${this.amisFile}`, 'MOTO_IAM_LOAD_MANAGED_POLICIES=true', 'python3', '-m', 'moto.server', '-H', '127.0.0.1', '-p', String(this.port)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (b: Buffer) => {
      this.log.push(...b.toString().split('\n').filter(Boolean));
      if (this.log.length > 2000) this.log.splice(0, this.log.length - 2000);
    };
    this.proc.stdout!.on('data', keep);
    this.proc.stderr!.on('data', keep);
    const t0 = Date.now();
    while (Date.now() - t0 < 60_000) {
      if (this.proc.exitCode !== null) throw new Error(`moto exited ${this.proc.exitCode}: ${this.log.slice(-5).join(' | ')}`);
      try {
        const r = await fetch(`${this.endpoint}/moto-api/data.json`);
        if (r.ok) return this.endpoint;
      } catch {
        /* not listening yet */
      }
      await new Promise((r) => setTimeout(r, 300));
    }
    throw new Error('moto did not answer within 60 s');
  }

  /** moto's own view of what exists: `GET /moto-api/data.json` (moto/core/models.py). */
  async data(): Promise<Record<string, Record<string, unknown>>> {
    const r = await fetch(`${this.endpoint}/moto-api/data.json`);
    return (await r.json()) as Record<string, Record<string, unknown>>;
  }

  /**
   * The OpenSSH public key of an EC2 key pair from moto's state (`KeyPair.material_public`:
   * as ImportKeyPair received it, base64, or the OpenSSH line for one CreateKeyPair made).
   */
  async publicKey(keyName: string): Promise<string | null> {
    const pairs = ((await this.data()).ec2?.KeyPair ?? []) as { name: string; material_public: string }[];
    const kp = pairs.find((k) => k.name === keyName);
    if (!kp) return null;
    return kp.material_public.startsWith('ssh-') ? kp.material_public : Buffer.from(kp.material_public, 'base64').toString('utf8');
  }

  /** Kills the emulator at once (signal and exit handlers). */
  kill(): void {
    if (this.proc && this.proc.exitCode === null) this.proc.kill('SIGKILL');
  }

  async stop(): Promise<void> {
    if (this.proc && this.proc.exitCode === null) {
      this.proc.kill('SIGTERM');
      await new Promise((r) => {
        this.proc!.once('exit', r);
        setTimeout(r, 5000);
      });
      if (this.proc.exitCode === null) this.proc.kill('SIGKILL');
    }
    if (this.amisFile) rmSync(join(this.rootfs, this.amisFile), { force: true });
  }
}
