// A Mermaid diagram of what the reference stack creates, generated from the synthesized template
// (docs/deployment.md embeds it; a test keeps the two equal).
type Resource = { Type: string; Properties?: Record<string, unknown> };

const refOf = (v: unknown): string | null => {
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if (typeof o.Ref === 'string') return o.Ref;
    if (Array.isArray(o['Fn::GetAtt'])) return String((o['Fn::GetAtt'] as unknown[])[0]);
  }
  return null;
};

const SHORT: Record<string, string> = {
  'AWS::EC2::VPC': 'VPC',
  'AWS::EC2::InternetGateway': 'Internet gateway',
  'AWS::EC2::Subnet': 'Subnet',
  'AWS::EC2::NatGateway': 'NAT gateway',
  'AWS::EC2::Instance': 'Agent instance',
  'AWS::EC2::RouteTable': 'Route table',
  'AWS::EC2::SecurityGroup': 'Security group',
  'AWS::IAM::Role': 'IAM role',
  'AWS::IAM::InstanceProfile': 'Instance profile',
  'AWS::EC2::LaunchTemplate': 'Launch template',
};

/** The diagram: subnets grouped by AZ half, routes as edges, instances in their subnets. */
export function mermaid(template: Record<string, unknown>): string {
  const res = (template.Resources ?? {}) as Record<string, Resource>;
  const ids = Object.keys(res).filter((k) => SHORT[res[k]!.Type]);
  const lines = ['flowchart TB'];
  const label = (k: string) => `${k}["${SHORT[res[k]!.Type]}<br/>${k}"]`;
  const halves = ['A', 'B'];
  lines.push('  Internet((Internet))');
  for (const k of ids.filter((k) => !/[AB]$/.test(k) || res[k]!.Type === 'AWS::IAM::Role')) lines.push(`  ${label(k)}`);
  for (const h of halves) {
    lines.push(`  subgraph AZ${h}["Availability Zone ${h === 'A' ? 1 : 2}"]`);
    for (const k of ids.filter((k) => k.endsWith(h) && res[k]!.Type !== 'AWS::IAM::Role')) lines.push(`    ${label(k)}`);
    lines.push('  end');
  }
  const edges = new Set<string>();
  for (const [k, r] of Object.entries(res)) {
    const p = r.Properties ?? {};
    if (r.Type === 'AWS::EC2::Route') {
      const rt = refOf(p.RouteTableId);
      const to = refOf(p.GatewayId) ?? refOf(p.NatGatewayId) ?? refOf(p.InstanceId);
      const dest = refOf(p.DestinationCidrBlock) ?? String(p.DestinationCidrBlock);
      if (rt && to) edges.add(`  ${rt} -- "${dest}" --> ${to}`);
    } else if (r.Type === 'AWS::EC2::SubnetRouteTableAssociation') {
      const s = refOf(p.SubnetId);
      const rt = refOf(p.RouteTableId);
      if (s && rt) edges.add(`  ${s} -.-> ${rt}`);
    } else if (r.Type === 'AWS::EC2::Instance') {
      const s = refOf(p.SubnetId);
      if (s) edges.add(`  ${k} --- ${s}`);
      const prof = refOf(p.IamInstanceProfile);
      if (prof) edges.add(`  ${k} -.- ${prof}`);
    } else if (r.Type === 'AWS::EC2::NatGateway') {
      const s = refOf(p.SubnetId);
      if (s) edges.add(`  ${k} --- ${s}`);
    } else if (r.Type === 'AWS::IAM::InstanceProfile') {
      for (const role of (p.Roles as unknown[] | undefined) ?? []) {
        const rr = refOf(role);
        if (rr) edges.add(`  ${k} -.- ${rr}`);
      }
    } else if (r.Type === 'AWS::EC2::InternetGateway') {
      edges.add(`  Internet --- ${k}`);
    }
  }
  lines.push(...[...edges].sort());
  return lines.join('\n');
}
