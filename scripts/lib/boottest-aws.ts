// Boot tests on EC2: each scenario launches the AMI on a fresh instance (IMDSv2 required, the
// boot-test instance profile, source/destination check off), waits for both status checks,
// reads the console for the first-boot banner, drives the instance through SSM (the shipped
// configure document, or shell for the checks) and ALWAYS terminates what it launched: on
// success, on failure and on Ctrl-C. Everything is tagged so `npm run clean` sweeps leftovers.
import {
  DescribeInstanceStatusCommand,
  GetConsoleOutputCommand,
  ModifyInstanceAttributeCommand,
  RebootInstancesCommand,
  RunInstancesCommand,
  TerminateInstancesCommand,
  EC2Client,
} from '@aws-sdk/client-ec2';
import { GetCommandInvocationCommand, SendCommandCommand, SSMClient } from '@aws-sdk/client-ssm';
import type { Config } from './config.ts';
import { awsCall } from './awscall.ts';
import { check, Recorder, type ScenarioResult } from './boottest.ts';
import { SsmHost } from '../../hardening/host.ts';
import { runChecks } from '../../hardening/runner.ts';
import { buildReport, type Report } from '../../hardening/report.ts';
import { catalogFor } from './hardening.ts';

export const AWS_SCENARIOS = ['dialogue', 'user-data', 'reboot', 'interrupted', 'compliance'];

export interface AwsBootDeps {
  ec2: EC2Client;
  ssm: SSMClient;
  sleep: (ms: number) => Promise<void>;
  /** Poll interval for status checks and commands. */
  pollMs: number;
}

interface ManifestLike {
  build_id: string;
  outputs: { amis?: { region: string; ami: string }[] };
}

const RANGE = '51820-51830';

export function userDataFor(cfg: Config): string {
  return ['#cloud-config', 'syntropy:', `  token_ssm_parameter: ${cfg.aws.boot_test.token_parameter}`, `  port_range: "${RANGE}"`, '  tags: [boot-test]', ''].join('\n');
}

/** Every instance this process launched and has not terminated yet (for Ctrl-C). */
export const launched = new Set<string>();

async function terminate(d: AwsBootDeps, region: string, id: string, log: (l: string) => void): Promise<void> {
  await awsCall(region, 'TerminateInstances', () => d.ec2.send(new TerminateInstancesCommand({ InstanceIds: [id] })), { sleep: d.sleep });
  launched.delete(id);
  log(`${id}: terminated`);
}

async function poll<T>(d: AwsBootDeps, what: string, timeoutMs: number, fn: () => Promise<T | null>): Promise<T> {
  let waited = 0;
  for (;;) {
    const v = await fn();
    if (v !== null) return v;
    if (waited >= timeoutMs) throw new Error(`${what}: not after ${Math.round(timeoutMs / 1000)}s`);
    await d.sleep(d.pollMs);
    waited += d.pollMs;
  }
}

async function shell(d: AwsBootDeps, region: string, id: string, commands: string[], timeoutMs: number): Promise<string> {
  const sent = await awsCall(region, 'SendCommand', () =>
    d.ssm.send(new SendCommandCommand({ InstanceIds: [id], DocumentName: 'AWS-RunShellScript', Parameters: { commands }, Comment: 'syntropy boot test' })),
  );
  return waitCommand(d, region, id, sent.Command?.CommandId, timeoutMs);
}

async function waitCommand(d: AwsBootDeps, region: string, id: string, commandId: string | undefined, timeoutMs: number): Promise<string> {
  if (!commandId) throw new Error(`${region}: SendCommand returned no command ID`);
  return poll(d, `command ${commandId} on ${id}`, timeoutMs, async () => {
    let inv;
    try {
      inv = await d.ssm.send(new GetCommandInvocationCommand({ CommandId: commandId, InstanceId: id }));
    } catch (e) {
      if ((e as Error).name === 'InvocationDoesNotExist') return null;
      throw new Error(`${region}: GetCommandInvocation failed: ${(e as Error).name}: ${(e as Error).message}`);
    }
    if (['Pending', 'InProgress', 'Delayed'].includes(inv.Status ?? 'Pending')) return null;
    if (inv.Status !== 'Success') throw new Error(`command on ${id} ended ${inv.Status}: ${(inv.StandardErrorContent ?? '').slice(0, 300)}`);
    return inv.StandardOutputContent ?? '';
  });
}

async function statusJson(d: AwsBootDeps, region: string, id: string, timeoutMs: number): Promise<{ configured: boolean; source: string | null; container_running: boolean | null; bound_port: number | null }> {
  const out = await shell(d, region, id, ['syntropy-firstboot status --json'], timeoutMs);
  try {
    return JSON.parse(out) as { configured: boolean; source: string | null; container_running: boolean | null; bound_port: number | null };
  } catch {
    throw new Error(`status on ${id} did not print JSON: ${out.slice(0, 200)}`);
  }
}

async function runOne(cfg: Config, m: ManifestLike, name: string, d: AwsBootDeps, log: (l: string) => void): Promise<ScenarioResult> {
  const region = cfg.aws.region;
  const bt = cfg.aws.boot_test;
  const timeout = bt.timeout_minutes * 60_000;
  const rec = new Recorder(`aws:${name}`, log);
  const t0 = Date.now();
  let id: string | null = null;
  let compliance: Report | undefined;
  try {
    const ami = m.outputs.amis?.find((a) => a.region === region)?.ami;
    if (!ami) throw new Error(`the build manifest has no AMI in ${region}`);
    const withUserData = name !== 'dialogue' && name !== 'interrupted';
    id = await rec.step('launch (IMDSv2 required, boot-test profile)', async () => {
      const tags = [
        { Key: 'Name', Value: `syntropy-boot-test-${name}` },
        { Key: 'syntropy:role', Value: 'boot-test' },
        { Key: 'syntropy:build-id', Value: m.build_id },
        { Key: 'syntropy:scenario', Value: name },
      ];
      const res = await awsCall(region, 'RunInstances', () =>
        d.ec2.send(
          new RunInstancesCommand({
            ImageId: ami,
            InstanceType: bt.instance_type as never,
            MinCount: 1,
            MaxCount: 1,
            IamInstanceProfile: { Name: bt.instance_profile },
            MetadataOptions: { HttpTokens: 'required', HttpEndpoint: 'enabled', HttpPutResponseHopLimit: 1 },
            ...(cfg.aws.subnet_id ? { SubnetId: cfg.aws.subnet_id } : {}),
            ...(withUserData ? { UserData: Buffer.from(userDataFor(cfg)).toString('base64') } : {}),
            TagSpecifications: [
              { ResourceType: 'instance', Tags: tags },
              { ResourceType: 'volume', Tags: tags },
            ],
          }),
        ),
      );
      const iid = res.Instances?.[0]?.InstanceId;
      if (!iid) throw new Error(`${region}: RunInstances returned no instance`);
      launched.add(iid);
      return iid;
    }, (v) => v);
    const iid = id;
    await rec.step('source/destination check off (the instance routes)', () =>
      awsCall(region, 'ModifyInstanceAttribute', () => d.ec2.send(new ModifyInstanceAttributeCommand({ InstanceId: iid, SourceDestCheck: { Value: false } }))),
    );
    const waitOk = () =>
      poll(d, `status checks of ${iid}`, timeout, async () => {
        const st = await awsCall(region, 'DescribeInstanceStatus', () => d.ec2.send(new DescribeInstanceStatusCommand({ InstanceIds: [iid], IncludeAllInstances: true })));
        const s = st.InstanceStatuses?.[0];
        if (s?.InstanceState?.Name === 'terminated' || s?.InstanceState?.Name === 'stopped') throw new Error(`${iid} is ${s.InstanceState.Name}`);
        return s?.InstanceStatus?.Status === 'ok' && s?.SystemStatus?.Status === 'ok' ? true : null;
      });
    await rec.step('both status checks ok', waitOk);
    await rec.step('console shows the first-boot banner', async () => {
      const text = await poll(d, `first-boot banner on the console of ${iid}`, timeout, async () => {
        const out = await awsCall(region, 'GetConsoleOutput', () => d.ec2.send(new GetConsoleOutputCommand({ InstanceId: iid, Latest: true })));
        const t = out.Output ? Buffer.from(out.Output, 'base64').toString('utf8') : '';
        return /Syntropy agent/i.test(t) ? t : null;
      });
      if (name === 'dialogue') check(/agent token/i.test(text), 'the console does not offer the dialogue on an instance without user data');
    });
    if (name === 'dialogue' || name === 'interrupted') {
      await rec.step(`configure through the ${bt.ssm_document} document`, async () => {
        const sent = await awsCall(region, 'SendCommand', () =>
          d.ssm.send(new SendCommandCommand({ InstanceIds: [iid], DocumentName: bt.ssm_document, Parameters: { TokenParameterName: [bt.token_parameter], PortRange: [RANGE], Tags: ['boot-test'] } })),
        );
        if (name === 'interrupted') {
          // Cut power while the document applies: a hard reboot from the hypervisor.
          await d.sleep(d.pollMs);
          await awsCall(region, 'RebootInstances', () => d.ec2.send(new RebootInstancesCommand({ InstanceIds: [iid] })));
          return;
        }
        await waitCommand(d, region, iid, sent.Command?.CommandId, timeout);
      });
    }
    if (name === 'interrupted') {
      await rec.step('back up after the cut', waitOk);
      await rec.step('fully configured or cleanly unconfigured', async () => {
        const out = await shell(d, region, iid, ['s=$(syntropy-firstboot status --json); e=$(test -e /etc/syntropy/agent.env && echo 1 || echo 0); j=$(test -e /var/lib/syntropy/firstboot/apply.journal && echo 1 || echo 0); c=$(docker inspect -f "{{.State.Running}}" syntropy-agent 2>/dev/null || echo absent); printf "%s\\nENV=%s JOURNAL=%s CONTAINER=%s\\n" "$s" "$e" "$j" "$c"'], timeout);
        const st = JSON.parse(out.slice(0, out.lastIndexOf('}') + 1)) as { configured: boolean };
        const m2 = /ENV=(\d) JOURNAL=(\d) CONTAINER=(\S+)/.exec(out);
        check(!!m2, `unexpected check output: ${out.slice(-200)}`);
        const complete = st.configured && m2![1] === '1' && m2![2] === '0' && m2![3] === 'true';
        const clean = !st.configured && m2![1] === '0' && m2![2] === '0' && m2![3] === 'absent';
        rec.figures.outcome = complete ? 'configured' : clean ? 'unconfigured' : 'in-between';
        check(complete || clean, `in between: ${out.trim()}`);
      });
    } else {
      await rec.step('configured, agent running', async () => {
        const st = await poll(d, `configuration of ${iid}`, timeout, async () => {
          const s = await statusJson(d, region, iid, timeout);
          return s.configured && s.container_running ? s : null;
        });
        check(st.source === (name === 'dialogue' ? 'ssm' : 'user-data'), `configured from ${st.source}`);
      });
    }
    if (name === 'reboot') {
      await rec.step('reboot', () => awsCall(region, 'RebootInstances', () => d.ec2.send(new RebootInstancesCommand({ InstanceIds: [iid] }))));
      await rec.step('status checks ok after reboot', waitOk);
      await rec.step('agent back, no second configuration', async () => {
        const st = await poll(d, `agent after reboot on ${iid}`, timeout, async () => {
          const s = await statusJson(d, region, iid, timeout);
          return s.container_running ? s : null;
        });
        check(st.configured && st.source === 'user-data', `after reboot: ${JSON.stringify(st)}`);
      });
    }
    if (name === 'compliance') {
      compliance = await rec.step('CIS + Marketplace checks through SSM', async () => {
        const out = await runChecks(new SsmHost(d.ssm, iid, { pollMs: d.pollMs }), catalogFor(cfg), { live: true });
        return buildReport(out.results, { phase: 'EC2 instance', target: `${region}/${iid}`, mode: 'live', probeMs: out.probeMs, totalMs: out.totalMs, roundTrips: out.roundTrips });
      }, (r) => `${r.summary.automated_l1_passing}/${r.summary.automated_l1} passing in ${r.timing.round_trips} round trip(s)`);
      rec.figures.compliance_ms = compliance.timing.total_ms;
      check(compliance.passed, `failing: ${compliance.results.filter((x) => x.result === 'FAIL' || x.result === 'ERROR').map((x) => x.id).join(', ')}`);
    }
    return { name, passed: true, ms: Date.now() - t0, steps: rec.steps, figures: rec.figures, compliance };
  } catch (e) {
    return { name, passed: false, ms: Date.now() - t0, steps: rec.steps, figures: rec.figures, error: (e as Error).message, compliance };
  } finally {
    if (id) {
      try {
        await terminate(d, region, id, log);
      } catch (e) {
        log(`${id}: TERMINATE FAILED (${(e as Error).message}); npm run clean will sweep it by its tags`);
      }
    }
  }
}

export async function runAwsBootTest(
  cfg: Config,
  m: ManifestLike,
  scenarios: string[],
  opts: { log: (l: string) => void; parallel: number; deps?: Partial<AwsBootDeps> },
): Promise<ScenarioResult[]> {
  const d: AwsBootDeps = {
    ec2: opts.deps?.ec2 ?? new EC2Client({ region: cfg.aws.region }),
    ssm: opts.deps?.ssm ?? new SSMClient({ region: cfg.aws.region }),
    sleep: opts.deps?.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms))),
    pollMs: opts.deps?.pollMs ?? 10_000,
  };
  // Ctrl-C: terminate everything still running before exiting.
  const onSignal = () => {
    const ids = [...launched];
    opts.log(`interrupted: terminating ${ids.join(', ') || 'nothing'}`);
    void Promise.allSettled(ids.map((id) => terminate(d, cfg.aws.region, id, opts.log))).then(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const results: ScenarioResult[] = [];
    for (let i = 0; i < scenarios.length; i += opts.parallel) {
      results.push(...(await Promise.all(scenarios.slice(i, i + opts.parallel).map((s) => runOne(cfg, m, s, d, opts.log)))));
    }
    return results;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
