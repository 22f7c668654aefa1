// reports/boot-test.json: what the boot scenarios proved on launched instances. Written by
// `npm run boot-test` (scripts/lib/boottest/report.ts), read by `publish`'s gate.
import { z } from 'zod';

export const StepRecordSchema = z.object({ name: z.string(), ms: z.number(), ok: z.boolean(), detail: z.string().optional() }).strict();

export const ScenarioRecordSchema = z
  .object({
    name: z.string(),
    passed: z.boolean(),
    ms: z.number(),
    steps: z.array(StepRecordSchema),
    error: z.string().optional(),
    figures: z.record(z.string(), z.union([z.number(), z.string()])),
  })
  .strict();

export const BootTestReportSchema = z
  .object({
    schema: z.literal(1),
    build_id: z.string().min(1),
    target: z.enum(['local', 'aws']),
    generated_at: z.string().datetime(),
    /** Every scenario asked for ran and passed. */
    passed: z.boolean(),
    scenarios: z.array(ScenarioRecordSchema),
  })
  .strict();

export type BootTestReport = z.infer<typeof BootTestReportSchema>;
export type StepRecord = z.infer<typeof StepRecordSchema>;
export type ScenarioRecord = z.infer<typeof ScenarioRecordSchema>;
