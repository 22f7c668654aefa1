// /etc/syntropy/agent-image.lock: which agent image first boot may start. Written at bake time
// (`syntropy-firstboot record-image`, called by packer/provisioners/preload-agent.sh) and by
// `update-agent`; read by first boot (apply, status), by firstboot/bin/run-agent (sed, tested
// against this writer's output) and by the build manifest. KEY=value lines.
import { z } from 'zod';
import { ContractError, formatKeyValues, parseContract, parseKeyValues } from './parse.ts';

const SHA256 = /^sha256:[a-f0-9]{64}$/;

export const AgentImageLockSchema = z
  .object({
    /** What Docker knows the image as: name@sha256:digest (registry) or the double's tag. */
    ref: z.string().min(1).regex(/^[a-z0-9][a-z0-9._/:@-]*$/, 'an image reference (name[:tag][@sha256:...])'),
    /** The registry digest (registry source) or the image ID (archive source). */
    digest: z.string().regex(SHA256, 'sha256:<64 hex>'),
    /** Docker's image ID of the preloaded image: what first boot verifies and runs. */
    id: z.string().regex(SHA256, 'sha256:<64 hex>'),
    source: z.enum(['archive', 'registry']),
  })
  .strict();
export type AgentImageLock = z.infer<typeof AgentImageLockSchema>;

const KEYS = { ref: 'AGENT_IMAGE_REF', digest: 'AGENT_IMAGE_DIGEST', id: 'AGENT_IMAGE_ID', source: 'AGENT_IMAGE_SOURCE' } as const;

export function parseAgentImageLock(text: string, file: string): AgentImageLock {
  const kv = parseKeyValues(text);
  const raw = Object.fromEntries(Object.entries(KEYS).map(([field, key]) => [field, kv[key]]));
  try {
    return parseContract(AgentImageLockSchema, raw, file);
  } catch (e) {
    // Name the file's own keys, not the schema's field names.
    let msg = (e as Error).message;
    for (const [field, key] of Object.entries(KEYS)) msg = msg.replace(new RegExp(`(^|; |: )${field}: `, 'g'), `$1${key}: `);
    throw new ContractError(msg);
  }
}

export function formatAgentImageLock(lock: AgentImageLock, comment: string): string {
  const l = parseContract(AgentImageLockSchema, lock, 'agent image lock');
  return formatKeyValues(comment, { [KEYS.ref]: l.ref, [KEYS.digest]: l.digest, [KEYS.id]: l.id, [KEYS.source]: l.source });
}
