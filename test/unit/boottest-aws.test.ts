// The aws boot-test path against aws-sdk-client-mock: launch settings, the happy path of each
// scenario, and a failure at every step, each ending with the instance terminated.
import { afterEach, describe, expect, it } from 'vitest';
import { mockClient } from 'aws-sdk-client-mock';
import {
  DescribeInstancesCommand,
  DescribeInstanceStatusCommand,
  EC2Client,
  GetConsoleOutputCommand,
  ModifyInstanceAttributeCommand,
  RebootInstancesCommand,
  RunInstancesCommand,
  StartInstancesCommand,
  StopInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import { DescribeInstanceInformationCommand, GetCommandInvocationCommand, SendCommandCommand, SSMClient } from '@aws-sdk/client-ssm';
import { loadConfig } from '../../scripts/lib/config.ts';
import { launched, runAwsBootTest } from '../../scripts/lib/boottest/aws.ts';
import { buildOutput } from '../helpers/build-output.ts';
import { BOOT_CLEAN, BOOT_CLEAN_STEP } from '../../scripts/lib/boottest/common.ts';

const { config: cfg } = loadConfig({ overrides: [{ target: 'aws', aws: { region: 'eu-west-1' } }] });
// The manifest the build's own writer produces for an aws build in eu-west-1 (region -> AMI map).
const { manifest } = buildOutput('aws', { region: 'eu-west-1' });
const ec2 = mockClient(EC2Client);
const ssm = mockClient(SSMClient);
const console64 = (t: string) => Buffer.from(t).toString('base64');
const STATUS = (configured: boolean, source = 'user-data') => JSON.stringify({ configured, source: configured ? source : null, container_running: configured, bound_port: configured ? 51820 : null });

function happy(opts: { source?: string } = {}): void {
  ec2.reset();
  ssm.reset();
  ec2.on(RunInstancesCommand).resolves({ Instances: [{ InstanceId: 'i-0aaaabbbbccccdddd' }] });
  // EC2 is eventually consistent: a new instance answers NotFound at first, as EC2 documents.
  ec2.on(ModifyInstanceAttributeCommand).rejectsOnce(Object.assign(new Error("The instance ID 'i-0aaaabbbbccccdddd' does not exist"), { name: 'InvalidInstanceID.NotFound' })).resolves({});
  ec2.on(DescribeInstancesCommand).resolves({ Reservations: [{ Instances: [{ InstanceId: 'i-0aaaabbbbccccdddd', MetadataOptions: { HttpTokens: 'required', HttpPutResponseHopLimit: 1, HttpEndpoint: 'enabled', State: 'applied' } }] }] });
  // SSM lists the instance only once its agent has registered.
  ssm.on(DescribeInstanceInformationCommand).resolvesOnce({ InstanceInformationList: [] }).resolves({ InstanceInformationList: [{ InstanceId: 'i-0aaaabbbbccccdddd', PingStatus: 'Online' }] });
  ec2.on(DescribeInstanceStatusCommand).resolvesOnce({ InstanceStatuses: [{ InstanceState: { Name: 'pending' } }] }).resolves({ InstanceStatuses: [{ InstanceState: { Name: 'running' }, InstanceStatus: { Status: 'ok' }, SystemStatus: { Status: 'ok' } }] });
  ec2.on(GetConsoleOutputCommand).resolves({ Output: console64('*** The Syntropy agent is not configured yet. ***\nSyntropy agent token: ') });
  ec2.on(RebootInstancesCommand).resolves({});
  ec2.on(TerminateInstancesCommand).resolves({});
  ssm.on(SendCommandCommand).resolves({ Command: { CommandId: 'cmd-1' } });
  ssm.on(GetCommandInvocationCommand).resolves({ Status: 'Success', StandardOutputContent: STATUS(true, opts.source) });
  bootEnds('state=running\n');
}

/** What the boot-end check (BOOT_CLEAN through AWS-RunShellScript) prints on the instance. */
function bootEnds(out: string): void {
  ssm.on(SendCommandCommand, { DocumentName: 'AWS-RunShellScript', Parameters: { commands: BOOT_CLEAN.split('\n') } }).resolves({ Command: { CommandId: 'cmd-boot-clean' } });
  ssm.on(GetCommandInvocationCommand, { CommandId: 'cmd-boot-clean' }).resolves({ Status: 'Success', StandardOutputContent: out });
}

const run = (scenarios: string[]) => runAwsBootTest(cfg, manifest, scenarios, { log: () => {}, parallel: 2, deps: { ec2: new EC2Client({ region: 'eu-west-1' }), ssm: new SSMClient({ region: 'eu-west-1' }), sleep: async () => {}, pollMs: 1000 } });
const terminated = () => ec2.commandCalls(TerminateInstancesCommand).flatMap((c) => c.args[0].input.InstanceIds ?? []);

afterEach(() => expect(launched.size).toBe(0));

describe('aws boot test', () => {
  it('launches with IMDSv2 required, the boot-test profile, tags and user data, turns the source/dest check off and terminates', async () => {
    happy();
    const [r] = await run(['user-data']);
    expect(r!.error).toBeUndefined();
    expect(r!.passed).toBe(true);
    const input = ec2.commandCalls(RunInstancesCommand)[0]!.args[0].input;
    expect(input).toMatchObject({ ImageId: 'ami-0123456789abcdef0', InstanceType: 't3.micro', IamInstanceProfile: { Name: 'syntropy-boot-test' }, MetadataOptions: { HttpTokens: 'required' } });
    expect(Buffer.from(input.UserData!, 'base64').toString()).toContain('token_ssm_parameter: /syntropy/boot-test/agent-token');
    expect(input.TagSpecifications![0]!.Tags).toEqual(expect.arrayContaining([{ Key: 'syntropy:role', Value: 'boot-test' }, { Key: 'syntropy:build-id', Value: manifest.build_id }]));
    expect(ec2.commandCalls(ModifyInstanceAttributeCommand)[0]!.args[0].input).toEqual({ InstanceId: 'i-0aaaabbbbccccdddd', SourceDestCheck: { Value: false } });
    expect(terminated()).toEqual(['i-0aaaabbbbccccdddd']);
  });

  it('configures the dialogue scenario through the shipped SSM document with the token parameter name only', async () => {
    happy({ source: 'ssm' });
    const [r] = await run(['dialogue']);
    expect(r!.passed).toBe(true);
    expect(ec2.commandCalls(RunInstancesCommand)[0]!.args[0].input.UserData).toBeUndefined();
    const doc = ssm.commandCalls(SendCommandCommand).map((c) => c.args[0].input).find((i) => i.DocumentName === 'SyntropyConfigureAgent');
    expect(doc?.Parameters).toEqual({ TokenParameterName: ['/syntropy/boot-test/agent-token'], PortRange: ['51820-51830'], Tags: ['boot-test'] });
    expect(terminated()).toHaveLength(1);
  });

  it('reboots and checks the agent comes back', async () => {
    happy();
    const [reboot] = await run(['reboot']);
    expect(reboot!.passed).toBe(true);
    expect(ec2.commandCalls(RebootInstancesCommand)).toHaveLength(1);
  });

  it('cuts power on EC2 with a forced stop (a reboot is a clean shutdown), starts again, and accepts only configured or clean', async () => {
    happy({ source: 'ssm' });
    let state: 'running' | 'stopping' | 'stopped' = 'running';
    const order: string[] = [];
    ec2.on(StopInstancesCommand).callsFake(() => {
      order.push('stop');
      state = 'stopping';
      return {};
    });
    ec2.on(StartInstancesCommand).callsFake(() => {
      order.push('start');
      state = 'running';
      return {};
    });
    ec2.on(DescribeInstanceStatusCommand).callsFake(() => {
      const now = state;
      if (state === 'stopping') state = 'stopped';
      return { InstanceStatuses: [now === 'running' ? { InstanceState: { Name: 'running' }, InstanceStatus: { Status: 'ok' }, SystemStatus: { Status: 'ok' } } : { InstanceState: { Name: now } }] };
    });
    ssm.on(GetCommandInvocationCommand).resolves({ Status: 'Success', StandardOutputContent: `${STATUS(false)}\nENV=1 JOURNAL=1 CONTAINER=absent\n` });
    bootEnds('state=running\n');
    const [cut] = await run(['interrupted']);
    expect(cut!.passed).toBe(false);
    expect(cut!.error).toMatch(/in between/);
    expect(ec2.commandCalls(StopInstancesCommand)[0]!.args[0].input).toEqual({ InstanceIds: ['i-0aaaabbbbccccdddd'], Force: true });
    expect(order).toEqual(['stop', 'start']);
    expect(ec2.commandCalls(RebootInstancesCommand)).toHaveLength(0);
    expect(terminated()).toHaveLength(1);
    ssm.on(GetCommandInvocationCommand).resolves({ Status: 'Success', StandardOutputContent: `${STATUS(false)}\nENV=0 JOURNAL=0 CONTAINER=absent\n` });
    bootEnds('state=running\n');
    state = 'running';
    const [clean] = await run(['interrupted']);
    expect(clean!.error).toBeUndefined();
    expect(clean!.figures.outcome).toBe('unconfigured');
  });

  it('never sends a command before SSM lists the instance Online', async () => {
    happy();
    const order: string[] = [];
    ssm.on(DescribeInstanceInformationCommand).callsFake(() => {
      order.push('describe');
      return { InstanceInformationList: order.length < 3 ? [] : [{ PingStatus: 'Online' }] };
    });
    ssm.on(SendCommandCommand).callsFake((input: { Parameters?: Record<string, string[]> }) => {
      order.push('send');
      return { Command: { CommandId: input.Parameters?.commands?.join('\n') === BOOT_CLEAN ? 'cmd-boot-clean' : 'cmd-1' } };
    });
    const [r] = await run(['user-data']);
    expect(r!.passed, r!.error).toBe(true);
    expect(order.slice(0, 4)).toEqual(['describe', 'describe', 'describe', 'send']);
  });

  it('fails when EC2 did not launch with hop limit 1 and IMDSv2 required', async () => {
    happy();
    ec2.on(DescribeInstancesCommand).resolves({ Reservations: [{ Instances: [{ MetadataOptions: { HttpTokens: 'required', HttpPutResponseHopLimit: 2 } }] }] });
    const [r] = await run(['user-data']);
    expect(r!.error).toMatch(/metadata options of i-0aaaabbbbccccdddd: .*"HttpPutResponseHopLimit":2/);
    expect(terminated()).toEqual(['i-0aaaabbbbccccdddd']);
  });

  const failures: [string, () => void, RegExp][] = [
    ['ModifyInstanceAttribute', () => ec2.on(ModifyInstanceAttributeCommand).rejects(Object.assign(new Error('denied'), { name: 'UnauthorizedOperation' })), /eu-west-1: ModifyInstanceAttribute failed: UnauthorizedOperation/],
    ['status checks', () => ec2.on(DescribeInstanceStatusCommand).resolves({ InstanceStatuses: [{ InstanceState: { Name: 'running' }, InstanceStatus: { Status: 'impaired' }, SystemStatus: { Status: 'ok' } }] }), /status checks of i-0aaaabbbbccccdddd: not after/],
    ['instance stopped', () => ec2.on(DescribeInstanceStatusCommand).resolves({ InstanceStatuses: [{ InstanceState: { Name: 'stopped' } }] }), /is stopped/],
    ['console output', () => ec2.on(GetConsoleOutputCommand).rejects(Object.assign(new Error('nope'), { name: 'InvalidInstanceID.NotFound' })), /GetConsoleOutput failed/],
    ['no banner', () => ec2.on(GetConsoleOutputCommand).resolves({ Output: console64('Debian GNU/Linux 13\nlogin: ') }), /first-boot banner .* not after/],
    ['SendCommand', () => ssm.on(SendCommandCommand).rejects(Object.assign(new Error('not managed'), { name: 'InvalidInstanceId' })), /eu-west-1: SendCommand failed: InvalidInstanceId/],
    ['command failed', () => ssm.on(GetCommandInvocationCommand).resolves({ Status: 'Failed', StandardErrorContent: 'syntropy-firstboot: not found' }), /ended Failed: syntropy-firstboot: not found/],
    ['never configured', () => ssm.on(GetCommandInvocationCommand).resolves({ Status: 'Success', StandardOutputContent: STATUS(false) }), /configuration of i-0aaaabbbbccccdddd: not after/],
  ];
  for (const [step, breakIt, message] of failures) {
    it(`fails at ${step} and still terminates the instance`, async () => {
      happy();
      breakIt();
      // Only the step under test breaks: the boot-end check before it still answers.
      if (step !== 'SendCommand') bootEnds('state=running\n');
      const [r] = await run(['user-data']);
      expect(r!.passed).toBe(false);
      expect(r!.error).toMatch(message);
      expect(terminated()).toEqual(['i-0aaaabbbbccccdddd']);
    });
  }

  it('fails when boot ended degraded or systemd dropped a start job to break an ordering cycle, and still terminates', async () => {
    for (const [out, message] of [
      ['state=degraded\nauditd.service loaded failed failed Security Audit Logging Service\n', /system state degraded, want running; auditd.service loaded failed/],
      ['state=running\nmulti-user.target: Job syntropy-route-failover.service/start deleted to break ordering cycle starting with multi-user.target/start\n', /deleted to break ordering cycle/],
    ] as const) {
      happy();
      bootEnds(out);
      const [r] = await run(['user-data']);
      expect(r!.passed).toBe(false);
      expect(r!.error).toMatch(message);
      expect(r!.steps.at(-1)!.name).toBe(BOOT_CLEAN_STEP);
      expect(terminated()).toEqual(['i-0aaaabbbbccccdddd']);
    }
  });

  it('names the region and call when the launch itself fails (nothing to terminate)', async () => {
    happy();
    ec2.on(RunInstancesCommand).rejects(Object.assign(new Error('no capacity'), { name: 'InsufficientInstanceCapacity' }));
    const [r] = await run(['compliance']);
    expect(r!.error).toBe('eu-west-1: RunInstances failed: InsufficientInstanceCapacity: no capacity');
    expect(terminated()).toEqual([]);
  });

  it('runs compliance through SSM and fails the scenario on failing checks, terminating the instance', async () => {
    happy();
    // The probe answers with no facts at all: every check must fail or error, never pass.
    ssm.on(GetCommandInvocationCommand).resolves({ Status: 'Success', StandardOutputContent: STATUS(true) });
    bootEnds('state=running\n');
    const [r] = await run(['compliance']);
    expect(r!.passed).toBe(false);
    expect(r!.steps.find((s) => s.name.startsWith('CIS'))).toBeDefined();
    expect(terminated()).toEqual(['i-0aaaabbbbccccdddd']);
  });
});

describe('npm run boot-test -- --target aws --dry-run (real process, no AWS)', () => {
  it('reads the manifest the build wrote and prints each launch without calling AWS', async () => {
    const { spawnSync } = await import('node:child_process');
    const { REPO } = await import('../../scripts/lib/paths.ts');
    const out = buildOutput('aws', { region: 'eu-west-1' });
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/boot-test.ts', '--target', 'aws', '--manifest', out.manifestPath, '--dry-run'], {
      cwd: REPO,
      encoding: 'utf8',
      env: { PATH: process.env.PATH ?? '', AWS_EC2_METADATA_DISABLED: 'true', AWS_ENDPOINT_URL: 'http://127.0.0.1:9' },
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout.split('\n').filter(Boolean)).toHaveLength(5);
    expect(r.stdout).toContain('user-data: RunInstances ami-0123456789abcdef0 t3.micro in eu-west-1');
  }, 30_000);
});

describe('aws boot test on Ctrl-C', () => {
  it('terminates every instance it launched, then exits 130', async () => {
    happy();
    // Hold the first status check so the signal arrives while the instance runs.
    let release: () => void = () => {};
    ec2.on(DescribeInstanceStatusCommand).callsFake(() => new Promise((r) => (release = () => r({ InstanceStatuses: [] }))));
    const exits: number[] = [];
    const realExit = process.exit;
    let exited: () => void = () => {};
    const exitedP = new Promise<void>((r) => (exited = r));
    process.exit = ((code?: number) => {
      exits.push(code ?? 0);
      exited();
      return undefined as never;
    }) as typeof process.exit;
    try {
      const running = run(['user-data']);
      while (ec2.commandCalls(DescribeInstanceStatusCommand).length === 0) await new Promise((r) => setTimeout(r, 5));
      process.emit('SIGINT');
      await exitedP;
      expect(exits).toEqual([130]);
      expect(terminated()).toEqual(['i-0aaaabbbbccccdddd']);
      release();
      ec2.on(DescribeInstanceStatusCommand).rejects(Object.assign(new Error('gone'), { name: 'InvalidInstanceID.NotFound' }));
      await running.catch(() => undefined);
    } finally {
      process.exit = realExit;
    }
  });
});
