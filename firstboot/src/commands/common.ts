// What the configuring commands share: settings from flags or user data checked by the one set
// of rules, the token from Parameter Store, and the apply with its success message.
import { rmSync } from 'node:fs';
import { applyConfiguration, type ApplyDeps, type Preverified } from '../apply.ts';
import { UsageError, type Env } from '../env.ts';
import { readImageLockIfAny } from '../image-lock.ts';
import type { ImageSettings } from '../image-settings.ts';
import { region } from '../instance.ts';
import { defaultSsmClient, readTokenParameter, type RawSettings } from '../sources.ts';
import type { AgentSettings, State } from '../state.ts';
import { AGENT_CONTAINER } from '../system.ts';
import { checkAgentName, formatRange, parsePortRange, type PortRules } from '../validate.ts';

export function deps(env: Env): ApplyDeps {
  return { p: env.p, sys: env.sys, con: env.con, confirmTimeoutMs: env.confirmTimeoutMs };
}

export function printSuccess(env: Env, s: State): void {
  const lock = readImageLockIfAny(env.p) ?? { ref: '(no lock file)', id: '' };
  const where = s.boundPort ? `WireGuard on udp/${s.boundPort}` : 'WireGuard port: confirmed at start on a live system';
  env.con.say(
    [
      '',
      `Syntropy agent configured (${s.source}).`,
      `  runs      container ${AGENT_CONTAINER} from ${lock.ref} (${lock.id.slice(0, 19)}…), no registry pull`,
      `  network   ${where}, range ${s.settings.portRange} open in the firewall`,
      `  name      ${s.settings.agentName}`,
      '  check     sudo syntropy-firstboot status   |   docker logs syntropy-agent',
      '',
    ].join('\n'),
  );
}

export const FLAG_LABELS = { range: '--port-range', name: '--agent-name' };
export const USER_DATA_LABELS = { range: 'user data syntropy.port_range', name: 'user data syntropy.agent_name' };

export function settingsFrom(raw: RawSettings, image: ImageSettings, rules: PortRules, defaultName: string, label: typeof FLAG_LABELS): AgentSettings {
  const range = parsePortRange(raw.portRange ?? image.defaultPortRange, rules);
  if (typeof range === 'string') throw new UsageError(`${label.range}: ${range}`);
  const agentName = raw.agentName ?? defaultName;
  const nameOk = checkAgentName(agentName);
  if (nameOk !== true) throw new UsageError(`${label.name}: ${nameOk}`);
  return { portRange: formatRange(range), agentName, tags: raw.tags ?? [], networkApi: image.networkApi };
}

export async function tokenFromSsm(env: Env, name: string): Promise<string> {
  const r = await region(env);
  return await readTokenParameter(name, r, (reg) => defaultSsmClient(reg, env.ssmEndpoint));
}

export async function applyAndReport(env: Env, id: string, token: string, settings: AgentSettings, source: State['source'], preverified?: Preverified): Promise<State> {
  const state = await applyConfiguration({ token, settings, source, instanceId: id, preverified }, deps(env));
  rmSync(env.p.needsDialogue, { force: true });
  printSuccess(env, state);
  return state;
}
