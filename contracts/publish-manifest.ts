// publish-manifest.json: where a release went. Written by `npm run publish`
// (scripts/lib/release/publish.ts) next to the build manifest; read by the release workflow and
// by a re-run, which reuses what it records.
import { z } from 'zod';
import { AMI_ID, REGION } from './build-manifest.ts';

export const RegionResultSchema = z
  .object({
    imageId: z.string().regex(AMI_ID, 'an AMI ID (ami-...)'),
    snapshotIds: z.array(z.string().regex(/^snap-[0-9a-f]+$/, 'a snapshot ID (snap-...)')),
    copied: z.enum(['built', 'reused', 'new']),
  })
  .strict();

export const PublishManifestSchema = z
  .object({
    schema: z.literal(1),
    build_id: z.string().min(1),
    image: z.object({ name: z.string(), version: z.string() }).strict(),
    published_at: z.string().datetime(),
    forced: z.object({ reasons: z.array(z.string()) }).strict().nullable(),
    source: z.object({ region: z.string().regex(REGION), image_id: z.string().regex(AMI_ID) }).strict(),
    regions: z.record(z.string().regex(REGION, 'an AWS region'), RegionResultSchema),
    launch_accounts: z.array(z.string().regex(/^\d{12}$/, 'a 12-digit account ID')),
    public: z.boolean(),
    marketplace_account: z.string().regex(/^\d{12}$/).nullable(),
    ssm_parameters: z.array(z.string()),
    /** Marketplace rules the image broke that a config waiver let through (publish.waivers). */
    waived: z.array(z.object({ rule: z.string(), problem: z.string(), reason: z.string(), expires: z.string() }).strict()),
    /** Amazon Inspector's judgement of the image (null: the gate is off in the config, recorded as such). */
    inspector: z
      .object({
        min_severity: z.string(),
        waived: z.array(z.object({ arn: z.string(), vulnerability: z.string(), severity: z.string(), package: z.string(), title: z.string(), status: z.string(), reason: z.string(), expires: z.string() }).strict()),
        below_threshold: z.number().int().min(0),
      })
      .strict()
      .nullable(),
    /** The Marketplace Catalog API change set that added the version (null: no product configured). */
    marketplace: z
      .object({
        product_id: z.string().min(1),
        access_role_arn: z.string().min(1),
        region: z.string().regex(REGION),
        ami_id: z.string().regex(AMI_ID),
        change_set_id: z.string().min(1),
        change_set_arn: z.string(),
        intent: z.enum(['VALIDATE', 'APPLY']),
        status: z.string().min(1),
        errors: z.array(z.string()),
      })
      .strict()
      .nullable(),
    next_step: z.string(),
  })
  .strict();

export type PublishManifest = z.infer<typeof PublishManifestSchema>;
export type RegionResult = z.infer<typeof RegionResultSchema>;
