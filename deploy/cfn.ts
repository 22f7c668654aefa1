// Creating, updating and deleting the reference stack with CloudFormation directly (the template
// needs no CDK bootstrap: no assets, no bootstrap version rule), waiting with progress from the
// stack's events. Every call goes through awsCall (throttling retried, failures name the call).
import {
  CloudFormationClient,
  CreateStackCommand,
  DeleteStackCommand,
  DescribeStackEventsCommand,
  DescribeStacksCommand,
  UpdateStackCommand,
  type Parameter,
  type Stack,
  type StackEvent,
} from '@aws-sdk/client-cloudformation';
import { awsCall } from '../scripts/lib/aws-call.ts';

export interface TemplateParameter {
  name: string;
  type: string;
  default?: string;
  description?: string;
  allowedPattern?: string;
  allowedValues?: string[];
}

/** The template's parameters, in template order. */
export function templateParameters(template: Record<string, unknown>): TemplateParameter[] {
  const params = (template.Parameters ?? {}) as Record<string, { Type: string; Default?: unknown; Description?: string; AllowedPattern?: string; AllowedValues?: string[] }>;
  return Object.entries(params).map(([name, p]) => ({
    name,
    type: p.Type,
    default: p.Default === undefined ? undefined : String(p.Default),
    description: p.Description,
    allowedPattern: p.AllowedPattern,
    allowedValues: p.AllowedValues,
  }));
}

/** Checks `--param` values against the template: known names, allowed values and patterns. */
export function checkParameters(template: Record<string, unknown>, given: Record<string, string>): string[] {
  const known = new Map(templateParameters(template).map((p) => [p.name, p]));
  const problems: string[] = [];
  for (const [k, v] of Object.entries(given)) {
    const p = known.get(k);
    if (!p) {
      problems.push(`unknown parameter ${k} (known: ${[...known.keys()].join(', ')})`);
      continue;
    }
    if (p.allowedValues && !p.allowedValues.includes(v)) problems.push(`${k}=${JSON.stringify(v)}: must be one of ${p.allowedValues.join(', ')}`);
    if (p.allowedPattern && !new RegExp(p.allowedPattern).test(v)) problems.push(`${k}=${JSON.stringify(v)}: must match ${p.allowedPattern}`);
  }
  return problems;
}

const TERMINAL = /(_COMPLETE|_FAILED)$/;
const FAILED = /(FAILED|ROLLBACK_COMPLETE|ROLLBACK_FAILED)$/;

export interface StackDeps {
  cfn: CloudFormationClient;
  region: string;
  log: (l: string) => void;
  pollMs?: number;
  sleep?: (ms: number) => Promise<void>;
  timeoutMs?: number;
}

async function describe(d: StackDeps, name: string): Promise<Stack | null> {
  try {
    const r = await awsCall(d.region, 'CloudFormation DescribeStacks', () => d.cfn.send(new DescribeStacksCommand({ StackName: name })));
    return r.Stacks?.[0] ?? null;
  } catch (e) {
    if (/does not exist/.test((e as Error).message)) return null;
    throw e;
  }
}

/** Polls the stack until a terminal status, printing each new event once; returns the final stack. */
export async function waitForStack(d: StackDeps, name: string, since: Date): Promise<{ stack: Stack | null; events: StackEvent[] }> {
  const seen = new Set<string>();
  const events: StackEvent[] = [];
  const sleep = d.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  const deadline = Date.now() + (d.timeoutMs ?? 60 * 60_000);
  for (;;) {
    const stack = await describe(d, name);
    try {
      const ev = await awsCall(d.region, 'CloudFormation DescribeStackEvents', () => d.cfn.send(new DescribeStackEventsCommand({ StackName: stack?.StackId ?? name })));
      for (const e of [...(ev.StackEvents ?? [])].reverse()) {
        if (!e.EventId || seen.has(e.EventId) || (e.Timestamp && e.Timestamp < since)) continue;
        seen.add(e.EventId);
        events.push(e);
        d.log(`${e.LogicalResourceId} ${e.ResourceType} ${e.ResourceStatus}${e.ResourceStatusReason ? `: ${e.ResourceStatusReason}` : ''}`);
      }
    } catch (e) {
      if (!/does not exist/.test((e as Error).message)) throw e;
    }
    if (!stack || stack.StackStatus === 'DELETE_COMPLETE') return { stack: null, events };
    if (TERMINAL.test(stack.StackStatus ?? '')) return { stack, events };
    if (Date.now() > deadline) throw new Error(`stack ${name} still ${stack.StackStatus} after the timeout`);
    await sleep(d.pollMs ?? 5000);
  }
}

export interface DeployResult {
  action: 'create' | 'update' | 'none';
  status: string;
  outputs: Record<string, string>;
}

/** Creates the stack, or updates it if it exists; waits; fails with the events that failed. */
export async function deployStack(d: StackDeps, name: string, templateBody: string, params: Record<string, string>): Promise<DeployResult> {
  const parameters: Parameter[] = Object.entries(params).map(([ParameterKey, ParameterValue]) => ({ ParameterKey, ParameterValue }));
  const existing = await describe(d, name);
  const since = new Date(Date.now() - 1000);
  let action: DeployResult['action'];
  if (existing && existing.StackStatus !== 'DELETE_COMPLETE') {
    if (existing.StackStatus === 'ROLLBACK_COMPLETE') throw new Error(`stack ${name} is ROLLBACK_COMPLETE (its creation failed); delete it first: npm run deploy -- --delete`);
    try {
      await awsCall(d.region, 'CloudFormation UpdateStack', () => d.cfn.send(new UpdateStackCommand({ StackName: name, TemplateBody: templateBody, Parameters: parameters, Capabilities: ['CAPABILITY_IAM'] })));
    } catch (e) {
      if (/No updates are to be performed/.test((e as Error).message)) {
        d.log(`${name}: no changes`);
        return { action: 'none', status: existing.StackStatus ?? '', outputs: outputsOf(existing) };
      }
      throw e;
    }
    action = 'update';
  } else {
    await awsCall(d.region, 'CloudFormation CreateStack', () =>
      d.cfn.send(new CreateStackCommand({ StackName: name, TemplateBody: templateBody, Parameters: parameters, Capabilities: ['CAPABILITY_IAM'], OnFailure: 'ROLLBACK', Tags: [{ Key: 'syntropy:stack', Value: 'reference-deployment' }] })),
    );
    action = 'create';
  }
  d.log(`${name}: ${action} started`);
  const { stack, events } = await waitForStack(d, name, since);
  const status = stack?.StackStatus ?? 'DELETE_COMPLETE';
  if (FAILED.test(status) || !stack) {
    const why = events.filter((e) => /FAILED/.test(e.ResourceStatus ?? '')).map((e) => `${e.LogicalResourceId}: ${e.ResourceStatusReason ?? e.ResourceStatus}`);
    throw new Error(`stack ${name} ended ${status}${why.length ? `: ${why.join('; ')}` : ''}`);
  }
  return { action, status, outputs: outputsOf(stack) };
}

export async function deleteStack(d: StackDeps, name: string): Promise<boolean> {
  const existing = await describe(d, name);
  if (!existing) {
    d.log(`${name}: no such stack`);
    return false;
  }
  const since = new Date(Date.now() - 1000);
  await awsCall(d.region, 'CloudFormation DeleteStack', () => d.cfn.send(new DeleteStackCommand({ StackName: existing.StackId ?? name })));
  const { stack } = await waitForStack(d, existing.StackId ?? name, since);
  if (stack && stack.StackStatus !== 'DELETE_COMPLETE') throw new Error(`stack ${name} ended ${stack.StackStatus}`);
  return true;
}

function outputsOf(stack: Stack): Record<string, string> {
  return Object.fromEntries((stack.Outputs ?? []).map((o) => [o.OutputKey ?? '', o.OutputValue ?? '']));
}
