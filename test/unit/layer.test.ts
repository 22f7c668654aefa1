// The hardened layer's cache (scripts/lib/bake/layer.ts): its key moves with every input of the
// steps it holds and with nothing else, the template runs exactly the keyed scripts in it, a
// layer is found only complete and under its own key, and the guest side refuses another key.
import { describe, expect, it } from 'vitest';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { loadConfig } from '../../scripts/lib/config.ts';
import { REPO } from '../../scripts/lib/paths.ts';
import { provisionerEnv, type BuildContext } from '../../scripts/lib/bake/packer.ts';
import { findLayer, LAYER_SCRIPTS, layerInputs, layerKey, pruneLayers, releaseDigests, releaseUrls, storeLayer, treeHash, type LayerInputs, type LayerSources } from '../../scripts/lib/bake/layer.ts';

const NONCE = 'a1b2c3d4e5f6';

function staged(): { keysDir: string; hardeningDir: string } {
  const root = mkdtempSync(join(tmpdir(), 'layer-stage-'));
  const dirs = { keysDir: join(root, 'keys'), hardeningDir: join(root, 'hardening') };
  for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true });
  writeFileSync(join(dirs.keysDir, 'amazon-ssm-agent.asc'), 'key\n');
  writeFileSync(join(dirs.hardeningDir, 'apply.sh'), '#!/usr/bin/env bash\necho apply\n');
  writeFileSync(join(dirs.hardeningDir, 'probe.sh'), `f() { printf '@@${NONCE}:%s' "$1"; }\n`);
  return dirs;
}

function ctx(agentRef = 'syntropy-agent-test-double:local', digest = `sha256:${'a'.repeat(64)}`, key = ''): BuildContext {
  return {
    buildId: '20260101T000000Z',
    buildTime: '2026-01-01T00:00:00.000Z',
    gitSha: 'abc',
    manifestDir: '/out',
    firstbootDir: '/out/fb',
    hardeningDir: '/out/h',
    keysDir: '/out/k',
    agent: { ref: agentRef, digest, archive: '/cache/agent.tar' },
    local: {
      baseDisk: '/cache/base.qcow2',
      baseDiskSha256: 'f'.repeat(64),
      accel: 'tcg',
      netdev: 'user',
      smbios: 'type=1',
      serialLog: '/out/serial.log',
      outputDir: '/out/image',
      sshKeyFile: '/out/key',
      layer: { key, disk: '', sha256: '', outputDir: '' },
    },
  };
}

function sources(over: Partial<LayerSources> = {}): LayerSources {
  const { config } = loadConfig({});
  return {
    cfg: config,
    baseDiskSha256: 'f'.repeat(64),
    release: { 'http://deb.debian.org/debian/dists/trixie/InRelease': '1'.repeat(64) },
    ...staged(),
    probeNonce: NONCE,
    env: provisionerEnv(config, ctx()),
    ...over,
  };
}

describe('hardened layer key', () => {
  it('is the same for the same inputs, whatever the agent, the build or the probe nonce', () => {
    const s = sources();
    const k = layerKey(layerInputs(s));
    expect(k).toMatch(/^[a-f0-9]{16}$/);
    expect(layerKey(layerInputs(s))).toBe(k);
    // Another agent image, build and layer key: the layer's scripts get none of them.
    const other = provisionerEnv(s.cfg, { ...ctx('syntropynet/agent@sha256:' + 'b'.repeat(64), 'sha256:' + 'b'.repeat(64), 'feedfacefeedface'), buildId: '20270101T000000Z' });
    expect(layerKey(layerInputs({ ...s, env: other }))).toBe(k);
    // A new probe nonce (every build has one) over the same probe.
    writeFileSync(join(s.hardeningDir, 'probe.sh'), `f() { printf '@@ffffeeeedddd:%s' "$1"; }\n`);
    expect(layerKey(layerInputs({ ...s, probeNonce: 'ffffeeeedddd' }))).toBe(k);
  });

  it('changes with every input of the steps the layer holds', () => {
    const s = sources();
    const base = layerInputs(s);
    const k = layerKey(base);
    const variants: [string, LayerInputs][] = [
      ['base disk', { ...base, baseDiskSha256: 'e'.repeat(64) }],
      ['a suite has a new Release file', { ...base, release: { ...base.release, 'http://deb.debian.org/debian/dists/trixie/InRelease': '2'.repeat(64) } }],
      ['a suite more', { ...base, release: { ...base.release, 'http://x/dists/trixie-security/InRelease': '3'.repeat(64) } }],
      ['templates', { ...base, templates: '0'.repeat(64) }],
      ['harden.sh', { ...base, scripts: { ...base.scripts, 'harden.sh': '0'.repeat(64) } }],
      ['rootfs', { ...base, uploads: { ...base.uploads, rootfs: '0'.repeat(64) } }],
      ['guest disk size', { ...base, guest: { ...base.guest, diskGib: base.guest.diskGib + 1 } }],
    ];
    for (const [what, inputs] of variants) expect(layerKey(inputs), what).not.toBe(k);

    // Staged files, through layerInputs itself.
    const fb = sources();
    const k3 = layerKey(layerInputs(fb));
    writeFileSync(join(fb.hardeningDir, 'apply.sh'), '#!/usr/bin/env bash\necho other\n');
    const k4 = layerKey(layerInputs(fb));
    expect(k4, 'hardening script').not.toBe(k3);
    writeFileSync(join(fb.hardeningDir, 'probe.sh'), `f() { printf '@@${NONCE}:%s|' "$1"; }\n`);
    const k5 = layerKey(layerInputs(fb));
    expect(k5, 'probe').not.toBe(k4);
    writeFileSync(join(fb.keysDir, 'docker.asc'), 'docker key\n');
    expect(layerKey(layerInputs(fb)), 'keys').not.toBe(k5);

    // Config the layer's scripts read (docker.log_max_file reaches install-docker.sh).
    const { config } = loadConfig({ overrides: [{ docker: { log_max_file: 7 } }] });
    expect(layerKey(layerInputs({ ...s, env: provisionerEnv(config, ctx()) })), 'docker settings').not.toBe(k);
    const off = loadConfig({ overrides: [{ hardening: { enabled: false } }] }).config;
    expect(layerKey(layerInputs({ ...s, env: provisionerEnv(off, ctx()) })), 'hardening on/off').not.toBe(k);
  });

  it('refuses a staged probe without the nonce it was given', () => {
    expect(() => layerInputs(sources({ probeNonce: '000000000000' }))).toThrow(/does not carry its nonce/);
  });

  it('tree hashes see content, mode and names', () => {
    const d = mkdtempSync(join(tmpdir(), 'tree-'));
    writeFileSync(join(d, 'a'), 'x');
    const h1 = treeHash(d);
    chmodSync(join(d, 'a'), 0o755);
    const h2 = treeHash(d);
    writeFileSync(join(d, 'a'), 'y');
    const h3 = treeHash(d);
    writeFileSync(join(d, 'b'), '');
    const h4 = treeHash(d);
    expect(new Set([h1, h2, h3, h4]).size).toBe(4);
  });
});

describe('the template and the key agree', () => {
  /** Script provisioners of build.pkr.hcl that run in the named source. */
  function scriptsRunIn(source: string): string[] {
    const hcl = readFileSync(join(REPO, 'packer', 'build.pkr.hcl'), 'utf8');
    const blocks = hcl.split(/\n  provisioner "/).slice(1);
    const out: string[] = [];
    for (const b of blocks) {
      const list = (k: string) => (new RegExp(`\\n\\s*${k}\\s*=\\s*\\[([^\\]]*)\\]`).exec(b)?.[1] ?? null)?.split(',').map((x) => x.trim().replace(/"/g, ''));
      const only = list('only');
      const except = list('except');
      const runs = (only ? only.includes(source) : true) && !(except ?? []).includes(source);
      const script = /packer\/provisioners\/([a-z-]+\.sh)"/.exec(b)?.[1];
      if (runs && script) out.push(script);
      if (runs && source === 'qemu.layer' && b.startsWith('file"')) {
        // Every upload into the layer is an input of its key.
        const what = /sources?\s*=\s*(.+)/.exec(b)?.[1] ?? '';
        expect(what, 'files uploaded into the layer').toBe('["${var.repo_root}/rootfs", "${var.repo_root}/packer/provisioners/sanitize.list", var.keys_dir, var.hardening_dir]');
      }
    }
    return out;
  }

  it('qemu.layer runs exactly the scripts the key covers, in the same order as aws', () => {
    expect(scriptsRunIn('qemu.layer')).toEqual([...LAYER_SCRIPTS]);
    const aws = scriptsRunIn('amazon-ebs.aws');
    const local = scriptsRunIn('qemu.local');
    // aws: every step but the layer's own bookkeeping, in one order.
    expect(aws).toEqual([...LAYER_SCRIPTS.filter((s) => s !== 'save-layer.sh').slice(0, 4), 'install-ssm-agent.sh', ...LAYER_SCRIPTS.filter((s) => s !== 'save-layer.sh').slice(4), ...local.filter((s) => !['wait-cloud-init.sh', 'open-layer.sh'].includes(s))]);
    // The first-boot program is not in the layer: changing it does not make the image harden again.
    expect(LAYER_SCRIPTS).not.toContain('install-firstboot.sh');
    expect(local).toContain('install-firstboot.sh');
    expect(local.slice(0, 2)).toEqual(['wait-cloud-init.sh', 'open-layer.sh']);
    expect(local).toContain('init-aide.sh');
  });
});

describe('layer cache', () => {
  const inputs = () => layerInputs(sources());

  it('stores a layer under its key and finds it complete only', async () => {
    const root = mkdtempSync(join(tmpdir(), 'layers-'));
    const work = join(root, '.tmp-00000000000000aa-1');
    mkdirSync(work);
    writeFileSync(join(work, 'layer.qcow2'), 'disk');
    const key = '00000000000000aa';
    const l = await storeLayer(key, work, inputs(), NONCE, root);
    expect(l.reused).toBe(false);
    expect(existsSync(work)).toBe(false);
    const found = findLayer(key, root);
    expect(found).toEqual({ ...l, reused: true });
    expect(found!.sha256).toBe(createHash('sha256').update('disk').digest('hex'));
    expect(findLayer('00000000000000bb', root)).toBeNull();
    // A meta.json naming another key (a directory renamed by hand) is not this layer.
    const meta = JSON.parse(readFileSync(join(root, key, 'meta.json'), 'utf8'));
    writeFileSync(join(root, key, 'meta.json'), JSON.stringify({ ...meta, key: '00000000000000cc' }));
    expect(findLayer(key, root)).toBeNull();
    // Without its disk, no layer.
    writeFileSync(join(root, key, 'meta.json'), JSON.stringify(meta));
    expect(findLayer(key, root)).not.toBeNull();
    // A meta.json cut short is no layer either (rebuilt, not a crash of the build).
    writeFileSync(join(root, key, 'meta.json'), JSON.stringify(meta).slice(0, 40));
    expect(findLayer(key, root)).toBeNull();
    writeFileSync(join(root, key, 'meta.json'), JSON.stringify(meta));
    spawnSync('rm', [join(root, key, 'layer.qcow2')]);
    expect(findLayer(key, root)).toBeNull();
  });

  it('refuses to store what Packer did not write', async () => {
    const root = mkdtempSync(join(tmpdir(), 'layers-'));
    const work = join(root, '.tmp-x');
    mkdirSync(work);
    await expect(storeLayer('00000000000000aa', work, inputs(), NONCE, root)).rejects.toThrow(/wrote no/);
    expect(existsSync(join(root, '00000000000000aa'))).toBe(false);
  });

  it('keeps the newest layers and the current one, and drops work left by dead builds', () => {
    const root = mkdtempSync(join(tmpdir(), 'layers-'));
    const keys = ['000000000000000a', '000000000000000b', '000000000000000c', '000000000000000d'];
    keys.forEach((k, i) => {
      mkdirSync(join(root, k));
      utimesSync(join(root, k), new Date(1000 * (i + 1)), new Date(1000 * (i + 1)));
    });
    mkdirSync(join(root, '.tmp-000000000000000e-999999999'));
    mkdirSync(join(root, `.tmp-000000000000000f-${process.pid}`));
    const removed = pruneLayers(root, 2, '000000000000000a');
    expect(removed.sort()).toEqual(['.tmp-000000000000000e-999999999', '000000000000000b']);
    expect(existsSync(join(root, '000000000000000a'))).toBe(true);
    expect(existsSync(join(root, '000000000000000d'))).toBe(true);
    expect(existsSync(join(root, `.tmp-000000000000000f-${process.pid}`))).toBe(true);
  });
});

describe('the suites the key reads', () => {
  const signed = (n: string) => new Response(`-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\nSuite: ${n}\n`);

  it('names the suite, its updates and security, and Docker when it is the source', () => {
    const { config } = loadConfig({});
    expect(releaseUrls(config)).toEqual([
      'http://deb.debian.org/debian/dists/trixie/InRelease',
      'http://deb.debian.org/debian/dists/trixie-updates/InRelease',
      'http://deb.debian.org/debian-security/dists/trixie-security/InRelease',
    ]);
    const ce = loadConfig({ overrides: [{ docker: { source: 'docker-ce' } }] }).config;
    expect(releaseUrls(ce)).toContain('https://download.docker.com/linux/debian/dists/trixie/InRelease');
  });

  it('hashes each signed Release file, and stops on one it cannot read', async () => {
    const urls = ['http://m/dists/a/InRelease', 'http://m/dists/b/InRelease'];
    const d1 = await releaseDigests(urls, (async (u: string) => signed(String(u).includes('/b/') ? 'b' : 'a')) as typeof fetch);
    expect(Object.keys(d1)).toEqual(urls);
    const d2 = await releaseDigests(urls, (async (u: string) => signed(String(u).includes('/b/') ? 'b2' : 'a')) as typeof fetch);
    expect(d2[urls[0]!]).toBe(d1[urls[0]!]);
    expect(d2[urls[1]!]).not.toBe(d1[urls[1]!]);
    await expect(releaseDigests(urls, (async () => new Response('gone', { status: 404 })) as typeof fetch)).rejects.toThrow(/cannot read http:\/\/m\/dists\/(a|b)\/InRelease \(HTTP 404\)/);
    await expect(releaseDigests(urls, (async () => new Response('<html>captive portal</html>')) as typeof fetch)).rejects.toThrow(/not a signed InRelease/);
  });
});

describe('the guest side of the layer', () => {
  // In a private mount namespace, /run and /var/lib are empty tmpfs: the scripts' real paths.
  const inNamespace = (script: string, env: Record<string, string>) =>
    spawnSync('unshare', ['-m', 'sh', '-c', `mount -t tmpfs none /run && mount -t tmpfs none /var/lib && ${script}`], { encoding: 'utf8', env: { ...process.env, ...env } });
  const canUnshare = spawnSync('unshare', ['-m', 'true']).status === 0;

  it.runIf(canUnshare)('save-layer records the key; open-layer accepts only that key and restores the baseline', () => {
    const staging = mkdtempSync(join(tmpdir(), 'staging-'));
    mkdirSync(join(staging, 'hardening'));
    writeFileSync(join(staging, 'hardening', 'probe.sh'), 'probe\n');
    const save = join(REPO, 'packer/provisioners/save-layer.sh');
    const open = join(REPO, 'packer/provisioners/open-layer.sh');
    const prep = 'mkdir -p /run/syntropy-build/out && echo facts > /run/syntropy-build/out/compliance-baseline.raw';
    const after = 'rm -rf /run/syntropy-build';
    const ok = inNamespace(`${prep} && bash ${save} && ${after} && bash ${open} && cat /run/syntropy-build/out/compliance-baseline.raw /run/syntropy-build/probe.sh && test ! -e /var/lib/syntropy-build-layer`, {
      LAYER_KEY: '0123456789abcdef',
      SYNTROPY_STAGING: staging,
    });
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout).toContain('facts\nprobe\n');

    const wrong = inNamespace(`${prep} && LAYER_KEY=0123456789abcdef bash ${save} && ${after} && bash ${open}`, { LAYER_KEY: 'fedcba9876543210', SYNTROPY_STAGING: staging });
    expect(wrong.status).not.toBe(0);
    expect(wrong.stderr).toContain('has key 0123456789abcdef, this build needs fedcba9876543210');

    const none = inNamespace(`bash ${open}`, { LAYER_KEY: 'fedcba9876543210', SYNTROPY_STAGING: staging });
    expect(none.status).not.toBe(0);
    expect(none.stderr).toContain('is not a hardened layer');

    const noBaseline = inNamespace(`bash ${save}`, { LAYER_KEY: '0123456789abcdef' });
    expect(noBaseline.status).not.toBe(0);
    expect(noBaseline.stderr).toContain('probe-compliance.sh runs before this');
  });
});
