// Boot tests on EC2: each scenario launches the AMI on a fresh instance (IMDSv2 required, the
// boot-test instance profile, source/destination check off), waits for both status checks,
// reads the console for the first-boot banner, drives the instance through SSM (the shipped
// configure document, or shell for the checks) and ALWAYS terminates what it launched: on
// success, on failure and on Ctrl-C. Everything is tagged so `npm run clean` sweeps leftovers.
// The scenarios are a table, like the local ones (local.ts): what the launch carries, then steps.
import {
  DescribeInstancesCommand,
  DescribeInstanceStatusCommand,
  GetConsoleOutputCommand,
  ModifyInstanceAttributeCommand,
  RebootInstancesCommand,
  RunInstancesCommand,
  StartInstancesCommand,
  StopInstancesCommand,
  TerminateInstancesCommand,
  EC2Client,
} from '@aws-sdk/client-ec2';
import { DescribeInstanceInformationCommand, GetCommandInvocationCommand, SendCommandCommand, SSMClient } from '@aws-sdk/client-ssm';
import type { Config } from '../config.ts';
import { awsCall, NOT_YET } from '../aws-call.ts';
import { check, checkBootEnded, recordScenario, syntropyUserData, TEST_RANGE, type Recorder, type ScenarioResult } from './common.ts';
import { SsmHost } from '../../../hardening/host.ts';
import { runChecks } from '../../../hardening/runner.ts';
import { buildReport } from '../../../hardening/report.ts';
import { catalogFor } from '../compliance.ts';
import { amis, type BuildManifest } from '../../../contracts/build-manifest.ts';

export interface AwsBootDeps {
  ec2: EC2Client;
  ssm: SSMClient;
  sleep: (ms: number) => Promise<void>;
  /** Poll interval for status checks and commands. */
  pollMs: number;
}

export function userDataFor(cfg: Config): string {
  return ['#cloud-config', ...syntropyUserData(cfg.aws.boot_test.token_parameter, TEST_RANGE), ''].join('\n');
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

interface FirstbootStatus {
  configured: boolean;
  source: string | null;
  container_running: boolean | null;
  bound_port: number | null;
}

/** One launched instance, and what a scenario step can do with it. */
class AwsRun {
  constructor(
    readonly cfg: Config,
    readonly d: AwsBootDeps,
    readonly region: string,
    readonly id: string,
    readonly rec: Recorder,
  ) {}

  get timeout(): number {
    return this.cfg.aws.boot_test.timeout_minutes * 60_000;
  }

  /** The instance's state and status checks (IncludeAllInstances: stopped ones too). */
  async instanceStatus() {
    const st = await awsCall(this.region, 'DescribeInstanceStatus', () => this.d.ec2.send(new DescribeInstanceStatusCommand({ InstanceIds: [this.id], IncludeAllInstances: true })));
    return st.InstanceStatuses?.[0];
  }

  /** Both status checks ok; a stopped or terminated instance fails at once. */
  statusOk(): Promise<true> {
    return poll(this.d, `status checks of ${this.id}`, this.timeout, async () => {
      const s = await this.instanceStatus();
      if (s?.InstanceState?.Name === 'terminated' || s?.InstanceState?.Name === 'stopped') throw new Error(`${this.id} is ${s.InstanceState.Name}`);
      return s?.InstanceStatus?.Status === 'ok' && s?.SystemStatus?.Status === 'ok' ? true : null;
    });
  }

  /** SendCommand to an instance SSM does not list as Online yet fails with InvalidInstanceId. */
  ssmOnline(): Promise<true> {
    return poll(this.d, `SSM Agent on ${this.id} to be Online`, this.timeout, async () => {
      const info = await awsCall(this.region, 'DescribeInstanceInformation', () =>
        this.d.ssm.send(new DescribeInstanceInformationCommand({ Filters: [{ Key: 'InstanceIds', Values: [this.id] }] })),
      );
      return info.InstanceInformationList?.[0]?.PingStatus === 'Online' ? true : null;
    });
  }

  async waitCommand(commandId: string | undefined): Promise<string> {
    if (!commandId) throw new Error(`${this.region}: SendCommand returned no command ID`);
    return poll(this.d, `command ${commandId} on ${this.id}`, this.timeout, async () => {
      let inv;
      try {
        inv = await this.d.ssm.send(new GetCommandInvocationCommand({ CommandId: commandId, InstanceId: this.id }));
      } catch (e) {
        if ((e as Error).name === 'InvocationDoesNotExist') return null;
        throw new Error(`${this.region}: GetCommandInvocation failed: ${(e as Error).name}: ${(e as Error).message}`);
      }
      if (['Pending', 'InProgress', 'Delayed'].includes(inv.Status ?? 'Pending')) return null;
      if (inv.Status !== 'Success') throw new Error(`command on ${this.id} ended ${inv.Status}: ${(inv.StandardErrorContent ?? '').slice(0, 300)}`);
      return inv.StandardOutputContent ?? '';
    });
  }

  async shell(commands: string[]): Promise<string> {
    const sent = await awsCall(this.region, 'SendCommand', () =>
      this.d.ssm.send(new SendCommandCommand({ InstanceIds: [this.id], DocumentName: 'AWS-RunShellScript', Parameters: { commands }, Comment: 'syntropy boot test' })),
    );
    return this.waitCommand(sent.Command?.CommandId);
  }

  async status(): Promise<FirstbootStatus> {
    const out = await this.shell(['syntropy-firstboot status --json']);
    try {
      return JSON.parse(out) as FirstbootStatus;
    } catch {
      throw new Error(`status on ${this.id} did not print JSON: ${out.slice(0, 200)}`);
    }
  }

  /** Sends the shipped configure document (token by Parameter Store name only); returns the command ID. */
  async sendConfigureDocument(): Promise<string | undefined> {
    const bt = this.cfg.aws.boot_test;
    const sent = await awsCall(this.region, 'SendCommand', () =>
      this.d.ssm.send(new SendCommandCommand({ InstanceIds: [this.id], DocumentName: bt.ssm_document, Parameters: { TokenParameterName: [bt.token_parameter], PortRange: [TEST_RANGE], Tags: ['boot-test'] } })),
    );
    return sent.Command?.CommandId;
  }
}

type Step = (run: AwsRun) => Promise<void>;

export interface AwsScenario {
  /** The launch carries user data that configures the agent from Parameter Store. */
  userData: boolean;
  /** What the console must show besides the banner. */
  consoleOffersDialogue?: boolean;
  steps: Step[];
}

const configuredFrom =
  (source: string): Step =>
  (run) =>
    run.rec.step('configured, agent running', async () => {
      const st = await poll(run.d, `configuration of ${run.id}`, run.timeout, async () => {
        const s = await run.status();
        return s.configured && s.container_running ? s : null;
      });
      check(st.source === source, `configured from ${st.source}`);
    });

const configureByDocument: Step = (run) =>
  run.rec.step(`configure through the ${run.cfg.aws.boot_test.ssm_document} document`, async () => {
    await run.waitCommand(await run.sendConfigureDocument());
  });

/** A power cut while the document applies: a forced stop (no shutdown), then a fresh start. */
const documentThenPowerCut: Step = async (run) => {
  await run.rec.step(`configure through the ${run.cfg.aws.boot_test.ssm_document} document, power cut while it runs`, async () => {
    await run.sendConfigureDocument();
    await run.d.sleep(run.d.pollMs);
    await awsCall(run.region, 'StopInstances', () => run.d.ec2.send(new StopInstancesCommand({ InstanceIds: [run.id], Force: true })));
  });
  await run.rec.step('stopped, then started again', async () => {
    await poll(run.d, `stop of ${run.id}`, run.timeout, async () => ((await run.instanceStatus())?.InstanceState?.Name === 'stopped' ? true : null));
    await awsCall(run.region, 'StartInstances', () => run.d.ec2.send(new StartInstancesCommand({ InstanceIds: [run.id] })));
  });
  await run.rec.step('back up after the cut', () => run.statusOk());
  await run.rec.step('SSM Agent online again', () => run.ssmOnline());
  await run.rec.step('fully configured or cleanly unconfigured', async () => {
    const out = await run.shell([
      's=$(syntropy-firstboot status --json); e=$(test -e /etc/syntropy/agent.env && echo 1 || echo 0); j=$(test -e /var/lib/syntropy/firstboot/apply.journal && echo 1 || echo 0); c=$(docker inspect -f "{{eq .State.Status \\"running\\"}}" syntropy-agent 2>/dev/null | grep . || echo absent); printf "%s\\nENV=%s JOURNAL=%s CONTAINER=%s\\n" "$s" "$e" "$j" "$c"',
    ]);
    const st = JSON.parse(out.slice(0, out.lastIndexOf('}') + 1)) as { configured: boolean };
    const m = /ENV=(\d) JOURNAL=(\d) CONTAINER=(\S+)/.exec(out);
    check(!!m, `unexpected check output: ${out.slice(-200)}`);
    const complete = st.configured && m![1] === '1' && m![2] === '0' && m![3] === 'true';
    const clean = !st.configured && m![1] === '0' && m![2] === '0' && m![3] === 'absent';
    run.rec.figures.outcome = complete ? 'configured' : clean ? 'unconfigured' : 'in-between';
    check(complete || clean, `in between: ${out.trim()}`);
  });
};

const rebootKeepsConfiguration: Step = async (run) => {
  await run.rec.step('reboot', () => awsCall(run.region, 'RebootInstances', () => run.d.ec2.send(new RebootInstancesCommand({ InstanceIds: [run.id] }))));
  await run.rec.step('status checks ok after reboot', () => run.statusOk());
  await run.rec.step('SSM Agent online again', () => run.ssmOnline());
  await run.rec.step('agent back, no second configuration', async () => {
    const st = await poll(run.d, `agent after reboot on ${run.id}`, run.timeout, async () => {
      const s = await run.status();
      return s.container_running ? s : null;
    });
    check(st.configured && st.source === 'user-data', `after reboot: ${JSON.stringify(st)}`);
  });
};

const complianceOverSsm: Step = async (run) => {
  const report = await run.rec.step(
    'CIS + Marketplace checks through SSM',
    async () => {
      const out = await runChecks(new SsmHost(run.d.ssm, run.id, { pollMs: run.d.pollMs }), catalogFor(run.cfg), { live: true });
      return buildReport(out.results, { phase: 'EC2 instance', target: `${run.region}/${run.id}`, mode: 'live', probeMs: out.probeMs, totalMs: out.totalMs, roundTrips: out.roundTrips });
    },
    (r) => `${r.summary.automated_l1_passing}/${r.summary.automated_l1} passing in ${r.timing.round_trips} round trip(s)`,
  );
  run.rec.report = report;
  run.rec.figures.compliance_ms = report.timing.total_ms;
  check(report.passed, `failing: ${report.results.filter((x) => x.result === 'FAIL' || x.result === 'ERROR').map((x) => x.id).join(', ')}`);
};

export const AWS_SCENARIOS: Record<string, AwsScenario> = {
  dialogue: { userData: false, consoleOffersDialogue: true, steps: [configureByDocument, configuredFrom('ssm')] },
  'user-data': { userData: true, steps: [configuredFrom('user-data')] },
  reboot: { userData: true, steps: [configuredFrom('user-data'), rebootKeepsConfiguration] },
  interrupted: { userData: false, steps: [documentThenPowerCut] },
  compliance: { userData: true, steps: [configuredFrom('user-data'), complianceOverSsm] },
};

/** What `boot-test --target aws --dry-run` prints: every instance it would launch, and how. */
export function planAwsBootTest(cfg: Config, m: BuildManifest, scenarios: string[]): string[] {
  const bt = cfg.aws.boot_test;
  const ami = amis(m)[cfg.aws.region] ?? `(no AMI in ${cfg.aws.region}: the run would fail)`;
  return scenarios.map((name) => {
    const s = AWS_SCENARIOS[name]!;
    return `${name}: RunInstances ${ami} ${bt.instance_type} in ${cfg.aws.region}, profile ${bt.instance_profile}, IMDSv2 required, hop limit 1, ${s.userData ? `user data (token from ${bt.token_parameter})` : 'no user data'}, tags syntropy:role=boot-test syntropy:build-id=${m.build_id}; source/dest check off; ${s.steps.length} scenario step(s); TerminateInstances always`;
  });
}

async function launch(cfg: Config, m: BuildManifest, name: string, scenario: AwsScenario, d: AwsBootDeps, rec: Recorder): Promise<string> {
  const region = cfg.aws.region;
  const bt = cfg.aws.boot_test;
  const ami = amis(m)[region];
  if (!ami) throw new Error(`the build manifest has no AMI in ${region} (it has ${Object.keys(amis(m)).join(', ') || 'none'})`);
  return rec.step(
    'launch (IMDSv2 required, boot-test profile)',
    async () => {
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
            ...(scenario.userData ? { UserData: Buffer.from(userDataFor(cfg)).toString('base64') } : {}),
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
    },
    (v) => v,
  );
}

function runOne(cfg: Config, m: BuildManifest, name: string, d: AwsBootDeps, log: (l: string) => void): Promise<ScenarioResult> {
  const scenario = AWS_SCENARIOS[name]!;
  const region = cfg.aws.region;
  let id: string | null = null;
  return recordScenario(name, `aws:${name}`, log, async (rec) => {
    try {
      id = await launch(cfg, m, name, scenario, d, rec);
      const run = new AwsRun(cfg, d, region, id, rec);
      // A new instance may not be visible to the next call yet (InvalidInstanceID.NotFound).
      const later = { sleep: d.sleep, retryOn: NOT_YET, attempts: 8 };
      await rec.step('source/destination check off (the instance routes)', () =>
        awsCall(region, 'ModifyInstanceAttribute', () => d.ec2.send(new ModifyInstanceAttributeCommand({ InstanceId: run.id, SourceDestCheck: { Value: false } })), later),
      );
      await rec.step('metadata options as launched: IMDSv2 required, hop limit 1', async () => {
        // An AMI registered with ImdsSupport=v2.0 launches with hop limit 2 unless the launch sets
        // it; buyers are told to launch with 1, and so are these instances. Read back what EC2 did.
        const di = await awsCall(region, 'DescribeInstances', () => d.ec2.send(new DescribeInstancesCommand({ InstanceIds: [run.id] })), later);
        const mo = di.Reservations?.[0]?.Instances?.[0]?.MetadataOptions;
        check(mo?.HttpTokens === 'required' && mo?.HttpPutResponseHopLimit === 1, `metadata options of ${run.id}: ${JSON.stringify(mo ?? null)}`);
      });
      await rec.step('both status checks ok', () => run.statusOk());
      await rec.step('SSM Agent online', () => run.ssmOnline());
      await rec.step('console shows the first-boot banner', async () => {
        const text = await poll(d, `first-boot banner on the console of ${run.id}`, run.timeout, async () => {
          const out = await awsCall(region, 'GetConsoleOutput', () => d.ec2.send(new GetConsoleOutputCommand({ InstanceId: run.id, Latest: true })));
          const t = out.Output ? Buffer.from(out.Output, 'base64').toString('utf8') : '';
          return /Syntropy agent/i.test(t) ? t : null;
        });
        if (scenario.consoleOffersDialogue) check(/agent token/i.test(text), 'the console does not offer the dialogue on an instance without user data');
      });
      await checkBootEnded(rec, (script) => run.shell(script.split('\n')));
      for (const step of scenario.steps) await step(run);
    } finally {
      if (id) {
        try {
          await terminate(d, region, id, log);
        } catch (e) {
          log(`${id}: TERMINATE FAILED (${(e as Error).message}); npm run clean will sweep it by its tags`);
        }
      }
    }
  });
}

export async function runAwsBootTest(
  cfg: Config,
  m: BuildManifest,
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
