#!/usr/bin/env -S npx tsx
// `npm run deploy -- [--dry-run | --delete] [--stack-name N] [--publish-manifest F | --ami R=ami-...]
//                    [--param K=V[,K=V]...] [--region R]`
// The customer's reference deployment (deploy/stack.ts) as one CloudFormation stack; see
// README "Deploy the reference architecture" and docs/deployment.md.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { ConfigError, loadConfig } from './lib/config.ts';
import { runEntry } from './lib/cli/entry.ts';
import { info } from './lib/cli/log.ts';
import { REPO } from './lib/paths.ts';
import { readJsonContract } from '../contracts/parse.ts';
import { PublishManifestSchema } from '../contracts/publish-manifest.ts';
import { synthTemplate } from '../deploy/stack.ts';
import { checkParameters, deleteStack, deployStack, templateParameters } from '../deploy/cfn.ts';
import { rangeProblem } from '../firstboot/src/validate.ts';

const USAGE = `usage: npm run deploy -- [--dry-run | --delete] [--stack-name NAME] [--region R]
                       [--publish-manifest FILE | --ami REGION=ami-...] [--param KEY=VALUE[,KEY=VALUE]...]
Creates or updates the reference deployment stack (VPC in two AZs, two agents with route failover)
and waits for it, printing each stack event; --delete removes it. The AMI per region comes from a
publish manifest (default: <output_dir>/latest/publish-manifest.json) or --ami.
--dry-run prints the template's parameters and resources, writes the template to
<output_dir>/deploy/<stack>.template.json and calls no AWS API.
Parameters: ImageId, PortRange, TokenParameterName, SshSourceCidr, InstanceType, VpcCidr, RoutedCidr.`;

export function parseParams(flag: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of (flag ?? '').split(',').map((s) => s.trim()).filter(Boolean)) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new ConfigError(`--param expects KEY=VALUE, got ${JSON.stringify(kv)}`);
    out[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return out;
}

export function amisFrom(opts: { ami?: string; publishManifest?: string; defaultManifest: string }): Record<string, string> {
  if (opts.ami) {
    const m = /^([a-z]{2}(-[a-z]+)+-\d)=(ami-[0-9a-f]{8,17})$/.exec(opts.ami);
    if (!m) throw new ConfigError(`--ami expects REGION=ami-..., got ${JSON.stringify(opts.ami)}`);
    return { [m[1]!]: m[3]! };
  }
  const file = opts.publishManifest ?? opts.defaultManifest;
  if (!existsSync(file)) throw new ConfigError(`no publish manifest at ${file}: publish first, or pass --publish-manifest FILE or --ami REGION=ami-...`);
  const pm = readJsonContract(PublishManifestSchema, file);
  return Object.fromEntries(Object.entries(pm.regions).map(([r, x]) => [r, x.imageId]));
}

runEntry(import.meta.url, { usage: USAGE, extraBooleans: ['dry-run', 'delete'], extraStrings: ['stack-name', 'publish-manifest', 'ami', 'param'] }, async (cli) => {
  const { config } = loadConfig(cli.configInput);
  const stackName = (cli.flags['stack-name'] as string | undefined) ?? 'syntropy-reference';
  if (!/^[A-Za-z][A-Za-z0-9-]{0,127}$/.test(stackName)) throw new ConfigError(`--stack-name ${JSON.stringify(stackName)}: letters, digits and dashes, starting with a letter`);
  const region = config.aws.region;
  const cfn = new CloudFormationClient({ region });
  const log = (l: string) => info(l);
  if (cli.flags.delete) {
    if (cli.flags['dry-run']) {
      process.stdout.write(`would delete stack ${stackName} in ${region} (DeleteStack, then wait for DELETE_COMPLETE)\n`);
      return;
    }
    const deleted = await deleteStack({ cfn, region, log }, stackName);
    process.stdout.write(`${deleted ? 'deleted' : 'no stack'} ${stackName} in ${region}\n`);
    return;
  }
  const amis = amisFrom({
    ami: cli.flags.ami as string | undefined,
    publishManifest: cli.flags['publish-manifest'] ? resolve(String(cli.flags['publish-manifest'])) : undefined,
    defaultManifest: resolve(REPO, config.output_dir, 'latest', 'publish-manifest.json'),
  });
  const params = parseParams(cli.flags.param as string | undefined);
  const template = synthTemplate(amis);
  const problems = checkParameters(template, params);
  // The same rule first boot applies to the range (start <= end, within 1024-65535, >= 4 ports).
  const range = params.PortRange ?? '51820-51919';
  const rp = rangeProblem(range, { maxWidth: config.firstboot.max_port_range_width, sshPort: config.ssh.port });
  if (rp) problems.push(`PortRange=${range}: ${rp}`);
  if (problems.length) throw new ConfigError(problems.join('; '));
  if (!amis[region] && !params.ImageId) throw new ConfigError(`no AMI for ${region} (have ${Object.keys(amis).join(', ')}); pass --region, --ami or --param ImageId=...`);
  const body = JSON.stringify(template);
  if (cli.flags['dry-run']) {
    const dir = resolve(REPO, config.output_dir, 'deploy');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `${stackName}.template.json`);
    writeFileSync(file, `${JSON.stringify(template, null, 2)}\n`);
    const out = [`stack ${stackName} in ${region} (${body.length} bytes; template written to ${file})`, 'parameters:'];
    for (const p of templateParameters(template)) out.push(`  ${p.name} = ${params[p.name] ?? p.default ?? ''}${params[p.name] !== undefined ? '' : ' (default)'}  -- ${p.description ?? ''}`);
    out.push('AMI mapping (Marketplace replaces it with its copies):');
    for (const [r, a] of Object.entries(amis)) out.push(`  ${r}: ${a}`);
    out.push('resources:');
    for (const [id, r] of Object.entries((template.Resources ?? {}) as Record<string, { Type: string; Condition?: string }>)) out.push(`  ${id.padEnd(32)} ${r.Type}${r.Condition ? ` (if ${r.Condition})` : ''}`);
    process.stdout.write(`${out.join('\n')}\n`);
    return;
  }
  const r = await deployStack({ cfn, region, log }, stackName, body, params);
  process.stdout.write(`${JSON.stringify({ stack: stackName, region, ...r }, null, 2)}\n`);
});
