// run-agent starts the container with the agent's documented settings, from the pinned image,
// without the token in docker's arguments or stored config; the in-container loader exports the
// env file's values literally. `docker` is a recording stand-in on PATH.
import { describe, expect, it } from 'vitest';
import { chmodSync, existsSync, lstatSync, mkdtempSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { REPO } from '../../scripts/lib/paths.ts';
import { formatAgentImageLock } from '../../contracts/agent-image-lock.ts';

const ID = `sha256:${'a'.repeat(64)}`;
// Shell metacharacters a token may legally contain (printable ASCII, no spaces).
const TOKEN = 'tok$(id)`uname`;"quoted"\'x\'$HOME-0123456789';

const EXEC = ['/usr/local/bin/syntropy-agent-test-double'];

function setup(
  envText: string,
  mode = 0o600,
  loaded = true,
  opts: { lockDir?: boolean; agentLockLink?: boolean; existing?: boolean; runFails?: boolean; exec?: string[] | null; lockText?: string } = {},
) {
  const dir = mkdtempSync(join(tmpdir(), 'run-agent-'));
  const lock = join(dir, 'agent-image.lock');
  // The lock file as its one writer produces it (record-image / update-agent); exec null: a lock
  // written before AGENT_IMAGE_EXEC existed.
  const exec = opts.exec === undefined ? EXEC : opts.exec;
  writeFileSync(lock, opts.lockText ?? formatAgentImageLock({ ref: 'syntropy-agent-test-double:local', digest: ID, id: ID, source: 'archive', ...(exec ? { exec } : {}) }, 'test'));
  const agentLock = join(dir, 'lock', 'syntropy');
  const xtablesLock = join(dir, 'xtables.lock');
  spawnSync('mkdir', ['-p', opts.lockDir ? agentLock : join(dir, 'lock')]);
  // A dangling symlink where the agent lock belongs (/var/lock is the world-writable /run/lock).
  if (opts.agentLockLink) symlinkSync(`${agentLock}.target`, agentLock);
  const env = join(dir, 'agent.env');
  writeFileSync(env, envText, { mode });
  chmodSync(env, mode);
  const bin = join(dir, 'bin');
  spawnSync('mkdir', [bin]);
  // A container left by an earlier start holds the name until it is removed (docker run: 125, Conflict).
  if (opts.existing) writeFileSync(join(dir, 'existing'), '');
  writeFileSync(
    join(bin, 'docker'),
    `#!/bin/bash
printf '%s\\0' "$@" > "${dir}/argv.$1"
echo "$1 $2" >> "${dir}/calls"
case "$1 $2" in
  "image inspect")
    ${loaded ? '' : `echo "Error: No such image: $5" >&2; exit 1`}
    if [[ "$4" == '{{.Id}}' ]]; then echo "${ID}"; exit 0; fi
    [[ "$4" == '{{.Id}}{{println}}{{range .Config.Entrypoint}}'*'{{range .Config.Cmd}}'* ]] || exit 64
    printf '%s\\n\\n/usr/local/bin/syntropy-agent-test-double\\n\\n' "${ID}" ;;
  "rm --force") rm -f "${dir}/existing"; exit 0 ;;
  run\\ *)
    ${loaded ? '' : `echo "docker: Error response from daemon: No such image: ${ID}." >&2; exit 125`}
    ${opts.runFails ? `echo 'docker: Error response from daemon: no space left on device.' >&2; exit 125` : ''}
    [[ -f "${dir}/existing" ]] && { echo 'docker: Error response from daemon: Conflict. The container name "/syntropy-agent" is already in use.' >&2; exit 125; }
    # Run the loader the container would run, against the env file, with env(1) as the agent.
    args=("$@"); for ((i=0; i<\${#args[@]}; i++)); do [[ "\${args[i]}" == -c ]] && loader="\${args[i+1]}"; done
    loader="\${loader//\\/run\\/syntropy\\/agent.env/${env}}"
    env -i sh -c "$loader" syntropy-agent /usr/bin/env > "${dir}/container-env" ;;
esac
`,
  );
  chmodSync(join(bin, 'docker'), 0o755);
  const r = spawnSync('bash', [join(REPO, 'firstboot/bin/run-agent')], {
    env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, SYNTROPY_LOCK_FILE: lock, SYNTROPY_ENV_FILE: env, SYNTROPY_AGENT_LOCK: agentLock, SYNTROPY_XTABLES_LOCK: xtablesLock },
    encoding: 'utf8',
  });
  const argv = (verb: string) => {
    try {
      return readFileSync(join(dir, `argv.${verb}`), 'utf8').split('\0').slice(0, -1);
    } catch {
      return [];
    }
  };
  const containerEnv = () => readFileSync(join(dir, 'container-env'), 'utf8');
  const calls = () => readFileSync(join(dir, 'calls'), 'utf8').trim().split('\n');
  return { r, argv, containerEnv, env, agentLock, xtablesLock, calls };
}

describe('run-agent', () => {
  it('runs the pinned image with the documented settings and no token in docker arguments', () => {
    const { r, argv, containerEnv, env, agentLock, xtablesLock } = setup(`SYNTROPY_AGENT_TOKEN=${TOKEN}\nSYNTROPY_PORT_RANGE=51820-51830\n`);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const run = argv('run');
    expect(run.join(' ')).not.toContain('tok$(id)');
    expect(run).not.toContain('--env-file');
    for (const [flag, value] of [
      ['--network', 'host'],
      ['--restart', 'on-failure:10'],
      ['--device', '/dev/net/tun:/dev/net/tun'],
      ['--pull', 'never'],
      ['--entrypoint', '/bin/sh'],
      ['--volume', `${env}:/run/syntropy/agent.env:ro`],
      ['--volume', `${agentLock}:/var/lock/syntropy`],
      ['--volume', `${xtablesLock}:/run/xtables.lock`],
    ] as const) {
      const i = run.findIndex((a, k) => a === flag && run[k + 1] === value);
      expect(i, `${flag} ${value}`).toBeGreaterThan(-1);
    }
    expect(run.filter((a) => a === 'NET_ADMIN' || a === 'SYS_MODULE')).toHaveLength(2);
    // The image by ID, then the loader, then the image's own entrypoint.
    const at = run.indexOf(ID);
    expect(run.slice(at + 1, at + 2)).toEqual(['-c']);
    expect(run.slice(at + 3)).toEqual(['syntropy-agent', '/usr/local/bin/syntropy-agent-test-double']);
    expect(run).not.toContain('/var/run/docker.sock:/var/run/docker.sock:ro');
    // Inside, the values arrive literally: nothing in the token was run or expanded.
    expect(containerEnv()).toContain(`SYNTROPY_AGENT_TOKEN=${TOKEN}\n`);
    expect(containerEnv()).toContain('SYNTROPY_PORT_RANGE=51820-51830\n');
  });

  it('starts with one docker run when no container exists, and replaces one an earlier start left', () => {
    const first = setup(`SYNTROPY_AGENT_TOKEN=${TOKEN}\n`);
    expect(first.r.status, first.r.stderr).toBe(0);
    // The entrypoint comes from the lock file: Docker is asked nothing before the run.
    expect(first.calls()).toEqual(['run --detach']);
    const again = setup(`SYNTROPY_AGENT_TOKEN=${TOKEN}\n`, 0o600, true, { existing: true });
    expect(again.r.status, again.r.stderr).toBe(0);
    expect(again.calls()).toEqual(['run --detach', 'rm --force', 'run --detach']);
    expect(again.containerEnv()).toContain(`SYNTROPY_AGENT_TOKEN=${TOKEN}\n`);
  });

  it("fails with Docker's own message when the run fails for another reason", () => {
    const { r, calls } = setup(`SYNTROPY_AGENT_TOKEN=${TOKEN}\n`, 0o600, true, { runFails: true });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('no space left on device');
    expect(r.stderr).not.toMatch(/not loaded/);
    // The image is asked about only after the run failed twice, to name the cause.
    expect(calls()).toEqual(['run --detach', 'rm --force', 'run --detach', 'image inspect']);
  });

  it('runs exactly the recorded arguments, whatever characters they hold', () => {
    const exec = ['/opt/agent bin/run', '--name=a "b" \'c\'', '', 'line\nbreak', '$(id)'];
    const { r, argv } = setup(`SYNTROPY_AGENT_TOKEN=${TOKEN}\n`, 0o600, true, { exec });
    expect(r.status, r.stderr).toBe(0);
    const run = argv('run');
    expect(run.slice(run.indexOf(ID) + 3)).toEqual(['syntropy-agent', ...exec]);
  });

  it('asks Docker for the entrypoint when the lock predates AGENT_IMAGE_EXEC', () => {
    const old = setup(`SYNTROPY_AGENT_TOKEN=${TOKEN}\n`, 0o600, true, { exec: null });
    expect(old.r.status, old.r.stderr).toBe(0);
    expect(old.calls()).toEqual(['image inspect', 'run --detach']);
    const run = old.argv('run');
    expect(run.slice(run.indexOf(ID) + 3)).toEqual(['syntropy-agent', ...EXEC]);
    const missing = setup(`SYNTROPY_AGENT_TOKEN=${TOKEN}\n`, 0o600, false, { exec: null });
    expect(missing.r.status).toBe(1);
    expect(missing.r.stderr).toMatch(/is not loaded; refusing to pull/);
    expect(missing.calls()).toEqual(['image inspect']);
  });

  it('refuses a lock whose AGENT_IMAGE_EXEC is not base64, before Docker is asked anything', () => {
    // Outside the alphabet, padding inside, a partial quad.
    for (const bad of ['not*base64', 'L3Vz=i9h', 'L3Vzci9']) {
      const lockText = `AGENT_IMAGE_REF=syntropy-agent-test-double:local\nAGENT_IMAGE_DIGEST=${ID}\nAGENT_IMAGE_ID=${ID}\nAGENT_IMAGE_SOURCE=archive\nAGENT_IMAGE_EXEC=${bad}\n`;
      const { r, argv } = setup(`SYNTROPY_AGENT_TOKEN=${TOKEN}\n`, 0o600, true, { lockText });
      expect(r.status, bad).toBe(1);
      expect(r.stderr).toMatch(/AGENT_IMAGE_EXEC in .* is not base64/);
      expect(argv('run')).toEqual([]);
    }
  });

  it('mounts the agent lock as a FILE (the agent os.Create()s it), replacing an empty directory earlier images made', () => {
    for (const lockDir of [false, true]) {
      const { r, agentLock, xtablesLock } = setup(`SYNTROPY_AGENT_TOKEN=${TOKEN}\n`, 0o600, true, { lockDir });
      expect(r.status, r.stderr).toBe(0);
      expect(statSync(agentLock).isFile()).toBe(true);
      expect(statSync(agentLock).mode & 0o777).toBe(0o600);
      expect(statSync(xtablesLock).isFile()).toBe(true);
      expect(statSync(xtablesLock).mode & 0o777).toBe(0o600);
    }
  });

  it('replaces a dangling symlink where a lock belongs with a file, creating nothing where it pointed', () => {
    const s = setup(`SYNTROPY_AGENT_TOKEN=${TOKEN}\n`, 0o600, true, { agentLockLink: true });
    expect(s.r.status, s.r.stderr).toBe(0);
    expect(lstatSync(s.agentLock).isFile()).toBe(true);
    expect(statSync(s.agentLock).mode & 0o777).toBe(0o600);
    expect(existsSync(`${s.agentLock}.target`)).toBe(false);
  });

  it('mounts the Docker socket read-only only in container-discovery mode', () => {
    const { argv } = setup(`SYNTROPY_AGENT_TOKEN=${TOKEN}\nSYNTROPY_NETWORK_API=docker\n`);
    expect(argv('run')).toContain('/var/run/docker.sock:/var/run/docker.sock:ro');
    for (const other of ['', 'SYNTROPY_NETWORK_API=none\n', 'SYNTROPY_NETWORK_API=dockerx\n', '#SYNTROPY_NETWORK_API=docker\n']) {
      const o = setup(`SYNTROPY_AGENT_TOKEN=${TOKEN}\n${other}`);
      expect(o.r.status, o.r.stderr).toBe(0);
      expect(o.argv('run').join(' ')).not.toContain('docker.sock');
    }
  });

  it('prints its usage for --help and refuses other arguments, touching nothing', () => {
    for (const [args, status] of [[['--help'], 0], [['-h'], 0], [['--bogus'], 2], [['x', 'y'], 2]] as const) {
      const r = spawnSync('/bin/bash', [join(REPO, 'firstboot/bin/run-agent'), ...args], { env: { ...process.env, PATH: '/nonexistent', SYNTROPY_LOCK_FILE: '/nonexistent/lock' }, encoding: 'utf8' });
      expect(r.status, args.join(' ')).toBe(status);
      expect(status === 0 ? r.stdout : r.stderr).toMatch(/^usage: run-agent/);
    }
  });

  it('refuses a lock that names a key twice or cannot be read, before Docker is asked anything', () => {
    const lockText = `AGENT_IMAGE_REF=syntropy-agent-test-double:local\nAGENT_IMAGE_ID=${ID}\nAGENT_IMAGE_ID=sha256:${'b'.repeat(64)}\n`;
    const twice = setup(`SYNTROPY_AGENT_TOKEN=${TOKEN}\n`, 0o600, true, { lockText });
    expect(twice.r.status).toBe(1);
    expect(twice.r.stderr).toMatch(/names AGENT_IMAGE_ID twice/);
    expect(twice.argv('run')).toEqual([]);
    const dir = mkdtempSync(join(tmpdir(), 'run-agent-nolock-'));
    const r = spawnSync('bash', [join(REPO, 'firstboot/bin/run-agent')], { env: { ...process.env, SYNTROPY_LOCK_FILE: join(dir, 'missing.lock') }, encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/cannot read the lock file .*missing\.lock/);
  });

  it('refuses an env file that is not 0600, and an image that is not loaded (no pull)', () => {
    const loose = setup(`SYNTROPY_AGENT_TOKEN=${TOKEN}\n`, 0o644);
    expect(loose.r.status).toBe(1);
    expect(loose.r.stderr).toMatch(/must exist, owned by root, mode 0600/);
    expect(loose.argv('run')).toEqual([]);
    const missing = setup(`SYNTROPY_AGENT_TOKEN=${TOKEN}\n`, 0o600, false);
    expect(missing.r.status).toBe(1);
    expect(missing.r.stderr).toMatch(/is not loaded; refusing to pull/);
    // Docker was told never to pull, and was never asked to.
    expect(missing.argv('run')).toContain('never');
    expect(missing.calls()).toEqual(['run --detach', 'rm --force', 'run --detach', 'image inspect']);
  });
});
