// The customer's reference deployment as one CloudFormation template, written with the AWS CDK
// (aws-cdk-lib, L1 constructs so every resource and property is stated, nothing generated that
// needs a CDK bootstrap or a Lambda): a VPC across two Availability Zones with, per AZ, a public
// subnet for the NAT gateway, a dedicated public subnet for the agent and a private services
// subnet; two agent instances (one per AZ) launched from the appliance AMI with IMDSv2 required,
// hop limit 1, source/destination check off and user data that configures the agent from the
// token's Parameter Store name; a security group that opens the WireGuard UDP range; and route
// tables that send each services subnet's routed traffic through its own AZ's agent, which the
// route failover (deploy/failover.ts) moves to the other agent when one fails.
//
// AWS Marketplace rules for CloudFormation-delivered AMI products followed here ("Add
// CloudFormation templates to your product", AWS Marketplace seller guide): the product's AMI
// comes from a region Mapping (AmiRegionMap) that Marketplace replaces with its own copies; no
// account ID, AZ name or credential is hard-coded (Fn::GetAZs, AWS::Partition, AWS::Region);
// least-privilege IAM roles only; every CIDR that opens access is a parameter.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, Aws, CfnCondition, CfnMapping, CfnOutput, CfnParameter, DefaultStackSynthesizer, Fn, Stack, Tags, Token, Validations, type StackProps } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import type { Construct } from 'constructs';
import { AwsSolutionsChecks } from 'cdk-nag';
import { FAILOVER_DEFAULTS } from './failover.ts';

export const STACK_DESCRIPTION = 'Syntropy agent appliance: reference VPC (2 AZs), two agents with route failover';

export interface ReferenceStackProps extends StackProps {
  /** AMI per region (the publish manifest's regions); Marketplace replaces this mapping. */
  amis: Record<string, string>;
}

/** The AZ letters the template names its halves by: agent "a" in the first AZ, "b" in the second. */
export const SIDES = ['a', 'b'] as const;

export class ReferenceDeploymentStack extends Stack {
  constructor(scope: Construct, id: string, props: ReferenceStackProps) {
    super(scope, id, props);
    this.templateOptions.description = STACK_DESCRIPTION;

    const imageId = new CfnParameter(this, 'ImageId', {
      type: 'String',
      default: '',
      allowedPattern: '^(|ami-[0-9a-f]{8,17}|/[A-Za-z0-9_.\\-/]{1,1000})$',
      description: 'Empty: the appliance AMI of this region (the listing). Or an AMI ID (ami-...), or a Parameter Store path that holds one (e.g. /syntropy/ami/latest).',
    });
    const portRange = new CfnParameter(this, 'PortRange', {
      type: 'String',
      default: '51820-51919',
      allowedPattern: '^[0-9]{4,5}-[0-9]{4,5}$',
      description: 'WireGuard UDP port range START-END (1024-65535, at least 4 ports); the security group opens exactly this range.',
    });
    // One source for the range: the rule's ports are read out of PortRange.
    const portFrom = Token.asNumber(Fn.select(0, Fn.split('-', portRange.valueAsString)));
    const portTo = Token.asNumber(Fn.select(1, Fn.split('-', portRange.valueAsString)));
    const tokenParameter = new CfnParameter(this, 'TokenParameterName', {
      type: 'String',
      default: '/syntropy/agent-token',
      allowedPattern: '^/[A-Za-z0-9_.\\-/]{1,1000}$',
      description: 'Name of the SecureString parameter holding the agent token (create it first; the template never sees the token).',
    });
    const sshCidr = new CfnParameter(this, 'SshSourceCidr', {
      type: 'String',
      default: '',
      allowedPattern: '^$|^(\\d{1,3}\\.){3}\\d{1,3}/\\d{1,2}$',
      description: 'CIDR allowed to reach SSH (port 22); empty: no SSH, use Session Manager.',
    });
    const instanceType = new CfnParameter(this, 'InstanceType', {
      type: 'String',
      default: 't3.small',
      allowedValues: ['t3.micro', 't3.small', 't3.medium', 'c6i.large', 'c6in.large', 'm6i.large'],
      description: 'Instance type of each agent (the agent needs 1 vCPU and 512 MiB).',
    });
    const vpcCidr = new CfnParameter(this, 'VpcCidr', {
      type: 'String',
      default: '10.20.0.0/16',
      allowedPattern: '^(\\d{1,3}\\.){3}\\d{1,3}/16$',
      description: 'VPC CIDR (a /16, split into six /20 subnets); must not overlap the agent overlay 10.69.0.0/16.',
    });
    const routedCidr = new CfnParameter(this, 'RoutedCidr', {
      type: 'String',
      default: '10.69.0.0/16',
      allowedPattern: '^(\\d{1,3}\\.){3}\\d{1,3}/\\d{1,2}$',
      description: 'Destination the services subnets reach through the agents (the Syntropy overlay by default).',
    });

    new CfnMapping(this, 'AmiRegionMap', { mapping: Object.fromEntries(Object.entries(props.amis).map(([r, ami]) => [r, { AMI: ami }])) });
    const noImageParam = new CfnCondition(this, 'UseListingAmi', { expression: Fn.conditionEquals(imageId.valueAsString, '') });
    const imageIsPath = new CfnCondition(this, 'ImageIdIsParameterPath', {
      expression: Fn.conditionAnd(Fn.conditionNot(noImageParam), Fn.conditionEquals(Fn.select(0, Fn.split('/', imageId.valueAsString)), '')),
    });
    const hasSsh = new CfnCondition(this, 'AllowSsh', { expression: Fn.conditionNot(Fn.conditionEquals(sshCidr.valueAsString, '')) });
    const ami = Fn.conditionIf(
      noImageParam.logicalId,
      Fn.findInMap('AmiRegionMap', Aws.REGION, 'AMI'),
      Fn.conditionIf(imageIsPath.logicalId, Fn.sub('{{resolve:ssm:${ImageId}}}'), imageId.valueAsString),
    ).toString();

    const vpc = new ec2.CfnVPC(this, 'Vpc', { cidrBlock: vpcCidr.valueAsString, enableDnsHostnames: true, enableDnsSupport: true });
    const igw = new ec2.CfnInternetGateway(this, 'InternetGateway');
    const igwAttach = new ec2.CfnVPCGatewayAttachment(this, 'InternetGatewayAttachment', { vpcId: vpc.ref, internetGatewayId: igw.ref });
    // Six /20s of the /16: a.b.0.0/20, a.b.16.0/20, ... Written with Join/Select/Split rather than
    // Fn::Cidr, which the rehearsal's emulator (moto 5.1.1) does not implement; same result.
    const octets = Fn.split('.', vpcCidr.valueAsString);
    const subnetCidr = (n: number) => Fn.join('', [Fn.select(0, octets), '.', Fn.select(1, octets), `.${n * 16}.0/20`]);
    const publicRt = new ec2.CfnRouteTable(this, 'PublicRouteTable', { vpcId: vpc.ref });
    const publicDefault = new ec2.CfnRoute(this, 'PublicDefaultRoute', { routeTableId: publicRt.ref, destinationCidrBlock: '0.0.0.0/0', gatewayId: igw.ref });
    publicDefault.addResourceDependency(igwAttach);

    const sg = new ec2.CfnSecurityGroup(this, 'AgentSecurityGroup', {
      vpcId: vpc.ref,
      groupDescription: 'Syntropy agents: the WireGuard UDP range from anywhere; routed traffic from the VPC; SSH only if SshSourceCidr is set',
      securityGroupIngress: [
        { ipProtocol: 'udp', fromPort: portFrom, toPort: portTo, cidrIp: '0.0.0.0/0', description: 'WireGuard (the first-boot port range)' },
        { ipProtocol: '-1', fromPort: -1, toPort: -1, cidrIp: vpcCidr.valueAsString, description: 'traffic the services subnets route through the agent' },
      ],
      securityGroupEgress: [{ ipProtocol: '-1', fromPort: -1, toPort: -1, cidrIp: '0.0.0.0/0', description: 'controller, STUN, peers, package mirrors' }],
    });
    const ssh = new ec2.CfnSecurityGroupIngress(this, 'AgentSshIngress', { groupId: sg.ref, ipProtocol: 'tcp', fromPort: 22, toPort: 22, cidrIp: sshCidr.valueAsString, description: 'SSH administration' });
    ssh.cfnOptions.condition = hasSsh;

    const routeTables: ec2.CfnRouteTable[] = [];
    const agentSubnets: ec2.CfnSubnet[] = [];
    SIDES.forEach((side, i) => {
      const az = Fn.select(i, Fn.getAzs());
      const natSubnet = new ec2.CfnSubnet(this, `NatSubnet${side.toUpperCase()}`, { vpcId: vpc.ref, availabilityZone: az, cidrBlock: subnetCidr(i * 3), mapPublicIpOnLaunch: false });
      const agentSubnet = new ec2.CfnSubnet(this, `AgentSubnet${side.toUpperCase()}`, { vpcId: vpc.ref, availabilityZone: az, cidrBlock: subnetCidr(i * 3 + 1), mapPublicIpOnLaunch: true });
      const servicesSubnet = new ec2.CfnSubnet(this, `ServicesSubnet${side.toUpperCase()}`, { vpcId: vpc.ref, availabilityZone: az, cidrBlock: subnetCidr(i * 3 + 2), mapPublicIpOnLaunch: false });
      for (const s of [natSubnet, agentSubnet]) new ec2.CfnSubnetRouteTableAssociation(this, `${s.node.id}PublicRoutes`, { subnetId: s.ref, routeTableId: publicRt.ref });
      const eip = new ec2.CfnEIP(this, `NatEip${side.toUpperCase()}`, { domain: 'vpc' });
      eip.addResourceDependency(igwAttach);
      const nat = new ec2.CfnNatGateway(this, `NatGateway${side.toUpperCase()}`, { subnetId: natSubnet.ref, allocationId: eip.attrAllocationId });
      const rt = new ec2.CfnRouteTable(this, `ServicesRouteTable${side.toUpperCase()}`, {
        vpcId: vpc.ref,
        tags: [
          { key: 'syntropy:failover-home', value: side },
          { key: 'Name', value: Fn.sub(`\${AWS::StackName}-services-${side}`) },
        ],
      });
      new ec2.CfnRoute(this, `ServicesDefaultRoute${side.toUpperCase()}`, { routeTableId: rt.ref, destinationCidrBlock: '0.0.0.0/0', natGatewayId: nat.ref });
      new ec2.CfnSubnetRouteTableAssociation(this, `ServicesSubnet${side.toUpperCase()}Routes`, { subnetId: servicesSubnet.ref, routeTableId: rt.ref });
      routeTables.push(rt);
      agentSubnets.push(agentSubnet);
    });

    const heartbeatPrefix = `/syntropy/failover/\${AWS::StackName}`;
    const role = new iam.CfnRole(this, 'AgentRole', {
      description: 'Syntropy agent instances: read the token, Session Manager, move the services routes on failover',
      assumeRolePolicyDocument: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' }] },
      managedPolicyArns: [Fn.sub('arn:${AWS::Partition}:iam::aws:policy/AmazonSSMManagedInstanceCore')],
      policies: [
        {
          policyName: 'agent-token',
          policyDocument: {
            Version: '2012-10-17',
            Statement: [
              { Sid: 'ReadTheToken', Effect: 'Allow', Action: 'ssm:GetParameter', Resource: Fn.sub('arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${TokenParameterName}') },
              { Sid: 'DecryptItOnlyThroughParameterStore', Effect: 'Allow', Action: 'kms:Decrypt', Resource: '*', Condition: { StringEquals: { 'kms:ViaService': Fn.sub('ssm.${AWS::Region}.amazonaws.com') } } },
            ],
          },
        },
        {
          policyName: 'route-failover',
          policyDocument: {
            Version: '2012-10-17',
            Statement: [
              {
                Sid: 'MoveTheServicesRoutes',
                Effect: 'Allow',
                Action: 'ec2:ReplaceRoute',
                Resource: routeTables.map((rt) => Fn.sub('arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:route-table/${RT}', { RT: rt.ref })),
              },
              { Sid: 'ReadRoutesAndPeers', Effect: 'Allow', Action: ['ec2:DescribeRouteTables', 'ec2:DescribeInstances'], Resource: '*' },
              {
                Sid: 'Heartbeats',
                Effect: 'Allow',
                Action: ['ssm:PutParameter', 'ssm:GetParametersByPath'],
                Resource: [Fn.sub(`arn:\${AWS::Partition}:ssm:\${AWS::Region}:\${AWS::AccountId}:parameter${heartbeatPrefix}`), Fn.sub(`arn:\${AWS::Partition}:ssm:\${AWS::Region}:\${AWS::AccountId}:parameter${heartbeatPrefix}/*`)],
              },
            ],
          },
        },
      ],
    });
    const profile = new iam.CfnInstanceProfile(this, 'AgentInstanceProfile', { roles: [role.ref] });

    const launchTemplate = new ec2.CfnLaunchTemplate(this, 'AgentLaunchTemplate', {
      launchTemplateData: {
        metadataOptions: { httpTokens: 'required', httpEndpoint: 'enabled', httpPutResponseHopLimit: 1, instanceMetadataTags: 'enabled' },
        blockDeviceMappings: [{ deviceName: '/dev/xvda', ebs: { volumeType: 'gp3', volumeSize: 8, encrypted: true, deleteOnTermination: true } }],
      },
    });

    const agents = SIDES.map((side, i) => {
      const failover = {
        group: Aws.STACK_NAME,
        region: Aws.REGION,
        self: side,
        heartbeat_prefix: Fn.sub(heartbeatPrefix),
        routed_cidr: routedCidr.valueAsString,
        tables: SIDES.map((home, j) => ({ id: routeTables[j]!.ref, home })),
        ...FAILOVER_DEFAULTS,
      };
      const userData = Fn.base64(
        Fn.join('\n', [
          '#cloud-config',
          'syntropy:',
          Fn.join('', ['  token_ssm_parameter: ', tokenParameter.valueAsString]),
          Fn.join('', ['  port_range: "', portRange.valueAsString, '"']),
          'write_files:',
          '  - path: /etc/syntropy/failover.json',
          "    permissions: '0644'",
          '    content: |',
          Fn.join('', ['      ', this.toJsonString(failover)]),
          '',
        ]),
      );
      const inst = new ec2.CfnInstance(this, `Agent${side.toUpperCase()}`, {
        imageId: ami,
        instanceType: instanceType.valueAsString,
        subnetId: agentSubnets[i]!.ref,
        securityGroupIds: [sg.ref],
        iamInstanceProfile: profile.ref,
        sourceDestCheck: false,
        monitoring: true,
        launchTemplate: { launchTemplateId: launchTemplate.ref, version: launchTemplate.attrLatestVersionNumber },
        userData,
        tags: [
          { key: 'Name', value: Fn.sub(`\${AWS::StackName}-agent-${side}`) },
          { key: 'syntropy:failover-group', value: Aws.STACK_NAME },
          { key: 'syntropy:failover-side', value: side },
        ],
      });
      inst.addResourceDependency(publicDefault);
      new ec2.CfnRoute(this, `ServicesRoutedCidr${side.toUpperCase()}`, { routeTableId: routeTables[i]!.ref, destinationCidrBlock: routedCidr.valueAsString, instanceId: inst.ref });
      return inst;
    });

    new CfnOutput(this, 'VpcId', { value: vpc.ref });
    SIDES.forEach((side, i) => {
      new CfnOutput(this, `Agent${side.toUpperCase()}InstanceId`, { value: agents[i]!.ref });
      new CfnOutput(this, `ServicesRouteTable${side.toUpperCase()}Id`, { value: routeTables[i]!.ref });
    });
    new CfnOutput(this, 'AgentSecurityGroupId', { value: sg.ref });
    Tags.of(this).add('syntropy:stack', 'reference-deployment');

    // cdk-nag AwsSolutions findings this design accepts, each acknowledged with its reason
    // (cdk-nag 3: CDK's own Validations API; every finding ID separately).
    const ack = (c: Construct, id: string, reason: string) => Validations.of(c).acknowledge({ id, reason });
    ack(vpc, 'AwsSolutions-VPC7', 'Flow logs cost per GB and need a log destination the customer chooses; docs/deployment.md recommends adding them.');
    ack(sg, 'AwsSolutions-EC23', 'WireGuard peers and relays connect from any address; only the UDP range chosen at first boot is open to 0.0.0.0/0.');
    ack(role, 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore]', 'AmazonSSMManagedInstanceCore is the AWS-maintained minimum for Session Manager and Run Command, the SSH-less administration path.');
    ack(role, 'AwsSolutions-IAM5[Resource::*]', "kms:Decrypt is limited by kms:ViaService to Parameter Store in this region (the key is the customer's); ec2:DescribeRouteTables and ec2:DescribeInstances support no resource-level permissions.");
    ack(role, 'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:parameter/syntropy/failover/<AWS::StackName>/*]', "Heartbeats: one parameter per agent under this stack's own path.");
    ack(sg, 'CloudFormation-Validate::W3687', 'FromPort/ToPort -1 on the all-protocol rules: AWS ignores them; moto (the rehearsal emulator) requires the keys.');
    ack(ssh, 'AwsSolutions-EC23', 'The SSH rule exists only when the customer gives SshSourceCidr (condition AllowSsh); the CIDR is theirs to narrow.');
    for (const a of agents) {
      ack(a, 'CloudFormation-Validate::W9010', 'ImageId comes from the AmiRegionMap mapping (which Marketplace replaces) or the ImageId parameter, through Fn::If; the validator reads the conditional as a literal.');
      ack(a, 'AwsSolutions-EC29', 'The agents are replaceable: configuration comes from user data and Parameter Store, and the failover keeps the routes on the other agent; termination protection would block stack updates that replace them.');
    }
  }
}

/** The synthesizer that needs no CDK bootstrap: the template is deployed with CloudFormation directly. */
export function standaloneSynthesizer(): DefaultStackSynthesizer {
  return new DefaultStackSynthesizer({ generateBootstrapVersionRule: false });
}

/** Synthesizes the template for the given AMIs; returns it as a plain object. */
export function synthTemplate(amis: Record<string, string>, opts: { nag?: boolean } = {}): Record<string, unknown> {
  // CDK writes its cloud assembly to a fresh directory under the system's temp directory when no
  // outdir is given and never removes it; name it ourselves and remove it once the template is read.
  const outdir = mkdtempSync(join(tmpdir(), 'cdk-synth-'));
  try {
    const app = new App({ analyticsReporting: false, outdir });
    if (opts.nag) Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    const stack = new ReferenceDeploymentStack(app, 'SyntropyReferenceDeployment', { amis, synthesizer: standaloneSynthesizer() });
    const assembly = app.synth();
    return assembly.getStackByName(stack.stackName).template as Record<string, unknown>;
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}
