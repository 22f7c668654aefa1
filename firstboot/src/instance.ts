// Which instance this is, and the one lock all configuration runs share. A configuration belongs
// to one instance: an image made from a configured instance must not reuse its token.
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { UsageError, type Env } from './env.ts';
import { SourceError } from './sources.ts';
import { readState, writeFileAtomic, type Paths, type State } from './state.ts';
import { checkAgentName } from './validate.ts';

/** EC2 (Nitro and Xen) identifies itself in DMI; the local images copy that through SMBIOS. */
export function onEc2(p: Paths): boolean {
  for (const f of ['sys/class/dmi/id/sys_vendor', 'sys/hypervisor/uuid']) {
    try {
      const v = readFileSync(join(p.root, f), 'utf8').trim();
      if (v === 'Amazon EC2' || /^ec2/i.test(v)) return true;
    } catch {
      /* not there */
    }
  }
  return false;
}

/**
 * The instance this configuration belongs to: the EC2 instance ID, or the machine ID where there
 * is no EC2. A slow or missing metadata answer is no proof of a new instance: it never wipes a
 * saved configuration, and on EC2 it never stands in a machine ID for the instance ID.
 */
export async function instanceId(env: Env): Promise<string> {
  if (env.imds) {
    try {
      return (await env.imds.identity()).instanceId;
    } catch (e) {
      const saved = readState(env.p);
      if (saved?.instanceId.startsWith('i-')) {
        env.con.warn(`Instance metadata did not answer (${(e as Error).message}); keeping the configuration of ${saved.instanceId}.`);
        return saved.instanceId;
      }
      if (onEc2(env.p)) {
        throw new SourceError(`cannot tell which EC2 instance this is: ${(e as Error).message}; nothing was changed, try again`);
      }
    }
  }
  const mid = existsSync(env.p.machineId) ? readFileSync(env.p.machineId, 'utf8').trim() : '';
  return /^[0-9a-f]{32}$/.test(mid) ? `local-${mid}` : 'local-unknown';
}

export async function region(env: Env): Promise<string> {
  if (env.region) return env.region;
  if (!env.imds) return '';
  try {
    return (await env.imds.identity()).region;
  } catch {
    return '';
  }
}

/** A Name tag made into a valid agent name, or null when nothing usable is left. */
export function agentNameFromTag(tag: string): string | null {
  const name = tag
    .trim()
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '')
    .slice(0, 63)
    .replace(/[-._]+$/, '');
  return name && checkAgentName(name) === true ? name : null;
}

/**
 * The agent's default name: the instance's Name tag (when the instance exposes its tags in
 * metadata), else its instance ID. The agent's own default, the hostname (ip-10-0-1-23), repeats
 * across VPCs and makes endpoints hard to tell apart in the web UI. Off EC2: the hostname.
 */
export async function defaultAgentName(env: Env, id: string): Promise<string> {
  if (!id.startsWith('i-')) return env.sys.hostname();
  if (env.imds) {
    try {
      const tag = await env.imds.get('/latest/meta-data/tags/instance/Name');
      const name = tag === null ? null : agentNameFromTag(tag);
      if (name) return name;
    } catch {
      /* tags not in metadata, or no answer: the instance ID */
    }
  }
  return id;
}

/** The saved configuration, when it is this instance's. */
export function configuredFor(p: Paths, id: string): State | null {
  const s = readState(p);
  return s && s.status === 'configured' && s.instanceId === id ? s : null;
}

/** A simple exclusive lock so the console, SSH login and SSM cannot apply at the same time. */
export function withLock<T>(p: Paths, fn: () => Promise<T>): Promise<T> {
  const dir = join(p.root, 'run/syntropy/firstboot.lock');
  mkdirSync(dirname(dir), { recursive: true });
  try {
    mkdirSync(dir);
  } catch {
    const pidFile = join(dir, 'pid');
    const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8')) : 0;
    let alive = false;
    try {
      if (pid > 0) process.kill(pid, 0);
      alive = pid > 0;
    } catch {
      alive = false;
    }
    if (alive) throw new UsageError(`another syntropy-firstboot (pid ${pid}) is configuring the agent right now`);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir);
  }
  writeFileAtomic(join(dir, 'pid'), String(process.pid), 0o644);
  return fn().finally(() => rmSync(dir, { recursive: true, force: true }));
}
