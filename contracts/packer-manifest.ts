// packer-manifest.json as the build reads it: Packer's `manifest` post-processor output
// (packer/build.pkr.hcl). Only the fields the build uses are required; Packer adds others.
// The amazon-ebs artifact_id is "region:ami-id[,region:ami-id...]"; qemu's is the image path.
import { z } from 'zod';

export const PackerManifestSchema = z.object({
  builds: z
    .array(
      z.object({
        name: z.string(),
        builder_type: z.string(),
        artifact_id: z.string().min(1),
        files: z.array(z.object({ name: z.string(), size: z.number() })).nullish(),
        custom_data: z.record(z.string(), z.string()).nullish(),
      }),
    )
    .min(1, 'Packer recorded no build'),
  last_run_uuid: z.string().optional(),
});
export type PackerManifest = z.infer<typeof PackerManifestSchema>;

/** The AMIs of an amazon-ebs artifact ID, region -> AMI ID. */
export function amisOfArtifact(artifactId: string, source: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of artifactId.split(',')) {
    const m = /^([a-z]{2}(?:-[a-z]+)+-\d):(ami-[0-9a-f]{8,17})$/.exec(part.trim());
    if (!m) throw new Error(`${source}: artifact_id ${JSON.stringify(artifactId)} is not region:ami-id[,region:ami-id]`);
    out[m[1]!] = m[2]!;
  }
  return out;
}
