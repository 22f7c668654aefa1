// First boot asks Docker through the Engine API on its unix socket. A server on a socket in a
// temporary directory answers as the Engine API reference documents: 200 with the object, 404
// when it does not exist, other codes with {"message": ...}.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createServer as createNetServer } from 'node:net';
import { spawnSync } from 'node:child_process';
import { REPO } from '../../scripts/lib/paths.ts';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { containerPid, containerRunning, DockerApiError, dockerGet, inspectImage, inspectImageId } from '../../firstboot/src/docker-api.ts';

const ID = `sha256:${'c'.repeat(64)}`;
let dir: string;
let socketPath: string;
let server: Server;
const seen: string[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'docker-api-'));
  socketPath = join(dir, 'docker.sock');
  server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    const reply = (code: number, body: unknown) => {
      res.writeHead(code, { 'Content-Type': 'application/json' });
      res.end(typeof body === 'string' ? body : JSON.stringify(body));
    };
    if (req.url === '/images/syntropynet/agent:1.0.0/json' || req.url === `/images/${ID}/json`) return reply(200, { Id: ID, Config: { Entrypoint: ['/agent'] } });
    if (req.url === '/images/with-cmd:1/json') return reply(200, { Id: ID, Config: { Entrypoint: ['/bin/tini', '--'], Cmd: ['/agent', '-v'] } });
    if (req.url === '/images/cmd-only:1/json') return reply(200, { Id: ID, Config: { Entrypoint: null, Cmd: ['/agent'] } });
    if (req.url === '/images/odd-config:1/json') return reply(200, { Id: ID, Config: { Entrypoint: '/agent' } });
    if (req.url === '/images/broken:1/json') return reply(200, '{"Id": ');
    if (req.url === '/images/daemon-error:1/json') return reply(500, { message: 'write /var/lib/docker: no space left on device' });
    // States as moby's container/state.go sets them: SetRunning (Pid the process), SetStopped
    // (Running false, Pid 0), SetRestarting (Running and Restarting true, Pid 0), paused (Running
    // and Paused true); Status is StateString() of those.
    if (req.url === '/containers/syntropy-agent/json') return reply(200, { Id: 'x', State: { Running: true, Status: 'running', Pid: 4242 } });
    if (req.url === '/containers/stopped/json') return reply(200, { Id: 'y', State: { Running: false, Status: 'exited', Pid: 0 } });
    if (req.url === '/containers/restarting/json') return reply(200, { Id: 'r', State: { Running: true, Restarting: true, Status: 'restarting', Pid: 0 } });
    if (req.url === '/containers/paused/json') return reply(200, { Id: 'p', State: { Running: true, Paused: true, Status: 'paused', Pid: 4243 } });
    if (req.url === '/containers/odd-pid/json') return reply(200, { Id: 'z', State: { Running: true, Status: 'running', Pid: '4242' } });
    if (req.url === '/containers/silent/json') return; // never answers
    return reply(404, { message: 'No such object' });
  });
  await new Promise<void>((r) => server.listen(socketPath, r));
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  rmSync(dir, { recursive: true, force: true });
});

describe('Docker Engine API client', () => {
  it('returns the image ID of a reference, unescaped in the path as the docker CLI sends it', async () => {
    expect(await inspectImageId('syntropynet/agent:1.0.0', { socketPath })).toBe(ID);
    expect(await inspectImageId(ID, { socketPath })).toBe(ID);
    expect(seen).toContain('GET /images/syntropynet/agent:1.0.0/json');
  });

  it('returns what a container of the image runs: Entrypoint then Cmd, either of them unset', async () => {
    expect(await inspectImage('syntropynet/agent:1.0.0', { socketPath })).toEqual({ id: ID, exec: ['/agent'] });
    expect(await inspectImage('with-cmd:1', { socketPath })).toEqual({ id: ID, exec: ['/bin/tini', '--', '/agent', '-v'] });
    expect(await inspectImage('cmd-only:1', { socketPath })).toEqual({ id: ID, exec: ['/agent'] });
    await expect(inspectImage('odd-config:1', { socketPath })).rejects.toThrow(/Config.Entrypoint that is not a list of strings/);
    expect(await inspectImage('syntropynet/agent:9.9.9', { socketPath })).toBeNull();
  });

  it('returns null for an image Docker does not hold (404)', async () => {
    expect(await inspectImageId('syntropynet/agent:9.9.9', { socketPath })).toBeNull();
  });

  it('names the daemon error and refuses an unusable answer', async () => {
    await expect(inspectImageId('daemon-error:1', { socketPath })).rejects.toThrow(/answered 500: write \/var\/lib\/docker: no space left on device/);
    await expect(inspectImageId('broken:1', { socketPath })).rejects.toThrow(/not JSON/);
  });

  it('refuses a name that would change the request path', async () => {
    await expect(inspectImageId('../../containers/x', { socketPath })).rejects.toBeInstanceOf(DockerApiError);
    await expect(inspectImageId('agent/../../containers/x', { socketPath })).rejects.toBeInstanceOf(DockerApiError);
    await expect(inspectImageId('a b', { socketPath })).rejects.toThrow(/not a Docker image or container name/);
  });

  it('reads whether a container runs; a missing container is not running', async () => {
    expect(await containerRunning('syntropy-agent', { socketPath })).toBe(true);
    expect(await containerRunning('stopped', { socketPath })).toBe(false);
    expect(await containerRunning('absent', { socketPath })).toBe(false);
    // Running is true for these too; Status says what they are.
    expect(await containerRunning('restarting', { socketPath })).toBe(false);
    expect(await containerRunning('paused', { socketPath })).toBe(false);
  });

  it("reads a running container's host PID; none for a stopped, missing or oddly answered one", async () => {
    expect(await containerPid('syntropy-agent', { socketPath })).toBe(4242);
    expect(await containerPid('stopped', { socketPath })).toBeNull();
    expect(await containerPid('absent', { socketPath })).toBeNull();
    expect(await containerPid('odd-pid', { socketPath })).toBeNull();
    expect(await containerPid('restarting', { socketPath })).toBeNull();
    expect(await containerPid('paused', { socketPath })).toBeNull();
  });

  it('lets a question asked ahead (background) not keep the process alive; a foreground one waits for its answer', async () => {
    // The dialogue verifies the image while the user answers; a cancelled dialogue must end at
    // once even when dockerd holds the connection, while the apply's own questions are awaited.
    const silent = createNetServer(() => undefined);
    const silentPath = join(dir, 'silent-bg.sock');
    await new Promise<void>((r) => silent.listen(silentPath, r));
    try {
      const outcome = (background: boolean) => {
        const code = `import { dockerGet } from ${JSON.stringify(join(REPO, 'firstboot/src/docker-api.ts'))};\ndockerGet('/images/x/json', { socketPath: ${JSON.stringify(silentPath)}, timeoutMs: 1500, background: ${background} }).then(() => console.log('answered'), (e) => console.log(e.message));`;
        return spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: REPO, encoding: 'utf8', timeout: 20_000 });
      };
      const bg = outcome(true);
      expect(bg.status, bg.stderr).toBe(0);
      expect(bg.stdout).toBe('');
      const fg = outcome(false);
      expect(fg.status, fg.stderr).toBe(0);
      expect(fg.stdout).toMatch(/no answer within 1\.5 s/);
    } finally {
      silent.close();
    }
  });

  it('names a missing socket and a daemon that does not answer', async () => {
    await expect(dockerGet('/_ping', { socketPath: join(dir, 'none.sock') })).rejects.toThrow(/none\.sock failed: connect ENOENT/);
    await expect(containerRunning('silent', { socketPath, timeoutMs: 200 })).rejects.toThrow(/no answer within 0.2 s/);
  });
});
