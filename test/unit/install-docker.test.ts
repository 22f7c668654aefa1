// install-docker.sh with both engine sources, run for real in a private mount namespace (tmpfs over
// /etc/apt and /etc/docker, so the host is untouched) with apt, dpkg and the Docker tools as
// recording stand-ins on PATH; and the build's check of Docker's repository key (stageDockerKey).
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO } from '../../scripts/lib/paths.ts';
import { loadConfig } from '../../scripts/lib/config.ts';
import { stageDockerKey } from '../../scripts/lib/bake/packer.ts';

const canUnshare = process.getuid?.() === 0 && spawnSync('unshare', ['--mount', 'true']).status === 0;

function run(env: Record<string, string>, withKey: boolean): { code: number; out: string; calls: string } {
  const d = mkdtempSync(join(tmpdir(), 'docker-'));
  const bin = join(d, 'bin');
  mkdirSync(bin);
  const log = join(d, 'calls');
  for (const tool of ['apt-get', 'dockerd', 'systemctl', 'docker']) {
    writeFileSync(join(bin, tool), `#!/bin/sh\necho "${tool} $*" >> ${log}\n`);
    chmodSync(join(bin, tool), 0o755);
  }
  writeFileSync(join(bin, 'dpkg'), '#!/bin/sh\necho amd64\n');
  chmodSync(join(bin, 'dpkg'), 0o755);
  mkdirSync(join(d, 'staging', 'keys'), { recursive: true });
  if (withKey) writeFileSync(join(d, 'staging', 'keys', 'docker.asc'), readFileSync(join(REPO, 'packer/keys/amazon-ssm-agent.asc')));
  const script = `mount -t tmpfs none /etc/apt && mount -t tmpfs none /etc/docker 2>/dev/null || { mkdir -p /etc/docker; mount -t tmpfs none /etc/docker; }
bash ${join(REPO, 'packer/provisioners/install-docker.sh')}; rc=$?
echo "== sources"; cat /etc/apt/sources.list.d/docker.sources 2>/dev/null
echo "== key"; stat -c '%a' /etc/apt/keyrings/docker.asc 2>/dev/null
echo "== daemon"; cat /etc/docker/daemon.json 2>/dev/null
exit $rc`;
  const r = spawnSync('unshare', ['--mount', '--propagation', 'private', 'bash', '-c', script], {
    encoding: 'utf8',
    env: { HOME: d, PATH: `${bin}:/usr/bin:/bin:/usr/sbin:/sbin`, SYNTROPY_STAGING: join(d, 'staging'), DOCKER_ADDRESS_POOLS: '[{"base":"172.30.0.0/16","size":24}]', DOCKER_LOG_MAX_SIZE: '10m', DOCKER_LOG_MAX_FILE: '3', ...env },
  });
  let calls = '';
  try {
    calls = readFileSync(log, 'utf8');
  } catch {
    /* nothing called */
  }
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}`, calls };
}

describe.runIf(canUnshare)('install-docker.sh', () => {
  it("debian: installs Debian's docker.io and writes no other APT source", () => {
    const r = run({ DOCKER_SOURCE: 'debian' }, false);
    expect(r.code, r.out).toBe(0);
    expect(r.calls).toMatch(/^apt-get install -y -q --no-install-recommends docker\.io docker-cli$/m);
    expect(r.out).toMatch(/== sources\n== key\n== daemon\n\{/);
    expect(r.out).toContain('"default-address-pools": [{"base":"172.30.0.0/16","size":24}]');
  });

  it("docker-ce: Docker's repository, signed only by the staged key, then docker-ce", () => {
    const r = run({ DOCKER_SOURCE: 'docker-ce', DOCKER_CE_REPO: 'https://download.docker.com/linux/debian', DOCKER_CE_SUITE: 'trixie' }, true);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain('== sources\nTypes: deb\nURIs: https://download.docker.com/linux/debian\nSuites: trixie\nComponents: stable\nArchitectures: amd64\nSigned-By: /etc/apt/keyrings/docker.asc\n');
    expect(r.out).toMatch(/== key\n644\n/);
    const calls = r.calls.split('\n');
    expect(calls.indexOf('apt-get update -q')).toBeLessThan(calls.indexOf('apt-get install -y -q --no-install-recommends docker-ce docker-ce-cli containerd.io'));
    expect(r.calls).not.toContain('docker.io');
  });

  it('docker-ce without a verified key, or an unknown source, stops before installing anything', () => {
    const r = run({ DOCKER_SOURCE: 'docker-ce', DOCKER_CE_REPO: 'https://download.docker.com/linux/debian', DOCKER_CE_SUITE: 'trixie' }, false);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/no verified key at .*keys\/docker\.asc/);
    expect(r.calls).toBe('');
    const u = run({ DOCKER_SOURCE: 'snap' }, false);
    expect(u.code).toBe(1);
    expect(u.out).toMatch(/unknown DOCKER_SOURCE 'snap'/);
  });
});

describe('stageDockerKey', () => {
  const serve = (body: string, status = 200) => (async () => new Response(body, { status })) as unknown as typeof fetch;
  const key = readFileSync(join(REPO, 'packer/keys/amazon-ssm-agent.asc'), 'utf8');

  it('stages the key only when its fingerprint is the pinned one', async () => {
    const dest = mkdtempSync(join(tmpdir(), 'keys-'));
    const pinned = loadConfig({ overrides: [{ docker: { source: 'docker-ce', ce_key_fingerprint: 'DE92C7DA3E56E92331D62A36BC1F495C97DD04ED' } }] }).config;
    expect(await stageDockerKey(pinned, dest, serve(key))).toBe('DE92C7DA3E56E92331D62A36BC1F495C97DD04ED');
    expect(readFileSync(join(dest, 'docker.asc'), 'utf8')).toBe(key);
    // The default pin is Docker's key: another key is refused, named.
    const docker = loadConfig({ overrides: [{ docker: { source: 'docker-ce' } }] }).config;
    await expect(stageDockerKey(docker, mkdtempSync(join(tmpdir(), 'keys-')), serve(key))).rejects.toThrow(
      /the key at https:\/\/download\.docker\.com\/linux\/debian\/gpg is DE92C7DA.*, not the pinned docker\.ce_key_fingerprint 9DC858229FC7DD38854AE2D88D81803C0EBFCD88/,
    );
    await expect(stageDockerKey(docker, dest, serve('nope', 404))).rejects.toThrow(/cannot fetch Docker's signing key .*HTTP 404/);
    await expect(stageDockerKey(docker, dest, serve('<html>'))).rejects.toThrow(/is not an OpenPGP key/);
  });

  it('does nothing for Debian\'s docker.io', async () => {
    let called = false;
    const f = (async () => {
      called = true;
      return new Response('');
    }) as unknown as typeof fetch;
    expect(await stageDockerKey(loadConfig({ overrides: [] }).config, mkdtempSync(join(tmpdir(), 'keys-')), f)).toBeNull();
    expect(called).toBe(false);
  });
});
