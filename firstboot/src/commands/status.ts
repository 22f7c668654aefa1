// `status [--json]`: what is configured, where from, and whether the agent runs.
import { existsSync, statSync } from 'node:fs';
import type { Env } from '../env.ts';
import { readImageLockIfAny } from '../image-lock.ts';
import { configuredFor, instanceId } from '../instance.ts';
import { readLastError } from '../state.ts';

export async function status(env: Env, json: boolean): Promise<number> {
  const id = await instanceId(env);
  const s = configuredFor(env.p, id);
  const running = s && env.sys.live ? await env.sys.agentRunning() : null;
  const lock = readImageLockIfAny(env.p);
  const out = {
    configured: s !== null,
    instance: id,
    source: s?.source ?? null,
    configured_at: s?.configuredAt ?? null,
    port_range: s?.settings.portRange ?? null,
    agent_name: s?.settings.agentName ?? null,
    tags: s?.settings.tags ?? [],
    bound_port: s?.boundPort ?? null,
    container_running: running,
    agent_image: lock ? { ref: lock.ref, id: lock.id } : null,
    env_file: existsSync(env.p.envFile) ? `${env.p.envFile} (mode ${(statSync(env.p.envFile).mode & 0o777).toString(8)})` : null,
    last_error: readLastError(env.p),
  };
  if (json) {
    env.con.say(JSON.stringify(out, null, 2));
  } else {
    env.con.say(
      [
        `configured      ${out.configured ? `yes (${out.source}, ${out.configured_at})` : 'no'}`,
        `instance        ${out.instance}`,
        `port range      ${out.port_range ?? '-'}${out.bound_port ? ` (bound udp/${out.bound_port})` : ''}`,
        `agent name      ${out.agent_name ?? '-'}`,
        `tags            ${out.tags.length > 0 ? out.tags.join(', ') : '-'}`,
        `container       ${running === null ? '-' : running ? 'running' : 'NOT running'}`,
        `agent image     ${lock ? `${lock.ref} (${lock.id})` : 'no lock file'}`,
        `last error      ${out.last_error ?? '-'}`,
      ].join('\n'),
    );
  }
  return 0;
}
