// The rehearsal of the aws release, end to end on this machine: build -> boot-test -> publish ->
// clean, each step the project's own command (the same scripts CI and operators run) against
// the AWS emulator (moto), reading the files the step before wrote. Failures are injected into
// AWS calls in between, and the emulator's inventory is checked after each: nothing may be left
// running or half-made. What only real AWS can prove is listed in the README.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, createWriteStream, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { $ } from 'zx';
import { stringify } from 'yaml';
import { DescribeImagesCommand, DescribeInstanceAttributeCommand, DescribeInstancesCommand, DescribeRouteTablesCommand, DescribeSecurityGroupsCommand, EC2Client, StopInstancesCommand } from '@aws-sdk/client-ec2';
import { GetParametersByPathCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { AddRoleToInstanceProfileCommand, AttachRolePolicyCommand, CreateInstanceProfileCommand, CreateRoleCommand, IAMClient } from '@aws-sdk/client-iam';
import { accessRoleProblems, INGESTION_POLICY_ARN } from '../release/marketplace.ts';
import { EnableCommand, Inspector2Client } from '@aws-sdk/client-inspector2';
import type { Config } from '../config.ts';
import { REPO, cacheRoot } from '../paths.ts';
import { ensureBaseDisk } from '../bake/base-disk.ts';
import { ensureAgentDouble } from '../bake/agent-double.ts';
import { chooseAccelerator } from '../guest/qemu.ts';
import { freePort, LocalVm, SSM_DOUBLE_ADDR } from '../guest/vm.ts';
import { panicRetries } from '../guest/panic.ts';
import type { Accelerator } from '../guest/qemu.ts';
import { SsmDouble } from '../boottest/parameter-store-double.ts';
import { assertConfigured, firstbootSettled, firstbootStatus, tokenLeaks, waitForAgent } from '../boottest/guest-state.ts';
import { parse } from 'yaml';
import { ensureMotoRootfs, MotoServer, debianOfficialAmi, type SeedAmi } from '../emulator/moto.ts';
import { imageFromDockerArchive, RegistryDouble } from '../emulator/registry-double.ts';
import { makeSsmAgentRepo, makeTestSigningKey, StaticServer } from '../emulator/ssm-agent-double.ts';
import { FaultProxy, type Fault } from './fault-proxy.ts';
import { emulatorEnv } from './env.ts';
import { BuildInstanceBridge, type BridgeOptions } from './build-instance.ts';
import { inventory, leftovers, newImages, type Inventory } from './inventory.ts';
import { parseContract, readJsonContract } from '../../../contracts/parse.ts';
import { FailoverConfigSchema, FailoverWatcher, type FailoverConfig } from '../../../deploy/failover.ts';
import { amis, BuildManifestSchema, type BuildManifest } from '../../../contracts/build-manifest.ts';
import { BootTestReportSchema } from '../../../contracts/boot-report.ts';
import { PublishManifestSchema, type PublishManifest } from '../../../contracts/publish-manifest.ts';

/** Where the guest reaches the rehearsal's doubles (QEMU guestfwd, the guest's private /24). */
export const SSM_AGENT_DOUBLE_ADDR = '169.254.169.251';
export const REGISTRY_DOUBLE_ADDR = '169.254.169.252';
/** The regions publish copies to in the rehearsal, and an account given launch permission. */
export const REHEARSAL_PUBLISH_REGIONS = ['us-west-2', 'eu-west-1'];
export const REHEARSAL_LAUNCH_ACCOUNT = '111122223333';
/** The Amazon Inspector finding the rehearsal seeds into the emulator (moto-api) for the image. */
export const SEEDED_FINDING = 'CVE-2026-0001';
/** moto's default account: what `Owners: ['self']` means in the emulator. */
export const EMULATOR_ACCOUNT = '123456789012';
const MP_ROLE_GOOD = 'MarketplaceAmiIngestion';
const MP_ROLE_BAD = 'MarketplaceAmiIngestionWrongTrust';
const mpRoleArn = (name: string) => `arn:aws:iam::${EMULATOR_ACCOUNT}:role/${name}`;

export interface Check {
  step: string;
  name: string;
  ok: boolean;
  detail: string;
}

export interface StepTiming {
  step: string;
  seconds: number;
}

export interface RehearsalReport {
  schema: 1;
  started_at: string;
  emulator: { package: string; rootfs_reused: boolean; rootfs_seconds: number };
  steps: StepTiming[];
  checks: Check[];
  passed: boolean;
  /** Parts of each step the emulator cannot rehearse (its gaps), seen in this run. */
  gaps: string[];
  /** Route failover times measured against the emulator's route tables (seconds). */
  failover?: Record<string, number>;
  build_manifest: string | null;
  publish_manifest: string | null;
}

/** An older release of the product in the emulator, so retention has something to remove. */
export function previousRelease(cfg: Config, now: Date): SeedAmi & { tags: Record<string, string> } {
  const old = new Date(now.getTime() - 200 * 86_400_000);
  return {
    ...debianOfficialAmi(cfg, old),
    ami_id: 'ami-0f1d000000000a1b2',
    name: `${cfg.image.name}-0.0.9-20260516T000000Z`,
    description: 'rehearsal: a release from 200 days ago',
    owner_id: EMULATOR_ACCOUNT,
    public: false,
    tags: { 'syntropy:image': cfg.image.name, 'syntropy:version': '0.0.9', 'syntropy:build-id': '20260516T000000Z' },
  };
}

/** The config the rehearsal's aws build runs with: the project's defaults plus where the doubles are. */
export function rehearsalConfig(o: { outputDir: string; sshPort: number; agentDigest: string; ssmKeyFile: string; today?: Date }): Record<string, unknown> {
  const expires = new Date((o.today ?? new Date()).getTime() + 86_400_000).toISOString().slice(0, 10);
  const gap = (what: string) => ({
    reason: `emulator gap: moto 5.1.1 does not model ${what} on images (ModifyImageAttribute accepts it, DescribeImages never returns it); publish's check of it is tested against AWS's documented shape in test/unit/publish.test.ts`,
    expires,
  });
  return {
    target: 'aws',
    output_dir: o.outputDir,
    agent: { digest: o.agentDigest, registry_mirror: `http://${REGISTRY_DOUBLE_ADDR}` },
    aws: {
      region: 'us-east-1',
      ssh_source_cidrs: ['127.0.0.1/32'],
      build_ssh: { host: '127.0.0.1', port: o.sshPort, timeout: '20m' },
      ssm_agent_base_url: `http://${SSM_AGENT_DOUBLE_ADDR}`,
      ssm_agent_key_file: o.ssmKeyFile,
    },
    publish: {
      regions: REHEARSAL_PUBLISH_REGIONS,
      launch_accounts: [REHEARSAL_LAUNCH_ACCOUNT],
      waivers: [
        { rule: 'ena-support', ...gap('EnaSupport') },
        { rule: 'imds-v2-only', ...gap('ImdsSupport') },
        { rule: 'ebs-root', ...gap('an EBS root device type (CreateImage of an EBS-backed instance registers "standard")') },
      ],
      inspector: { waivers: [{ finding: SEEDED_FINDING, reason: 'rehearsal: a finding seeded into the emulator to exercise the Inspector gate; not a real vulnerability', expires }] },
    },
    retention: { keep_newest: 1, max_age_days: 30 },
  };
}

export interface Ctx {
  cfg: Config;
  work: string;
  env: NodeJS.ProcessEnv;
  proxy: FaultProxy;
  moto: MotoServer;
  regions: string[];
  log: (l: string) => void;
  report: RehearsalReport;
  configFile: string;
  /** The test agent token (in the emulator's Parameter Store and the guest's double; never printed). */
  token: string;
}

function check(ctx: Ctx, step: string, name: string, ok: boolean, detail = ''): boolean {
  ctx.report.checks.push({ step, name, ok, detail });
  ctx.log(`${ok ? 'ok  ' : 'FAIL'} [${step}] ${name}${detail ? `: ${detail}` : ''}`);
  return ok;
}

async function timed<T>(ctx: Ctx, step: string, fn: () => Promise<T>): Promise<T> {
  const t0 = Date.now();
  ctx.log(`--- ${step}`);
  try {
    return await fn();
  } finally {
    ctx.report.steps.push({ step, seconds: Math.round((Date.now() - t0) / 100) / 10 });
  }
}

/** The steps' processes still running: killed with the emulator if the rehearsal is stopped. */
const children = new Set<ChildProcess>();

/** Runs one of the project's npm scripts as a child with the emulator's environment. */
function runScript(ctx: Ctx, name: string, script: string, args: string[], opts: { onSpawn?: (pid: number) => void } = {}): Promise<{ code: number | null; signal: string | null; out: string; logFile: string }> {
  const logFile = join(ctx.work, 'logs', `${name}.log`);
  mkdirSync(join(ctx.work, 'logs'), { recursive: true });
  const stream = createWriteStream(logFile);
  return new Promise((resolve) => {
    // Its own process group, so the reaper can take Packer and every grandchild with it.
    const child = spawn(join(REPO, 'node_modules', '.bin', 'tsx'), [join(REPO, 'scripts', script), ...args], { cwd: REPO, env: ctx.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let out = '';
    const keep = (b: Buffer) => {
      out += b.toString();
      stream.write(b);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    if (child.pid) opts.onSpawn?.(child.pid);
    children.add(child);
    child.on('close', (code, signal) => {
      children.delete(child);
      stream.end();
      resolve({ code, signal, out, logFile });
    });
  });
}

/** An SDK client's settings for the emulator: its endpoint and the rehearsal's dummy credentials. */
function emulator(ctx: Ctx, region = ctx.cfg.aws.region) {
  return { region, endpoint: ctx.env.AWS_ENDPOINT_URL!, credentials: { accessKeyId: ctx.env.AWS_ACCESS_KEY_ID!, secretAccessKey: ctx.env.AWS_SECRET_ACCESS_KEY! } };
}

function clientsFor(ctx: Ctx) {
  return (region: string) => ({ ec2: new EC2Client(emulator(ctx, region)), ssm: new SSMClient(emulator(ctx, region)) });
}

const inv = (ctx: Ctx): Promise<Inventory> => inventory(ctx.regions, ctx.cfg.publish.ssm_parameter_prefix, clientsFor(ctx));

/**
 * What an account needs before a release, as the README's AWS setup says: the boot-test
 * instance profile (role trusted by EC2) and the agent token in a SecureString parameter; and,
 * for retention to act on, a version parameter of the older release.
 */
async function prepareAccount(ctx: Ctx): Promise<void> {
  const { ssm } = clientsFor(ctx)(ctx.cfg.aws.region);
  const iam = new IAMClient(emulator(ctx));
  const profile = ctx.cfg.aws.boot_test.instance_profile;
  await iam.send(
    new CreateRoleCommand({
      RoleName: profile,
      AssumeRolePolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' }] }),
    }),
  );
  await iam.send(new CreateInstanceProfileCommand({ InstanceProfileName: profile }));
  await iam.send(new AddRoleToInstanceProfileCommand({ InstanceProfileName: profile, RoleName: profile }));
  // Marketplace access roles as README "Handing the AMI to Marketplace" makes them: one right
  // (iam/marketplace-access-role-trust-policy.json + AWSMarketplaceAmiIngestion, which moto
  // carries as AWS publishes it), one trusting EC2 instead.
  await iam.send(new CreateRoleCommand({ RoleName: MP_ROLE_GOOD, AssumeRolePolicyDocument: readFileSync(join(REPO, 'iam', 'marketplace-access-role-trust-policy.json'), 'utf8') }));
  await iam.send(new AttachRolePolicyCommand({ RoleName: MP_ROLE_GOOD, PolicyArn: INGESTION_POLICY_ARN }));
  await iam.send(
    new CreateRoleCommand({
      RoleName: MP_ROLE_BAD,
      AssumeRolePolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' }] }),
    }),
  );
  await iam.send(new AttachRolePolicyCommand({ RoleName: MP_ROLE_BAD, PolicyArn: INGESTION_POLICY_ARN }));
  // The token is made here, never printed; the emulator keeps it in memory only.
  await ssm.send(new PutParameterCommand({ Name: ctx.cfg.aws.boot_test.token_parameter, Type: 'SecureString', Value: ctx.token, Overwrite: true }));
  await ssm.send(
    new PutParameterCommand({ Name: `${ctx.cfg.publish.ssm_parameter_prefix}/0.0.9`, Type: 'String', Value: previousRelease(ctx.cfg, new Date()).ami_id, Overwrite: true }),
  );
  // Amazon Inspector with EC2 scanning on, and one HIGH finding for the image to come: moto
  // answers ListFindings from results queued through its API (moto/inspector2/models.py).
  const inspector = new Inspector2Client(emulator(ctx));
  await inspector.send(new EnableCommand({ accountIds: [EMULATOR_ACCOUNT], resourceTypes: ['EC2'] }));
  const at = Math.floor(Date.now() / 1000);
  const seeded = {
    findingArn: `arn:aws:inspector2:${ctx.cfg.aws.region}:${EMULATOR_ACCOUNT}:finding/${SEEDED_FINDING.toLowerCase()}`,
    awsAccountId: EMULATOR_ACCOUNT,
    type: 'PACKAGE_VULNERABILITY',
    description: 'seeded by the rehearsal',
    title: `${SEEDED_FINDING} - libexample`,
    severity: 'HIGH',
    status: 'ACTIVE',
    firstObservedAt: at,
    lastObservedAt: at,
    remediation: {},
    resources: [{ type: 'AWS_EC2_INSTANCE', id: 'i-0rehearsal', details: {} }],
    packageVulnerabilityDetails: { vulnerabilityId: SEEDED_FINDING, source: 'DEBIAN_CVE', vulnerablePackages: [{ name: 'libexample', version: '1.0-1', fixedInVersion: '1.0-1+deb13u1' }] },
  };
  const r = await fetch(`${ctx.moto.endpoint}/moto-api/static/inspector2/findings-results`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ results: [[seeded]], account_id: EMULATOR_ACCOUNT, region: ctx.cfg.aws.region }) });
  if (!r.ok) throw new Error(`seeding the Inspector finding failed: HTTP ${r.status}`);
}

/** A step run with faults armed: it must fail, and leave no instance, key pair or group behind. */
async function faulted(ctx: Ctx, step: string, faults: Fault[], run: () => Promise<{ code: number | null; out: string }>, expect: RegExp): Promise<void> {
  const before = await inv(ctx);
  ctx.proxy.arm(faults);
  const injectedBefore = ctx.proxy.injected.length;
  const r = await run();
  ctx.proxy.arm([]);
  const what = faults.map((f) => `${f.action}#${f.nth}`).join(', ');
  check(ctx, step, `fault ${what} was injected`, ctx.proxy.injected.length > injectedBefore);
  check(ctx, step, `fault ${what}: the command fails and names the call`, r.code !== 0 && expect.test(r.out), `exit ${r.code}`);
  const after = await inv(ctx);
  const left = leftovers(after);
  check(ctx, step, `fault ${what}: nothing left running or half-made`, left.length === 0, left.join('; '));
  const made = newImages(before, after);
  check(ctx, step, `fault ${what}: no image or snapshot was registered`, made.length === 0, made.join('; '));
}

async function stepBuild(ctx: Ctx): Promise<{ manifestPath: string; manifest: BuildManifest; disk: string; accel: Accelerator } | null> {
  const cfg = ctx.cfg;
  const base = await ensureBaseDisk(cfg);
  const accel = await chooseAccelerator(cfg.local.accelerator, base.vmlinuz, base.kernel);
  // The agent: the test double's image, served by the registry double under the real name.
  const agent = await ensureAgentDouble(cfg);
  const regDir = join(cacheRoot(), 'rehearsal', `registry-${agent.digest.slice(7, 23)}`);
  if (!existsSync(join(regDir, 'manifest.json'))) {
    mkdirSync(regDir, { recursive: true });
    await $`tar -C ${regDir} -xf ${agent.archive}`;
  }
  const image = imageFromDockerArchive(regDir, cfg.agent.image);
  const registry = new RegistryDouble(image);
  const registryPort = await registry.start();
  // SSM Agent: a stand-in package signed with a TEST key the rehearsal's config trusts.
  const keyDir = join(ctx.work, 'keys');
  mkdirSync(keyDir, { recursive: true });
  const key = makeTestSigningKey(keyDir, 'amazon-ssm-agent');
  const repo = makeSsmAgentRepo(join(ctx.work, 'ssm-agent-double'), cfg.aws.ssm_agent_version, key);
  const ssmServer = new StaticServer(repo);
  const ssmPort = await ssmServer.start();
  const sshPort = await freePort();
  const outputDir = join(ctx.work, 'output');
  writeFileSync(ctx.configFile, stringify(rehearsalConfig({ outputDir, sshPort, agentDigest: image.digest, ssmKeyFile: key.asc })));
  ctx.log(`agent ${cfg.agent.image}@${image.digest} served by the registry double; SSM Agent double signed by TEST key ${key.fingerprint}`);

  try {
    // 1. A failure at launch: Packer and the build clean up (temporary group, imported key pair).
    await faulted(ctx, 'build', [{ action: 'RunInstances', nth: 1 }], () => runScript(ctx, 'build-fault-run-instances', 'build.ts', ['--config', ctx.configFile]), /RunInstances|UnauthorizedOperation/);

    // 2. The real build.
    const { ec2 } = clientsFor(ctx)(cfg.aws.region);
    const bridgeOptions: BridgeOptions = {
      ec2,
      region: cfg.aws.region,
      baseDisk: base.qcow2,
      accel: accel.accel,
      sshPort,
      diskGib: cfg.image.disk_gib,
      cpus: cfg.local.cpus,
      memoryMib: cfg.local.memory_mib,
      guestfwd: [
        { ip: SSM_AGENT_DOUBLE_ADDR, port: 80, hostPort: ssmPort },
        { ip: REGISTRY_DOUBLE_ADDR, port: 80, hostPort: registryPort },
      ],
      log: ctx.log,
      publicKeyOf: (name) => ctx.moto.publicKey(name),
      onStopInstances: (hook) => ctx.proxy.onCall('StopInstances', hook),
    };
    const disk = join(ctx.work, 'build-instance.qcow2');
    // Under TCG a guest's kernel panics now and then (scripts/lib/guest/panic.ts): a build whose
    // instance's guest panicked runs once more from the start, as the local bake does.
    const attempt = async (log: string) => {
      const bridge = new BuildInstanceBridge(bridgeOptions);
      bridge.start(disk);
      const r = await runScript(ctx, log, 'build.ts', ['--config', ctx.configFile]);
      return { bridge, r, b: await bridge.finish() };
    };
    let { bridge, r, b } = await attempt('build');
    if (r.code !== 0 && b.panic && panicRetries(accel.accel) > 0) {
      ctx.log(`warning: the build instance's guest panicked ("${b.panic}") and the build failed (log ${r.logFile}); under TCG the build runs once more`);
      ({ bridge, r, b } = await attempt('build-after-panic'));
    }
    check(ctx, 'build', 'the build instance bridge ran without error', !bridge.failure, bridge.failure?.message ?? '');
    if (!check(ctx, 'build', 'npm run build -- --target aws succeeds against the emulator', r.code === 0, `exit ${r.code}, log ${r.logFile}`)) return null;
    check(ctx, 'build', "Packer's SSH landed on the guest booted for its instance, with the emulator's key pair", !!b.instanceId && !!b.keyName, `${b.instanceId} key ${b.keyName}`);
    check(ctx, 'build', "the guest shut down on EC2's stop (ACPI) before the image was made", b.cleanShutdown);
    check(ctx, 'build', 'the agent was pulled by digest through the registry double', registry.requests.some((q) => q.path.endsWith(`/manifests/${image.digest}`) && q.status === 200));
    check(ctx, 'build', 'SSM Agent came from its double and its signature was checked', ssmServer.requests.some((q) => q.path.endsWith('amazon-ssm-agent.deb.sig') && q.status === 200));
    const manifestPath = join(outputDir, 'latest', 'build-manifest.json');
    const manifest = readJsonContract(BuildManifestSchema, manifestPath);
    const built = amis(manifest)[cfg.aws.region];
    const now = await inv(ctx);
    const reg = now[cfg.aws.region]!;
    check(ctx, 'build', 'the manifest names the AMI the emulator registered', !!built && reg.images.some((i) => i.id === built && i.buildId === manifest.build_id), `${built}`);
    check(ctx, 'build', 'the manifest records the agent digest the registry served', manifest.agent_image.digest === image.digest);
    const sbomFile = join(outputDir, 'latest', manifest.sbom?.file ?? 'sbom.cdx.json');
    const sbomSha = existsSync(sbomFile) ? createHash('sha256').update(readFileSync(sbomFile)).digest('hex') : '';
    const tagged = await ec2.send(new DescribeImagesCommand({ ImageIds: [built!] }));
    const sbomTag = tagged.Images?.[0]?.Tags?.find((t) => t.Key === 'syntropy:sbom-sha256')?.Value;
    check(ctx, 'build', 'the SBOM is beside the manifest, and its sha256 is in the manifest and on the AMI', !!manifest.sbom && sbomSha === manifest.sbom.sha256 && sbomTag === sbomSha, `${manifest.sbom?.components ?? 0} components, tag ${sbomTag ?? 'none'}`);
    const left = leftovers(now);
    check(ctx, 'build', "Packer's instance, key pair and security group are gone", left.length === 0, left.join('; '));
    return { manifestPath, manifest, disk, accel: accel.accel };
  } finally {
    await registry.stop();
    await ssmServer.stop();
  }
}

/**
 * Where the emulator stops a boot scenario before its verdict: each is a call moto 5.1.1 lacks,
 * with the step that needs it and the error that step reports.
 */
export const BOOT_TEST_GAPS = [
  { step: 'metadata options as launched: IMDSv2 required, hop limit 1', error: /metadata options of i-[0-9a-f]+: null/, gap: 'moto 5.1.1 returns no MetadataOptions from DescribeInstances' },
  { step: 'SSM Agent online', error: /DescribeInstanceInformation/, gap: 'moto 5.1.1 does not implement SSM DescribeInstanceInformation' },
];

async function stepBootTest(ctx: Ctx, manifestPath: string, manifest: BuildManifest, image: { disk: string; accel: Accelerator }): Promise<void> {
  // Ctrl-C while an instance runs (held at its first call after launch): the boot test
  // terminates what it launched, then exits 130.
  let pid = 0;
  ctx.proxy.arm([{ action: 'ModifyInstanceAttribute', nth: 1, delayMs: 8000 }]);
  const watcher = (async () => {
    for (let i = 0; i < 300; i++) {
      const now = await inv(ctx).catch(() => null);
      if (pid && now && Object.values(now).some((r) => r.instances.some((x) => x.role === 'boot-test'))) {
        process.kill(pid, 'SIGINT');
        return true;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    return false;
  })();
  const interrupted = await runScript(ctx, 'boot-test-ctrl-c', 'boot-test.ts', ['--target', 'aws', '--manifest', manifestPath, '--scenario', 'user-data'], { onSpawn: (p) => (pid = p) });
  ctx.proxy.arm([]);
  const sent = await watcher;
  check(ctx, 'boot-test', 'Ctrl-C while an instance runs: exit 130', sent && interrupted.code === 130, `exit ${interrupted.code ?? interrupted.signal}`);
  const afterInt = leftovers(await inv(ctx));
  check(ctx, 'boot-test', 'Ctrl-C: every launched instance terminated', afterInt.length === 0, afterInt.join('; '));

  // Every scenario: launch with the profile, IMDSv2 and hop limit 1, source/dest check off; then
  // as far as the emulator goes; always terminate.
  const r = await runScript(ctx, 'boot-test', 'boot-test.ts', ['--target', 'aws', '--manifest', manifestPath]);
  const report = readJsonContract(BootTestReportSchema, join(manifestPath, '..', 'reports', 'boot-test.json'));
  check(ctx, 'boot-test', 'the boot report is written in its contract for this build', report.build_id === manifest.build_id && report.target === 'aws');
  const launchSteps = ['launch (IMDSv2 required, boot-test profile)', 'source/destination check off (the instance routes)'];
  for (const s of report.scenarios) {
    const passed = s.steps.filter((x) => x.ok).map((x) => x.name);
    const missing = launchSteps.filter((n) => !passed.includes(n));
    check(ctx, 'boot-test', `${s.name}: launched with the boot-test profile, IMDSv2 required, source/dest check off`, missing.length === 0, missing.length ? `not passed: ${missing.join(', ')}; ${s.error ?? ''}` : '');
    if (s.passed) continue;
    const first = s.steps.find((x) => !x.ok);
    const gap = BOOT_TEST_GAPS.find((g) => g.step === first?.name && g.error.test(`${first?.detail ?? ''} ${s.error ?? ''}`));
    check(ctx, 'boot-test', `${s.name}: stops only at a known emulator gap`, !!gap, `${first?.name}: ${(s.error ?? first?.detail ?? '').slice(0, 200)}`);
    if (gap) ctx.report.gaps.push(`boot-test ${s.name}: from "${gap.step}" on (${gap.gap}); that step and the rest run on EC2 only; the document's script is rehearsed on the aws image itself, the other verdicts by the local boot tests`);
  }
  check(ctx, 'boot-test', 'exit status says whether the run passed', (r.code === 0) === report.passed, `exit ${r.code}`);
  const left = leftovers(await inv(ctx));
  check(ctx, 'boot-test', 'every boot-test instance terminated after failure', left.length === 0, left.join('; '));
  await documentOnTheImage(ctx, image.disk, image.accel, ctx.token);
}

/**
 * The guest side of the aws boot test, on the rehearsal's own aws image (the build guest's disk,
 * what CreateImage captured): boot it as a new instance (IMDS double with an instance role, the
 * Parameter Store double holding the token), and run the shipped SSM document's script as SSM
 * Agent 3.3.2746+ runs aws:runShellScript: as root, the commands in one script, each parameter
 * exported as SSM_<name> (interpolationType ENV_VAR). The emulator cannot run it: moto has no
 * SSM Agent to send a command to.
 */
async function documentOnTheImage(ctx: Ctx, disk: string, accel: Accelerator, token: string): Promise<void> {
  const bt = ctx.cfg.aws.boot_test;
  const range = '51820-51830';
  const ssm = new SsmDouble({ [bt.token_parameter]: { value: token, type: 'SecureString' } });
  const ssmPort = await ssm.start();
  const role = { name: bt.instance_profile, accessKeyId: `ASIA${randomBytes(8).toString('hex').toUpperCase()}`, secretAccessKey: randomBytes(20).toString('base64'), token: randomBytes(24).toString('base64') };
  const vm = new LocalVm({ image: disk, accel, cpus: 1, memoryMib: 1024, restrict: true, ssmPort, imds: { role } });
  try {
    await vm.start();
    await vm.waitForSsh(900_000);
    await firstbootSettled(vm);
    const before = await firstbootStatus(vm);
    check(ctx, 'boot-test', 'the aws image boots unconfigured, waiting for a token', !before.configured, JSON.stringify(before));
    const doc = parse(readFileSync(join(REPO, 'firstboot', 'ssm', `${bt.ssm_document}.yaml`), 'utf8')) as { mainSteps: { inputs: { runCommand: string[] } }[] };
    const script = doc.mainSteps[0]!.inputs.runCommand.join('\n');
    const params = { TokenParameterName: bt.token_parameter, PortRange: range, AgentName: '', Tags: 'rehearsal', Mode: 'configure' };
    const exports = Object.entries(params).map(([k, v]) => `SSM_${k}=${shellQuote(v)}`).join(' ');
    // The SDK in the image reaches the Parameter Store double (the guest's private network) by its own endpoint setting.
    const r = await vm.ssh(`sudo env AWS_ENDPOINT_URL_SSM=http://${SSM_DOUBLE_ADDR} ${exports} sh -s`, script);
    check(ctx, 'boot-test', `the ${bt.ssm_document} document's script configures the aws image (as SSM Agent runs it)`, r.exitCode === 0, `exit ${r.exitCode}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
    const g = await waitForAgent(vm, 'the agent on the aws image', 180_000).catch((e: Error) => e);
    check(ctx, 'boot-test', 'the agent runs on the aws image: four WireGuard ports in the range, the lock a file, provider AWS', !(g instanceof Error) && (() => {
      try {
        assertConfigured(g, range);
        return true;
      } catch {
        return false;
      }
    })(), g instanceof Error ? g.message : `udp ${g.wgPorts.join(' ')}`);
    const after = await firstbootStatus(vm);
    check(ctx, 'boot-test', 'configured from Parameter Store through the document', after.configured && after.source === 'ssm', JSON.stringify(after));
    const got = ssm.requests.filter((q) => q.target === 'AmazonSSM.GetParameter' && q.status === 200);
    check(ctx, 'boot-test', "the token was read with the instance role's key and decryption", got.length > 0 && got.every((q) => q.withDecryption && q.accessKeyId === role.accessKeyId), JSON.stringify(got));
    // The same search as the local boot tests: the token goes in on stdin, never on a command line.
    const leaks = await tokenLeaks(vm, token);
    check(ctx, 'boot-test', 'the token is nowhere but /etc/syntropy/agent.env (journal, processes, files, console)', leaks.length === 0, leaks.join('; '));
  } finally {
    await vm.stop();
    vm.cleanup();
    await ssm.stop();
  }
}

const shellQuote = (v: string) => `'${v.replace(/'/g, "'\\''")}'`;

async function stepPublish(ctx: Ctx, manifestPath: string, manifest: BuildManifest): Promise<string | null> {
  const args = ['--manifest', manifestPath, '--config', ctx.configFile];
  // The gate: the boot report is not passing (the emulator has no SSM), so publish refuses.
  const refused = await runScript(ctx, 'publish-gate', 'publish.ts', args);
  check(ctx, 'publish', 'refuses an image whose boot tests did not pass', refused.code === 1 && /refusing to publish/.test(refused.out), `exit ${refused.code}`);
  const before = await inv(ctx);
  check(ctx, 'publish', 'a refused publish changes nothing', newImages(before, await inv(ctx)).length === 0);

  // Amazon Inspector: the seeded HIGH finding blocks the release without its waiver, even forced.
  const blocked = await runScript(ctx, 'publish-inspector', 'publish.ts', [...args, '--force', '--set', 'publish.inspector.waivers=[]']);
  check(ctx, 'publish', `Amazon Inspector's HIGH finding blocks the release, naming it (${SEEDED_FINDING})`, blocked.code === 1 && new RegExp(`Amazon Inspector reports 1 finding\\(s\\) at or above HIGH: ${SEEDED_FINDING} HIGH`).test(blocked.out), `exit ${blocked.code}`);

  // The Marketplace access role, read from IAM as publish reads it (URL-encoded documents,
  // attached managed policy): the right one passes; a role trusting another service stops
  // publish before anything is copied. moto has no Marketplace Catalog API: the change set
  // itself is tested against the API's documented shapes (test/unit/publish.test.ts).
  const iam = new IAMClient(emulator(ctx));
  const good = await accessRoleProblems(iam, mpRoleArn(MP_ROLE_GOOD)).catch((e: Error) => [e.message]);
  check(ctx, 'publish', 'Marketplace access role made as the README says passes the check', good.length === 0, good.join('; '));
  const beforeRole = await inv(ctx);
  const wrongRole = await runScript(ctx, 'publish-mp-role', 'publish.ts', [
    ...args,
    '--force',
    '--set',
    'publish.marketplace.product_id=prod-rehearsal',
    '--set',
    `publish.marketplace.access_role_arn=${mpRoleArn(MP_ROLE_BAD)}`,
  ]);
  check(ctx, 'publish', 'a Marketplace access role trusting another service stops publish, named', wrongRole.code === 1 && /does not let assets\.marketplace\.amazonaws\.com call sts:AssumeRole/.test(wrongRole.out), `exit ${wrongRole.code}`);
  check(ctx, 'publish', 'a refused access role changes nothing', newImages(beforeRole, await inv(ctx)).length === 0);

  // A copy fails half-way: the next run picks up what the first made, copies nothing twice.
  await runFaultedPublish(ctx, args);
  const first = await runScript(ctx, 'publish', 'publish.ts', [...args, '--force']);
  if (!check(ctx, 'publish', 'publish --force completes (recorded as forced)', first.code === 0, `exit ${first.code}, log ${first.logFile}`)) return null;
  const file = join(manifestPath, '..', 'publish-manifest.json');
  const pm = readJsonContract(PublishManifestSchema, file);
  check(ctx, 'publish', 'the publish manifest records why it was forced', (pm.forced?.reasons ?? []).some((x) => /boot-test/.test(x)));
  check(ctx, 'publish', 'the publish manifest records the waived Marketplace rules', pm.waived.map((w) => w.rule).sort().join(',') === 'ebs-root,ena-support,imds-v2-only', pm.waived.map((w) => w.problem).join('; '));
  check(ctx, 'publish', 'the publish manifest records the waived Inspector finding', pm.inspector?.waived.some((w) => w.vulnerability === SEEDED_FINDING) === true, JSON.stringify(pm.inspector));
  for (const w of pm.waived) ctx.report.gaps.push(`publish: Marketplace rule ${w.rule} waived (${w.problem}); ${w.reason}`);
  checkPublished(ctx, pm, manifest, await inv(ctx), 'first run');
  const again = await runScript(ctx, 'publish-again', 'publish.ts', [...args, '--force']);
  const pm2 = readJsonContract(PublishManifestSchema, file);
  check(ctx, 'publish', 'a second run succeeds and reuses every copy', again.code === 0 && Object.values(pm2.regions).every((x) => x.copied !== 'new'), JSON.stringify(Object.fromEntries(Object.entries(pm2.regions).map(([r, x]) => [r, x.copied]))));
  checkPublished(ctx, pm2, manifest, await inv(ctx), 'second run');
  return file;
}

async function runFaultedPublish(ctx: Ctx, args: string[]): Promise<void> {
  const before = await inv(ctx);
  ctx.proxy.arm([{ action: 'CopyImage', nth: 2 }]);
  const r = await runScript(ctx, 'publish-fault-copy', 'publish.ts', [...args, '--force']);
  ctx.proxy.arm([]);
  check(ctx, 'publish', 'fault CopyImage#2: publish fails and names the call', r.code === 1 && /CopyImage/.test(r.out), `exit ${r.code}`);
  const made = newImages(before, await inv(ctx)).filter((x) => x.includes('image'));
  check(ctx, 'publish', 'fault CopyImage#2: at most the first copy exists', made.length <= 1, made.join('; '));
}

function checkPublished(ctx: Ctx, pm: PublishManifest, m: BuildManifest, now: Inventory, when: string): void {
  for (const [region, res] of Object.entries(pm.regions)) {
    const mine = now[region]?.images.filter((i) => i.name === now[ctx.cfg.aws.region]!.images.find((x) => x.id === amis(m)[ctx.cfg.aws.region])?.name) ?? [];
    check(ctx, 'publish', `${when}: ${region} holds exactly one image of this build`, mine.length === 1 && mine[0]!.id === res.imageId, mine.map((x) => x.id).join(', '));
    const p = now[region]?.parameters ?? {};
    check(
      ctx,
      'publish',
      `${when}: ${region} Parameter Store names it (latest and ${m.image.version})`,
      p[`${ctx.cfg.publish.ssm_parameter_prefix}/latest`] === res.imageId && p[`${ctx.cfg.publish.ssm_parameter_prefix}/${m.image.version}`] === res.imageId,
    );
  }
  check(ctx, 'publish', `${when}: copies to ${REHEARSAL_PUBLISH_REGIONS.join(', ')}`, REHEARSAL_PUBLISH_REGIONS.every((r) => pm.regions[r]));
}

async function stepClean(ctx: Ctx, manifest: BuildManifest): Promise<void> {
  const old = previousRelease(ctx.cfg, new Date()).ami_id;
  const first = await runScript(ctx, 'clean', 'clean.ts', ['--config', ctx.configFile]);
  const now = await inv(ctx);
  check(ctx, 'clean', 'retention runs', first.code === 0, `exit ${first.code}`);
  check(ctx, 'clean', 'the 200-day-old release is deregistered in every region', Object.values(now).every((r) => !r.images.some((i) => i.id === old)));
  check(ctx, 'clean', 'its version parameter is deleted', !(`${ctx.cfg.publish.ssm_parameter_prefix}/0.0.9` in now[ctx.cfg.aws.region]!.parameters));
  check(ctx, 'clean', "this build's images stay", Object.values(now).every((r) => r.images.some((i) => i.buildId === manifest.build_id)));
  const second = await runScript(ctx, 'clean-again', 'clean.ts', ['--config', ctx.configFile]);
  check(ctx, 'clean', 'a second run finds nothing to do', second.code === 0 && /removed 0 image\(s\) and 0 version parameter\(s\), terminated 0 instance\(s\)/.test(second.out), second.out.trim().split('\n').pop() ?? '');
}

const DEPLOY_STACK = 'syntropy-reference-rehearsal';

/** The failover.json the stack's user data writes, read back from the instance's user data. */
function failoverConfigOf(userDataB64: string): FailoverConfig {
  const text = Buffer.from(userDataB64, 'base64').toString('utf8');
  const lines = text.split('\n');
  const at = lines.findIndex((l) => l.trim() === '- path: /etc/syntropy/failover.json');
  const json = lines.slice(at).find((l) => l.trim().startsWith('{'));
  if (at < 0 || !json) throw new Error(`the user data writes no /etc/syntropy/failover.json:\n${text}`);
  return parseContract(FailoverConfigSchema, JSON.parse(json.trim()), 'user data failover.json');
}

async function waitFor<T>(what: string, timeoutMs: number, fn: () => Promise<T | null>): Promise<{ value: T; ms: number }> {
  const t0 = Date.now();
  for (;;) {
    const v = await fn();
    if (v !== null) return { value: v, ms: Date.now() - t0 };
    if (Date.now() - t0 > timeoutMs) throw new Error(`${what}: not within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

export async function stepDeploy(ctx: Ctx, publishManifest: string): Promise<void> {
  const region = ctx.cfg.aws.region;
  const { ec2, ssm } = clientsFor(ctx)(region);
  const deployArgs = ['--publish-manifest', publishManifest, '--stack-name', DEPLOY_STACK, '--param', `TokenParameterName=${ctx.cfg.aws.boot_test.token_parameter}`, '--config', ctx.configFile];
  // The template the command sends, as --dry-run writes it (no AWS call).
  const dry = await runScript(ctx, 'deploy-dry-run', 'deploy.ts', [...deployArgs, '--dry-run']);
  check(ctx, 'deploy', 'deploy --dry-run prints the parameters and resources', dry.code === 0 && /resources:/.test(dry.out) && /TokenParameterName = \//.test(dry.out), `exit ${dry.code}`);
  const written = /template written to (\S+)\)/.exec(dry.out)?.[1];
  if (written) copyFileSync(written, join(ctx.work, 'output', 'deploy-template.json'));
  const r = await runScript(ctx, 'deploy', 'deploy.ts', deployArgs);
  if (!check(ctx, 'deploy', 'npm run deploy creates the stack (CREATE_COMPLETE)', r.code === 0 && /CREATE_COMPLETE/.test(r.out), `exit ${r.code}, log ${r.logFile}`)) return;
  const outputs = (JSON.parse(r.out.slice(r.out.lastIndexOf('\n{') + 1)) as { outputs: Record<string, string> }).outputs;
  const agents = { a: outputs.AgentAInstanceId!, b: outputs.AgentBInstanceId! };
  const tables = { a: outputs.ServicesRouteTableAId!, b: outputs.ServicesRouteTableBId! };
  const di = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [agents.a, agents.b] }));
  const insts = (di.Reservations ?? []).flatMap((x) => x.Instances ?? []);
  check(ctx, 'deploy', 'two agents with the instance profile', insts.length === 2 && insts.every((i) => !!i.IamInstanceProfile), insts.map((i) => `${i.InstanceId} ${i.IamInstanceProfile?.Arn ?? 'no profile'}`).join(', '));
  if (insts.some((i) => i.SourceDestCheck !== false)) {
    // moto's AWS::EC2::Instance reads ImageId, UserData, SubnetId, KeyName and a few more only
    // (moto/ec2/models/instances.py create_from_cloudformation_json): no SourceDestCheck,
    // SecurityGroupIds, LaunchTemplate or Monitoring. The template states them; its tests check.
    const template = JSON.parse(readFileSync(join(ctx.work, 'output', 'deploy-template.json'), 'utf8')) as { Resources: Record<string, { Type: string; Properties: Record<string, unknown> }> };
    const declared = Object.values(template.Resources).filter((x) => x.Type === 'AWS::EC2::Instance').every((x) => x.Properties.SourceDestCheck === false);
    check(ctx, 'deploy', "source/destination check off: declared by the template (the emulator's CloudFormation ignores it)", declared);
    ctx.report.gaps.push("deploy: moto 5.1.1's CloudFormation ignores SourceDestCheck, SecurityGroupIds, LaunchTemplate (metadata options) and Monitoring on AWS::EC2::Instance; test/unit/deploy-stack.test.ts checks the template states them");
  } else {
    check(ctx, 'deploy', 'source/destination check off on both agents', true);
  }
  check(ctx, 'deploy', 'the agents run from the published AMI', insts.every((i) => i.ImageId === readJsonContract(PublishManifestSchema, publishManifest).regions[region]?.imageId));
  const sg = await ec2.send(new DescribeSecurityGroupsCommand({ GroupIds: [outputs.AgentSecurityGroupId!] }));
  const udp = (sg.SecurityGroups?.[0]?.IpPermissions ?? []).filter((p) => p.IpProtocol === 'udp');
  check(ctx, 'deploy', 'the security group has one UDP rule: the first-boot range', udp.length === 1 && udp[0]!.FromPort === 51820 && udp[0]!.ToPort === 51919, JSON.stringify(udp));
  const routedCidr = '10.69.0.0/16';
  const targetOf = async (rt: string) => {
    const d = await ec2.send(new DescribeRouteTablesCommand({ RouteTableIds: [rt] }));
    return d.RouteTables?.[0]?.Routes?.find((x) => x.DestinationCidrBlock === routedCidr)?.InstanceId ?? null;
  };
  check(ctx, 'deploy', 'each services route table routes the overlay through its own AZ\'s agent', (await targetOf(tables.a)) === agents.a && (await targetOf(tables.b)) === agents.b);

  // The watcher on each agent, with the config the user data writes, against the emulator's
  // route tables and Parameter Store; the agents' health is what this rehearsal says it is.
  const cfgs = { a: null as FailoverConfig | null, b: null as FailoverConfig | null };
  for (const side of ['a', 'b'] as const) {
    const ud = await ec2.send(new DescribeInstanceAttributeCommand({ InstanceId: agents[side], Attribute: 'userData' }));
    try {
      cfgs[side] = failoverConfigOf(ud.UserData?.Value ?? '');
      check(ctx, 'deploy', `agent ${side}'s user data configures its failover watcher (its side, both tables)`, cfgs[side]!.self === side && cfgs[side]!.tables.map((t) => t.id).sort().join() === [tables.a, tables.b].sort().join());
    } catch (e) {
      check(ctx, 'deploy', `agent ${side}'s user data configures its failover watcher`, false, (e as Error).message);
      return;
    }
  }
  const healthy = { a: true, b: true };
  const watchers = (['a', 'b'] as const).map((side) => new FailoverWatcher(cfgs[side]!, { ec2, ssm, instanceId: agents[side], health: async () => healthy[side], log: (l) => ctx.log(`failover ${side}: ${l}`) }));
  const stops = watchers.map(() => new AbortController());
  const loops = watchers.map((w, i) => w.run(stops[i]!.signal));
  const figures: Record<string, number> = {};
  try {
    await waitFor('both heartbeats', 20_000, async () => ((await ssm.send(new GetParametersByPathCommand({ Path: cfgs.a!.heartbeat_prefix }))).Parameters?.length === 2 ? true : null));
    healthy.a = false;
    const down = await waitFor('failover after the agent container stopped', 60_000, async () => ((await targetOf(tables.a)) === agents.b ? true : null));
    figures.container_down_s = Math.round(down.ms / 100) / 10;
    check(ctx, 'deploy', `agent a unhealthy (container down): its routes move to agent b within 60 s`, down.ms <= 60_000, `${figures.container_down_s} s`);
    healthy.a = true;
    const back = await waitFor('routes back after recovery', 90_000, async () => ((await targetOf(tables.a)) === agents.a ? true : null));
    figures.reclaim_s = Math.round(back.ms / 100) / 10;
    check(ctx, 'deploy', `agent a healthy again: its routes come back after the ${cfgs.a!.reclaim_after_s} s hold-down`, back.ms >= cfgs.a!.reclaim_after_s * 1000 - 1000, `${figures.reclaim_s} s`);
    // The instance itself stops: no more heartbeats from a.
    await ec2.send(new StopInstancesCommand({ InstanceIds: [agents.a] }));
    stops[0]!.abort();
    const gone = await waitFor('failover after the instance stopped', 60_000, async () => ((await targetOf(tables.a)) === agents.b ? true : null));
    figures.instance_stopped_s = Math.round(gone.ms / 100) / 10;
    check(ctx, 'deploy', 'agent a stopped (heartbeats stale): its routes move to agent b within 60 s', gone.ms <= 60_000, `${figures.instance_stopped_s} s`);
    check(ctx, 'deploy', "agent b's own routes never moved", (await targetOf(tables.b)) === agents.b && !watchers[0]!.moves.some((m) => m.table === tables.b));
    const all = [...watchers[0]!.moves.map((m) => ({ ...m, by: agents.a })), ...watchers[1]!.moves.map((m) => ({ ...m, by: agents.b }))].sort((x, y) => x.at - y.at);
    check(ctx, 'deploy', 'no split brain: each agent only points routes at itself, one move per event', all.every((m) => m.to === m.by) && all.length === 3, all.map((m) => `${m.table}->${m.to} (${m.reason})`).join('; '));
    ctx.report.failover = figures;
  } finally {
    for (const s of stops) s.abort();
    await Promise.all(loops);
  }

  const del = await runScript(ctx, 'deploy-delete', 'deploy.ts', ['--delete', '--stack-name', DEPLOY_STACK, '--config', ctx.configFile]);
  const gap = /DependencyViolation/.test(del.out);
  check(ctx, 'deploy', 'npm run deploy -- --delete removes the stack, or stops at the emulator\'s known gap with a clear error', del.code === 0 || (del.code === 1 && gap), `exit ${del.code}`);
  if (del.code !== 0 && gap) ctx.report.gaps.push('deploy --delete: moto 5.1.1 has no CloudFormation delete for NAT gateways, EIPs, route tables, internet gateways or launch templates, so the VPC cannot go (DependencyViolation); stack deletion is proven on AWS only');
}

export interface RehearseOptions {
  work: string;
  log: (l: string) => void;
}

export async function rehearse(cfg: Config, o: RehearseOptions): Promise<RehearsalReport> {
  mkdirSync(o.work, { recursive: true });
  const report: RehearsalReport = {
    schema: 1,
    started_at: new Date().toISOString(),
    emulator: { package: '', rootfs_reused: false, rootfs_seconds: 0 },
    steps: [],
    checks: [],
    passed: false,
    gaps: [],
    build_manifest: null,
    publish_manifest: null,
  };
  const t0 = Date.now();
  const rootfs = await ensureMotoRootfs(cfg);
  report.emulator = {
    package: (await $`chroot ${rootfs.dir} dpkg-query -W -f ${'${Package} ${Version}'} python3-moto`.quiet()).stdout.trim(),
    rootfs_reused: rootfs.reused,
    rootfs_seconds: rootfs.seconds,
  };
  const moto = new MotoServer(rootfs.dir);
  const now = new Date();
  await moto.start([debianOfficialAmi(cfg, now), previousRelease(cfg, now)] as SeedAmi[]);
  // Ctrl-C or a kill: nothing of the rehearsal outlives it (Packer, the emulator, the steps).
  const reap = () => {
    for (const c of children) {
      try {
        if (c.pid) process.kill(-c.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    moto.kill();
  };
  process.once('exit', reap);
  for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.once(sig, () => {
      o.log(`${sig}: stopping the rehearsal's processes and the emulator`);
      reap();
      process.exit(code);
    });
  }
  const proxy = new FaultProxy(moto.port);
  const endpoint = await proxy.start();
  report.steps.push({ step: 'emulator', seconds: Math.round((Date.now() - t0) / 100) / 10 });
  o.log(`emulator: ${report.emulator.package} on ${moto.endpoint}, fault proxy ${endpoint}`);
  const ctx: Ctx = {
    cfg,
    work: o.work,
    env: emulatorEnv(endpoint, cfg.aws.region),
    proxy,
    moto,
    regions: [cfg.aws.region, ...REHEARSAL_PUBLISH_REGIONS],
    log: o.log,
    report,
    configFile: join(o.work, 'rehearsal.yaml'),
    token: randomBytes(24).toString('base64url'),
  };
  try {
    await prepareAccount(ctx);
    const built = await timed(ctx, 'build', () => stepBuild(ctx));
    if (built) {
      report.build_manifest = built.manifestPath;
      await timed(ctx, 'boot-test', () => stepBootTest(ctx, built.manifestPath, built.manifest, built));
      report.publish_manifest = await timed(ctx, 'publish', () => stepPublish(ctx, built.manifestPath, built.manifest));
      if (report.publish_manifest) {
        await timed(ctx, 'clean', () => stepClean(ctx, built.manifest));
        await timed(ctx, 'deploy', () => stepDeploy(ctx, report.publish_manifest!));
      }
    }
    const left = leftovers(await inv(ctx));
    check(ctx, 'end', 'the emulator holds no instance, key pair or security group of the run', left.length === 0, left.join('; '));
  } finally {
    await proxy.stop();
    await moto.stop();
  }
  report.passed = report.checks.length > 0 && report.checks.every((c) => c.ok) && !!report.publish_manifest;
  writeFileSync(join(o.work, 'rehearsal.json'), `${JSON.stringify(report, null, 2)}\n`);
  return report;
}
