// /etc/syntropy/agent-image.lock: which agent image first boot may start. Written at bake time
// (`syntropy-firstboot record-image`, called by packer/provisioners/preload-agent.sh) and by
// `update-agent`; read by first boot (apply, status), by firstboot/bin/run-agent (bash's read, tested
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
    /**
     * The image's own Entrypoint followed by its Cmd (Docker's image config), which run-agent
     * execs after its env loader. Recorded so the agent's start asks Docker nothing beforehand (a
     * `docker image inspect` costs ~1 s of CPU on a small instance). Determined by `id` (the
     * config's digest). Absent in locks written before it; run-agent then asks Docker.
     */
    exec: z.array(z.string().regex(/^[^\0]*$/, 'no NUL characters')).min(1, 'the image has no entrypoint or command').optional(),
  })
  .strict();
export type AgentImageLock = z.infer<typeof AgentImageLockSchema>;

const KEYS = { ref: 'AGENT_IMAGE_REF', digest: 'AGENT_IMAGE_DIGEST', id: 'AGENT_IMAGE_ID', source: 'AGENT_IMAGE_SOURCE', exec: 'AGENT_IMAGE_EXEC' } as const;

/**
 * AGENT_IMAGE_EXEC's value: base64 of the arguments, each ended by a NUL byte. Any argument
 * survives it (spaces, quotes, newlines), and run-agent reads it back with sed, base64 -d and
 * mapfile -d '' (no eval).
 */
export function encodeExec(args: string[]): string {
  return Buffer.from(args.map((a) => `${a}\0`).join(''), 'utf8').toString('base64');
}

export function decodeExec(value: string): string[] | string {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(value)) return 'not base64';
  const text = Buffer.from(value, 'base64').toString('utf8');
  if (!text.endsWith('\0')) return 'the arguments do not end with a NUL byte';
  return text.slice(0, -1).split('\0');
}

export function parseAgentImageLock(text: string, file: string): AgentImageLock {
  const kv = parseKeyValues(text);
  const raw: Record<string, unknown> = Object.fromEntries(Object.entries(KEYS).map(([field, key]) => [field, kv[key]]));
  if (typeof raw.exec === 'string') {
    const args = decodeExec(raw.exec);
    if (typeof args === 'string') throw new ContractError(`${file}: ${KEYS.exec}: ${args}`);
    raw.exec = args;
  }
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
  return formatKeyValues(comment, {
    [KEYS.ref]: l.ref,
    [KEYS.digest]: l.digest,
    [KEYS.id]: l.id,
    [KEYS.source]: l.source,
    ...(l.exec ? { [KEYS.exec]: encodeExec(l.exec) } : {}),
  });
}
