// `record-image --image REF --digest D --source archive|registry` (bake time only, run by
// packer/provisioners/preload-agent.sh): writes the lock file for the image Docker now holds, so
// the lock's one writer format is the contract's (contracts/agent-image-lock.ts).
import { UsageError, type Env } from '../env.ts';
import { writeImageLock } from '../image-lock.ts';

export async function recordImage(env: Env, image: string | undefined, digest: string | undefined, source: string | undefined): Promise<number> {
  if (!image || !digest || (source !== 'archive' && source !== 'registry')) {
    throw new UsageError('record-image needs --image REF --digest sha256:<hex> --source archive|registry');
  }
  // One question to Docker: the ID the lock pins and the entrypoint run-agent execs.
  const img = await env.sys.image(image);
  if (!img) throw new UsageError(`Docker does not hold ${image}; load or pull it first`);
  if (img.exec.length === 0) throw new UsageError(`${image} has no entrypoint or command: the agent cannot be started from it`);
  writeImageLock(env.p, { ref: image, digest, id: img.id, source, exec: img.exec }, 'Written at bake time (syntropy-firstboot record-image).');
  env.con.say(`recorded ${image} (${img.id}) from ${source} in ${env.p.lockFile}`);
  return 0;
}
