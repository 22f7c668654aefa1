// Retention: per region keep the newest N images of this product and remove the rest once they
// are older than the configured age (deregister, then delete their snapshots); terminate
// instances that builds and boot tests tagged and left behind.
import {
  DeleteSnapshotCommand,
  DeregisterImageCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import { DeleteParameterCommand, GetParametersByPathCommand } from '@aws-sdk/client-ssm';
import type { Config } from '../config.ts';
import { awsCall, type RetryOptions } from '../aws-call.ts';
import { defaultClients, type Clients } from './publish.ts';

export interface ImageInfo {
  region: string;
  imageId: string;
  name: string;
  creationDate: string;
  snapshotIds: string[];
}

/** Which images to remove: never the newest `keepNewest` of a region, and only past `maxAgeDays`. */
export function selectForRemoval(images: ImageInfo[], now: Date, keepNewest: number, maxAgeDays: number): ImageInfo[] {
  const cutoff = now.getTime() - maxAgeDays * 86_400_000;
  const byRegion = new Map<string, ImageInfo[]>();
  for (const i of images) byRegion.set(i.region, [...(byRegion.get(i.region) ?? []), i]);
  const out: ImageInfo[] = [];
  for (const list of byRegion.values()) {
    const sorted = [...list].sort((a, b) => Date.parse(b.creationDate) - Date.parse(a.creationDate));
    for (const img of sorted.slice(keepNewest)) if (Date.parse(img.creationDate) < cutoff) out.push(img);
  }
  return out;
}

export function cleanRegions(cfg: Config): string[] {
  return [...new Set([cfg.aws.region, ...cfg.aws.ami_regions, ...cfg.publish.regions])];
}

export interface CleanResult {
  images: ImageInfo[];
  instances: { region: string; instanceId: string }[];
  /** Version parameters that named a removed image. */
  parameters: string[];
}

/** Every page of a paginated EC2/SSM listing. */
async function allPages<T>(fetch: (token: string | undefined) => Promise<{ NextToken?: string; items: T[] }>): Promise<T[]> {
  const out: T[] = [];
  let token: string | undefined;
  do {
    const page = await fetch(token);
    out.push(...page.items);
    token = page.NextToken;
  } while (token);
  return out;
}

async function cleanRegion(cfg: Config, region: string, opts: CleanOptions, result: CleanResult): Promise<void> {
  const clients = opts.clients ?? defaultClients;
  const log = opts.log ?? (() => undefined);
  const now = opts.now ?? new Date();
  const ec2 = clients.ec2(region);
  const call = <T>(name: string, fn: () => Promise<T>, extra: RetryOptions = {}) => awsCall(region, name, fn, { ...opts.retry, ...extra });
  const found = await allPages(async (NextToken) => {
    const r = await call('EC2 DescribeImages', () =>
      ec2.send(new DescribeImagesCommand({ Owners: ['self'], Filters: [{ Name: 'tag:syntropy:image', Values: [cfg.image.name] }], NextToken })),
    );
    return { NextToken: r.NextToken, items: r.Images ?? [] };
  });
  const images: ImageInfo[] = found.map((i) => ({
    region,
    imageId: i.ImageId!,
    name: i.Name ?? '',
    creationDate: i.CreationDate ?? now.toISOString(),
    snapshotIds: (i.BlockDeviceMappings ?? []).map((b) => b.Ebs?.SnapshotId).filter((s): s is string => !!s),
  }));
  const remove = selectForRemoval(images, now, cfg.retention.keep_newest, cfg.retention.max_age_days);
  log(`${region}: ${images.length} image(s) of ${cfg.image.name}, ${remove.length} to remove`);
  for (const img of remove) {
    log(`${region}: ${opts.dryRun ? 'would remove' : 'removing'} ${img.imageId} (${img.name}, ${img.creationDate}) and ${img.snapshotIds.length} snapshot(s)`);
    if (!opts.dryRun) {
      await call('EC2 DeregisterImage', () => ec2.send(new DeregisterImageCommand({ ImageId: img.imageId })));
      // A snapshot stays "in use" by its image for a moment after the deregistration.
      for (const s of img.snapshotIds) await call('EC2 DeleteSnapshot', () => ec2.send(new DeleteSnapshotCommand({ SnapshotId: s })), { retryOn: ['InvalidSnapshot.InUse'], attempts: 8 });
    }
    result.images.push(img);
  }
  // Version parameters (<prefix>/<version>) that name a removed image would hand out a dead AMI.
  if (remove.length > 0) {
    const ssm = clients.ssm(region);
    const removedIds = new Set(remove.map((i) => i.imageId));
    const params = await allPages(async (NextToken) => {
      const r = await call('SSM GetParametersByPath', () => ssm.send(new GetParametersByPathCommand({ Path: cfg.publish.ssm_parameter_prefix, NextToken })));
      return { NextToken: r.NextToken, items: r.Parameters ?? [] };
    });
    for (const p of params.filter((x) => x.Name && x.Value && removedIds.has(x.Value) && !x.Name.endsWith('/latest'))) {
      log(`${region}: ${opts.dryRun ? 'would delete' : 'deleting'} parameter ${p.Name} (${p.Value})`);
      if (!opts.dryRun) await call('SSM DeleteParameter', () => ssm.send(new DeleteParameterCommand({ Name: p.Name })));
      result.parameters.push(`${region}:${p.Name}`);
    }
  }
  const instances = await allPages(async (NextToken) => {
    const r = await call('EC2 DescribeInstances', () =>
      ec2.send(
        new DescribeInstancesCommand({
          Filters: [
            { Name: 'tag-key', Values: ['syntropy:build-id'] },
            { Name: 'tag:syntropy:role', Values: ['packer-builder', 'boot-test'] },
            { Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped'] },
          ],
          NextToken,
        }),
      ),
    );
    return { NextToken: r.NextToken, items: (r.Reservations ?? []).flatMap((x) => x.Instances ?? []) };
  });
  const staleBefore = now.getTime() - cfg.retention.instance_max_age_hours * 3_600_000;
  const stale = instances.filter((i) => i.InstanceId && i.LaunchTime && new Date(i.LaunchTime).getTime() < staleBefore).map((i) => i.InstanceId!);
  if (stale.length > 0) {
    log(`${region}: ${opts.dryRun ? 'would terminate' : 'terminating'} left-over instance(s) ${stale.join(', ')}`);
    if (!opts.dryRun) await call('EC2 TerminateInstances', () => ec2.send(new TerminateInstancesCommand({ InstanceIds: stale })));
    result.instances.push(...stale.map((instanceId) => ({ region, instanceId })));
  }
}

export interface CleanOptions {
  dryRun: boolean;
  now?: Date;
  clients?: Clients;
  log?: (l: string) => void;
  retry?: RetryOptions;
}

/** The rules a run applies, printed before any AWS call (all that --dry-run can show without credentials). */
export function retentionPlan(cfg: Config): string[] {
  const r = cfg.retention;
  return [
    `retention plan for ${cfg.image.name} in ${cleanRegions(cfg).join(', ')}:`,
    `  keep the newest ${r.keep_newest} image(s) tagged syntropy:image=${cfg.image.name} per region; deregister older ones past ${r.max_age_days} days and delete their snapshots`,
    `  delete version parameters under ${cfg.publish.ssm_parameter_prefix}/ that name a removed image (never .../latest)`,
    `  terminate instances tagged syntropy:role=packer-builder or boot-test older than ${r.instance_max_age_hours} hours`,
  ];
}

const NO_CREDENTIALS = /CredentialsProviderError|Could not load credentials|missing credentials/i;

/** Every region is cleaned even when one fails; the failures are reported together at the end. */
export async function clean(cfg: Config, opts: CleanOptions): Promise<CleanResult> {
  const result: CleanResult = { images: [], instances: [], parameters: [] };
  const failed: string[] = [];
  const log = opts.log ?? (() => undefined);
  for (const line of retentionPlan(cfg)) log(line);
  for (const region of cleanRegions(cfg)) {
    try {
      await cleanRegion(cfg, region, opts, result);
    } catch (e) {
      if (opts.dryRun && NO_CREDENTIALS.test((e as Error).message)) {
        log('no AWS credentials: nothing was listed; the plan above is what a run would apply');
        return result;
      }
      failed.push((e as Error).message);
      (opts.log ?? (() => undefined))(`${region}: FAILED: ${(e as Error).message}; going on with the other regions`);
    }
  }
  if (failed.length > 0) throw new Error(`retention failed in ${failed.length} region(s): ${failed.join('; ')}`);
  return result;
}
