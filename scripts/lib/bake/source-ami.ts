// EC2 calls the build makes around Packer: checking the source AMI filter before starting, and,
// with Packer 1.6 (whose amazon-ebs cannot register IMDSv2-only AMIs), setting it afterwards.
import { CreateTagsCommand, DescribeImagesCommand, EC2Client, ModifyImageAttributeCommand } from '@aws-sdk/client-ec2';
import { awsCall } from '../aws-call.ts';
import type { Config } from '../config.ts';

export interface SourceAmi {
  imageId: string;
  name: string;
  creationDate: string;
}

/** Finds the newest AMI the Packer source_ami_filter would pick; fails early if there is none. */
export async function findSourceAmi(cfg: Config, client = new EC2Client({ region: cfg.aws.region })): Promise<SourceAmi> {
  let res;
  try {
    res = await client.send(
      new DescribeImagesCommand({
        Owners: [cfg.aws.source_ami_owner],
        Filters: [
          { Name: 'name', Values: [cfg.aws.source_ami_name] },
          { Name: 'architecture', Values: ['x86_64'] },
          { Name: 'virtualization-type', Values: ['hvm'] },
          { Name: 'root-device-type', Values: ['ebs'] },
          { Name: 'state', Values: ['available'] },
        ],
      }),
    );
  } catch (e) {
    throw new Error(`EC2 DescribeImages in ${cfg.aws.region} failed: ${(e as Error).name}: ${(e as Error).message}`);
  }
  const images = (res.Images ?? []).filter((i) => i.ImageId && i.CreationDate);
  if (images.length === 0) {
    throw new Error(
      `no source AMI matches aws.source_ami_name=${JSON.stringify(cfg.aws.source_ami_name)} owned by ${cfg.aws.source_ami_owner} in ${cfg.aws.region} (x86_64, HVM, EBS)`,
    );
  }
  images.sort((a, b) => (a.CreationDate! < b.CreationDate! ? 1 : -1));
  const newest = images[0]!;
  return { imageId: newest.ImageId!, name: newest.Name ?? '', creationDate: newest.CreationDate! };
}

/** Marks each AMI IMDSv2-only (irreversible on EC2, as Marketplace expects). */
export async function requireImdsV2(amis: Record<string, string>, clientFor = (region: string) => new EC2Client({ region })): Promise<void> {
  for (const [region, imageId] of Object.entries(amis)) {
    try {
      await clientFor(region).send(new ModifyImageAttributeCommand({ ImageId: imageId, ImdsSupport: { Value: 'v2.0' } }));
    } catch (e) {
      throw new Error(`EC2 ModifyImageAttribute (ImdsSupport=v2.0) for ${imageId} in ${region} failed: ${(e as Error).message}`);
    }
  }
}

/** Adds tags to each AMI and its snapshots after the build (what only the finished build knows). */
export async function tagImages(amis: Record<string, string>, tags: Record<string, string>, clientFor = (region: string) => new EC2Client({ region })): Promise<void> {
  for (const [region, imageId] of Object.entries(amis)) {
    const ec2 = clientFor(region);
    const d = await awsCall(region, 'EC2 DescribeImages', () => ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] })));
    const snaps = (d.Images?.[0]?.BlockDeviceMappings ?? []).map((b) => b.Ebs?.SnapshotId).filter((x): x is string => !!x);
    await awsCall(region, 'EC2 CreateTags', () => ec2.send(new CreateTagsCommand({ Resources: [imageId, ...snaps], Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) })));
  }
}
