// The Amazon Inspector gate of publish (aws): before anything is copied or shared, the image's
// findings from Inspector's scan of the instances launched from it (the boot tests) at or above
// publish.inspector.min_severity block the release, unless a current waiver names the
// vulnerability (or the finding ARN) with a reason and an expiry date. Shapes as the Inspector2
// API reference states them: BatchGetAccountStatus (accounts[].resourceState.ec2.status),
// ListFindings with filterCriteria.ec2InstanceImageId / severity / findingStatus (StringFilter
// {comparison: EQUALS, value}), paginated by nextToken; a finding's severity is one of
// INFORMATIONAL, LOW, MEDIUM, HIGH, CRITICAL, UNTRIAGED.
import { BatchGetAccountStatusCommand, Inspector2Client, ListFindingsCommand, type Finding } from '@aws-sdk/client-inspector2';
import { INSPECTOR_SEVERITIES as SEVERITIES, type Config } from '../config.ts';
import { awsCall, type RetryOptions } from '../aws-call.ts';


export interface GateFinding {
  arn: string;
  vulnerability: string;
  severity: string;
  package: string;
  title: string;
  status: string;
}

export interface InspectorResult {
  enabled: boolean;
  min_severity: string;
  blocking: GateFinding[];
  waived: (GateFinding & { reason: string; expires: string })[];
  below_threshold: number;
}

function summarize(f: Finding): GateFinding {
  const v = f.packageVulnerabilityDetails;
  return {
    arn: f.findingArn ?? '',
    vulnerability: v?.vulnerabilityId ?? f.title ?? '',
    severity: f.severity ?? 'UNTRIAGED',
    package: (v?.vulnerablePackages ?? []).map((p) => `${p.name ?? '?'} ${p.version ?? ''}${p.fixedInVersion ? ` (fixed in ${p.fixedInVersion})` : ''}`).join(', '),
    title: f.title ?? '',
    status: f.status ?? '',
  };
}

/**
 * Reads the account's Inspector state and the image's findings; splits them into blocking,
 * waived and below the threshold. Throws if EC2 scanning is off (no findings would mean nothing).
 */
export async function inspectorGate(
  cfg: Config,
  region: string,
  imageId: string,
  accountId: string,
  client: Inspector2Client,
  opts: { now?: Date; retry?: RetryOptions } = {},
): Promise<InspectorResult> {
  const ic = cfg.publish.inspector;
  const min = SEVERITIES.indexOf(ic.min_severity);
  const status = await awsCall(region, 'Inspector2 BatchGetAccountStatus', () => client.send(new BatchGetAccountStatusCommand({ accountIds: [accountId] })), opts.retry);
  const ec2 = status.accounts?.find((a) => a.accountId === accountId)?.resourceState?.ec2?.status;
  if (ec2 !== 'ENABLED') {
    throw new Error(
      `${region}: Amazon Inspector EC2 scanning is ${ec2 ?? 'not enabled'} in account ${accountId}, so it has no findings to judge ${imageId} by: enable it (aws inspector2 enable --resource-types EC2) before the boot tests, or set publish.inspector.enabled: false (recorded in the publish manifest)`,
    );
  }
  const findings: Finding[] = [];
  let nextToken: string | undefined;
  do {
    const page = await awsCall(
      region,
      'Inspector2 ListFindings',
      () =>
        client.send(
          new ListFindingsCommand({
            filterCriteria: {
              ec2InstanceImageId: [{ comparison: 'EQUALS', value: imageId }],
              findingStatus: [{ comparison: 'EQUALS', value: 'ACTIVE' }],
            },
            maxResults: 100,
            nextToken,
          }),
        ),
      opts.retry,
    );
    findings.push(...(page.findings ?? []));
    nextToken = page.nextToken;
  } while (nextToken);
  const today = (opts.now ?? new Date()).toISOString().slice(0, 10);
  const result: InspectorResult = { enabled: true, min_severity: ic.min_severity, blocking: [], waived: [], below_threshold: 0 };
  for (const f of findings.map(summarize)) {
    // UNTRIAGED counts as at the threshold: unknown severity is not low severity.
    const rank = f.severity === 'UNTRIAGED' ? min : SEVERITIES.indexOf(f.severity as (typeof SEVERITIES)[number]);
    if (rank < min) {
      result.below_threshold += 1;
      continue;
    }
    const w = ic.waivers.find((x) => x.finding === f.vulnerability || x.finding === f.arn);
    if (w && w.expires >= today) result.waived.push({ ...f, reason: w.reason, expires: w.expires });
    else result.blocking.push(f);
  }
  return result;
}

export function describeBlocking(r: InspectorResult): string {
  return r.blocking.map((f) => `${f.vulnerability} ${f.severity}${f.package ? ` in ${f.package}` : ''}`).join('; ');
}
