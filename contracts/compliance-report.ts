// reports/compliance*.json: the catalog's verdicts for one host. Written by hardening/report.ts
// (`buildReport`) for the build, `npm run compliance` and the boot tests; read by `publish`'s
// gate and by the build manifest's summary.
import { z } from 'zod';

const Status = z.enum(['PASS', 'FAIL', 'SKIP', 'EXCEPTION', 'ERROR']);
const Counts = z.object({ PASS: z.number(), FAIL: z.number(), SKIP: z.number(), EXCEPTION: z.number(), ERROR: z.number(), manual: z.number() }).strict();

export const ControlResultSchema = z
  .object({
    id: z.string().min(1),
    title: z.string(),
    level: z.enum(['l1_server', 'l2_server']),
    section: z.string(),
    automated: z.boolean(),
    tags: z.array(z.string()),
    result: Status,
    evidence: z.string(),
    exception: z.object({ name: z.string(), reason: z.string() }).strict().optional(),
    manual: z.string().optional(),
    /** Where hardening/DEVIATIONS.md explains this control (an exception, or a choice some readers fail). */
    deviation: z.string().optional(),
  })
  .strict();

export const ComplianceSummarySchema = z
  .object({
    automated_l1: z.number().int(),
    automated_l1_passing: z.number().int(),
    score: z.number(),
    sections: z.record(z.string(), Counts),
    totals: Counts,
    marketplace: Counts,
  })
  .strict();

export const ComplianceReportSchema = z
  .object({
    schema: z.literal(1),
    benchmark: z.object({ name: z.literal('CIS Debian Linux 13 Benchmark'), version: z.literal('v1.0.0'), profile: z.literal('Level 1 - Server') }).strict(),
    phase: z.string(),
    target: z.string(),
    mode: z.enum(['offline', 'live']),
    generated_at: z.string().datetime(),
    timing: z.object({ probe_ms: z.number(), total_ms: z.number(), round_trips: z.number().int() }).strict(),
    summary: ComplianceSummarySchema,
    passed: z.boolean(),
    results: z.array(ControlResultSchema),
  })
  .strict();

export type ComplianceReport = z.infer<typeof ComplianceReportSchema>;
export type ComplianceSummary = z.infer<typeof ComplianceSummarySchema>;
export type Counts = z.infer<typeof Counts>;
