// The agent image lock file on the instance (contracts/agent-image-lock.ts): its reader and its
// writers side by side. `record-image` writes it at bake time (preload-agent.sh), `update-agent`
// rewrites it; apply and status read it; run-agent reads the same keys with bash's read.
import { existsSync, readFileSync } from 'node:fs';
import { formatAgentImageLock, parseAgentImageLock, type AgentImageLock } from '../../contracts/agent-image-lock.ts';
import { writeFileAtomic, type Paths } from './state.ts';

export type { AgentImageLock };

export class ImageLockError extends Error {
  override name = 'ImageLockError';
}

export function readImageLock(p: Paths): AgentImageLock {
  if (!existsSync(p.lockFile)) throw new ImageLockError(`the agent image lock file ${p.lockFile} is missing: this image was not baked with a preloaded agent`);
  try {
    return parseAgentImageLock(readFileSync(p.lockFile, 'utf8'), p.lockFile);
  } catch (e) {
    throw new ImageLockError(`the agent image lock file is unusable: ${(e as Error).message}`);
  }
}

/** The lock, or null when there is none (status, plan mode). A broken lock still fails loudly. */
export function readImageLockIfAny(p: Paths): AgentImageLock | null {
  return existsSync(p.lockFile) ? readImageLock(p) : null;
}

export function writeImageLock(p: Paths, lock: AgentImageLock, why: string): void {
  writeFileAtomic(p.lockFile, formatAgentImageLock(lock, `${why}\nFirst boot starts the agent only from this exact image.`), 0o644);
}
