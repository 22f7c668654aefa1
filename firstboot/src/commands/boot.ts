// `recover` and `boot`: run by systemd at boot. recover undoes an apply a power cut interrupted;
// boot then applies user data if it has a syntropy section, or leaves the dialogue to ask.
import { rmSync } from 'node:fs';
import { recoverInterrupted } from '../apply.ts';
import type { Env } from '../env.ts';
import { portRules, readImageSettings } from '../image-settings.ts';
import { defaultAgentName, instanceId, withLock } from '../instance.ts';
import { readState, recordError, writeFileAtomic } from '../state.ts';
import { applyAndReport, deps, settingsFrom, tokenFromSsm, USER_DATA_LABELS } from './common.ts';

/**
 * Undoes an apply cut off by a power loss. Runs in its own unit, ordered before the agent unit:
 * `boot` cannot be that unit, because applying user data starts the agent unit, whose start
 * job would wait for `boot` to finish (a deadlock until the start timeout).
 */
export async function recover(env: Env): Promise<number> {
  await withLock(env.p, () => recoverInterrupted(deps(env)));
  return 0;
}

export async function boot(env: Env): Promise<number> {
  // The recover unit ran first; this covers a boot where it could not (e.g. it failed).
  await recover(env);
  let id: string;
  try {
    id = await instanceId(env);
  } catch (e) {
    env.con.warn(`${(e as Error).message}. The setup dialogue will ask again at login.`);
    writeFileAtomic(env.p.needsDialogue, 'unknown\n', 0o644);
    return 0;
  }
  const state = readState(env.p);
  if (state && state.instanceId === id && state.status === 'configured') {
    env.con.say(`Syntropy agent configured (${state.source}); ports ${state.settings.portRange}.`);
    return 0;
  }
  if (state && state.instanceId !== id) {
    // A new instance from an image made of a configured one: its token is not ours to use.
    env.con.warn('Configuration belongs to another instance; removing it so this instance is configured afresh.');
    await env.sys.stopAgent().catch(() => undefined);
    rmSync(env.p.envFile, { force: true });
    rmSync(env.p.stateFile, { force: true });
  }
  if (env.imds) {
    try {
      const text = await env.imds.userData();
      // The YAML library loads only for an instance that has user data.
      const ud = text === null || text.trim() === '' ? null : (await import('../user-data.ts')).parseUserData(text);
      if (ud) {
        for (const w of ud.warnings) env.con.warn(`Warning: ${w}`);
        const image = readImageSettings(env.p);
        const settings = settingsFrom(ud.settings, image, portRules(env, image, null), await defaultAgentName(env, id), USER_DATA_LABELS);
        const token = ud.settings.tokenSsmParameter ? await tokenFromSsm(env, ud.settings.tokenSsmParameter) : ud.settings.token!;
        await withLock(env.p, () => applyAndReport(env, id, token, settings, 'user-data'));
        return 0;
      }
    } catch (e) {
      // Kept for `status` (last error), as the README promises.
      recordError(env.p, `user data: ${(e as Error).message}`);
      env.con.warn(`Configuration from user data failed: ${(e as Error).message}`);
      env.con.warn('Falling back to the interactive setup.');
    }
  }
  writeFileAtomic(env.p.needsDialogue, `${id}\n`, 0o644);
  env.con.say(NOT_CONFIGURED_NOTICE);
  return 0;
}

/** Printed at boot when the dialogue will ask; firstboot/bin/boot prints the same on its fast path. */
export const NOT_CONFIGURED_NOTICE = [
  '',
  '*** The Syntropy agent is not configured yet. ***',
  'Log in over SSH as admin to answer the setup questions, or configure it without a login',
  'through EC2 user data or the SyntropyConfigureAgent SSM document (see the product README).',
  '',
].join('\n');
