// `record-image --image REF --digest D --source archive|registry` (bake time only, run by
// packer/provisioners/preload-agent.sh): writes the lock file for the image Docker now holds, so
// the lock's one writer format is the contract's (contracts/agent-image-lock.ts).
import { UsageError, type Env } from '../env.ts';
import { writeImageLock } from '../image-lock.ts';

export async function recordImage(env: Env, image: string | undefined, digest: string | undefined, source: string | undefined): Promise<number> {
  if (!image || !digest || (source !== 'archive' && source !== 'registry')) {
    throw new UsageError('record-image needs --image REF --digest sha256:<hex> --source archive|registry');
  }
  const id = await env.sys.imageId(image);
  if (!id) throw new UsageError(`Docker does not hold ${image}; load or pull it first`);
  const exec = await env.sys.imageExec(id);
  if (!exec || exec.length === 0) throw new UsageError(`${image} has no entrypoint or command: the agent cannot be started from it`);
  writeImageLock(env.p, { ref: image, digest, id, source, exec }, 'Written at bake time (syntropy-firstboot record-image).');
  env.con.say(`recorded ${image} (${id}) from ${source} in ${env.p.lockFile}`);
  return 0;
}
