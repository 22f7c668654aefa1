// The build manifest and the other files handed between steps: each is written by its real
// writer here and read back by every reader with its contract; bad or old files fail naming the
// file and the field.
import { describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parsePackages } from '../../scripts/lib/bake/manifest.ts';
import { readManifest } from '../../scripts/boot-test.ts';
import { reportProblems, sourceOf } from '../../scripts/lib/release/publish.ts';
import { BuildManifestSchema, amis, localImage } from '../../contracts/build-manifest.ts';
import { ContractError, readJsonContract } from '../../contracts/parse.ts';
import { decodeExec, encodeExec, parseAgentImageLock, formatAgentImageLock } from '../../contracts/agent-image-lock.ts';
import { formatFirstbootConf, parseFirstbootConf } from '../../contracts/firstboot-conf.ts';
import { amisOfArtifact } from '../../contracts/packer-manifest.ts';
import { firstbootConf } from '../../scripts/lib/bake/firstboot-stage.ts';
import { loadConfig } from '../../scripts/lib/config.ts';
import { readImageSettings } from '../../firstboot/src/image-settings.ts';
import { paths } from '../../firstboot/src/state.ts';
import { buildOutput, IMAGE_ID } from '../helpers/build-output.ts';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { REPO } from '../../scripts/lib/paths.ts';

describe('build manifest', () => {
  it('records packages, kernel, OS, agent image, config hash, git sha, durations and compliance', () => {
    const { manifest: m } = buildOutput('local');
    expect(m).toMatchObject({
      build_id: '20260101T120000Z',
      os: { pretty_name: 'Debian GNU/Linux 13 (trixie)', version_id: '13' },
      kernel: { running: '6.12.118+deb13-cloud-amd64', 'linux-image-cloud-amd64': '6.12.118-1' },
      agent_image: { ref: 'syntropy-agent-test-double:local', id: IMAGE_ID, source: 'archive' },
      rootfs: { used_bytes: 924000000 },
      durations_s: { packer: 300, total: 320 },
      compliance: { passed: true },
    });
    expect(m.packages).toEqual([
      { name: 'docker.io', version: '26.1.5+dfsg1-9', arch: 'amd64', source: 'docker.io', source_version: '26.1.5+dfsg1-9' },
      { name: 'libc6', version: '2.41-12', arch: 'amd64', source: 'glibc', source_version: '2.41-12' },
      { name: 'libxtables12', version: '1.8.11-2+b1', arch: 'amd64', source: 'iptables', source_version: '1.8.11-2' },
      { name: 'nodejs', version: '20.19.2+dfsg-1', arch: 'amd64', source: 'nodejs', source_version: '20.19.2+dfsg-1' },
    ]);
    // The double's dpkg status: installed packages only (not config-files), with their source.
    expect(m.agent_packages).toEqual([
      { kind: 'deb', name: 'libc6', version: '2.41-12', arch: 'amd64', source: 'glibc' },
      { kind: 'deb', name: 'wireguard-tools', version: '1.0.20210914-1.1+b1', arch: 'amd64', source: 'wireguard-tools', source_version: '1.0.20210914-1.1' },
    ]);
    // The real agent's apk database: each package once, origin as its source when it differs.
    expect(buildOutput('aws').manifest.agent_packages).toEqual([
      { kind: 'apk', name: 'iptables', version: '1.8.11-r1', arch: 'x86_64' },
      { kind: 'apk', name: 'libxtables', version: '1.8.11-r1', arch: 'x86_64', source: 'iptables' },
      { kind: 'apk', name: 'musl', version: '1.2.5-r10', arch: 'x86_64' },
    ]);
  });

  it('says which build guests panicked and were started again, and nothing when none did', () => {
    expect(buildOutput('local').manifest.guest_panics).toBeUndefined();
    const panic = { build: 'layer' as const, line: 'Kernel panic - not syncing: Fatal exception in interrupt', during: 'start-up', serial_log: 'serial-layer-panic-1.log', packer_log: 'packer-layer-panic-1.log' };
    const out = buildOutput('local', { guestPanics: [panic] });
    expect(readJsonContract(BuildManifestSchema, out.manifestPath).guest_panics).toEqual([panic]);
    const bad = { ...JSON.parse(readFileSync(out.manifestPath, 'utf8')), guest_panics: [{ ...panic, build: 'final' }] };
    writeFileSync(out.manifestPath, JSON.stringify(bad));
    expect(() => readJsonContract(BuildManifestSchema, out.manifestPath)).toThrow(/guest_panics/);
  });

  it('is read back by boot-test and publish exactly as the build wrote it (aws: region -> AMI map)', () => {
    const out = buildOutput('aws', { region: 'eu-west-1', reports: true });
    const { manifest, cfg } = readManifest(out.manifestPath);
    expect(amis(manifest)).toEqual({ 'eu-west-1': 'ami-0123456789abcdef0' });
    expect(cfg.aws.region).toBe('eu-west-1');
    expect(sourceOf(manifest, 'eu-west-1')).toEqual({ region: 'eu-west-1', imageId: 'ami-0123456789abcdef0' });
    expect(reportProblems(out.dir)).toEqual([]);
    expect(localImage(readManifest(buildOutput('local').manifestPath).manifest)).toMatch(/\.qcow2$/);
  });

  it('refuses an AMI list (the shape the aws boot test once read), naming the file and field', () => {
    const out = buildOutput('aws');
    const raw = JSON.parse(readFileSync(out.manifestPath, 'utf8')) as { outputs: unknown };
    raw.outputs = { amis: [{ region: 'us-east-1', ami: 'ami-0123456789abcdef0' }] };
    writeFileSync(out.manifestPath, JSON.stringify(raw));
    expect(() => readJsonContract(BuildManifestSchema, out.manifestPath)).toThrow(ContractError);
    expect(() => readManifest(out.manifestPath)).toThrow(new RegExp(`${out.manifestPath.replaceAll('/', '\\/')}: outputs`));
  });

  it('refuses an old or foreign file: schema, missing fields, a local build claiming AMIs', () => {
    const out = buildOutput('local');
    const raw = JSON.parse(readFileSync(out.manifestPath, 'utf8')) as Record<string, unknown>;
    writeFileSync(out.manifestPath, JSON.stringify({ ...raw, schema: 2 }));
    expect(() => readManifest(out.manifestPath)).toThrow(/schema: Invalid literal value, expected 1/);
    writeFileSync(out.manifestPath, JSON.stringify({ ...raw, outputs: { amis: { 'us-east-1': 'ami-0123456789abcdef0' } } }));
    expect(() => readManifest(out.manifestPath)).toThrow(/outputs: a local build records qcow2/);
    const { agent_image: _a, ...noLock } = raw;
    writeFileSync(out.manifestPath, JSON.stringify(noLock));
    expect(() => readManifest(out.manifestPath)).toThrow(/agent_image: Required/);
    writeFileSync(out.manifestPath, '{');
    expect(() => readManifest(out.manifestPath)).toThrow(/not valid JSON/);
  });

  it('the committed aws fixture is what the writer produces (it cannot drift)', () => {
    const fixture = readJsonContract(BuildManifestSchema, join(REPO, 'test/fixtures/aws-build-manifest.json'));
    const written = buildOutput('aws').manifest;
    expect({ ...fixture, config: null, durations_s: null }).toEqual({ ...written, config: null, durations_s: null });
  });

  it('reads Packer amazon-ebs artifact IDs as region -> AMI', () => {
    expect(amisOfArtifact('us-east-1:ami-0123456789abcdef0,eu-west-1:ami-0fedcba9876543210', 'm.json')).toEqual({ 'us-east-1': 'ami-0123456789abcdef0', 'eu-west-1': 'ami-0fedcba9876543210' });
    expect(() => amisOfArtifact('/out/image.qcow2', 'm.json')).toThrow(/m.json: artifact_id/);
  });

  it('refuses a malformed package line', () => {
    expect(() => parsePackages('justaname\n')).toThrow(/malformed package line/);
  });
});

describe('agent image lock', () => {
  const lock = { ref: 'syntropy-agent-test-double:local', digest: IMAGE_ID, id: IMAGE_ID, source: 'archive' as const };
  it('round-trips through its writer and reader', () => {
    expect(parseAgentImageLock(formatAgentImageLock(lock, 'test'), 'f')).toEqual(lock);
  });
  it('names the file and the key of a bad or missing value', () => {
    const text = formatAgentImageLock(lock, 'test').replace(/AGENT_IMAGE_ID=.*/, 'AGENT_IMAGE_ID=latest');
    expect(() => parseAgentImageLock(text, '/etc/syntropy/agent-image.lock')).toThrow(/\/etc\/syntropy\/agent-image.lock: AGENT_IMAGE_ID: sha256:<64 hex>/);
    expect(() => parseAgentImageLock('AGENT_IMAGE_REF=x\n', 'L')).toThrow(/AGENT_IMAGE_DIGEST: Required/);
  });
  it('refuses values that cannot be written as KEY=value lines', () => {
    expect(() => formatAgentImageLock({ ...lock, ref: 'a\nAGENT_IMAGE_ID=x' }, 'c')).toThrow();
  });
  it("keeps the image's entrypoint and command exactly, in one KEY=value line, and reads locks without it", () => {
    const exec = ['/usr/bin/syntropy_agent', 'a b', '', 'x\ny', '"$q\'`'];
    const text = formatAgentImageLock({ ...lock, exec }, 'test');
    expect(text.split('\n').filter((l) => l.startsWith('AGENT_IMAGE_EXEC='))).toHaveLength(1);
    expect(parseAgentImageLock(text, 'f')).toEqual({ ...lock, exec });
    expect(decodeExec(encodeExec(exec))).toEqual(exec);
    expect(parseAgentImageLock(formatAgentImageLock(lock, 'test'), 'f').exec).toBeUndefined();
  });
  it('refuses an unusable AGENT_IMAGE_EXEC by name', () => {
    const base = formatAgentImageLock(lock, 'test');
    expect(() => parseAgentImageLock(`${base}AGENT_IMAGE_EXEC=not*base64\n`, 'L')).toThrow(/L: AGENT_IMAGE_EXEC: not base64/);
    const unterminated = Buffer.from('/agent').toString('base64');
    expect(() => parseAgentImageLock(`${base}AGENT_IMAGE_EXEC=${unterminated}\n`, 'L')).toThrow(/AGENT_IMAGE_EXEC: the arguments do not end with a NUL byte/);
    expect(() => formatAgentImageLock({ ...lock, exec: [] }, 'c')).toThrow(/no entrypoint or command/);
    expect(() => formatAgentImageLock({ ...lock, exec: ['a\0b'] }, 'c')).toThrow(/no NUL characters/);
  });
});

describe('firstboot.conf', () => {
  it('is written from the build config and read by first boot with the same values', () => {
    const { config } = loadConfig({ overrides: [{ ssh: { port: 2222 }, firstboot: { default_port_range: '40000-40099', max_port_range_width: 500 } }] });
    const root = mkdtempSync(join(tmpdir(), 'fbconf-'));
    mkdirSync(join(root, 'etc/syntropy'), { recursive: true });
    writeFileSync(join(root, 'etc/syntropy/firstboot.conf'), firstbootConf(config));
    expect(readImageSettings(paths(root))).toEqual({ sshPort: 2222, defaultPortRange: '40000-40099', maxRangeWidth: 500, networkApi: 'none' });
  });
  it('falls back to the defaults without a file, and refuses a default range the rule refuses', () => {
    expect(parseFirstbootConf(null, 'f').DEFAULT_PORT_RANGE).toBe('51820-51919');
    expect(() => parseFirstbootConf('DEFAULT_PORT_RANGE=51820-51821\n', '/etc/syntropy/firstboot.conf')).toThrow(/firstboot.conf: DEFAULT_PORT_RANGE: .*at least 4/);
    expect(() => formatFirstbootConf({ SSH_PORT: 51830, DEFAULT_PORT_RANGE: '51820-51919' })).toThrow(/SSH port/);
  });
});

describe('bench: where answers -> running went', () => {
  it("turns first boot's step times into a breakdown, each step timed from what it waits for", async () => {
    const { applyBreakdown } = await import('../../scripts/bench.ts');
    // As the apply runs now: the enable from the apply's start, beside the image check and the env
    // file; the unit start and the firewall once both are done, side by side; the confirmation
    // follows the unit start (the firewall may finish after it), the record both.
    const rows = applyBreakdown(7000, 'verify-image:40,write-env:90,enable:250,firewall:1600,start-unit:5200,confirm-running:6000,record:6700');
    expect(rows).toEqual([
      { step: 'before the apply (lock, recovery check)', at_ms: 300, took_ms: 300 },
      { step: 'verify-image', at_ms: 340, took_ms: 40 },
      { step: 'write-env', at_ms: 390, took_ms: 50 },
      { step: 'enable', at_ms: 550, took_ms: 250 },
      { step: 'firewall (side by side)', at_ms: 1900, took_ms: 1350 },
      { step: 'start-unit (side by side)', at_ms: 5500, took_ms: 4950 },
      { step: 'confirm-running', at_ms: 6300, took_ms: 800 },
      { step: 'record', at_ms: 7000, took_ms: 700 },
    ]);
    // An enable done before the env file: the unit start is timed from the env file.
    const early = applyBreakdown(7000, 'verify-image:40,enable:60,write-env:90,firewall:1600,start-unit:5200,confirm-running:6000,record:6700');
    expect(early.find((r) => r.step === 'start-unit (side by side)')!.took_ms).toBe(5110);
    // A firewall rule still loading at the confirmation: the record waits for it too.
    const late = applyBreakdown(7000, 'verify-image:40,write-env:90,enable:390,start-unit:5200,confirm-running:6000,firewall:6200,record:6700');
    expect(late.find((r) => r.step === 'record')!.took_ms).toBe(500);
    expect(late.find((r) => r.step === 'confirm-running')!.took_ms).toBe(800);
    // Without an enable step (the unit was enabled already): the side-by-side steps from the env file.
    // A confirmation that fell back to asking Docker shows as its own (instant) row after it.
    const slow = applyBreakdown(7000, 'verify-image:40,write-env:90,firewall:1600,start-unit:5200,confirm-running:6400,confirmed-by-docker:6400,record:7000');
    expect(slow.map((r) => r.step)).toContain('confirmed-by-docker');
    expect(slow.find((r) => r.step === 'record')!.took_ms).toBe(600);
    const older = applyBreakdown(6000, 'verify-image:40,write-env:90,start-unit:5200,firewall:5300,confirm-running:5600,record:5700');
    expect(older.find((r) => r.step === 'start-unit (side by side)')!.took_ms).toBe(5110);
  });
});

describe('bench: answers -> running over several guests', () => {
  it('judges the median guest (of an even count, the worse of the middle two) and takes 1-9 guests', async () => {
    const { median, parseApplies } = await import('../../scripts/bench.ts');
    expect(median([1.9, 1.2, 1.4])).toBe(1.4);
    expect(median([1.2, 1.9])).toBe(1.9);
    expect(median([1.3])).toBe(1.3);
    expect(parseApplies(undefined)).toBe(3);
    expect(parseApplies('5')).toBe(5);
    for (const bad of ['0', '10', '2.5', '-1', 'three', '']) expect(() => parseApplies(bad), bad).toThrow(/--applies: expected a whole number from 1 to 9/);
  });
});

describe('bench: warm or cold, from the manifest', () => {
  it('calls a build that made its base disk or its agent double cold, else warm', async () => {
    const { bakeKind } = await import('../../scripts/bench.ts');
    const { manifest } = buildOutput('local');
    const base = manifest.base_image as Extract<typeof manifest.base_image, { kind: 'local-base-disk' }>;
    expect(bakeKind({ ...manifest, base_image: { ...base, reused: true }, durations_s: { 'base-disk': 0.1, 'agent-image': 0.2 } })).toBe('warm');
    expect(bakeKind({ ...manifest, base_image: { ...base, reused: false }, durations_s: { 'base-disk': 81.2, 'agent-image': 0.2 } })).toBe('cold');
    expect(bakeKind({ ...manifest, base_image: { ...base, reused: true }, durations_s: { 'base-disk': 0.1, 'agent-image': 48 } })).toBe('cold');
    // The hardened layer: built in this bake, or booted from the cache.
    const layer = { key: '0123456789abcdef', path: '/c/layers/0123456789abcdef/layer.qcow2', sha256: 'e'.repeat(64) };
    expect(bakeKind({ ...manifest, base_image: { ...base, reused: true, hardened_layer: { ...layer, reused: false } }, durations_s: { 'agent-image': 0.2 } })).toBe('layer');
    expect(bakeKind({ ...manifest, base_image: { ...base, reused: true, hardened_layer: { ...layer, reused: true } }, durations_s: { 'agent-image': 0.2 } })).toBe('warm');
    expect(bakeKind({ ...manifest, base_image: { ...base, reused: false, hardened_layer: { ...layer, reused: false } }, durations_s: { 'agent-image': 0.2 } })).toBe('cold');
  });
});
