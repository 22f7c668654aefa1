// /etc/syntropy/firstboot.conf: the settings first boot takes from the build config (no
// secrets). Written on the build host into the staged first-boot bundle (scripts/lib/bake/
// firstboot-stage.ts), installed by install-firstboot.sh, read by first boot. KEY=value lines.
import { z } from 'zod';
import { DEFAULT_MAX_RANGE_WIDTH, DEFAULT_PORT_RANGE, rangeProblem } from '../firstboot/src/validate.ts';
import { formatKeyValues, parseContract, parseKeyValues } from './parse.ts';

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

export const FirstbootConfSchema = z
  .object({
    SSH_PORT: int(1, 65535).default(22),
    DEFAULT_PORT_RANGE: z.string().default(DEFAULT_PORT_RANGE),
    MAX_PORT_RANGE_WIDTH: int(1, 64512).default(DEFAULT_MAX_RANGE_WIDTH),
    AGENT_NETWORK_API: z.enum(['none', 'docker', 'host', 'kubernetes']).default('none'),
  })
  .strict()
  .superRefine((c, ctx) => {
    // The default range obeys the same rule as every answer (firstboot/src/validate.ts).
    const p = rangeProblem(c.DEFAULT_PORT_RANGE, { maxWidth: c.MAX_PORT_RANGE_WIDTH, sshPort: c.SSH_PORT });
    if (p) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['DEFAULT_PORT_RANGE'], message: p });
  });
export type FirstbootConf = z.output<typeof FirstbootConfSchema>;

/** A missing file means the defaults (an image baked before the file existed). */
export function parseFirstbootConf(text: string | null, file: string): FirstbootConf {
  return parseContract(FirstbootConfSchema, text === null ? {} : parseKeyValues(text), file);
}

export function formatFirstbootConf(conf: z.input<typeof FirstbootConfSchema>): string {
  const c = parseContract(FirstbootConfSchema, conf, 'firstboot.conf');
  return formatKeyValues('Written at bake time from the build config (contracts/firstboot-conf.ts).', c);
}
