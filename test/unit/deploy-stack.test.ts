// The reference deployment's template (deploy/stack.ts) as synthesized, checked with the CDK's
// own assertions, cdk-nag's AwsSolutions pack, and AWS Marketplace's rules for templates; the
// route failover's decisions (deploy/failover.ts); the deploy command's input checks.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { synthTemplate } from '../../deploy/stack.ts';
import { mermaid } from '../../deploy/diagram.ts';
import { decide, FAILOVER_DEFAULTS, FailoverConfigSchema, type DecideInput, type FailoverConfig } from '../../deploy/failover.ts';
import { agentHealthy } from '../../deploy/failover-agent.ts';
import { checkParameters } from '../../deploy/cfn.ts';
import { amisFrom, parseParams } from '../../scripts/deploy.ts';
import { REPO } from '../../scripts/lib/paths.ts';

const AMIS = { 'us-east-1': 'ami-0123456789abcdef0', 'eu-west-1': 'ami-0fedcba9876543210' };
const raw = synthTemplate(AMIS);
const t = Template.fromJSON(raw);
const resources = raw.Resources as Record<string, { Type: string; Properties: Record<string, unknown>; Condition?: string }>;

describe('reference deployment template', () => {
  it('synthesizes clean under cdk-nag AwsSolutions (every accepted finding acknowledged with a reason)', () => {
    expect(() => synthTemplate(AMIS, { nag: true })).not.toThrow();
  });

  it('leaves no cloud assembly behind in the temp directory (CDK never removes its own)', () => {
    const saved = process.env.TMPDIR;
    const own = mkdtempSync(join(tmpdir(), 'synth-tmp-'));
    process.env.TMPDIR = own;
    try {
      expect(synthTemplate(AMIS).Resources).toBeDefined();
      expect(readdirSync(own)).toEqual([]);
    } finally {
      process.env.TMPDIR = saved;
      rmSync(own, { recursive: true, force: true });
    }
  });

  it('has the documented shape: 1 VPC, 6 subnets in 2 AZs, 2 NAT gateways, 2 agents', () => {
    t.resourceCountIs('AWS::EC2::VPC', 1);
    t.resourceCountIs('AWS::EC2::Subnet', 6);
    t.resourceCountIs('AWS::EC2::NatGateway', 2);
    t.resourceCountIs('AWS::EC2::Instance', 2);
    t.resourceCountIs('AWS::EC2::InternetGateway', 1);
    const azs = Object.values(resources).filter((r) => r.Type === 'AWS::EC2::Subnet').map((r) => JSON.stringify(r.Properties.AvailabilityZone));
    expect(new Set(azs).size).toBe(2);
    for (const az of azs) expect(az).toMatch(/Fn::GetAZs/);
    const publicSubnets = Object.entries(resources).filter(([, r]) => r.Type === 'AWS::EC2::SubnetRouteTableAssociation' && JSON.stringify(r.Properties.RouteTableId).includes('PublicRouteTable'));
    expect(publicSubnets).toHaveLength(4);
  });

  it('agents: source/destination check off, the launch template with IMDSv2 required and hop limit 1, the profile', () => {
    t.hasResourceProperties('AWS::EC2::LaunchTemplate', {
      LaunchTemplateData: Match.objectLike({ MetadataOptions: { HttpTokens: 'required', HttpEndpoint: 'enabled', HttpPutResponseHopLimit: 1, InstanceMetadataTags: 'enabled' } }),
    });
    for (const side of ['A', 'B']) {
      const p = resources[`Agent${side}`]!.Properties;
      expect(p.SourceDestCheck).toBe(false);
      expect(p.LaunchTemplate).toMatchObject({ LaunchTemplateId: { Ref: 'AgentLaunchTemplate' } });
      expect(p.IamInstanceProfile).toEqual({ Ref: 'AgentInstanceProfile' });
      expect(p.SubnetId).toEqual({ Ref: `AgentSubnet${side}` });
      const ud = JSON.stringify(p.UserData);
      expect(ud).toContain('token_ssm_parameter: ');
      expect(ud).toContain('{"Ref":"TokenParameterName"}');
      expect(ud).toContain('/etc/syntropy/failover.json');
      expect(ud).not.toMatch(/token:\s/);
    }
  });

  it('routes: each services subnet reaches the overlay through its own AZ agent, the internet through its own NAT', () => {
    for (const side of ['A', 'B']) {
      t.hasResourceProperties('AWS::EC2::Route', { RouteTableId: { Ref: `ServicesRouteTable${side}` }, DestinationCidrBlock: { Ref: 'RoutedCidr' }, InstanceId: { Ref: `Agent${side}` } });
      t.hasResourceProperties('AWS::EC2::Route', { RouteTableId: { Ref: `ServicesRouteTable${side}` }, DestinationCidrBlock: '0.0.0.0/0', NatGatewayId: { Ref: `NatGateway${side}` } });
      t.hasResourceProperties('AWS::EC2::SubnetRouteTableAssociation', { SubnetId: { Ref: `ServicesSubnet${side}` }, RouteTableId: { Ref: `ServicesRouteTable${side}` } });
    }
    // One route per destination per table: the failover moves it, never a second one.
    const perTable = new Map<string, string[]>();
    for (const r of Object.values(resources).filter((x) => x.Type === 'AWS::EC2::Route')) {
      const k = JSON.stringify(r.Properties.RouteTableId);
      perTable.set(k, [...(perTable.get(k) ?? []), JSON.stringify(r.Properties.DestinationCidrBlock)]);
    }
    for (const dests of perTable.values()) expect(new Set(dests).size).toBe(dests.length);
  });

  it('security group: exactly one UDP rule, the PortRange parameter, and SSH only when asked for', () => {
    const sg = resources.AgentSecurityGroup!.Properties;
    const ingress = sg.SecurityGroupIngress as Record<string, unknown>[];
    const udp = ingress.filter((r) => r.IpProtocol === 'udp');
    expect(udp).toHaveLength(1);
    expect(JSON.stringify(udp[0]!.FromPort)).toContain('"Ref":"PortRange"');
    expect(JSON.stringify(udp[0]!.ToPort)).toContain('"Ref":"PortRange"');
    expect(ingress.filter((r) => r.IpProtocol === 'tcp')).toHaveLength(0);
    expect(resources.AgentSshIngress).toMatchObject({ Condition: 'AllowSsh', Properties: { FromPort: 22, ToPort: 22, CidrIp: { Ref: 'SshSourceCidr' } } });
  });

  it("the role: GetParameter on the token only, kms:Decrypt only through Parameter Store, ReplaceRoute on the two tables only", () => {
    const role = resources.AgentRole!.Properties as { Policies: { PolicyName: string; PolicyDocument: { Statement: Record<string, unknown>[] } }[]; ManagedPolicyArns: unknown[] };
    expect(JSON.stringify(role.ManagedPolicyArns)).toContain('AmazonSSMManagedInstanceCore');
    expect(role.ManagedPolicyArns).toHaveLength(1);
    const statements = role.Policies.flatMap((p) => p.PolicyDocument.Statement);
    const byAction = (a: string) => statements.filter((s) => ([] as unknown[]).concat(s.Action).includes(a));
    expect(byAction('ssm:GetParameter')).toHaveLength(1);
    expect(JSON.stringify(byAction('ssm:GetParameter')[0]!.Resource)).toContain('parameter${TokenParameterName}');
    expect(byAction('kms:Decrypt')[0]!.Condition).toEqual({ StringEquals: { 'kms:ViaService': { 'Fn::Sub': 'ssm.${AWS::Region}.amazonaws.com' } } });
    const rr = byAction('ec2:ReplaceRoute')[0]!.Resource as unknown[];
    expect(rr).toHaveLength(2);
    expect(JSON.stringify(rr)).toContain('ServicesRouteTableA');
    expect(JSON.stringify(rr)).toContain('ServicesRouteTableB');
    expect(statements.every((s) => s.Effect === 'Allow')).toBe(true);
    expect(statements.flatMap((s) => ([] as unknown[]).concat(s.Action)).sort()).toEqual(
      ['ec2:DescribeInstances', 'ec2:DescribeRouteTables', 'ec2:ReplaceRoute', 'kms:Decrypt', 'ssm:GetParameter', 'ssm:GetParametersByPath', 'ssm:PutParameter'].sort(),
    );
  });

  it("follows AWS Marketplace's template rules: AMI from a replaceable mapping, no account IDs, AZ names or credentials", () => {
    expect(raw.Mappings).toEqual({ AmiRegionMap: { 'us-east-1': { AMI: AMIS['us-east-1'] }, 'eu-west-1': { AMI: AMIS['eu-west-1'] } } });
    const text = JSON.stringify({ ...raw, Mappings: undefined });
    expect(text).not.toMatch(/\b\d{12}\b/);
    expect(text).not.toMatch(/\b[a-z]{2}-[a-z]+-\d[a-f]\b/);
    expect(text).not.toMatch(/ami-[0-9a-f]{8,17}/);
    expect(text).not.toMatch(/AKIA|aws_secret|password/i);
    expect(JSON.stringify(resources.AgentA!.Properties.ImageId)).toContain('AmiRegionMap');
    expect(raw.Rules).toBeUndefined();
    for (const p of Object.values(raw.Parameters as Record<string, { Description?: string; Default?: unknown }>)) {
      expect(p.Description).toBeTruthy();
      expect(p.Default).not.toBeUndefined();
    }
  });

  it('docs/deployment.md holds the diagram generated from this template', () => {
    const doc = readFileSync(join(REPO, 'docs', 'deployment.md'), 'utf8');
    expect(doc).toContain(`\`\`\`mermaid\n${mermaid(raw)}\n\`\`\``);
  });
});

describe('route failover decisions', () => {
  const cfg: FailoverConfig = FailoverConfigSchema.parse({
    group: 'g',
    region: 'us-east-1',
    self: 'b',
    heartbeat_prefix: '/syntropy/failover/g',
    routed_cidr: '10.69.0.0/16',
    tables: [
      { id: 'rtb-0a', home: 'a' },
      { id: 'rtb-0b', home: 'b' },
    ],
    ...FAILOVER_DEFAULTS,
  });
  const now = 1_000_000;
  const base = (over: Partial<DecideInput> = {}): DecideInput => ({
    cfg,
    selfInstance: 'i-b',
    selfHealthy: true,
    healthySince: now - 60_000,
    now,
    heartbeats: { a: { side: 'a', instance_id: 'i-a', healthy: true, at: now - 2000 }, b: { side: 'b', instance_id: 'i-b', healthy: true, at: now } },
    tables: [
      { id: 'rtb-0a', home: 'a', target: 'i-a' },
      { id: 'rtb-0b', home: 'b', target: 'i-b' },
    ],
    ...over,
  });

  it('leaves healthy homes alone', () => {
    expect(decide(base())).toEqual([]);
  });

  it("takes the peer's table when the peer reports unhealthy, is stale, or has never reported", () => {
    expect(decide(base({ heartbeats: { a: { side: 'a', instance_id: 'i-a', healthy: false, at: now } } }))).toEqual([{ table: 'rtb-0a', to: 'i-b', reason: 'agent a reports unhealthy' }]);
    expect(decide(base({ heartbeats: { a: { side: 'a', instance_id: 'i-a', healthy: true, at: now - 21_000 } } }))[0]?.reason).toBe("agent a's heartbeat is 21 s old");
    expect(decide(base({ heartbeats: {} }))[0]?.reason).toBe('agent a has no heartbeat');
    // At exactly stale_after_s the peer is still trusted (no flapping on the edge).
    expect(decide(base({ heartbeats: { a: { side: 'a', instance_id: 'i-a', healthy: true, at: now - 20_000 } } }))).toEqual([]);
  });

  it('an unhealthy agent changes nothing, even with a dead peer', () => {
    expect(decide(base({ selfHealthy: false, heartbeats: {} }))).toEqual([]);
  });

  it('reclaims its own table only after the hold-down, and never points a route at the peer', () => {
    const away = base({ tables: [{ id: 'rtb-0a', home: 'a', target: 'i-a' }, { id: 'rtb-0b', home: 'b', target: 'i-a' }] });
    expect(decide({ ...away, healthySince: now - 29_000 })).toEqual([]);
    expect(decide({ ...away, healthySince: now - 30_000 })).toEqual([{ table: 'rtb-0b', to: 'i-b', reason: 'home agent healthy for 30 s: reclaim' }]);
    expect(decide({ ...away, healthySince: null })).toEqual([]);
    for (const m of decide(base({ heartbeats: {} }))) expect(m.to).toBe('i-b');
  });

  it('refuses a config whose staleness is not longer than two heartbeats', () => {
    expect(FailoverConfigSchema.safeParse({ ...cfg, interval_s: 10, stale_after_s: 20 }).success).toBe(false);
  });

  it('health: the agent container running and a WireGuard interface up', async () => {
    // `docker inspect -f '{{.State.Status}}'`, as the watcher asks (anything else would not print these).
    const exec = (status: string, links: string) => async (cmd: string, args: string[]) => ({ stdout: cmd === 'docker' ? (args.includes('{{.State.Status}}') ? status : 'true\n') : links });
    expect(await agentHealthy(exec('running\n', '[{"ifname":"SYNTROPY_PUBLIC","flags":["POINTOPOINT","NOARP","UP","LOWER_UP"]}]'))).toBe(true);
    expect(await agentHealthy(exec('exited\n', '[{"ifname":"x","flags":["UP"]}]'))).toBe(false);
    // Crash-looping: Docker keeps State.Running true while it waits to restart it, and the links stay up.
    expect(await agentHealthy(exec('restarting\n', '[{"ifname":"x","flags":["UP"]}]'))).toBe(false);
    expect(await agentHealthy(exec('running\n', '[]'))).toBe(false);
    expect(await agentHealthy(exec('running\n', '[{"ifname":"x","flags":["POINTOPOINT"]}]'))).toBe(false);
    expect(await agentHealthy(async () => Promise.reject(new Error('no docker')))).toBe(false);
  });
});

describe('npm run deploy input', () => {
  it('checks parameters against the template and names the problem', () => {
    expect(checkParameters(raw, { PortRange: '51820-51919', InstanceType: 't3.small' })).toEqual([]);
    expect(checkParameters(raw, { Bogus: '1' })[0]).toMatch(/^unknown parameter Bogus \(known: ImageId, PortRange/);
    expect(checkParameters(raw, { InstanceType: 'x1e.32xlarge' })[0]).toMatch(/InstanceType="x1e.32xlarge": must be one of t3.micro/);
    expect(checkParameters(raw, { SshSourceCidr: '0.0.0.0' })[0]).toMatch(/SshSourceCidr="0.0.0.0": must match/);
    expect(parseParams('A=1,B=x=y')).toEqual({ A: '1', B: 'x=y' });
    expect(() => parseParams('A')).toThrow(/--param expects KEY=VALUE/);
    expect(amisFrom({ ami: 'eu-west-1=ami-0123456789abcdef0', defaultManifest: '/nonexistent' })).toEqual({ 'eu-west-1': 'ami-0123456789abcdef0' });
    expect(() => amisFrom({ ami: 'ami-0123', defaultManifest: '/nonexistent' })).toThrow(/--ami expects REGION=ami-/);
    expect(() => amisFrom({ defaultManifest: '/nonexistent/publish-manifest.json' })).toThrow(/no publish manifest at \/nonexistent/);
  });
});

describe('route failover watcher (one tick against EC2 and SSM as documented)', () => {
  it('writes its heartbeat, reads the peer and the routes, and moves only with ReplaceRoute to itself', async () => {
    const { mockClient } = await import('aws-sdk-client-mock');
    const { EC2Client, DescribeRouteTablesCommand, ReplaceRouteCommand } = await import('@aws-sdk/client-ec2');
    const { SSMClient, PutParameterCommand, GetParametersByPathCommand } = await import('@aws-sdk/client-ssm');
    const { FailoverWatcher } = await import('../../deploy/failover.ts');
    const ec2 = mockClient(EC2Client);
    const ssm = mockClient(SSMClient);
    const cfg = FailoverConfigSchema.parse({ group: 'g', region: 'us-east-1', self: 'b', heartbeat_prefix: '/syntropy/failover/g', routed_cidr: '10.69.0.0/16', tables: [{ id: 'rtb-0a', home: 'a' }, { id: 'rtb-0b', home: 'b' }], ...FAILOVER_DEFAULTS });
    let now = 1_000_000;
    ssm.on(PutParameterCommand).resolves({ Version: 1 });
    ssm.on(GetParametersByPathCommand).resolves({ Parameters: [{ Name: '/syntropy/failover/g/a', Value: JSON.stringify({ side: 'a', instance_id: 'i-a', healthy: false, at: now }) }, { Name: '/syntropy/failover/g/x', Value: 'not json' }] });
    ec2.on(DescribeRouteTablesCommand).resolves({
      RouteTables: [
        { RouteTableId: 'rtb-0a', Routes: [{ DestinationCidrBlock: '0.0.0.0/0', NatGatewayId: 'nat-1' }, { DestinationCidrBlock: '10.69.0.0/16', InstanceId: 'i-a' }] },
        { RouteTableId: 'rtb-0b', Routes: [{ DestinationCidrBlock: '10.69.0.0/16', InstanceId: 'i-b' }] },
      ],
    });
    ec2.on(ReplaceRouteCommand).resolves({});
    const w = new FailoverWatcher(cfg, { ec2: new EC2Client({ region: 'us-east-1' }), ssm: new SSMClient({ region: 'us-east-1' }), instanceId: 'i-b', health: async () => true, now: () => now });
    expect(await w.tick()).toEqual([{ table: 'rtb-0a', to: 'i-b', reason: 'agent a reports unhealthy' }]);
    expect(ec2.commandCalls(ReplaceRouteCommand).map((c) => c.args[0].input)).toEqual([{ RouteTableId: 'rtb-0a', DestinationCidrBlock: '10.69.0.0/16', InstanceId: 'i-b' }]);
    const hb = ssm.commandCalls(PutParameterCommand)[0]!.args[0].input;
    expect(hb).toMatchObject({ Name: '/syntropy/failover/g/b', Type: 'String', Overwrite: true });
    expect(JSON.parse(hb.Value!)).toEqual({ side: 'b', instance_id: 'i-b', healthy: true, at: now });
    // A heartbeat that cannot be written makes the agent count as unhealthy: it moves nothing.
    ssm.on(PutParameterCommand).rejects(Object.assign(new Error('throttled'), { name: 'ThrottlingException' }));
    ec2.resetHistory();
    now += 5000;
    expect(await w.tick()).toEqual([]);
    expect(ec2.commandCalls(ReplaceRouteCommand)).toHaveLength(0);
    ec2.restore();
    ssm.restore();
  });
});
