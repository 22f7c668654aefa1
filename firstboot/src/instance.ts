// Which instance this is, and the one lock all configuration runs share. A configuration belongs
// to one instance: an image made from a configured instance must not reuse its token.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { UsageError, type Env } from './env.ts';
import { SourceError } from './sources.ts';
import { readState, type Paths, type State } from './state.ts';
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

const pidOf = (dir: string): number => {
  try {
    return Number(readFileSync(join(dir, 'pid'), 'utf8')) || 0;
  } catch {
    return 0;
  }
};

const alive = (pid: number): boolean => {
  if (pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/**
 * One exclusive lock for the console, SSH login, SSM and boot, so only one run applies at a
 * time. The lock is a directory that holds its owner's pid from the moment it exists: it is built
 * under a private name and renamed into place (atomic), so no run ever sees a lock without a pid.
 * A lock whose owner is dead is moved aside (atomically, once) and taken.
 */
export function withLock<T>(p: Paths, fn: () => Promise<T>): Promise<T> {
  const lock = join(p.root, 'run/syntropy/firstboot.lock');
  mkdirSync(dirname(lock), { recursive: true });
  // Private lock directories of runs that died before renaming theirs into place.
  for (const n of readdirSync(dirname(lock))) {
    const m = /^firstboot\.lock\.(\d+)$/.exec(n);
    if (m && !alive(Number(m[1]))) rmSync(join(dirname(lock), n), { recursive: true, force: true });
  }
  const mine = `${lock}.${process.pid}`;
  rmSync(mine, { recursive: true, force: true });
  mkdirSync(mine);
  // /run is memory: the pid needs no fsync, only to be inside before the rename.
  writeFileSync(join(mine, 'pid'), String(process.pid), { mode: 0o644 });
  for (let attempt = 0; ; attempt++) {
    try {
      renameSync(mine, lock);
      break;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'ENOTDIR') throw e;
      const owner = pidOf(lock);
      if (alive(owner) || attempt >= 3) {
        rmSync(mine, { recursive: true, force: true });
        throw new UsageError(`another syntropy-firstboot (pid ${owner}) is configuring the agent right now`);
      }
      // Stale: move it aside under a unique name; only one run can win that rename.
      const aside = `${lock}.stale.${process.pid}.${attempt}`;
      try {
        renameSync(lock, aside);
        rmSync(aside, { recursive: true, force: true });
      } catch {
        /* another run moved it first; try again */
      }
    }
  }
  return fn().finally(() => rmSync(lock, { recursive: true, force: true }));
}
