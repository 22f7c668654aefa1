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
}

export async function clean(
  cfg: Config,
  opts: { dryRun: boolean; now?: Date; clients?: Clients; log?: (l: string) => void; retry?: RetryOptions },
): Promise<CleanResult> {
  const clients = opts.clients ?? defaultClients;
  const log = opts.log ?? (() => undefined);
  const now = opts.now ?? new Date();
  const result: CleanResult = { images: [], instances: [] };
  for (const region of cleanRegions(cfg)) {
    const ec2 = clients.ec2(region);
    const call = <T>(name: string, fn: () => Promise<T>) => awsCall(region, name, fn, opts.retry);
    const res = await call('EC2 DescribeImages', () =>
      ec2.send(new DescribeImagesCommand({ Owners: ['self'], Filters: [{ Name: 'tag:syntropy:image', Values: [cfg.image.name] }] })),
    );
    const images: ImageInfo[] = (res.Images ?? []).map((i) => ({
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
        for (const s of img.snapshotIds) await call('EC2 DeleteSnapshot', () => ec2.send(new DeleteSnapshotCommand({ SnapshotId: s })));
      }
      result.images.push(img);
    }
    const inst = await call('EC2 DescribeInstances', () =>
      ec2.send(
        new DescribeInstancesCommand({
          Filters: [
            { Name: 'tag-key', Values: ['syntropy:build-id'] },
            { Name: 'tag:syntropy:role', Values: ['packer-builder', 'boot-test'] },
            { Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped'] },
          ],
        }),
      ),
    );
    const staleBefore = now.getTime() - cfg.retention.instance_max_age_hours * 3_600_000;
    const stale = (inst.Reservations ?? [])
      .flatMap((r) => r.Instances ?? [])
      .filter((i) => i.InstanceId && i.LaunchTime && new Date(i.LaunchTime).getTime() < staleBefore)
      .map((i) => i.InstanceId!);
    if (stale.length > 0) {
      log(`${region}: ${opts.dryRun ? 'would terminate' : 'terminating'} left-over instance(s) ${stale.join(', ')}`);
      if (!opts.dryRun) await call('EC2 TerminateInstances', () => ec2.send(new TerminateInstancesCommand({ InstanceIds: stale })));
      result.instances.push(...stale.map((instanceId) => ({ region, instanceId })));
    }
  }
  return result;
}
