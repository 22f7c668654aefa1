// What the emulator holds, read through the same EC2 and SSM APIs the pipeline uses: the
// rehearsal's proof that a step (or a failure injected into it) left nothing behind.
import {
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeKeyPairsCommand,
  DescribeSecurityGroupsCommand,
  DescribeSnapshotsCommand,
  EC2Client,
} from '@aws-sdk/client-ec2';
import { GetParametersByPathCommand, SSMClient } from '@aws-sdk/client-ssm';

export interface RegionInventory {
  /** Instances not terminated, with their syntropy:role tag. */
  instances: { id: string; state: string; role: string }[];
  images: { id: string; name: string; buildId: string; snapshots: string[] }[];
  snapshots: string[];
  keyPairs: string[];
  /** Security groups other than each VPC's default. */
  securityGroups: string[];
  parameters: Record<string, string>;
}

export type Inventory = Record<string, RegionInventory>;

const tag = (tags: { Key?: string; Value?: string }[] | undefined, k: string) => tags?.find((t) => t.Key === k)?.Value ?? '';

export async function inventory(regions: string[], parameterPrefix: string, clientsFor: (r: string) => { ec2: EC2Client; ssm: SSMClient }): Promise<Inventory> {
  const out: Inventory = {};
  for (const r of regions) {
    const { ec2, ssm } = clientsFor(r);
    const inst = await ec2.send(new DescribeInstancesCommand({}));
    const imgs = await ec2.send(new DescribeImagesCommand({ Owners: ['self'] }));
    const snaps = await ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'] }));
    const keys = await ec2.send(new DescribeKeyPairsCommand({}));
    const sgs = await ec2.send(new DescribeSecurityGroupsCommand({}));
    const params = await ssm.send(new GetParametersByPathCommand({ Path: parameterPrefix, Recursive: true }));
    out[r] = {
      instances: (inst.Reservations ?? [])
        .flatMap((x) => x.Instances ?? [])
        .filter((i) => i.State?.Name !== 'terminated')
        .map((i) => ({ id: i.InstanceId!, state: i.State?.Name ?? '', role: tag(i.Tags, 'syntropy:role') })),
      images: (imgs.Images ?? []).map((i) => ({
        id: i.ImageId!,
        name: i.Name ?? '',
        buildId: tag(i.Tags, 'syntropy:build-id'),
        snapshots: (i.BlockDeviceMappings ?? []).map((b) => b.Ebs?.SnapshotId ?? '').filter(Boolean),
      })),
      snapshots: (snaps.Snapshots ?? []).map((s) => s.SnapshotId!),
      keyPairs: (keys.KeyPairs ?? []).map((k) => k.KeyName!),
      securityGroups: (sgs.SecurityGroups ?? []).filter((g) => g.GroupName !== 'default').map((g) => `${g.GroupId} ${g.GroupName}`),
      parameters: Object.fromEntries((params.Parameters ?? []).map((p) => [p.Name!, p.Value ?? ''])),
    };
  }
  return out;
}

/** Lines naming what a failed step left behind: instances alive, key pairs, security groups. */
export function leftovers(inv: Inventory): string[] {
  const out: string[] = [];
  for (const [r, i] of Object.entries(inv)) {
    for (const x of i.instances) out.push(`${r}: instance ${x.id} (${x.state}, role ${x.role || '-'})`);
    for (const k of i.keyPairs) out.push(`${r}: key pair ${k}`);
    for (const g of i.securityGroups) out.push(`${r}: security group ${g}`);
  }
  return out;
}

/** Images and snapshots in `after` that were not in `before`. */
export function newImages(before: Inventory, after: Inventory): string[] {
  const out: string[] = [];
  for (const [r, a] of Object.entries(after)) {
    const had = new Set((before[r]?.images ?? []).map((x) => x.id));
    const hadSnaps = new Set(before[r]?.snapshots ?? []);
    for (const x of a.images) if (!had.has(x.id)) out.push(`${r}: image ${x.id} ${x.name}`);
    for (const s of a.snapshots) if (!hadSnaps.has(s)) out.push(`${r}: snapshot ${s}`);
  }
  return out;
}
