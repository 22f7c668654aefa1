// A build's output as the real writers produce it: the image-info files collect-manifest.sh
// downloads (the agent lock through its contract writer), the compliance reports through
// buildReport, the build manifest through buildManifest / writeBuildManifest. Readers under test
// get this, never a hand-written shape.
import type { RetriedPanic } from '../../scripts/lib/bake/run-packer.ts';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../scripts/lib/config.ts';
import { buildManifest, writeBuildManifest } from '../../scripts/lib/bake/manifest.ts';
import { writeReport } from '../../scripts/lib/compliance.ts';
import { bootReport, writeBootReport } from '../../scripts/lib/boottest/report.ts';
import { buildReport, type Report } from '../../hardening/report.ts';
import { formatAgentImageLock } from '../../contracts/agent-image-lock.ts';
import type { BuildManifest } from '../../contracts/build-manifest.ts';

export const IMAGE_ID = `sha256:${'e'.repeat(64)}`;
export const AMI = 'ami-0123456789abcdef0';

/** What collect-manifest.sh leaves for the build to read (image-info.tar, unpacked). */
export function imageInfoDir(target: 'local' | 'aws', dir = mkdtempSync(join(tmpdir(), 'image-info-'))): string {
  writeFileSync(
    join(dir, 'packages.tsv'),
    // As collect-manifest.sh writes it: package, version, arch, source package, source version.
    `${target === 'aws' ? 'amazon-ssm-agent\t3.3.3572.0-1\tamd64\tamazon-ssm-agent\t3.3.3572.0-1\n' : ''}docker.io\t26.1.5+dfsg1-9\tamd64\tdocker.io\t26.1.5+dfsg1-9\nlibc6\t2.41-12\tamd64\tglibc\t2.41-12\nlibxtables12\t1.8.11-2+b1\tamd64\tiptables\t1.8.11-2\nnodejs\t20.19.2+dfsg-1\tamd64\tnodejs\t20.19.2+dfsg-1\n`,
  );
  // The agent image's package database, as preload-agent.sh copies it out: apk for the real
  // (Alpine-based) agent, dpkg for the Debian-based double.
  mkdirSync(join(dir, 'agent-packages'), { recursive: true });
  if (target === 'aws') {
    writeFileSync(
      join(dir, 'agent-packages', 'apk-installed'),
      'C:Q1abc=\nP:musl\nV:1.2.5-r10\nA:x86_64\nS:400000\no:musl\nF:lib\nR:ld-musl-x86_64.so.1\n\nC:Q1def=\nP:iptables\nV:1.8.11-r1\nA:x86_64\no:iptables\n\nP:libxtables\nV:1.8.11-r1\nA:x86_64\no:iptables\n',
    );
  } else {
    writeFileSync(
      join(dir, 'agent-packages', 'dpkg-status'),
      'Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nSource: glibc\nVersion: 2.41-12\nDescription: GNU C Library\n shared libraries\n\nPackage: oldpkg\nStatus: deinstall ok config-files\nVersion: 1.0\n\nPackage: wireguard-tools\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0.20210914-1.1+b1\nSource: wireguard-tools (1.0.20210914-1.1)\n',
    );
  }
  writeFileSync(join(dir, 'kernel.txt'), 'running=6.12.118+deb13-cloud-amd64\nlinux-image-cloud-amd64=6.12.118-1\n');
  writeFileSync(join(dir, 'os-release'), 'PRETTY_NAME="Debian GNU/Linux 13 (trixie)"\nVERSION_ID="13"\n');
  const lock =
    target === 'local'
      ? { ref: 'syntropy-agent-test-double:local', digest: IMAGE_ID, id: IMAGE_ID, source: 'archive' as const }
      : { ref: `syntropynet/agent@sha256:${'d'.repeat(64)}`, digest: `sha256:${'d'.repeat(64)}`, id: IMAGE_ID, source: 'registry' as const };
  writeFileSync(join(dir, 'agent-image.lock'), formatAgentImageLock(lock, 'Written at bake time (syntropy-firstboot record-image).'));
  writeFileSync(join(dir, 'rootfs.json'), '{"used_bytes": 924000000, "size_bytes": 8300000000}\n');
  return dir;
}

export function passingReport(phase = 'hardened image'): Report {
  return buildReport(
    [{ id: '1.1.1.1', title: 'Ensure cramfs kernel module is not available', level: 'l1_server', section: '1', automated: true, tags: [], result: 'PASS', evidence: 'not loadable' }],
    { phase, target: 'fixture', mode: 'offline', probeMs: 1, totalMs: 2, roundTrips: 1 },
  );
}

export interface BuildOutput {
  dir: string;
  manifestPath: string;
  manifest: BuildManifest;
}

/**
 * A finished build's output folder: build-manifest.json written by the build's own writer,
 * optionally with passing compliance and boot-test reports.
 */
export function buildOutput(target: 'local' | 'aws', opts: { region?: string; reports?: boolean; overrides?: Record<string, unknown>[]; guestPanics?: RetriedPanic[] } = {}): BuildOutput {
  const region = opts.region ?? 'us-east-1';
  const { config, hash } = loadConfig({ overrides: [{ target, aws: { region } }, ...(opts.overrides ?? [])] });
  const dir = mkdtempSync(join(tmpdir(), `build-${target}-`));
  const info = imageInfoDir(target, dir);
  const buildId = '20260101T120000Z';
  const manifest = buildManifest({
    cfg: config,
    configHash: hash,
    ctx: { buildId, buildTime: '2026-01-01T12:00:00.000Z', gitSha: '0'.repeat(40), manifestDir: dir, firstbootDir: '', hardeningDir: '', keysDir: '', agent: { ref: '', digest: '', archive: '' } },
    flavor: { version: '1.6.6', modern: false },
    baseImage:
      target === 'local'
        ? { kind: 'local-base-disk', path: '/cache/base.qcow2', sha256: 'f'.repeat(64), kernel: '6.12.118+deb13-cloud-amd64', inputs_hash: '0123456789abcdef', reused: true, accelerator: 'tcg' }
        : { kind: 'ami', imageId: 'ami-0fedcba9876543210', name: 'debian-13-amd64-20260101-1', creationDate: '2026-01-01T00:00:00.000Z' },
    outputs: target === 'local' ? { qcow2: join(dir, 'image', 'syntropy-agent-debian13.qcow2'), qcow2_bytes: 959 * 2 ** 20 } : { amis: { [region]: AMI } },
    durations: { packer: 300, total: 320 },
    guestPanics: opts.guestPanics,
    dir: info,
    compliance: { hardened: passingReport(), baseline: null },
  });
  const manifestPath = join(dir, 'build-manifest.json');
  writeBuildManifest(manifestPath, manifest);
  if (opts.reports) {
    mkdirSync(join(dir, 'reports'), { recursive: true });
    writeReport(join(dir, 'reports'), 'compliance', passingReport());
    writeBootReport(join(dir, 'reports'), bootReport(buildId, target, [{ name: 'user-data', passed: true, ms: 1000, steps: [{ name: 'boot', ms: 1000, ok: true }], figures: {} }], ['user-data']));
  }
  return { dir, manifestPath, manifest };
}
