// `update-agent --image REF [--archive FILE]`: replace the agent image (pulled by digest or
// loaded from an archive), rewrite the lock file, restart the agent, and restore the previous
// image if the new one does not come up.
import { existsSync, readFileSync } from 'node:fs';
import { ApplyError, confirmRunning, toRange } from '../apply.ts';
import { UsageError, type Env } from '../env.ts';
import { configuredFor, instanceId, withLock } from '../instance.ts';
import { writeFileAtomic } from '../state.ts';
import { writeImageLock } from '../image-lock.ts';
import { deps } from './common.ts';

export async function updateAgent(env: Env, image: string | undefined, archive: string | undefined): Promise<number> {
  if (!image) throw new UsageError('update-agent needs --image REF (name@sha256:<digest> to pull, or the tag inside --archive FILE)');
  if (!archive && !/@sha256:[a-f0-9]{64}$/.test(image)) throw new UsageError('--image must be pinned by digest (name@sha256:<64 hex>) when pulling');
  const id = await instanceId(env);
  const state = configuredFor(env.p, id);
  if (!existsSync(env.p.lockFile)) throw new UsageError(`no agent image lock file at ${env.p.lockFile}`);
  const oldLock = readFileSync(env.p.lockFile, 'utf8');
  if (!env.sys.live) {
    // Plan mode: say what would happen; the lock file is only rewritten for an image Docker holds.
    if (archive) await env.sys.loadImageArchive(archive);
    else await env.sys.pullImage(image);
    await env.sys.imageId(image);
    if (state) await env.sys.startAgent();
    return 0;
  }
  return await withLock(env.p, async () => {
    if (archive) await env.sys.loadImageArchive(archive);
    else await env.sys.pullImage(image);
    const img = await env.sys.image(image);
    if (!img) throw new ApplyError(`Docker does not have ${image} after ${archive ? 'loading the archive' : 'the pull'}`);
    if (img.exec.length === 0) throw new ApplyError(`${image} has no entrypoint or command: the agent cannot be started from it`);
    const newId = img.id;
    const digest = archive ? newId : image.split('@')[1]!;
    writeImageLock(env.p, { ref: image, digest, id: newId, source: archive ? 'archive' : 'registry', exec: img.exec }, `Updated by syntropy-firstboot update-agent at ${new Date().toISOString()}.`);
    if (!state) {
      env.con.say(`Agent image updated to ${image}; it will be used once the agent is configured.`);
      return 0;
    }
    try {
      await env.sys.startAgent();
      try {
        await confirmRunning(toRange(state.settings.portRange), deps(env));
      } catch (e) {
        env.con.warn((e as Error).message);
        throw new ApplyError('the updated agent did not come up');
      }
      env.con.say(`Agent updated to ${image} and running.`);
      return 0;
    } catch (e) {
      writeFileAtomic(env.p.lockFile, oldLock, 0o644);
      await env.sys.startAgent().catch(() => undefined);
      throw new ApplyError(`${(e as Error).message}; restored the previous image`);
    }
  });
}
