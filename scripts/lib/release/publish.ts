// Publishing an AMI from a build manifest: refuse images without passing reports (unless forced,
// and then say so in the publish manifest), check the Marketplace rules readable from AWS and the
// Marketplace access role, copy to the configured regions (reusing copies a previous run made),
// tag, grant launch permissions, record the AMI ID per region in Parameter Store, and submit the
// new version to AWS Marketplace through the Catalog API (marketplace.ts).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  CopyImageCommand,
  CreateTagsCommand,
  DescribeImagesCommand,
  DescribeSnapshotsCommand,
  EC2Client,
  ModifyImageAttributeCommand,
  ModifySnapshotAttributeCommand,
  type Image,
  type LaunchPermission,
} from '@aws-sdk/client-ec2';
import { GetParameterCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { Inspector2Client } from '@aws-sdk/client-inspector2';
import { IAMClient } from '@aws-sdk/client-iam';
import { MarketplaceCatalogClient } from '@aws-sdk/client-marketplace-catalog';
import { accessRoleProblems, changeSetRequest, INGESTION_REGION, requestProblems, submitVersion, type ChangeSetOutcome } from './marketplace.ts';
import { describeBlocking, inspectorGate } from './inspector.ts';
import type { Config, MarketplaceRule } from '../config.ts';
import { awsCall, NOT_YET, type RetryOptions } from '../aws-call.ts';
import { amis, type BuildManifest } from '../../../contracts/build-manifest.ts';
import type { PublishManifest, RegionResult } from '../../../contracts/publish-manifest.ts';
import { ComplianceReportSchema } from '../../../contracts/compliance-report.ts';
import { BootTestReportSchema } from '../../../contracts/boot-report.ts';
import { readJsonContract } from '../../../contracts/parse.ts';

export type BuildManifestLike = Pick<BuildManifest, 'build_id' | 'target' | 'image' | 'outputs'>;

export interface Clients {
  ec2(region: string): EC2Client;
  ssm(region: string): SSMClient;
  inspector(region: string): Inspector2Client;
  /** IAM is global; the Marketplace Catalog API answers in us-east-1. */
  iam(): IAMClient;
  catalog(): MarketplaceCatalogClient;
}

/** One client per service and region, made once and reused by every call. */
export function cachedClients(): Clients {
  const ec2 = new Map<string, EC2Client>();
  const ssm = new Map<string, SSMClient>();
  const insp = new Map<string, Inspector2Client>();
  let iam: IAMClient | undefined;
  let catalog: MarketplaceCatalogClient | undefined;
  return {
    iam: () => (iam ??= new IAMClient({ region: INGESTION_REGION })),
    catalog: () => (catalog ??= new MarketplaceCatalogClient({ region: INGESTION_REGION })),
    ec2: (region) => ec2.get(region) ?? ec2.set(region, new EC2Client({ region })).get(region)!,
    ssm: (region) => ssm.get(region) ?? ssm.set(region, new SSMClient({ region })).get(region)!,
    inspector: (region) => insp.get(region) ?? insp.set(region, new Inspector2Client({ region })).get(region)!,
  };
}

export const defaultClients: Clients = cachedClients();

export interface PublishOptions {
  dryRun: boolean;
  force: boolean;
  clients?: Clients;
  log?: (line: string) => void;
  retry?: RetryOptions;
  pollMs?: number;
  copyTimeoutMs?: number;
  now?: () => Date;
  /** Marketplace change set polling and waiting (defaults: 30 s, publish.marketplace.wait_minutes). */
  marketplacePollMs?: number;
  marketplaceTimeoutMs?: number;
  /** A new Marketplace request for the same details (after a SERVER_FAULT); any unique text. */
  resubmit?: string;
}

export type { PublishManifest, RegionResult };

type Call = <T>(region: string, what: string, fn: () => Promise<T>, extra?: RetryOptions) => Promise<T>;

/** Waits until Parameter Store serves `name` = `imageId` (aws:ec2:image is validated asynchronously). */
async function confirmParameter(r: string, name: string, imageId: string, clients: Clients, call: Call, sleep: (ms: number) => Promise<void>): Promise<void> {
  for (let i = 0; i < 6; i++) {
    const got = await call(r, 'SSM GetParameter', () => clients.ssm(r).send(new GetParameterCommand({ Name: name })), { retryOn: NOT_YET });
    if (got.Parameter?.Value === imageId) return;
    await sleep(2000 * 2 ** i);
  }
  throw new Error(`${r}: ${name} does not hold ${imageId} after PutParameter: Parameter Store's aws:ec2:image validation refused it (is the AMI available in ${r}?)`);
}

/** Problems with the reports next to the build manifest; empty when both exist and pass. */
export function reportProblems(buildDir: string): string[] {
  const problems: string[] = [];
  for (const [name, file] of [
    ['compliance', 'reports/compliance.json'],
    ['boot-test', 'reports/boot-test.json'],
  ] as const) {
    const path = join(buildDir, file);
    if (!existsSync(path)) {
      problems.push(`${name} report is missing (${file})`);
      continue;
    }
    try {
      const r = readJsonContract(name === 'compliance' ? ComplianceReportSchema : BootTestReportSchema, path);
      if (!r.passed) problems.push(`${name} report is not passing (${file}: passed=false)`);
    } catch (e) {
      problems.push(`${name} report is unreadable: ${(e as Error).message}`);
    }
  }
  return problems;
}

export function sourceOf(m: BuildManifestLike, buildRegion: string): { region: string; imageId: string } {
  const built = amis(m);
  if (m.target !== 'aws' || Object.keys(built).length === 0) {
    throw new Error(`build ${m.build_id} is a ${m.target} build with no AMI; publish needs the manifest of an aws build`);
  }
  const region = built[buildRegion] ? buildRegion : Object.keys(built)[0]!;
  return { region, imageId: built[region]! };
}

/** The AMI name a build registers (Packer's ami_name, packer/locals.pkr.hcl image_full_name), and its copies keep. */
export function imageName(m: BuildManifestLike): string {
  return `${m.image.name}-${m.image.version}-${m.build_id}`;
}

export function targetRegions(m: BuildManifestLike, cfg: Config, sourceRegion: string): string[] {
  return [...new Set([sourceRegion, ...Object.keys(amis(m)), ...cfg.publish.regions])];
}

/** The plan, computed from the manifest and config alone (what --dry-run prints). */
export function planLines(m: BuildManifestLike, cfg: Config, buildDir: string, force: boolean): string[] {
  const src = sourceOf(m, cfg.aws.region);
  const regions = targetRegions(m, cfg, src.region);
  const lines = [`publish ${m.image.name} ${m.image.version} (build ${m.build_id}) from ${src.imageId} in ${src.region}`];
  const problems = reportProblems(buildDir);
  if (problems.length > 0) lines.push(force ? `FORCED despite: ${problems.join('; ')}` : `WOULD REFUSE: ${problems.join('; ')} (use --force to override; it is recorded)`);
  lines.push(`${src.region}: check Marketplace rules on ${src.imageId} (HVM, EBS, x86_64/arm64, ENA, IMDSv2-only, unencrypted snapshots)`);
  for (const w of cfg.publish.waivers) lines.push(`${src.region}: WAIVER for rule ${w.rule} until ${w.expires}: ${w.reason}`);
  lines.push(
    cfg.publish.inspector.enabled
      ? `${src.region}: Amazon Inspector findings for ${src.imageId} at or above ${cfg.publish.inspector.min_severity} block the release (${cfg.publish.inspector.waivers.length} waiver(s))`
      : `${src.region}: Amazon Inspector gate OFF (publish.inspector.enabled: false)`,
  );
  for (const r of regions) {
    if (amis(m)[r]) lines.push(`${r}: use ${amis(m)[r]} (made by the build)`);
    else lines.push(`${r}: CopyImage from ${src.region} unless an image named ${imageName(m)} exists there (an earlier run's copy); wait until available`);
    lines.push(`${r}: CreateTags on the image and its snapshots`);
    if (cfg.publish.launch_accounts.length > 0 || cfg.publish.public) {
      const who = [...cfg.publish.launch_accounts, ...(cfg.publish.public ? ['all (public)'] : [])].join(', ');
      lines.push(`${r}: ModifyImageAttribute launchPermission add ${who}; ModifySnapshotAttribute createVolumePermission add ${cfg.publish.launch_accounts.join(', ') || '-'}`);
    }
    lines.push(`${r}: PutParameter ${cfg.publish.ssm_parameter_prefix}/latest and ${cfg.publish.ssm_parameter_prefix}/${m.image.version} = <AMI ID>`);
  }
  if (cfg.publish.marketplace_account) {
    lines.push(`${src.region}: share ${src.imageId} and its snapshots with the AWS Marketplace account ${cfg.publish.marketplace_account} (legacy hand-off)`);
  }
  const mp = cfg.publish.marketplace;
  if (mp.product_id) {
    const problem = ingestionProblem(regions);
    if (problem) lines.push(`WOULD REFUSE: ${problem}`);
    lines.push(`iam: check the access role ${mp.access_role_arn} (trusts assets.marketplace.amazonaws.com; AWSMarketplaceAmiIngestion or its actions)`);
    const ami = amis(m)[INGESTION_REGION] ?? (src.region === INGESTION_REGION ? src.imageId : '<the us-east-1 copy>');
    lines.push(`${INGESTION_REGION}: Marketplace Catalog StartChangeSet (APPLY), then wait up to ${mp.wait_minutes} min for it:`);
    const req = changeSetRequest(cfg, { imageVersion: m.image.version, buildId: m.build_id, amiId: ami }, 'APPLY');
    lines.push(...JSON.stringify(req, null, 2).split('\n'));
    const refused = ami.startsWith('ami-') ? requestProblems(req) : [];
    if (refused.length > 0) lines.push(`WOULD REFUSE the change set: ${refused.join('; ')}`);
  } else {
    lines.push('Marketplace: no product configured (publish.marketplace.product_id); the version is not submitted');
  }
  return lines;
}

/** Marketplace ingests from us-east-1: one of the publish regions must be it. */
export function ingestionProblem(regions: string[]): string | null {
  return regions.includes(INGESTION_REGION)
    ? null
    : `AWS Marketplace ingests AMIs from ${INGESTION_REGION}, which is neither the build region nor in publish.regions (${regions.join(', ')}): add ${INGESTION_REGION} to publish.regions`;
}

export interface RuleProblem {
  rule: MarketplaceRule;
  problem: string;
}

/** Marketplace rules that can be read from AWS; returns the problems found (empty = fine). */
export function marketplaceRuleProblems(image: Image, snapshotsEncrypted: Record<string, boolean>): RuleProblem[] {
  const p: RuleProblem[] = [];
  const add = (rule: MarketplaceRule, problem: string) => p.push({ rule, problem });
  if (image.VirtualizationType !== 'hvm') add('hvm', `virtualization is ${image.VirtualizationType}, not hvm`);
  if (image.RootDeviceType !== 'ebs') add('ebs-root', `root device is ${image.RootDeviceType}, not ebs`);
  if (image.Architecture !== 'x86_64' && image.Architecture !== 'arm64') add('architecture', `architecture ${image.Architecture} is neither x86_64 nor arm64`);
  if (image.EnaSupport !== true) add('ena-support', 'ENA support is off');
  if (image.ImdsSupport !== 'v2.0') add('imds-v2-only', `IMDS support is ${image.ImdsSupport ?? 'unset'}, not v2.0 (IMDSv2 only)`);
  for (const [id, enc] of Object.entries(snapshotsEncrypted)) if (enc) add('unencrypted-snapshots', `snapshot ${id} is encrypted`);
  if (image.State !== 'available') add('available', `state is ${image.State}, not available`);
  return p;
}

export function marketplaceProblems(image: Image, snapshotsEncrypted: Record<string, boolean>): string[] {
  return marketplaceRuleProblems(image, snapshotsEncrypted).map((x) => x.problem);
}

/** Splits rule problems into those a current waiver covers and those that block. */
export function applyWaivers(problems: RuleProblem[], waivers: Config['publish']['waivers'], now: Date): { blocking: string[]; waived: PublishManifest['waived'] } {
  const today = now.toISOString().slice(0, 10);
  const blocking: string[] = [];
  const waived: PublishManifest['waived'] = [];
  for (const p of problems) {
    const w = waivers.find((x) => x.rule === p.rule);
    if (w && w.expires >= today) waived.push({ rule: p.rule, problem: p.problem, reason: w.reason, expires: w.expires });
    else blocking.push(w ? `${p.problem} (its waiver expired on ${w.expires})` : p.problem);
  }
  return { blocking, waived };
}

const snapshotIdsOf = (image: Image): string[] =>
  (image.BlockDeviceMappings ?? []).map((b) => b.Ebs?.SnapshotId).filter((s): s is string => typeof s === 'string');

export async function publish(m: BuildManifestLike, cfg: Config, buildDir: string, opts: PublishOptions): Promise<PublishManifest | null> {
  const log = opts.log ?? (() => undefined);
  const clients = opts.clients ?? defaultClients;
  const call = <T>(region: string, name: string, fn: () => Promise<T>, extra: RetryOptions = {}) => awsCall(region, name, fn, { ...opts.retry, ...extra });
  if (opts.dryRun) {
    for (const l of planLines(m, cfg, buildDir, opts.force)) log(l);
    return null;
  }
  const problems = reportProblems(buildDir);
  if (problems.length > 0 && !opts.force) {
    throw new Error(`refusing to publish build ${m.build_id}: ${problems.join('; ')}. Run the compliance and boot tests, or pass --force (recorded in the publish manifest)`);
  }
  const src = sourceOf(m, cfg.aws.region);
  const regions = targetRegions(m, cfg, src.region);

  // The Marketplace access role, before anything is copied: a wrong role would only show when
  // Marketplace fails the change set, after every copy.
  const mp = cfg.publish.marketplace;
  if (mp.product_id) {
    const problem = ingestionProblem(regions);
    if (problem) throw new Error(problem);
    await requireAccessRole(cfg, clients, opts.retry, log, 'refusing to publish: ');
  }

  // Marketplace rules first: nothing is copied or shared for an image that would be rejected.
  const described = await call(src.region, 'EC2 DescribeImages', () => clients.ec2(src.region).send(new DescribeImagesCommand({ ImageIds: [src.imageId] })));
  const sourceImage = described.Images?.[0];
  if (!sourceImage) throw new Error(`${src.region}: AMI ${src.imageId} from the build manifest does not exist`);
  const snaps = snapshotIdsOf(sourceImage);
  const snapInfo = snaps.length
    ? await call(src.region, 'EC2 DescribeSnapshots', () => clients.ec2(src.region).send(new DescribeSnapshotsCommand({ SnapshotIds: snaps })))
    : { Snapshots: [] };
  const encrypted = Object.fromEntries((snapInfo.Snapshots ?? []).map((s) => [s.SnapshotId!, s.Encrypted === true]));
  const { blocking, waived } = applyWaivers(marketplaceRuleProblems(sourceImage, encrypted), cfg.publish.waivers, opts.now?.() ?? new Date());
  if (blocking.length > 0) throw new Error(`${src.region}: ${src.imageId} breaks AWS Marketplace rules: ${blocking.join('; ')}`);
  for (const w of waived) log(`${src.region}: WAIVED ${w.rule} until ${w.expires}: ${w.problem} (${w.reason})`);
  log(`${src.region}: ${src.imageId} meets the Marketplace rules readable from AWS${waived.length ? `, ${waived.length} waived` : ''}`);

  // Amazon Inspector: nothing at or above the configured severity, unless waived by name.
  let inspector: PublishManifest['inspector'] = null;
  if (cfg.publish.inspector.enabled) {
    const r = await inspectorGate(cfg, src.region, src.imageId, sourceImage.OwnerId ?? '', clients.inspector(src.region), { now: opts.now?.(), retry: opts.retry });
    if (r.blocking.length > 0) {
      throw new Error(`refusing to publish ${src.imageId}: Amazon Inspector reports ${r.blocking.length} finding(s) at or above ${r.min_severity}: ${describeBlocking(r)}. Fix and rebuild, or waive each by name with a reason and an expiry (publish.inspector.waivers)`);
    }
    for (const w of r.waived) log(`${src.region}: WAIVED Inspector finding ${w.vulnerability} (${w.severity}) until ${w.expires}: ${w.reason}`);
    log(`${src.region}: Amazon Inspector: nothing at or above ${r.min_severity} for ${src.imageId}${r.waived.length ? ` (${r.waived.length} waived)` : ''}, ${r.below_threshold} below`);
    inspector = { min_severity: r.min_severity, waived: r.waived, below_threshold: r.below_threshold };
  } else {
    log(`${src.region}: Amazon Inspector gate is OFF (publish.inspector.enabled: false); recorded`);
  }

  const results: Record<string, RegionResult> = {};
  const pending: Record<string, string> = {};
  const copyName = sourceImage.Name ?? imageName(m);
  for (const r of regions) {
    const known = amis(m)[r];
    if (known) {
      results[r] = { imageId: known, snapshotIds: [], copied: 'built' };
      continue;
    }
    // A copy made by an earlier, interrupted run is found by its name (an AMI name is unique per
    // account and region, and this one carries the build ID), not made again. Not by its tags:
    // a run cut off between CopyImage and CreateTags leaves a copy whose tags depend on
    // CopyImageTags having applied (the rehearsal's emulator never copies them).
    const existing = await call(r, 'EC2 DescribeImages', () =>
      clients.ec2(r).send(new DescribeImagesCommand({ Owners: ['self'], Filters: [{ Name: 'name', Values: [copyName] }] })),
    );
    const usable = (existing.Images ?? []).find((i) => i.State === 'available' || i.State === 'pending');
    if (usable?.ImageId) {
      log(`${r}: reusing copy ${usable.ImageId} (${usable.State}) from an earlier run`);
      results[r] = { imageId: usable.ImageId, snapshotIds: [], copied: 'reused' };
      if (usable.State === 'pending') pending[r] = usable.ImageId;
      continue;
    }
    const copy = await call(r, 'EC2 CopyImage', () =>
      clients.ec2(r).send(
        new CopyImageCommand({
          SourceRegion: src.region,
          SourceImageId: src.imageId,
          Name: copyName,
          Description: sourceImage.Description,
          Encrypted: false,
          CopyImageTags: true,
          ClientToken: `${m.build_id}-${r}`.slice(0, 64),
        }),
      ),
    );
    if (!copy.ImageId) throw new Error(`${r}: EC2 CopyImage returned no image ID`);
    log(`${r}: copying ${src.imageId} -> ${copy.ImageId}`);
    results[r] = { imageId: copy.ImageId, snapshotIds: [], copied: 'new' };
    pending[r] = copy.ImageId;
  }

  // Wait for every copy, printing progress.
  const deadline = Date.now() + (opts.copyTimeoutMs ?? 60 * 60_000);
  while (Object.keys(pending).length > 0) {
    for (const [r, id] of Object.entries(pending)) {
      // A copy just made may not be visible yet (InvalidAMIID.NotFound): that is "pending".
      const d = await call(r, 'EC2 DescribeImages', () => clients.ec2(r).send(new DescribeImagesCommand({ ImageIds: [id] })), { retryOn: NOT_YET });
      const state = d.Images?.[0]?.State ?? 'pending';
      if (state === 'available') {
        log(`${r}: ${id} available`);
        delete pending[r];
      } else if (state === 'failed' || state === 'invalid' || state === 'error' || state === 'deregistered') {
        throw new Error(`${r}: copy ${id} ended in state ${state}${d.Images?.[0]?.StateReason?.Message ? ` (${d.Images[0].StateReason.Message})` : ''}`);
      } else {
        log(`${r}: ${id} ${state}…`);
      }
    }
    if (Object.keys(pending).length === 0) break;
    if (Date.now() > deadline) throw new Error(`copies still pending after the timeout: ${Object.entries(pending).map(([r, id]) => `${r} ${id}`).join(', ')}`);
    await new Promise((res) => setTimeout(res, opts.pollMs ?? 15_000));
  }

  const publishedAt = (opts.now?.() ?? new Date()).toISOString();
  const ssmParameters: string[] = [];
  for (const r of regions) {
    const res = results[r]!;
    const img = await call(r, 'EC2 DescribeImages', () => clients.ec2(r).send(new DescribeImagesCommand({ ImageIds: [res.imageId] })), { retryOn: NOT_YET });
    res.snapshotIds = snapshotIdsOf(img.Images?.[0] ?? {});
    // The destination region's EBS encryption by default encrypts a copy whatever CopyImage
    // asked; Marketplace rejects encrypted snapshots, so every copy's snapshots are checked.
    if (res.snapshotIds.length > 0 && res.copied !== 'built') {
      const s = await call(r, 'EC2 DescribeSnapshots', () => clients.ec2(r).send(new DescribeSnapshotsCommand({ SnapshotIds: res.snapshotIds })), { retryOn: NOT_YET });
      const enc = (s.Snapshots ?? []).filter((x) => x.Encrypted).map((x) => x.SnapshotId);
      if (enc.length > 0) {
        throw new Error(`${r}: the copy ${res.imageId} has encrypted snapshots (${enc.join(', ')}), which AWS Marketplace rejects: turn off EBS encryption by default in ${r} (ec2 disable-ebs-encryption-by-default), deregister the copy and publish again`);
      }
    }
    const tags = [
      { Key: 'Name', Value: sourceImage.Name ?? m.image.name },
      { Key: 'syntropy:image', Value: m.image.name },
      { Key: 'syntropy:version', Value: m.image.version },
      { Key: 'syntropy:build-id', Value: m.build_id },
      { Key: 'syntropy:published-at', Value: publishedAt },
    ];
    await call(r, 'EC2 CreateTags', () => clients.ec2(r).send(new CreateTagsCommand({ Resources: [res.imageId, ...res.snapshotIds], Tags: tags })));
    const add: LaunchPermission[] = cfg.publish.launch_accounts.map((UserId) => ({ UserId }));
    if (cfg.publish.public) add.push({ Group: 'all' });
    if (add.length > 0) {
      await call(r, 'EC2 ModifyImageAttribute', () => clients.ec2(r).send(new ModifyImageAttributeCommand({ ImageId: res.imageId, LaunchPermission: { Add: add } })));
    }
    if (cfg.publish.launch_accounts.length > 0) {
      for (const snap of res.snapshotIds) {
        await call(r, 'EC2 ModifySnapshotAttribute', () =>
          clients.ec2(r).send(
            new ModifySnapshotAttributeCommand({ SnapshotId: snap, Attribute: 'createVolumePermission', OperationType: 'add', UserIds: cfg.publish.launch_accounts }),
          ),
        );
      }
    }
    for (const name of [`${cfg.publish.ssm_parameter_prefix}/latest`, `${cfg.publish.ssm_parameter_prefix}/${m.image.version}`]) {
      await call(r, 'SSM PutParameter', () =>
        clients.ssm(r).send(new PutParameterCommand({ Name: name, Value: res.imageId, Type: 'String', DataType: 'aws:ec2:image', Overwrite: true })),
      );
      // aws:ec2:image values are validated after PutParameter returns: only GetParameter tells
      // whether the parameter holds the AMI (a failed validation leaves it absent or old).
      await confirmParameter(r, name, res.imageId, clients, call, opts.retry?.sleep ?? ((ms) => new Promise((ok) => setTimeout(ok, ms))));
      ssmParameters.push(`${r}:${name}`);
    }
    log(`${r}: ${res.imageId} tagged, permissions set, ${cfg.publish.ssm_parameter_prefix}/latest updated`);
  }

  if (cfg.publish.marketplace_account) {
    const acct = cfg.publish.marketplace_account;
    await call(src.region, 'EC2 ModifyImageAttribute', () =>
      clients.ec2(src.region).send(new ModifyImageAttributeCommand({ ImageId: src.imageId, LaunchPermission: { Add: [{ UserId: acct }] } })),
    );
    for (const snap of snaps) {
      await call(src.region, 'EC2 ModifySnapshotAttribute', () =>
        clients.ec2(src.region).send(new ModifySnapshotAttributeCommand({ SnapshotId: snap, Attribute: 'createVolumePermission', OperationType: 'add', UserIds: [acct] })),
      );
    }
    log(`${src.region}: shared ${src.imageId} with the AWS Marketplace account ${acct}`);
  }

  let marketplace: ChangeSetOutcome | null = null;
  let nextStep: string;
  if (mp.product_id) {
    const amiId = results[INGESTION_REGION]!.imageId;
    marketplace = await submitVersion(clients.catalog(), cfg, { imageVersion: m.image.version, buildId: m.build_id, amiId }, 'APPLY', { ...submitOptions(opts, log), resubmit: opts.resubmit });
    nextStep =
      marketplace.status === 'SUCCEEDED'
        ? `AWS Marketplace accepted version ${m.image.version} of ${mp.product_id} (change set ${marketplace.change_set_id}, AMI ${amiId}).`
        : marketplace.status === 'FAILED' || marketplace.status === 'CANCELLED'
          ? `AWS Marketplace change set ${marketplace.change_set_id} ${marketplace.status}: ${marketplace.errors.join('; ') || 'no reason given'}. Fix the cause and run publish again (--resubmit for the same details after a SERVER_FAULT).`
          : `AWS Marketplace change set ${marketplace.change_set_id} is still ${marketplace.status}; run publish again to keep waiting.`;
  } else if (cfg.publish.marketplace_account) {
    nextStep = `Next (manual, legacy): in the AWS Marketplace Management Portal, open your product, choose "Request changes" > "Add new version", and give AMI ${src.imageId} (${src.region}), version ${m.image.version}, the OS user "${cfg.ssh.user}", SSH port ${cfg.ssh.port}, and the IAM access role that lets Marketplace read the AMI. Or set publish.marketplace.product_id and access_role_arn to submit it with the Catalog API.`;
  } else {
    nextStep = 'Marketplace: nothing submitted (publish.marketplace.product_id is empty).';
  }
  return {
    schema: 1,
    build_id: m.build_id,
    image: m.image,
    published_at: publishedAt,
    forced: problems.length > 0 ? { reasons: problems } : null,
    source: { region: src.region, image_id: src.imageId },
    regions: results,
    launch_accounts: cfg.publish.launch_accounts,
    public: cfg.publish.public,
    marketplace_account: cfg.publish.marketplace_account || null,
    ssm_parameters: ssmParameters,
    waived,
    inspector,
    marketplace: marketplace && { product_id: mp.product_id, access_role_arn: mp.access_role_arn, region: INGESTION_REGION, ami_id: results[INGESTION_REGION]!.imageId, ...marketplace },
    next_step: nextStep,
  };
}

/**
 * `publish --validate`: the Marketplace part of a release without its side effects. Checks the
 * access role and sends the change set with Intent VALIDATE for the us-east-1 AMI (the build's, or
 * a copy an earlier publish made); nothing is copied, shared, recorded or submitted.
 */
export async function validateMarketplace(m: BuildManifestLike, cfg: Config, opts: Pick<PublishOptions, 'clients' | 'log' | 'retry' | 'marketplacePollMs' | 'marketplaceTimeoutMs'>): Promise<ChangeSetOutcome> {
  const log = opts.log ?? (() => undefined);
  const clients = opts.clients ?? defaultClients;
  const mp = cfg.publish.marketplace;
  if (!mp.product_id) throw new Error('--validate needs publish.marketplace.product_id and access_role_arn in the config');
  const src = sourceOf(m, cfg.aws.region);
  const problem = ingestionProblem(targetRegions(m, cfg, src.region));
  if (problem) throw new Error(problem);
  let amiId = amis(m)[INGESTION_REGION];
  if (!amiId) {
    const found = await awsCall(INGESTION_REGION, 'EC2 DescribeImages', () =>
      clients.ec2(INGESTION_REGION).send(new DescribeImagesCommand({ Owners: ['self'], Filters: [{ Name: 'name', Values: [imageName(m)] }] })),
    opts.retry);
    amiId = found.Images?.find((i) => i.State === 'available')?.ImageId;
    if (!amiId) throw new Error(`no available copy of ${imageName(m)} in ${INGESTION_REGION} yet: run publish (it copies the AMI there), or validate after it`);
  }
  await requireAccessRole(cfg, clients, opts.retry, log, '');
  return submitVersion(clients.catalog(), cfg, { imageVersion: m.image.version, buildId: m.build_id, amiId }, 'VALIDATE', submitOptions(opts, log));
}

/** The access role Marketplace reads the AMI through must work; throws naming what is wrong. */
async function requireAccessRole(cfg: Config, clients: Clients, retry: RetryOptions | undefined, log: (line: string) => void, prefix: string): Promise<void> {
  const arn = cfg.publish.marketplace.access_role_arn;
  const roleProblems = await accessRoleProblems(clients.iam(), arn, retry);
  if (roleProblems.length > 0) throw new Error(`${prefix}${roleProblems.join('; ')}`);
  log(`iam: ${arn} lets AWS Marketplace read the AMI`);
}

const submitOptions = (opts: Pick<PublishOptions, 'retry' | 'marketplacePollMs' | 'marketplaceTimeoutMs'>, log: (line: string) => void) => ({
  retry: opts.retry,
  pollMs: opts.marketplacePollMs,
  timeoutMs: opts.marketplaceTimeoutMs,
  log,
  sleep: opts.retry?.sleep,
});
