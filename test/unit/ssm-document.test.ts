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
import { DEFAULT_PORT_RANGE, PORT_RANGE_PATTERN, TAG_PATTERN } from '../../firstboot/src/validate.ts';

interface Param {
  type: string;
  default?: string;
  allowedPattern?: string;
  allowedValues?: string[];
  interpolationType?: string;
}
interface Doc {
  schemaVersion: string;
  parameters: Record<string, Param>;
  mainSteps: { action: string; inputs: Record<string, unknown> & { runCommand: string[] } }[];
}

const doc = parse(readFileSync(join(REPO, 'firstboot/ssm/SyntropyConfigureAgent.yaml'), 'utf8')) as Doc;

/**
 * Runs the document's script as SSM Agent would (AWS Systems Manager user guide, "Data elements
 * and parameters" and "Troubleshooting parameter handling issues"): {{ Name }} in the script is
 * replaced by the value; an agent >= 3.3.2746.0 also exports SSM_<Name> for each *parameter*
 * whose interpolationType is ENV_VAR; an older agent exports nothing.
 */
function runDocument(params: Record<string, string>, agent: 'current' | 'old' = 'current'): { code: number; argv: string[] } {
  const dir = mkdtempSync(join(tmpdir(), 'ssm-doc-'));
  const stub = join(dir, 'syntropy-firstboot');
  writeFileSync(stub, `#!/bin/sh\nfor a in "$@"; do printf '%s\\0' "$a"; done > ${dir}/argv\n`);
  chmodSync(stub, 0o755);
  const value = (k: string) => params[k] ?? doc.parameters[k]?.default ?? '';
  const script = doc.mainSteps[0]!.inputs.runCommand
    .join('\n')
    .replace(/\{\{\s*(\w+)\s*\}\}/g, (_m, k: string) => value(k))
    .replaceAll('/usr/sbin/syntropy-firstboot', stub);
  const env: Record<string, string> = { PATH: process.env.PATH ?? '' };
  if (agent === 'current') {
    for (const [k, p] of Object.entries(doc.parameters)) if (p.interpolationType === 'ENV_VAR') env[`SSM_${k}`] = value(k);
  }
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
  it('is a schema 2.2 Command document whose every parameter is ENV_VAR-interpolated (a parameter property, not a step input)', () => {
    expect(doc.schemaVersion).toBe('2.2');
    expect(doc.mainSteps).toHaveLength(1);
    expect(doc.mainSteps[0]!.action).toBe('aws:runShellScript');
    expect(doc.mainSteps[0]!.inputs).not.toHaveProperty('interpolationType');
    for (const [name, p] of Object.entries(doc.parameters)) expect(p.interpolationType, name).toBe('ENV_VAR');
  });

  it('uses {{ }} only in the documented fallback for older agents, quoted, for parameters whose constraint excludes shell syntax', () => {
    const lines = doc.mainSteps[0]!.inputs.runCommand;
    for (const line of lines.filter((l) => l.includes('{{'))) {
      const m = /^if \[ -z "\$\{SSM_(\w+)\+x\}" \]; then export SSM_\1="\{\{(\w+)\}\}"; fi$/.exec(line);
      expect(m, line).not.toBeNull();
      expect(m![1]).toBe(m![2]);
      const p = doc.parameters[m![1]!]!;
      const allowed = p.allowedValues ?? [];
      for (const bad of ['"', '$(id)', '`id`', 'a b', 'a;b', '\\']) {
        if (p.allowedPattern) expect(new RegExp(p.allowedPattern).test(bad), `${m![1]} accepts ${bad}`).toBe(false);
        else expect(allowed).not.toContain(bad);
      }
    }
    expect(Object.keys(doc.parameters).every((k) => lines.some((l) => l.includes(`{{${k}}}`)))).toBe(true);
  });

  it('hands over the same arguments on current and older SSM Agents', () => {
    const params = { TokenParameterName: '/t', PortRange: '40000-40010', AgentName: 'relay-1', Tags: 'edge,core', Mode: 'reconfigure' };
    expect(runDocument(params, 'old')).toEqual(runDocument(params, 'current'));
    expect(runDocument(params, 'old').code).toBe(0);
  });

  it('checks the port range with first boot\'s own rule: its pattern is the rule\'s syntax, its default the rule\'s default', () => {
    expect(doc.parameters.PortRange!.allowedPattern).toBe(PORT_RANGE_PATTERN);
    expect(doc.parameters.PortRange!.default).toBe(DEFAULT_PORT_RANGE);
    expect(doc.parameters.Tags!.allowedPattern).toBe(`^$|^${TAG_PATTERN}(,${TAG_PATTERN})*$`);
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
