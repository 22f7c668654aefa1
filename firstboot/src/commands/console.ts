// `console`: the dialogue on tty1/ttyS0 while the agent is unconfigured. It closes by itself
// when the agent is configured from elsewhere (SSH login, SSM, user data) meanwhile.
import { existsSync, mkdirSync, watch } from 'node:fs';
import { dirname } from 'node:path';
import type { Env } from '../env.ts';
import { configuredFor, instanceId } from '../instance.ts';
import { configure } from './configure.ts';

/** The console dialogue; gives up quietly if another path configures the agent meanwhile. */
export async function consoleDialogue(env: Env): Promise<number> {
  const id = await instanceId(env);
  if (configuredFor(env.p, id) || !existsSync(env.p.needsDialogue)) return 0;
  const ctl = new AbortController();
  const stateDir = dirname(env.p.stateFile);
  mkdirSync(stateDir, { recursive: true });
  const watcher = watch(stateDir, () => {
    if (configuredFor(env.p, id)) ctl.abort(new Error('configured elsewhere'));
  });
  try {
    return await configure({ ...env, prompt: { ...env.prompt, signal: ctl.signal } }, { nonInteractive: false, reconfigure: false, tokenStdin: false });
  } catch (e) {
    if (ctl.signal.aborted && configuredFor(env.p, id)) {
      env.con.say('\nThe agent was configured from another console, SSH or SSM; closing this dialogue.');
      return 0;
    }
    throw e;
  } finally {
    watcher.close();
  }
}
