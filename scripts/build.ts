#!/usr/bin/env -S npx tsx
// `npm run build [-- --target local|aws] [--config FILE] [--set key=value] [--accel auto|kvm|tcg] [--dry-run]`
// Bakes the image: validated config -> base disk and agent image -> Packer -> build manifest.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { $ } from 'zx';
import { loadConfig, type Config } from './lib/config.ts';
import { runEntry } from './lib/cli/entry.ts';
import { info, phase } from './lib/cli/log.ts';
import { REPO } from './lib/paths.ts';
import { PreflightError, requireBinaries, requireFreeSpace } from './lib/bake/preflight.ts';
import { SUITE_VERSION, supportStatus } from './lib/bake/support.ts';
import { findLayer, layerInputs, layerKey, layerWorkDir, releaseDigests, releaseUrls, storeLayer, type Layer } from './lib/bake/layer.ts';
import { detectPacker, ec2EndpointFromEnv, packerVars, provisionerEnv, PACKER_ONLY, stageDockerKey, stageKeys, stageTemplates, type BuildContext } from './lib/bake/packer.ts';
import { ensureBaseDisk } from './lib/bake/base-disk.ts';
import { runPacker, runPackerRetryingPanics, type RetriedPanic } from './lib/bake/run-packer.ts';
import { panicRetries } from './lib/guest/panic.ts';
import { ensureAgentDouble } from './lib/bake/agent-double.ts';
import { chooseAccelerator, ec2Smbios } from './lib/guest/qemu.ts';
import { ImdsDouble, imdsNetdev } from './lib/guest/imds-double.ts';
import { throwawayKey } from './lib/guest/vm.ts';
import { resolveDigest } from './lib/bake/registry.ts';
import { findSourceAmi, requireImdsV2, tagImages } from './lib/bake/source-ami.ts';
import { writeSbom } from './lib/bake/sbom.ts';
import { buildManifest, writeBuildManifest } from './lib/bake/manifest.ts';
import { stageFirstboot } from './lib/bake/firstboot-stage.ts';
import { importBuildKey, type BuildKey } from './lib/bake/build-key.ts';
import { readJsonContract } from '../contracts/parse.ts';
import { amisOfArtifact, PackerManifestSchema } from '../contracts/packer-manifest.ts';
import type { BuildManifest } from '../contracts/build-manifest.ts';
import { buildReports, stageHardening } from './lib/compliance.ts';

const USAGE = `usage: npm run build -- [--target local|aws] [--config FILE] [--set key.path=value]...
                      [--accel auto|kvm|tcg] [--output-dir DIR] [--region REGION] [--dry-run]
Bakes the image. Config layers: built-in defaults -> --config FILE -> flags (see config/example.yaml).`;

async function gitSha(): Promise<string> {
  const sha = await $({ cwd: REPO, nothrow: true, quiet: true })`git rev-parse HEAD`;
  if (sha.exitCode !== 0) return 'unknown';
  const dirty = await $({ cwd: REPO, nothrow: true, quiet: true })`git status --porcelain --untracked-files=no`;
  return `${sha.stdout.trim()}${dirty.stdout.trim() ? '-dirty' : ''}`;
}

function buildIdNow(d = new Date()): string {
  return d.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

const REQUIRED_BINARIES: Record<Config['target'], string[]> = {
  local: ['packer', 'qemu-system-x86_64', 'qemu-img', 'mmdebstrap', 'mkfs.ext4', 'sfdisk', 'socat', 'ssh-keygen', 'tar'],
  aws: ['packer'],
};

runEntry(import.meta.url, { usage: USAGE, extraBooleans: ['dry-run'] }, async (cli) => {
  const { config: cfg, hash: configHash, sources } = loadConfig(cli.configInput);
  const dryRun = cli.flags['dry-run'] === true;
  const buildTime = new Date();
  const buildId = buildIdNow(buildTime);
  const outputRoot = resolve(REPO, cfg.output_dir);
  const finalDir = join(outputRoot, buildId);
  const partialDir = join(outputRoot, `.partial-${buildId}`);
  const ctx: BuildContext = {
    buildId,
    buildTime: buildTime.toISOString(),
    gitSha: await gitSha(),
    manifestDir: partialDir,
    firstbootDir: join(partialDir, 'stage', 'firstboot'),
    hardeningDir: join(partialDir, 'stage', 'hardening'),
    keysDir: join(partialDir, 'stage', 'keys'),
    ec2Endpoint: ec2EndpointFromEnv(),
    agent: { ref: '', digest: '', archive: '' },
  };

  if (dryRun) {
    const placeholder = '<resolved at build time>';
    ctx.agent = {
      ref: cfg.target === 'local' ? 'syntropy-agent-test-double:local' : `${cfg.agent.image}@${cfg.agent.digest || placeholder}`,
      digest: cfg.target === 'aws' && cfg.agent.digest ? cfg.agent.digest : placeholder,
      archive: cfg.target === 'local' ? placeholder : '',
    };
    if (cfg.target === 'local') {
      ctx.local = {
        baseDisk: placeholder,
        baseDiskSha256: placeholder,
        accel: cfg.local.accelerator === 'auto' ? ('auto (probed at build time)' as 'tcg') : cfg.local.accelerator,
        netdev: imdsNetdev({ id: 'user.0', imdsPort: 0, hostfwd: ['tcp:127.0.0.1:{{ .SSHHostPort }}-:22'] }).replace(':0', ':<imds port>'),
        smbios: ec2Smbios('ec2' + '0'.repeat(29)),
        serialLog: join(finalDir, 'serial.log'),
        outputDir: join(finalDir, 'image'),
        sshKeyFile: placeholder,
        layer: { key: placeholder, disk: placeholder, sha256: placeholder, outputDir: placeholder },
      };
    }
    process.stdout.write(`# resolved config (${sources.join(' -> ')}), sha256 ${configHash}\n`);
    process.stdout.write(stringify(cfg));
    process.stdout.write(`# packer variables (-only=${PACKER_ONLY[cfg.target]})\n`);
    process.stdout.write(`${JSON.stringify(packerVars(cfg, ctx), null, 2)}\n`);
    return;
  }

  requireBinaries(REQUIRED_BINARIES[cfg.target]);
  // End of life, before anything is started: the release the image is built on.
  const today = new Date().toISOString().slice(0, 10);
  const osSupport = supportStatus(SUITE_VERSION[cfg.debian.suite]!, null, today);
  if (osSupport.problems.length > 0) throw new PreflightError(osSupport.problems.join('; '));
  for (const w of osSupport.warnings) info(`support: ${w}`);
  mkdirSync(outputRoot, { recursive: true });
  requireFreeSpace(outputRoot, cfg.target === 'local' ? (cfg.image.disk_gib + 4) * 2 ** 30 : 2 ** 30, 'the image build');
  const flavor = await detectPacker();
  info(`build ${buildId}: target ${cfg.target}, Packer ${flavor.version}${flavor.modern ? '' : ' (built-in builders, no packer init)'}, config ${configHash.slice(0, 12)}`);
  if (cfg.target === 'aws' && !flavor.modern && cfg.aws.ssh_source_cidrs.length === 0) {
    throw new PreflightError(
      `Packer ${flavor.version} cannot limit the build instance's SSH to this builder's address: set aws.ssh_source_cidrs (e.g. --set 'aws.ssh_source_cidrs=["203.0.113.7/32"]') or use Packer >= 1.7`,
    );
  }

  mkdirSync(partialDir, { recursive: true });
  const durations: Record<string, number> = {};
  const guestPanics: RetriedPanic[] = [];
  const t0 = Date.now();
  const imds = new ImdsDouble({ region: cfg.aws.region });
  let buildKey: BuildKey | null = null;
  let baseImage: BuildManifest['base_image'] | null = null;
  try {
    await phase(durations, 'bundle-firstboot', () => stageFirstboot(cfg, ctx.firstbootDir));
    stageKeys(cfg, ctx.keysDir);
    const dockerKey = await stageDockerKey(cfg, ctx.keysDir);
    if (dockerKey) info(`docker: Docker's repository key ${dockerKey} fetched and matches docker.ce_key_fingerprint`);
    const staged = stageHardening(cfg, ctx.hardeningDir);
    info(`hardening: ${staged.controls} catalog entries rendered into ${ctx.hardeningDir}/apply.sh`);
    const templateDir = join(partialDir, 'stage', 'packer');
    stageTemplates(templateDir, flavor);

    if (cfg.target === 'local') {
      info('local target: no SSM Agent in the image (SSM Run Command and the SSM document are for EC2; the aws bake installs it)');
      const base = await phase(durations, 'base-disk', () => ensureBaseDisk(cfg));
      const agent = await phase(durations, 'agent-image', () => ensureAgentDouble(cfg));
      ctx.agent = { ref: agent.ref, digest: agent.digest, archive: agent.archive };
      const accel = await chooseAccelerator(cfg.local.accelerator, base.vmlinuz, base.kernel);
      info(`accelerator: ${accel.accel} (${accel.reason})`);
      const keyDir = join(partialDir, 'stage', 'key');
      mkdirSync(keyDir, { recursive: true, mode: 0o700 });
      const key = await throwawayKey(keyDir, `packer-build-${buildId}`);
      imds.setPublicKeys({ [`packer-${buildId}`]: key.publicKey });
      const imdsPort = await imds.start();
      info(`IMDSv2 double on 127.0.0.1:${imdsPort} (guest 169.254.169.254:80, instance ${imds.instanceId})`);
      ctx.local = {
        baseDisk: base.qcow2,
        baseDiskSha256: base.sha256,
        accel: accel.accel,
        netdev: imdsNetdev({ id: 'user.0', imdsPort, hostfwd: ['tcp:127.0.0.1:{{ .SSHHostPort }}-:22'] }),
        smbios: ec2Smbios(),
        serialLog: join(partialDir, 'serial.log'),
        outputDir: join(partialDir, 'image'),
        sshKeyFile: key.privateKey,
        layer: { key: '', disk: '', sha256: '', outputDir: '' },
      };
      baseImage = { kind: 'local-base-disk', path: base.qcow2, sha256: base.sha256, kernel: base.kernel, inputs_hash: base.hash, reused: base.reused, accelerator: accel.accel };
    } else {
      const ami = await phase(durations, 'source-ami', () => findSourceAmi(cfg));
      info(`source AMI: ${ami.imageId} (${ami.name}, ${ami.creationDate})`);
      const digest = cfg.agent.digest || (await phase(durations, 'agent-digest', () => resolveDigest(cfg.agent.image, cfg.agent.tag)));
      if (!flavor.modern) {
        // Packer 1.6.6 signs with its temporary RSA key using ssh-rsa (SHA-1), which Debian 13's
        // OpenSSH refuses: import an ed25519 key for it instead (bake/build-key.ts).
        const keyDir = join(partialDir, 'stage', 'key');
        mkdirSync(keyDir, { recursive: true, mode: 0o700 });
        buildKey = await phase(durations, 'build-key', async () => importBuildKey(cfg.aws.region, buildId, await throwawayKey(keyDir, `packer-build-${buildId}`)));
        ctx.awsKey = { name: buildKey.name, privateKeyFile: buildKey.privateKeyFile };
        info(`build key: imported ed25519 key pair ${buildKey.name} for Packer ${flavor.version}`);
      }
      ctx.agent = { ref: `${cfg.agent.image}@${digest}`, digest, archive: '' };
      baseImage = { kind: 'ami', ...ami };
    }

    const varFile = join(partialDir, 'stage', 'variables.pkrvars.json');
    if (flavor.modern) await phase(durations, 'packer-init', () => runPacker(['init', '.'], { cwd: templateDir, logFile: join(partialDir, 'packer-init.log'), durations }));
    let layer: Layer | null = null;
    if (ctx.local) {
      // The hardened layer: found under its key, or made now by qemu.layer (scripts/lib/bake/layer.ts).
      const local = ctx.local;
      const release = await phase(durations, 'layer-key', () => releaseDigests(releaseUrls(cfg)));
      const { nonce } = JSON.parse(readFileSync(join(ctx.hardeningDir, 'probe.json'), 'utf8')) as { nonce: string };
      const inputs = layerInputs({ cfg, baseDiskSha256: local.baseDiskSha256, release, keysDir: ctx.keysDir, hardeningDir: ctx.hardeningDir, probeNonce: nonce, env: provisionerEnv(cfg, ctx) });
      local.layer.key = layerKey(inputs);
      layer = findLayer(local.layer.key);
      if (layer) {
        info(`hardened layer: reusing ${layer.qcow2} (key ${layer.key}; Packer checks its sha256, open-layer.sh its key)`);
      } else {
        info(`hardened layer: none for key ${local.layer.key}; qemu.layer builds it from the base disk`);
        local.layer.outputDir = layerWorkDir(local.layer.key);
        writeFileSync(varFile, JSON.stringify(packerVars(cfg, ctx), null, 2));
        try {
          const panics = await phase(durations, 'packer-layer', () =>
            runPackerRetryingPanics(
              ['build', '-color=false', '-only=qemu.layer', `-var-file=${varFile}`, '.'],
              { cwd: templateDir, logFile: join(partialDir, 'packer-layer.log'), durations, prefix: 'layer', serialLog: local.serialLog },
              { build: 'layer', retries: panicRetries(local.accel), beforeRetry: () => rmSync(local.layer.outputDir, { recursive: true, force: true }) },
            ),
          );
          guestPanics.push(...panics);
          // QEMU's `-serial file:` truncates: the layer guest's console is kept under its own name.
          renameSync(local.serialLog, join(partialDir, 'serial-layer.log'));
          layer = await phase(durations, 'store-layer', () => storeLayer(local.layer.key, local.layer.outputDir, inputs, nonce));
        } finally {
          rmSync(local.layer.outputDir, { recursive: true, force: true });
        }
      }
      local.layer.disk = layer.qcow2;
      local.layer.sha256 = layer.sha256;
    }
    writeFileSync(varFile, JSON.stringify(packerVars(cfg, ctx), null, 2));
    const packerArgs = ['build', '-color=false', `-only=${PACKER_ONLY[cfg.target]}`, `-var-file=${varFile}`, '.'];
    const packerOpts = { cwd: templateDir, logFile: join(partialDir, 'packer.log'), durations };
    const local = ctx.local;
    if (local) {
      const panics = await phase(durations, 'packer', () =>
        runPackerRetryingPanics(
          packerArgs,
          { ...packerOpts, serialLog: local.serialLog },
          { build: 'image', retries: panicRetries(local.accel), beforeRetry: () => rmSync(local.outputDir, { recursive: true, force: true }) },
        ),
      );
      guestPanics.push(...panics);
    } else {
      await phase(durations, 'packer', () => runPacker(packerArgs, packerOpts));
    }

    await $`tar -C ${partialDir} -xf ${join(partialDir, 'image-info.tar')}`;
    rmSync(join(partialDir, 'image-info.tar'));
    let outputs: BuildManifest['outputs'];
    const packerManifestFile = join(partialDir, 'packer-manifest.json');
    const last = readJsonContract(PackerManifestSchema, packerManifestFile).builds.at(-1)!;
    if (cfg.target === 'local') {
      const qcow2 = join(finalDir, 'image', `${cfg.image.name}.qcow2`);
      outputs = { qcow2, qcow2_bytes: statSync(join(partialDir, 'image', `${cfg.image.name}.qcow2`)).size };
    } else {
      const amis = amisOfArtifact(last.artifact_id, packerManifestFile);
      if (!flavor.modern) await phase(durations, 'imds-v2-only', () => requireImdsV2(amis));
      outputs = { amis };
    }
    // A reused layer's baseline facts were recorded by its own build's probe (its nonce).
    const { baseline, hardened } = await phase(durations, 'compliance-reports', async () => buildReports(cfg, partialDir, ctx.hardeningDir, layer?.baselineNonce));
    if (!hardened) throw new Error('the guest recorded no compliance facts (collect-manifest.sh did not run the probe)');
    const s = hardened.summary;
    info(
      `compliance: ${s.automated_l1_passing}/${s.automated_l1} automated L1 Server passing (${s.score}%)` +
        `${baseline ? `, baseline ${baseline.summary.automated_l1_passing}/${baseline.summary.automated_l1} (${baseline.summary.score}%)` : ''}; ` +
        `FAIL ${s.totals.FAIL}, EXCEPTION ${s.totals.EXCEPTION}, manual ${s.totals.manual}; marketplace FAIL ${s.marketplace.FAIL}`,
    );
    if (cfg.hardening.enabled && !hardened.passed) {
      const failing = hardened.results.filter((r) => r.result === 'FAIL' || r.result === 'ERROR').map((r) => `${r.id} (${r.evidence})`);
      throw new Error(`the hardened image fails ${failing.length} check(s): ${failing.join('; ')}; report: ${join(partialDir, 'reports', 'compliance.md')}`);
    }
    durations.total = Math.round((Date.now() - t0) / 100) / 10;
    if (!baseImage) throw new Error('internal: the base image was not recorded');
    if (baseImage.kind === 'local-base-disk' && layer) baseImage.hardened_layer = { key: layer.key, path: layer.qcow2, sha256: layer.sha256, reused: layer.reused };
    const manifest = buildManifest({ cfg, configHash, ctx, flavor, baseImage, outputs, durations, guestPanics, dir: partialDir, compliance: { hardened, baseline } });
    // End of life, on what the image holds: the OS release it reports and the engine installed.
    const support = supportStatus(manifest.os.version_id, manifest.packages, today);
    for (const w of support.warnings) info(`support: ${w}`);
    if (support.problems.length > 0) throw new Error(`end-of-life check: ${support.problems.join('; ')}`);
    manifest.support = { checked_on: today, os: support.os, docker: support.docker, warnings: support.warnings };
    info(`support: ${support.os.release} (${support.os.phase} until ${support.os.until}); ${support.docker ? `${support.docker.package} ${support.docker.version} from ${support.docker.source}${support.docker.until ? ` until ${support.docker.until}` : ''}` : 'no engine'}`);
    // The SBOM, from the same facts; its sha256 goes into the manifest and onto the AMIs.
    manifest.sbom = await phase(durations, 'sbom', () => writeSbom(manifest, partialDir));
    info(`sbom: ${manifest.sbom.components} components (${manifest.sbom.debian_packages} Debian packages, ${manifest.sbom.npm_packages} npm packages, the agent image and ${manifest.sbom.agent_packages ?? 0} packages of its layers), sha256 ${manifest.sbom.sha256.slice(0, 12)}`);
    if ('amis' in outputs) await phase(durations, 'tag-sbom', () => tagImages(outputs.amis, { 'syntropy:sbom-sha256': manifest.sbom!.sha256 }));
    writeBuildManifest(join(partialDir, 'build-manifest.json'), manifest);
    rmSync(join(partialDir, 'stage'), { recursive: true, force: true });
    renameSync(partialDir, finalDir);
    const latest = join(outputRoot, 'latest');
    rmSync(latest, { force: true });
    symlinkSync(buildId, latest);
    info(`build ${buildId} done in ${durations.total}s: ${join(finalDir, 'build-manifest.json')}`);
    process.stdout.write(`${JSON.stringify({ build_id: buildId, manifest: join(finalDir, 'build-manifest.json'), ...outputs }, null, 2)}\n`);
  } catch (e) {
    // Nothing half-built stays where an output would be: keep the logs, drop the image.
    const failedDir = join(outputRoot, `failed-${buildId}`);
    rmSync(join(partialDir, 'image'), { recursive: true, force: true });
    rmSync(join(partialDir, 'stage'), { recursive: true, force: true });
    if (existsSync(partialDir)) renameSync(partialDir, failedDir);
    info(`build failed; logs kept in ${failedDir}`);
    if (e instanceof Error) e.message = e.message.replaceAll(partialDir, failedDir);
    throw e;
  } finally {
    await imds.stop();
    await buildKey?.remove().catch((e: Error) => info(`could not delete the build key pair: ${e.message} (npm run clean does not; delete it by hand)`));
  }
});
