import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { loadConfig } from '../../scripts/lib/config.ts';
import { packerVars, parsePackerVersion, provisionerEnv, provisionerValues, PROVISIONER_VARS, stageTemplates, stripModernOnly, type BuildContext } from '../../scripts/lib/bake/packer.ts';
import { REPO } from '../../scripts/lib/paths.ts';
import { accelArgs, TCG_ARGS } from '../../scripts/lib/guest/qemu.ts';

const DIGEST = `sha256:${'a'.repeat(64)}`;

function ctx(withLocal = true): BuildContext {
  return {
    buildId: '20260101T000000Z',
    buildTime: '2026-01-01T00:00:00.000Z',
    gitSha: 'abc123',
    manifestDir: '/out/b',
    firstbootDir: '/out/b/stage/firstboot',
    hardeningDir: '/out/b/stage/hardening',
    keysDir: '/out/b/stage/keys',
    agent: { ref: 'syntropy-agent-test-double:local', digest: DIGEST, archive: '/cache/agent.tar' },
    local: withLocal
      ? {
          baseDisk: '/cache/base.qcow2',
          baseDiskSha256: 'f'.repeat(64),
          accel: 'tcg',
          netdev: 'user,id=user.0,hostfwd=tcp:127.0.0.1:{{ .SSHHostPort }}-:22',
          smbios: 'type=1,manufacturer=Amazon EC2',
          serialLog: '/out/b/serial.log',
          outputDir: '/out/b/image',
          sshKeyFile: '/out/b/stage/key/id_ed25519',
          layer: { key: '0123456789abcdef', disk: '/cache/layers/0123456789abcdef/layer.qcow2', sha256: 'e'.repeat(64), outputDir: '/cache/layers/.tmp-0123456789abcdef-1' },
        }
      : undefined,
  };
}

/** Variable names and whether they have a default, read from the HCL itself. */
function declaredVariables(): Map<string, boolean> {
  const hcl = readFileSync(join(REPO, 'packer', 'variables.pkr.hcl'), 'utf8');
  const out = new Map<string, boolean>();
  for (const block of hcl.split(/^variable /m).slice(1)) {
    const name = /^"([a-z0-9_]+)"/.exec(block)![1]!;
    out.set(name, /^\s*default\s*=/m.test(block.split(/^}/m)[0]!));
  }
  return out;
}

describe('config -> Packer variables', () => {
  const declared = declaredVariables();

  for (const target of ['local', 'aws'] as const) {
    it(`${target}: every emitted variable is declared and every required one is set`, () => {
      const { config } = loadConfig({ overrides: [{ target }] });
      const vars = packerVars(config, ctx(target === 'local'));
      for (const k of Object.keys(vars)) expect(declared.has(k), `undeclared variable ${k}`).toBe(true);
      for (const [k, hasDefault] of declared) if (!hasDefault) expect(vars, `required ${k}`).toHaveProperty(k);
    });
  }

  it('carries config values through unchanged', () => {
    const { config } = loadConfig({
      overrides: [{ image: { name: 'acme-relay', version: '3.1.4', disk_gib: 20 }, local: { cpus: 4, memory_mib: 3072 } }],
    });
    const v = packerVars(config, ctx());
    expect(v).toMatchObject({ image_name: 'acme-relay', image_version: '3.1.4', disk_gib: 20, qemu_cpus: 4, qemu_memory_mib: 3072, qemu_accelerator: 'tcg' });
    const aws = loadConfig({
      overrides: [{ target: 'aws', aws: { region: 'eu-west-1', ami_regions: ['eu-central-1'], ami_users: ['123456789012'], encrypt_boot: true } }],
    }).config;
    expect(packerVars(aws, ctx(false))).toMatchObject({
      aws_region: 'eu-west-1',
      aws_ami_regions: ['eu-central-1'],
      aws_ami_users: ['123456789012'],
      aws_encrypt_boot: true,
      aws_source_ami_owner: '136693071363',
    });
  });

  it('hands each provisioner only the values it reads, and nothing secret', () => {
    const { config } = loadConfig({ overrides: [{ docker: { log_max_size: '20m' }, hardening: { enabled: false } }] });
    const env = provisionerEnv(config, ctx());
    expect(env['install-docker.sh']).toEqual([
      'SYNTROPY_STAGING=/var/tmp/syntropy-build',
      'DOCKER_ADDRESS_POOLS=[{"base":"172.30.0.0/16","size":24}]',
      'DOCKER_LOG_MAX_SIZE=20m',
      'DOCKER_LOG_MAX_FILE=3',
      'DOCKER_SOURCE=debian',
      'DOCKER_CE_REPO=https://download.docker.com/linux/debian',
      'DOCKER_CE_SUITE=trixie',
    ]);
    expect(env['preload-agent.sh']).toContain(`AGENT_DIGEST=${DIGEST}`);
    expect(env['harden.sh']).toContain('HARDENING_ENABLED=false');
    expect(env['validate.sh']).toEqual([]);
    expect(JSON.stringify(env)).not.toMatch(/TOKEN/i);
    expect(packerVars(config, ctx()).provisioner_env).toEqual(env);
  });

  it('the table of provisioner variables is what each script really reads, and every script runs', () => {
    const hcl = readFileSync(join(REPO, 'packer/build.pkr.hcl'), 'utf8');
    const known = new Set(Object.keys(provisionerValues(loadConfig({}).config, ctx())));
    for (const [script, vars] of Object.entries(PROVISIONER_VARS)) {
      const text = readFileSync(join(REPO, 'packer/provisioners', script), 'utf8');
      const used = [...new Set([...text.matchAll(/\$\{?([A-Z][A-Z0-9_]*)/g)].map((m) => m[1]!).filter((v) => known.has(v)))].sort();
      expect(used, script).toEqual([...vars].sort());
      expect(hcl, `${script} has its own provisioner with its own environment`).toContain(`environment_vars = var.provisioner_env["${script}"]\n    script           = "\${var.repo_root}/packer/provisioners/${script}"`);
    }
    const scripts = readdirSync(join(REPO, 'packer/provisioners')).filter((f) => f.endsWith('.sh'));
    expect(scripts.filter((s) => !(s in PROVISIONER_VARS)).sort()).toEqual([]);
  });

  it("boot the build guest with the same QEMU accelerator and CPU model as every other local guest", () => {
    // Packer's template cannot import TypeScript: the two lists are kept equal here. Under TCG the
    // CPU model must offer RDRAND (scripts/lib/guest/qemu.ts says why).
    const hcl = readFileSync(join(REPO, 'packer', 'locals.pkr.hcl'), 'utf8');
    const m = /qemu_accel_args = var\.qemu_accelerator == "kvm" \? (\[.*\]) : (\[.*\])\n/.exec(hcl);
    expect(m, 'qemu_accel_args in packer/locals.pkr.hcl').not.toBeNull();
    expect(JSON.parse(m![1]!)).toEqual(accelArgs('kvm'));
    expect(JSON.parse(m![2]!)).toEqual(accelArgs('tcg'));
    expect(TCG_ARGS.flat()).toContain('qemu64,+rdrand');
  });

  it('refuses the local target without a local context', () => {
    const { config } = loadConfig({});
    expect(() => packerVars(config, ctx(false))).toThrow(/local build context/);
  });
});

describe('Packer flavours', () => {
  it('reads the version and tells 1.6 from plugin-era Packer', () => {
    expect(parsePackerVersion('Packer v1.6.6')).toEqual({ version: '1.6.6', modern: false });
    expect(parsePackerVersion('Packer v1.11.2\n\nYour version...')).toEqual({ version: '1.11.2', modern: true });
    expect(parsePackerVersion('1.7.0')).toEqual({ version: '1.7.0', modern: true });
    expect(() => parsePackerVersion('nonsense')).toThrow(/cannot read/);
  });

  it('strips modern-only spans and rejects unbalanced markers', () => {
    const src = 'a\n  # packer-compat: modern-only begin\n  imds_support = "v2.0"\n  # packer-compat: modern-only end\nb';
    expect(stripModernOnly(src, 'x')).toBe('a\nb');
    expect(() => stripModernOnly('  # packer-compat: modern-only begin\nx', 'f.hcl')).toThrow(/not closed/);
    expect(() => stripModernOnly('  # packer-compat: modern-only end', 'f.hcl')).toThrow(/without begin/);
  });

  it('stages a 1.6 template set without plugin-era options, and a modern one with required_plugins', () => {
    const legacy = mkdtempSync(join(tmpdir(), 'pk-legacy-'));
    stageTemplates(legacy, { version: '1.6.6', modern: false });
    const legacyText = readdirSync(legacy).map((f) => readFileSync(join(legacy, f), 'utf8')).join('\n');
    expect(legacyText).not.toMatch(/imds_support|metadata_options|temporary_security_group_source_public_ip|required_plugins|regex\(/);
    const modern = mkdtempSync(join(tmpdir(), 'pk-modern-'));
    const files = stageTemplates(modern, { version: '1.11.2', modern: true });
    expect(files).toContain('required_plugins.pkr.hcl');
    const modernText = files.map((f) => readFileSync(join(modern, f), 'utf8')).join('\n');
    expect(modernText).toContain('imds_support = "v2.0"');
    expect(modernText).toContain('http_tokens                 = "required"');
    expect(modernText).toContain('source  = "github.com/hashicorp/qemu"');
  });
});

describe('Packer templates', () => {
  it('are formatted (packer fmt -check)', () => {
    for (const dir of ['packer', 'packer/plugins']) {
      const r = spawnSync('packer', ['fmt', '-check', join(REPO, dir)], { encoding: 'utf8' });
      expect(r.status, `${dir}: ${r.stdout}${r.stderr}`).toBe(0);
    }
  });

  for (const target of ['local', 'aws'] as const) {
    it(`validate with the installed Packer for the ${target} source`, async () => {
      const out = spawnSync('packer', ['version'], { encoding: 'utf8' });
      const flavor = parsePackerVersion(out.stdout);
      const dir = mkdtempSync(join(tmpdir(), 'pk-validate-'));
      stageTemplates(dir, flavor);
      const { config } = loadConfig({ overrides: [{ target, aws: { ssh_source_cidrs: ['203.0.113.7/32'] } }] });
      const c = ctx(target === 'local');
      // validate checks that uploaded files exist: point them at real files of the repo.
      c.agent.archive = join(REPO, 'package.json');
      c.firstbootDir = join(REPO, 'firstboot');
      c.hardeningDir = join(REPO, 'hardening');
      c.keysDir = join(REPO, 'packer', 'keys');
      if (c.local) {
        c.local.baseDisk = join(REPO, 'package.json');
        c.local.layer.disk = join(REPO, 'package.json');
        c.local.sshKeyFile = join(dir, 'id_ed25519');
        spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', c.local.sshKeyFile]);
      }
      const varFile = join(dir, 'v.pkrvars.json');
      writeFileSync(varFile, JSON.stringify(packerVars(config, c)));
      // The local target is two guests: the hardened layer, then the image from it.
      for (const only of target === 'local' ? ['qemu.layer', 'qemu.local'] : ['amazon-ebs.aws']) {
        const r = spawnSync('packer', ['validate', `-only=${only}`, `-var-file=${varFile}`, '.'], { cwd: dir, encoding: 'utf8', env: { ...process.env, CHECKPOINT_DISABLE: '1' } });
        expect(r.status, `${only}: ${r.stdout}${r.stderr}`).toBe(0);
      }
    });
  }
});
