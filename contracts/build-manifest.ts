// output/<build-id>/build-manifest.json: what an image is made of, how long each phase took and
// where the image is. Written by `npm run build` (scripts/lib/bake/manifest.ts, the only
// writer); read by boot-test, publish, bench and the release workflow.
import { z } from 'zod';
import { ConfigSchema } from '../scripts/lib/config.ts';
import { AgentImageLockSchema } from './agent-image-lock.ts';
import { ComplianceSummarySchema } from './compliance-report.ts';

export const AMI_ID = /^ami-[0-9a-f]{8,17}$/;
export const REGION = /^[a-z]{2}(-[a-z]+)+-\d$/;

const LocalOutputs = z.object({ qcow2: z.string().min(1), qcow2_bytes: z.number().int().positive() }).strict();
/** amazon-ebs: one AMI per region, region -> AMI ID (Packer's artifact_id "region:ami,..."). */
const AwsOutputs = z.object({ amis: z.record(z.string().regex(REGION, 'an AWS region'), z.string().regex(AMI_ID, 'an AMI ID (ami-...)')) }).strict();

const LocalBase = z
  .object({
    kind: z.literal('local-base-disk'),
    path: z.string(),
    sha256: z.string().regex(/^[a-f0-9]{64}$/),
    kernel: z.string(),
    inputs_hash: z.string(),
    reused: z.boolean(),
    accelerator: z.enum(['kvm', 'tcg']),
    /** The hardened layer qemu.local booted (scripts/lib/bake/layer.ts); absent in builds before it. */
    hardened_layer: z
      .object({ key: z.string().regex(/^[a-f0-9]{16}$/), path: z.string(), sha256: z.string().regex(/^[a-f0-9]{64}$/), reused: z.boolean() })
      .strict()
      .optional(),
  })
  .strict();
const AmiBase = z.object({ kind: z.literal('ami'), imageId: z.string().regex(AMI_ID), name: z.string(), creationDate: z.string() }).strict();

export const PackageEntrySchema = z
  .object({
    name: z.string().min(1),
    version: z.string().min(1),
    arch: z.string(),
    /** dpkg's source:Package and source:Version: what Debian's security tracker keys on. */
    source: z.string().min(1).optional(),
    source_version: z.string().min(1).optional(),
  })
  .strict();

/** A package of the agent image's layers (scripts/lib/bake/package-db.ts). */
export const AgentPackageSchema = PackageEntrySchema.extend({ kind: z.enum(['deb', 'apk']) }).strict();

export const BuildManifestSchema = z
  .object({
    schema: z.literal(1),
    build_id: z.string().regex(/^\d{8}T\d{6}Z$/, 'a build ID such as 20260101T120000Z'),
    built_at: z.string().datetime(),
    target: z.enum(['local', 'aws']),
    image: z.object({ name: z.string(), version: z.string() }).strict(),
    git_sha: z.string(),
    config_sha256: z.string().regex(/^[a-f0-9]{64}$/),
    config: ConfigSchema,
    packer: z.object({ version: z.string(), modern: z.boolean() }).strict(),
    base_image: z.discriminatedUnion('kind', [LocalBase, AmiBase]),
    os: z.object({ pretty_name: z.string(), version_id: z.string() }).strict(),
    kernel: z.record(z.string(), z.string()),
    agent_image: AgentImageLockSchema,
    /** SSM Agent in the image (aws: installed, pinned and signature-checked); null on local, which has none. */
    ssm_agent: z.object({ version: z.string().min(1) }).strict().nullable(),
    rootfs: z.object({ used_bytes: z.number(), size_bytes: z.number() }).strict(),
    outputs: z.union([LocalOutputs, AwsOutputs]),
    durations_s: z.record(z.string(), z.number()),
    /** Local build guests whose kernel panicked under TCG and whose Packer build was started again; absent when none did. */
    guest_panics: z
      .array(
        z
          .object({ build: z.enum(['layer', 'image']), line: z.string(), during: z.string(), serial_log: z.string(), packer_log: z.string() })
          .strict(),
      )
      .optional(),
    packages: z.array(PackageEntrySchema).min(1),
    /** The agent image's own packages, from its dpkg or apk database; empty when neither is readable. */
    agent_packages: z.array(AgentPackageSchema).optional(),
    /** The end-of-life check of the bake (scripts/lib/bake/support.ts): what was supported until when. */
    support: z
      .object({
        checked_on: z.string().regex(/^\d{4}-\d{2}-\d{2}$/),
        os: z.object({ release: z.string(), phase: z.enum(['regular', 'lts']), until: z.string() }).strict(),
        docker: z.object({ package: z.string(), version: z.string(), source: z.enum(['debian', 'docker-ce']), until: z.string().nullable(), note: z.string() }).strict().nullable(),
        warnings: z.array(z.string()),
      })
      .strict()
      .optional(),
    /** The image's CycloneDX SBOM beside the manifest (scripts/lib/bake/sbom.ts). */
    sbom: z
      .object({
        file: z.string(),
        format: z.literal('CycloneDX 1.6 JSON'),
        sha256: z.string().regex(/^[a-f0-9]{64}$/),
        components: z.number().int().min(1),
        debian_packages: z.number().int().min(1),
        npm_packages: z.number().int().min(0),
        agent_images: z.number().int().min(1),
        agent_packages: z.number().int().min(0).optional(),
      })
      .strict()
      .optional(),
    compliance: z
      .object({
        benchmark: z.object({ name: z.string(), version: z.string(), profile: z.string() }).strict(),
        passed: z.boolean(),
        hardened: ComplianceSummarySchema,
        baseline: ComplianceSummarySchema.nullable(),
        reports: z.string(),
      })
      .strict(),
  })
  .strict()
  .superRefine((m, ctx) => {
    const local = 'qcow2' in m.outputs;
    if ((m.target === 'local') !== local) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['outputs'], message: `a ${m.target} build records ${m.target === 'local' ? 'qcow2' : 'amis'}` });
    }
    if ((m.target === 'local') !== (m.base_image.kind === 'local-base-disk')) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['base_image', 'kind'], message: `does not fit a ${m.target} build` });
    }
    if (m.target === 'aws' && m.ssm_agent === null) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['ssm_agent'], message: 'an aws image must carry the SSM Agent' });
    if (m.config.target !== m.target) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['config', 'target'], message: `is ${m.config.target}, the build is ${m.target}` });
  });

export type BuildManifest = z.output<typeof BuildManifestSchema>;
export type PackageEntry = z.infer<typeof PackageEntrySchema>;
export type AgentPackage = z.infer<typeof AgentPackageSchema>;

/** The image a local build produced, or the AMIs an aws build registered. */
export function localImage(m: Pick<BuildManifest, 'outputs'>): string | null {
  return 'qcow2' in m.outputs ? m.outputs.qcow2 : null;
}

export function amis(m: Pick<BuildManifest, 'outputs'>): Record<string, string> {
  return 'amis' in m.outputs ? m.outputs.amis : {};
}
