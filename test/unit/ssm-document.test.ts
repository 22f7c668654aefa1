// The shipped SSM Command document: schema 2.2, every parameter typed and constrained,
// values passed as environment variables, and its script handing them over as separate
// arguments to syntropy-firstboot (run here with a recording stand-in for the binary).
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { parse } from 'yaml';
import { REPO } from '../../scripts/lib/paths.ts';
import { ConfigSchema } from '../../scripts/lib/config.ts';

interface Param {
  type: string;
  default?: string;
  allowedPattern?: string;
  allowedValues?: string[];
}
interface Doc {
  schemaVersion: string;
  parameters: Record<string, Param>;
  mainSteps: { action: string; inputs: { interpolationType: string; runCommand: string[] } }[];
}

const doc = parse(readFileSync(join(REPO, 'firstboot/ssm/SyntropyConfigureAgent.yaml'), 'utf8')) as Doc;

function runDocument(params: Record<string, string>): { code: number; argv: string[] } {
  const dir = mkdtempSync(join(tmpdir(), 'ssm-doc-'));
  const stub = join(dir, 'syntropy-firstboot');
  writeFileSync(stub, `#!/bin/sh\nfor a in "$@"; do printf '%s\\0' "$a"; done > ${dir}/argv\n`);
  chmodSync(stub, 0o755);
  const script = doc.mainSteps[0]!.inputs.runCommand.join('\n').replaceAll('/usr/sbin/syntropy-firstboot', stub);
  const env: Record<string, string> = { PATH: process.env.PATH ?? '' };
  for (const [k, p] of Object.entries(doc.parameters)) env[`SSM_${k}`] = params[k] ?? p.default ?? '';
  const r = spawnSync('sh', ['-c', script], { env, encoding: 'utf8' });
  let argv: string[] = [];
  try {
    argv = readFileSync(join(dir, 'argv'), 'utf8').split('\0').slice(0, -1);
  } catch {
    /* the stub did not run */
  }
  return { code: r.status ?? -1, argv };
}

describe('SSM document SyntropyConfigureAgent', () => {
  it('is a schema 2.2 Command document passing parameters as environment variables', () => {
    expect(doc.schemaVersion).toBe('2.2');
    expect(doc.mainSteps).toHaveLength(1);
    expect(doc.mainSteps[0]!.action).toBe('aws:runShellScript');
    expect(doc.mainSteps[0]!.inputs.interpolationType).toBe('ENV_VAR');
    // No {{ }} interpolation into the script: values arrive only as $SSM_* variables.
    expect(doc.mainSteps[0]!.inputs.runCommand.join('\n')).not.toMatch(/\{\{/);
  });

  it('constrains every parameter, and every default satisfies its own pattern', () => {
    for (const [name, p] of Object.entries(doc.parameters)) {
      expect(p.type, name).toBe('String');
      expect(p.allowedPattern ?? p.allowedValues, `${name} has no constraint`).toBeDefined();
      if (p.default !== undefined && p.allowedPattern) expect(new RegExp(p.allowedPattern).test(p.default), name).toBe(true);
      if (p.default !== undefined && p.allowedValues) expect(p.allowedValues).toContain(p.default);
    }
    expect(doc.parameters.PortRange!.default).toBe(ConfigSchema.parse({}).firstboot.default_port_range);
  });

  it('refuses shell metacharacters in its patterns', () => {
    for (const bad of ['$(reboot)', 'a;b', '`id`', 'x y', '../../etc/shadow;']) {
      expect(new RegExp(doc.parameters.AgentName!.allowedPattern!).test(bad)).toBe(false);
      expect(new RegExp(doc.parameters.Tags!.allowedPattern!).test(bad)).toBe(false);
    }
    expect(new RegExp(doc.parameters.TokenParameterName!.allowedPattern!).test('/x;reboot')).toBe(false);
  });

  it('runs configure non-interactively with the parameter name, never a token', () => {
    const r = runDocument({ TokenParameterName: '/syntropy/agent-token' });
    expect(r.code).toBe(0);
    expect(r.argv).toEqual(['configure', '--non-interactive', '--token-ssm-parameter', '/syntropy/agent-token', '--port-range', '51820-51919']);
  });

  it('adds the optional settings as separate arguments', () => {
    const r = runDocument({ TokenParameterName: '/t', PortRange: '40000-40010', AgentName: 'relay-1', Tags: 'edge,core', Mode: 'reconfigure' });
    expect(r.argv).toEqual(['reconfigure', '--non-interactive', '--token-ssm-parameter', '/t', '--port-range', '40000-40010', '--agent-name', 'relay-1', '--tags', 'edge,core']);
  });
});
