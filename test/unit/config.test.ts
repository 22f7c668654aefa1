import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, ConfigSchema, configHash, loadConfig, mergeLayers, parseSetFlag, readConfigFile } from '../../scripts/lib/config.ts';
import { parseCli } from '../../scripts/lib/cli/args.ts';
import { REPO } from '../../scripts/lib/paths.ts';

function tmpYaml(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
  const file = join(dir, 'build.yaml');
  writeFileSync(file, text);
  return file;
}

function loadErr(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('config defaults', () => {
  it('builds the local target with no input at all', () => {
    const { config } = loadConfig({ overrides: [] });
    expect(config.target).toBe('local');
    expect(config.local.accelerator).toBe('auto');
    expect(config.aws.encrypt_boot).toBe(false);
    expect(config.agent.tag).toBe('stable');
    expect(config.docker.address_pools).toEqual([{ base: '172.30.0.0/16', size: 24 }]);
  });

  it('config/example.yaml documents exactly the built-in defaults', () => {
    const fromFile = ConfigSchema.parse(readConfigFile(join(REPO, 'config', 'example.yaml')));
    expect(fromFile).toEqual(ConfigSchema.parse({}));
  });
});

describe('config layering', () => {
  it('applies defaults, then the file, then flags in command-line order', () => {
    const file = tmpYaml('target: aws\nimage:\n  version: 2.0.0\n  disk_gib: 12\naws:\n  region: eu-west-1\n');
    const cli = parseCli(['--config', file, '--set', 'image.disk_gib=16', '--region', 'eu-central-1', '--set', 'aws.region=eu-north-1']);
    const { config, sources } = loadConfig(cli.configInput);
    expect(config.target).toBe('aws'); // file
    expect(config.image.version).toBe('2.0.0'); // file
    expect(config.image.name).toBe('syntropy-agent-debian13'); // default kept beside file keys
    expect(config.image.disk_gib).toBe(16); // flag over file
    expect(config.aws.region).toBe('eu-north-1'); // the later flag wins
    expect(sources).toEqual(['defaults', file, 'command line']);
  });

  it('replaces lists rather than appending to them', () => {
    expect(mergeLayers({ a: [1, 2], b: { c: 1 } }, { a: [3], b: { d: 2 } })).toEqual({ a: [3], b: { c: 1, d: 2 } });
  });

  it('parses --set values as YAML scalars and lists', () => {
    expect(parseSetFlag('local.cpus=4')).toEqual({ local: { cpus: 4 } });
    expect(parseSetFlag('aws.ami_users=["123456789012"]')).toEqual({ aws: { ami_users: ['123456789012'] } });
    expect(() => parseSetFlag('novalue')).toThrow(/key.path=value/);
    expect(() => parseSetFlag('Bad-Key=1')).toThrow(/dotted path/);
  });

  it('hashes the resolved config stably', () => {
    const a = loadConfig({ overrides: [] }).config;
    const b = loadConfig({ overrides: [{ image: { disk_gib: 8 } }] }).config;
    expect(configHash(a)).toBe(configHash(b));
    expect(configHash(a)).not.toBe(configHash(loadConfig({ overrides: [{ image: { disk_gib: 9 } }] }).config));
  });
});

describe('config errors name the field and the allowed values', () => {
  it('rejects an unknown enum value, listing the choices', () => {
    const msg = loadErr(() => loadConfig({ overrides: [{ local: { accelerator: 'hvf' } }] }));
    expect(msg).toContain('local.accelerator: expected one of auto, kvm, tcg; got "hvf"');
  });

  it('rejects unknown keys at any depth, listing the allowed keys', () => {
    const msg = loadErr(() => loadConfig({ configFile: tmpYaml('image:\n  nmae: x\n') }));
    expect(msg).toContain('image.nmae: unknown key (allowed here: name, version, disk_gib)');
    const top = loadErr(() => loadConfig({ configFile: tmpYaml('targte: aws\n') }));
    expect(top).toMatch(/targte: unknown key \(allowed here: target, output_dir, image,/);
  });

  it('rejects wrong types and out-of-range numbers', () => {
    expect(loadErr(() => loadConfig({ overrides: [{ image: { disk_gib: 'big' } }] }))).toContain('image.disk_gib: expected number, got string');
    expect(loadErr(() => loadConfig({ overrides: [{ image: { disk_gib: 2 } }] }))).toMatch(/image\.disk_gib: .*4/);
    expect(loadErr(() => loadConfig({ overrides: [{ ssh: { port: 70000 } }] }))).toMatch(/ssh\.port: .*65535/);
  });

  it('rejects malformed values with a description of the expected form', () => {
    expect(loadErr(() => loadConfig({ overrides: [{ agent: { digest: 'sha256:xyz' } }] }))).toContain('agent.digest');
    expect(loadErr(() => loadConfig({ overrides: [{ aws: { region: 'mars' } }] }))).toContain('aws.region: must be an AWS region');
    expect(loadErr(() => loadConfig({ overrides: [{ image: { version: 'v1' } }] }))).toContain('image.version: must be a semantic version');
  });

  it('rejects Docker address pools that overlap the agent overlay', () => {
    const msg = loadErr(() => loadConfig({ overrides: [{ docker: { address_pools: [{ base: '10.0.0.0/8', size: 24 }] } }] }));
    expect(msg).toContain("docker.address_pools.0.base: overlaps the agent's overlay network 10.69.0.0/16");
  });

  it('rejects a KMS key without encryption', () => {
    expect(loadErr(() => loadConfig({ overrides: [{ aws: { kms_key_id: 'alias/x' } }] }))).toContain('aws.kms_key_id');
  });

  it('reports malformed YAML with file, line and column', () => {
    const file = tmpYaml('image:\n  name: ok\n   version: [\n');
    expect(loadErr(() => loadConfig({ configFile: file }))).toMatch(new RegExp(`malformed YAML in ${file}:\\d+:\\d+`));
  });

  it('rejects duplicate keys, a non-mapping document and a missing file', () => {
    expect(loadErr(() => loadConfig({ configFile: tmpYaml('target: aws\ntarget: local\n') }))).toMatch(/malformed YAML/);
    expect(loadErr(() => loadConfig({ configFile: tmpYaml('- a\n- b\n') }))).toContain('must hold a mapping');
    expect(loadErr(() => loadConfig({ configFile: '/nonexistent/build.yaml' }))).toContain('cannot read config file /nonexistent/build.yaml: ENOENT');
  });

  it('rejects unknown command-line flags, naming the allowed ones', () => {
    expect(loadErr(() => parseCli(['--acel', 'tcg']))).toMatch(/Unknown option '--acel'.*--accel/);
  });
});
