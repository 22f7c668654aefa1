// The benchmark's bare container start (scripts/lib/guest/bare-start.sh) is the denominator of
// "answers -> agent running / bare start": it must run the same `docker run` as
// firstboot/bin/run-agent and stop at the same point the apply confirms (a UDP port bound in the
// range), or the ratio compares different things. `docker` is a recording stand-in on PATH; the
// socket tables are files the stand-in writes as a container binding a port would.
import { describe, expect, it } from 'vitest';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { REPO } from '../../scripts/lib/paths.ts';
import { formatAgentImageLock } from '../../contracts/agent-image-lock.ts';

const ID = `sha256:${'b'.repeat(64)}`;
const EXEC = ['/usr/local/bin/syntropy-agent-test-double', '--flag'];
const HEADER = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n';
const udpLine = (port: number) => `   1: 00000000:${port.toString(16).toUpperCase().padStart(4, '0')} 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1 2 0000000000000000 0\n`;

/**
 * A fake docker: `run` records its arguments and binds `bindPort` (if any) in the IPv6 table;
 * `stop` unbinds it unless `linksOutlive`; inspect answers Running and StartedAt.
 */
function fakeDocker(dir: string, opts: { bindPort?: number; linksOutlive?: boolean } = {}): string {
  const bin = join(dir, 'bin');
  mkdirSync(bin, { recursive: true });
  writeFileSync(
    join(bin, 'docker'),
    `#!/bin/bash
# Reads its stdin as a CLI might: under \`bash -s\` that would be the rest of the script.
cat > /dev/null
echo "$1" >> "${dir}/calls"
case "$1" in
  run) printf '%s\\0' "$@" > "${dir}/argv.run"
       ${opts.bindPort ? `printf '%s' '${udpLine(opts.bindPort)}' >> "${dir}/udp6"` : ''} ;;
  inspect) [[ "$3" == '{{eq .State.Status "running"}} {{.State.StartedAt}}' ]] || exit 64
           echo "true $(date -u +%Y-%m-%dT%H:%M:%S.%NZ)" ;;
  stop) ${opts.linksOutlive ? '' : `printf '%s' '${HEADER}' > "${dir}/udp6"`} ;;
esac
exit 0
`,
  );
  chmodSync(join(bin, 'docker'), 0o755);
  return bin;
}

function lockFile(dir: string): string {
  const lock = join(dir, 'agent-image.lock');
  writeFileSync(lock, formatAgentImageLock({ ref: 'syntropy-agent-test-double:local', digest: ID, id: ID, source: 'archive', exec: EXEC }, 'test'));
  return lock;
}

function bareStart(opts: { bindPort?: number; linksOutlive?: boolean; boundBefore?: number } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'bare-start-'));
  const bin = fakeDocker(dir, opts);
  writeFileSync(join(dir, 'udp'), HEADER + udpLine(68) + (opts.boundBefore ? udpLine(opts.boundBefore) : ''));
  writeFileSync(join(dir, 'udp6'), HEADER);
  // As the bench sends it: the script on bash's stdin.
  const r = spawnSync('bash', ['-s'], {
    input: readFileSync(join(REPO, 'scripts/lib/guest/bare-start.sh')),
    env: {
      ...process.env,
      PATH: `${bin}:${process.env.PATH}`,
      BENCH_LOCK_FILE: lockFile(dir),
      BENCH_PROC_NET_UDP: join(dir, 'udp'),
      BENCH_PROC_NET_UDP6: join(dir, 'udp6'),
      BENCH_AGENT_LOCK: join(dir, 'agent.lock'),
      BENCH_XTABLES_LOCK: join(dir, 'xtables.lock'),
      BENCH_DEADLINE_S: '1',
    },
    encoding: 'utf8',
  });
  const argv = () => readFileSync(join(dir, 'argv.run'), 'utf8').split('\0').slice(0, -1);
  const calls = () => readFileSync(join(dir, 'calls'), 'utf8').trim().split('\n');
  return { r, argv, calls };
}

/** run-agent's own `docker run` arguments, with the same stand-in. */
function runAgentArgv(): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'bare-start-ra-'));
  const bin = fakeDocker(dir);
  const env = join(dir, 'agent.env');
  writeFileSync(env, 'SYNTROPY_AGENT_TOKEN=t\nSYNTROPY_PORT_RANGE=51820-51919\n', { mode: 0o600 });
  chmodSync(env, 0o600);
  const r = spawnSync('bash', [join(REPO, 'firstboot/bin/run-agent')], {
    env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, SYNTROPY_LOCK_FILE: lockFile(dir), SYNTROPY_ENV_FILE: env, SYNTROPY_AGENT_LOCK: join(dir, 'a.lock'), SYNTROPY_XTABLES_LOCK: join(dir, 'x.lock') },
    encoding: 'utf8',
  });
  expect(r.status, r.stderr).toBe(0);
  return readFileSync(join(dir, 'argv.run'), 'utf8').split('\0').slice(0, -1);
}

/** Arguments with what legitimately differs blanked: the container's name and label, and the host side of each mount. */
function shape(argv: string[]): string[] {
  return argv.map((a, i) => (argv[i - 1] === '--name' || argv[i - 1] === '--label' ? '*' : argv[i - 1] === '--volume' ? a.replace(/^[^:]*:/, '*:') : a));
}

describe('bench bare start', () => {
  it("runs run-agent's docker run (flags, image, loader, entrypoint) and nothing of the project around it", () => {
    const { r, argv, calls } = bareStart({ bindPort: 51820 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(shape(argv())).toEqual(shape(runAgentArgv()));
    expect(argv().slice(-EXEC.length)).toEqual(EXEC);
    // Timed: run; after it, Docker is asked once whether it runs and since when, then it is stopped.
    expect(calls()).toEqual(['run', 'inspect', 'stop', 'rm']);
  });

  it('is timed to the first UDP port bound in the range, and reports the port', () => {
    const { r } = bareStart({ bindPort: 51833 });
    expect(r.status, r.stderr).toBe(0);
    const m = /^bare_running_ms=(-?\d+) bare_bound_ms=(\d+) bare_port=51833$/m.exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();
    expect(Number(m![2])).toBeLessThan(1000);
  });

  it('fails, naming the range, when no port in it is bound before the deadline', () => {
    const { r, calls } = bareStart({});
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('no UDP port in 51820-51919 bound within 1 s');
    // The container is removed on the way out.
    expect(calls()).toContain('rm');
  });

  it('refuses to start while a port of the range is already bound (it would time nothing)', () => {
    const { r } = bareStart({ bindPort: 51820, boundBefore: 51900 });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('UDP port 51900 in 51820-51919 is already bound');
  });

  it('fails when the range is still held after the container stopped (the next start would time nothing)', () => {
    const { r } = bareStart({ bindPort: 51820, linksOutlive: true });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('port 51820 still bound');
  }, 20_000);
});
