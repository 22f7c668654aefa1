// Packer glue: which Packer this is, a staged template directory that suits it, and the one
// mapping from the validated config to Packer variables and provisioner environment.
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { $ } from 'zx';
import { ConfigError, type Config } from '../config.ts';
import { REPO } from '../paths.ts';
import { openpgpFingerprint } from './openpgp.ts';
import { PreflightError } from './preflight.ts';

export interface PackerFlavor {
  version: string;
  /** Packer >= 1.7 loads builders as plugins (`required_plugins`, `packer init`). */
  modern: boolean;
}

export function parsePackerVersion(text: string): PackerFlavor {
  const m = /(\d+)\.(\d+)\.(\d+)/.exec(text);
  if (!m) throw new Error(`cannot read Packer's version from ${JSON.stringify(text.trim())}`);
  const [major, minor] = [Number(m[1]), Number(m[2])];
  return { version: `${m[1]}.${m[2]}.${m[3]}`, modern: major > 1 || (major === 1 && minor >= 7) };
}

export async function detectPacker(): Promise<PackerFlavor> {
  const out = await $`packer version`.quiet();
  return parsePackerVersion(out.stdout);
}

const COMPAT_BEGIN = /^\s*# packer-compat: modern-only begin\s*$/;
const COMPAT_END = /^\s*# packer-compat: modern-only end\s*$/;

/** Removes the marked modern-only spans for Packer 1.6; fails on unbalanced markers. */
export function stripModernOnly(hcl: string, file: string): string {
  const out: string[] = [];
  let inside = false;
  hcl.split('\n').forEach((line, i) => {
    if (COMPAT_BEGIN.test(line)) {
      if (inside) throw new Error(`${file}:${i + 1}: nested packer-compat begin`);
      inside = true;
    } else if (COMPAT_END.test(line)) {
      if (!inside) throw new Error(`${file}:${i + 1}: packer-compat end without begin`);
      inside = false;
    } else if (!inside) {
      out.push(line);
    }
  });
  if (inside) throw new Error(`${file}: packer-compat span is not closed`);
  return out.join('\n');
}

/** Copies packer/*.pkr.hcl into `dest`, adapted to the Packer in use. */
export function stageTemplates(dest: string, flavor: PackerFlavor, src = join(REPO, 'packer')): string[] {
  mkdirSync(dest, { recursive: true });
  const files = readdirSync(src).filter((f) => f.endsWith('.pkr.hcl'));
  for (const f of files) {
    const text = readFileSync(join(src, f), 'utf8');
    writeFileSync(join(dest, f), flavor.modern ? text : stripModernOnly(text, f));
  }
  if (flavor.modern) {
    copyFileSync(join(src, 'plugins', 'required_plugins.pkr.hcl'), join(dest, 'required_plugins.pkr.hcl'));
    files.push('required_plugins.pkr.hcl');
  }
  return files.sort();
}

export interface BuildContext {
  buildId: string;
  buildTime: string;
  gitSha: string;
  manifestDir: string;
  firstbootDir: string;
  hardeningDir: string;
  /** Signing keys staged for the provisioners (uploaded as $SYNTROPY_STAGING/keys). */
  keysDir: string;
  agent: { ref: string; digest: string; archive: string };
  local?: {
    baseDisk: string;
    baseDiskSha256: string;
    accel: 'kvm' | 'tcg';
    netdev: string;
    smbios: string;
    serialLog: string;
    outputDir: string;
    sshKeyFile: string;
    /** The hardened layer (scripts/lib/bake/layer.ts): its key, and its disk once built or found. */
    layer: { key: string; disk: string; sha256: string; outputDir: string };
  };
  /** Packer 1.6.6 on aws: the ed25519 key pair the build imported (bake/build-key.ts). */
  awsKey?: { name: string; privateKeyFile: string };
  /** The EC2 endpoint the SDK uses when it is not AWS's own (ec2EndpointFromEnv). */
  ec2Endpoint?: string;
}

/**
 * The EC2 endpoint the AWS SDK for JavaScript v3 resolves from the environment (its
 * "service-specific endpoints" setting: AWS_ENDPOINT_URL_EC2, else AWS_ENDPOINT_URL), handed to
 * Packer so both reach the same EC2. Empty: AWS's regional endpoint.
 */
export function ec2EndpointFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  return env.AWS_ENDPOINT_URL_EC2 || env.AWS_ENDPOINT_URL || '';
}

export const STAGING_DIR = '/var/tmp/syntropy-build';

/**
 * Which variables each provisioner script reads (as amazon-eks-ami does: each script gets only
 * its own). A test reads every script and checks this table against what it uses.
 */
export const PROVISIONER_VARS = {
  'wait-cloud-init.sh': [],
  'update-system.sh': [],
  'install-rootfs.sh': ['SYNTROPY_STAGING'],
  'install-docker.sh': ['SYNTROPY_STAGING', 'DOCKER_ADDRESS_POOLS', 'DOCKER_LOG_MAX_SIZE', 'DOCKER_LOG_MAX_FILE', 'DOCKER_SOURCE', 'DOCKER_CE_REPO', 'DOCKER_CE_SUITE'],
  'install-node.sh': [],
  'install-firstboot.sh': ['SYNTROPY_STAGING'],
  'install-ssm-agent.sh': ['SYNTROPY_STAGING', 'SSM_AGENT_VERSION', 'SSM_AGENT_REGION', 'SSM_AGENT_BASE_URL'],
  'preload-agent.sh': ['SYNTROPY_TARGET', 'SYNTROPY_STAGING', 'AGENT_REF', 'AGENT_DIGEST', 'AGENT_REGISTRY_MIRROR'],
  'probe-compliance.sh': ['SYNTROPY_STAGING'],
  'harden.sh': ['SYNTROPY_STAGING', 'HARDENING_ENABLED'],
  'save-layer.sh': ['LAYER_KEY'],
  'open-layer.sh': ['LAYER_KEY', 'SYNTROPY_STAGING'],
  'init-aide.sh': ['SYNTROPY_STAGING', 'HARDENING_ENABLED'],
  'check-updates.sh': [],
  'sanitize.sh': ['SYNTROPY_STAGING'],
  'collect-manifest.sh': [],
  'validate.sh': [],
} as const satisfies Record<string, readonly string[]>;

export type ProvisionerScript = keyof typeof PROVISIONER_VARS;

/** The values the config gives the provisioners: the only way config reaches them. */
export function provisionerValues(cfg: Config, ctx: BuildContext): Record<string, string> {
  return {
    SYNTROPY_TARGET: cfg.target,
    SYNTROPY_STAGING: STAGING_DIR,
    DOCKER_ADDRESS_POOLS: JSON.stringify(cfg.docker.address_pools),
    DOCKER_LOG_MAX_SIZE: cfg.docker.log_max_size,
    DOCKER_LOG_MAX_FILE: String(cfg.docker.log_max_file),
    DOCKER_SOURCE: cfg.docker.source,
    DOCKER_CE_REPO: cfg.docker.ce_repo,
    DOCKER_CE_SUITE: cfg.debian.suite,
    AGENT_REF: ctx.agent.ref,
    AGENT_DIGEST: ctx.agent.digest,
    HARDENING_ENABLED: String(cfg.hardening.enabled),
    SSM_AGENT_VERSION: cfg.aws.ssm_agent_version,
    SSM_AGENT_REGION: cfg.aws.region,
    SSM_AGENT_BASE_URL: cfg.aws.ssm_agent_base_url,
    AGENT_REGISTRY_MIRROR: cfg.agent.registry_mirror,
    LAYER_KEY: ctx.local?.layer.key ?? '',
  };
}

/** Each provisioner script's environment (Packer variable `provisioner_env`, a map of KEY=value lists). */
export function provisionerEnv(cfg: Config, ctx: BuildContext): Record<ProvisionerScript, string[]> {
  const values = provisionerValues(cfg, ctx);
  return Object.fromEntries(
    Object.entries(PROVISIONER_VARS).map(([script, keys]) => [script, keys.map((k) => `${k}=${values[k]}`)]),
  ) as Record<ProvisionerScript, string[]>;
}

export type PackerVars = Record<string, string | number | boolean | string[] | Record<string, string[]>>;

export function packerVars(cfg: Config, ctx: BuildContext): PackerVars {
  const common: PackerVars = {
    repo_root: REPO,
    image_name: cfg.image.name,
    image_version: cfg.image.version,
    build_id: ctx.buildId,
    build_time: ctx.buildTime,
    git_sha: ctx.gitSha,
    disk_gib: cfg.image.disk_gib,
    ssh_username: cfg.ssh.user,
    provisioner_env: provisionerEnv(cfg, ctx),
    agent_ref: ctx.agent.ref,
    agent_digest: ctx.agent.digest,
    agent_archive: ctx.agent.archive,
    firstboot_dir: ctx.firstbootDir,
    hardening_dir: ctx.hardeningDir,
    manifest_dir: ctx.manifestDir,
    keys_dir: ctx.keysDir,
  };
  if (cfg.target === 'local') {
    if (!ctx.local) throw new Error('local target needs the local build context');
    return {
      ...common,
      qemu_base_disk: ctx.local.baseDisk,
      qemu_base_disk_sha256: ctx.local.baseDiskSha256,
      qemu_accelerator: ctx.local.accel,
      qemu_cpus: cfg.local.cpus,
      qemu_memory_mib: cfg.local.memory_mib,
      qemu_netdev: ctx.local.netdev,
      qemu_smbios: ctx.local.smbios,
      qemu_serial_log: ctx.local.serialLog,
      qemu_output_directory: ctx.local.outputDir,
      qemu_layer_disk: ctx.local.layer.disk,
      qemu_layer_disk_sha256: ctx.local.layer.sha256,
      qemu_layer_output_directory: ctx.local.layer.outputDir,
      qemu_ssh_private_key_file: ctx.local.sshKeyFile,
      qemu_ssh_timeout: cfg.local.ssh_timeout,
      qemu_headless: cfg.local.headless,
    };
  }
  return {
    ...common,
    aws_region: cfg.aws.region,
    aws_instance_type: cfg.aws.instance_type,
    aws_source_ami_owner: cfg.aws.source_ami_owner,
    aws_source_ami_name: cfg.aws.source_ami_name,
    aws_root_volume_type: cfg.aws.root_volume_type,
    aws_encrypt_boot: cfg.aws.encrypt_boot,
    aws_kms_key_id: cfg.aws.kms_key_id,
    aws_ami_regions: cfg.aws.ami_regions,
    aws_ami_users: cfg.aws.ami_users,
    aws_subnet_id: cfg.aws.subnet_id,
    aws_ssh_source_cidrs: cfg.aws.ssh_source_cidrs,
    aws_ssh_keypair_name: ctx.awsKey?.name ?? '',
    aws_ssh_private_key_file: ctx.awsKey?.privateKeyFile ?? '',
    aws_ec2_endpoint: ctx.ec2Endpoint ?? '',
    aws_ssh_host: cfg.aws.build_ssh.host,
    aws_ssh_port: cfg.aws.build_ssh.port,
    aws_ssh_timeout: cfg.aws.build_ssh.timeout,
  };
}

/**
 * Stages the keys the provisioners verify downloads with: SSM Agent's signing key and its
 * fingerprint, AWS's (packer/keys/) unless aws.ssm_agent_key_file names another (a private
 * mirror's, or the rehearsal's test key). The fingerprint file sits beside the key.
 */
export function stageKeys(cfg: Config, dest: string, src = join(REPO, 'packer', 'keys', 'amazon-ssm-agent.asc')): void {
  const key = cfg.aws.ssm_agent_key_file || src;
  const fingerprint = key.replace(/\.asc$/, '') + '.fingerprint';
  for (const f of [key, fingerprint]) {
    if (!existsSync(f)) throw new ConfigError(`aws.ssm_agent_key_file: ${f} does not exist (the key and its .fingerprint file are both needed)`);
  }
  if (!/^[0-9A-F]{40}$/.test(readFileSync(fingerprint, 'utf8').replace(/\s/g, ''))) throw new ConfigError(`${fingerprint}: not a 40-hex-digit OpenPGP fingerprint`);
  mkdirSync(dest, { recursive: true });
  copyFileSync(key, join(dest, 'amazon-ssm-agent.asc'));
  copyFileSync(fingerprint, join(dest, 'amazon-ssm-agent.fingerprint'));
}

/**
 * docker.source docker-ce: fetches Docker's repository signing key (<ce_repo>/gpg, as Docker's
 * install guide does) and stages it only if its fingerprint is the pinned one.
 */
export async function stageDockerKey(cfg: Config, dest: string, fetchImpl: typeof fetch = fetch): Promise<string | null> {
  if (cfg.docker.source !== 'docker-ce') return null;
  const url = `${cfg.docker.ce_repo.replace(/\/$/, '')}/gpg`;
  let text: string;
  try {
    const r = await fetchImpl(url);
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    text = await r.text();
  } catch (e) {
    throw new PreflightError(`docker.source docker-ce: cannot fetch Docker's signing key from ${url}: ${(e as Error).message}`);
  }
  let got: string;
  try {
    got = openpgpFingerprint(text);
  } catch (e) {
    throw new PreflightError(`docker.source docker-ce: ${url} is not an OpenPGP key: ${(e as Error).message}`);
  }
  if (got !== cfg.docker.ce_key_fingerprint) {
    throw new PreflightError(`docker.source docker-ce: the key at ${url} is ${got}, not the pinned docker.ce_key_fingerprint ${cfg.docker.ce_key_fingerprint}; refusing to trust it`);
  }
  mkdirSync(dest, { recursive: true });
  writeFileSync(join(dest, 'docker.asc'), text);
  return got;
}

/** The Packer build name (`-only`) of each target. */
export const PACKER_ONLY: Record<Config['target'], string> = { local: 'qemu.local', aws: 'amazon-ebs.aws' };
