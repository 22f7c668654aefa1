// Read-only questions to Docker through its Engine API on the daemon's unix socket, instead of a
// `docker` CLI process per question: on a small instance the CLI (a large Go binary) costs seconds
// of CPU to start, and first boot asks while the agent container is starting on the same CPU.
// Contract (Docker Engine API reference, docs.docker.com/reference/api/engine): the daemon listens
// on unix:///var/run/docker.sock; a path without a /v1.xx prefix is served at the daemon's current
// API version; GET /images/{name}/json returns the image with its "Id" (sha256:...), and
// GET /containers/{id}/json the container with "State": {"Status": "running" | "restarting" |
// "paused" | ..., "Pid": int (its process in the host's PID namespace)}; both answer 404 when the
// object does not exist. Under systemd, docker.socket holds a connection until dockerd is up.
// "Running" is not the test: the reference says to use Status, and moby's container/state.go
// keeps Running true for a paused container and for one waiting on its restart policy
// (SetRestarting: Running true, Restarting true, Pid 0).
import { request } from 'node:http';

export const DOCKER_SOCKET = '/var/run/docker.sock';

export class DockerApiError extends Error {
  override name = 'DockerApiError';
}

/** Options of a request; `background` ones do not keep the process alive (a question asked ahead). */
export interface DockerGetOptions {
  socketPath?: string;
  timeoutMs?: number;
  background?: boolean;
}

/** GET `path` on the Docker socket: the parsed JSON body, or null on 404. */
export function dockerGet(path: string, opts: DockerGetOptions = {}): Promise<unknown> {
  const socketPath = opts.socketPath ?? DOCKER_SOCKET;
  const timeoutMs = opts.timeoutMs ?? 120_000;
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, method: 'GET', headers: { Host: 'docker' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        if (res.statusCode === 404) return resolve(null);
        if (res.statusCode !== 200) {
          let message = body.trim();
          try {
            message = String((JSON.parse(body) as { message?: unknown }).message ?? message);
          } catch {
            /* not JSON: keep the text */
          }
          return reject(new DockerApiError(`Docker API GET ${path} answered ${res.statusCode}: ${message.slice(0, 300)}`));
        }
        try {
          resolve(JSON.parse(body));
        } catch {
          reject(new DockerApiError(`Docker API GET ${path} answered with something that is not JSON`));
        }
      });
    });
    if (opts.background) req.on('socket', (sock) => sock.unref());
    req.setTimeout(timeoutMs, () => req.destroy(new DockerApiError(`Docker API GET ${path}: no answer within ${timeoutMs / 1000} s on ${socketPath}`)));
    req.on('error', (e) => reject(e instanceof DockerApiError ? e : new DockerApiError(`Docker API GET ${path} on ${socketPath} failed: ${e.message}`)));
    req.end();
  });
}

/**
 * A reference or name as the docker CLI puts it in the path (name/with/slashes:tag@digest, unescaped);
 * anything else is refused rather than escaped.
 */
function pathName(ref: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$/.test(ref) || ref.split('/').includes('..')) throw new DockerApiError(`not a Docker image or container name: ${JSON.stringify(ref)}`);
  return ref;
}

/** The image ID of a local image reference or ID, or null when Docker does not hold it. */
export async function inspectImageId(ref: string, opts?: DockerGetOptions): Promise<string | null> {
  return (await inspectImage(ref, opts))?.id ?? null;
}

const stringList = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');

/**
 * The image's ID and what a container of it runs: its Config.Entrypoint then Config.Cmd (each a
 * list of strings, or null when unset), as `docker run` without --entrypoint would. Null when
 * Docker does not hold the image.
 */
export async function inspectImage(ref: string, opts?: DockerGetOptions): Promise<{ id: string; exec: string[] } | null> {
  const body = (await dockerGet(`/images/${pathName(ref)}/json`, opts)) as { Id?: unknown; Config?: { Entrypoint?: unknown; Cmd?: unknown } | null } | null;
  if (body === null) return null;
  if (typeof body.Id !== 'string') throw new DockerApiError(`Docker API: image ${ref} has no Id`);
  const exec: string[] = [];
  for (const field of ['Entrypoint', 'Cmd'] as const) {
    const v = body.Config?.[field] ?? null;
    if (v === null) continue;
    if (!stringList(v)) throw new DockerApiError(`Docker API: image ${ref} has a Config.${field} that is not a list of strings`);
    exec.push(...v);
  }
  return { id: body.Id, exec };
}

/** Whether the named container runs (Status "running"), and its host PID then; a missing one does not run. */
async function containerState(name: string, opts?: { socketPath?: string; timeoutMs?: number }): Promise<{ running: boolean; pid: number | null }> {
  const body = (await dockerGet(`/containers/${pathName(name)}/json`, opts)) as { State?: { Status?: unknown; Pid?: unknown } } | null;
  const running = body?.State?.Status === 'running';
  const pid = body?.State?.Pid;
  return { running, pid: running && typeof pid === 'number' && Number.isInteger(pid) && pid > 0 ? pid : null };
}

/** Whether the named container exists and runs (not paused, not waiting to be restarted). */
export async function containerRunning(name: string, opts?: { socketPath?: string; timeoutMs?: number }): Promise<boolean> {
  return (await containerState(name, opts)).running;
}

/** The host PID of the named container's process when it runs; null when it does not run or does not exist. */
export async function containerPid(name: string, opts?: { socketPath?: string; timeoutMs?: number }): Promise<number | null> {
  return (await containerState(name, opts)).pid;
}
