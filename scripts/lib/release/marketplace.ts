// Submitting a published image to AWS Marketplace as a new version of an AMI product, through the
// Marketplace Catalog API instead of the portal.
//
// What AWS states, and where:
// - AWS Marketplace developer guide, "Work with AMI-based products > Add a new version":
//   StartChangeSet with ChangeType AddDeliveryOptions on Entity {Type: "AmiProduct@1.0",
//   Identifier: <product ID>}; details Version {VersionTitle, ReleaseNotes} and DeliveryOptions
//   [{Details: {AmiDeliveryOptionDetails: {AmiSource {AmiId, AccessRoleArn, UserName,
//   OperatingSystemName, OperatingSystemVersion, ScanningPort}, UsageInstructions,
//   RecommendedInstanceType, SecurityGroups [{IpProtocol, FromPort, ToPort, IpRanges}]}}}];
//   Intent VALIDATE checks the request without creating the version.
// - The field limits below are those of AWS's published change-type shapes
//   (awslabs/aws-marketplace-catalog-api-shapes-for-python, AmiProduct_1_0_ChangeTypes:
//   AddVersion, AmiSource, AddAmiDeliveryOptionDetails, SecurityGroup).
// - Catalog API reference: StartChangeSet (Catalog "AWSMarketplace", ChangeSet, ChangeSetName,
//   ClientRequestToken for idempotency, Intent VALIDATE|APPLY) answers ChangeSetId/ChangeSetArn;
//   DescribeChangeSet answers Status PREPARING|APPLYING|SUCCEEDED|CANCELLED|FAILED, FailureCode
//   CLIENT_ERROR|SERVER_FAULT, FailureDescription and per change ErrorDetailList
//   [{ErrorCode, ErrorMessage}].
// - Seller guide, "Give AWS Marketplace access to your AMI": an IAM role trusted by the service
//   principal assets.marketplace.amazonaws.com with the AWS managed policy
//   AWSMarketplaceAmiIngestion, whose statements allow ec2:ModifySnapshotAttribute (snapshots in
//   us-east-1) and ec2:DescribeImageAttribute, ec2:DescribeImages, ec2:DescribeSnapshotAttribute,
//   ec2:ModifyImageAttribute; Marketplace ingests the AMI from us-east-1.
import { createHash } from 'node:crypto';
import {
  DescribeChangeSetCommand,
  MarketplaceCatalogClient,
  StartChangeSetCommand,
  type DescribeChangeSetCommandOutput,
  type StartChangeSetCommandInput,
} from '@aws-sdk/client-marketplace-catalog';
import {
  GetPolicyCommand,
  GetPolicyVersionCommand,
  GetRoleCommand,
  GetRolePolicyCommand,
  IAMClient,
  ListAttachedRolePoliciesCommand,
  ListRolePoliciesCommand,
} from '@aws-sdk/client-iam';
import type { Config } from '../config.ts';
import { awsCall, type RetryOptions } from '../aws-call.ts';

/** Marketplace reads new AMI versions from this region only. */
export const INGESTION_REGION = 'us-east-1';
export const INGESTION_PRINCIPAL = 'assets.marketplace.amazonaws.com';
export const INGESTION_POLICY_ARN = 'arn:aws:iam::aws:policy/AWSMarketplaceAmiIngestion';
/** The actions AWSMarketplaceAmiIngestion grants; a role without that policy must allow each. */
export const INGESTION_ACTIONS = ['ec2:ModifySnapshotAttribute', 'ec2:DescribeImageAttribute', 'ec2:DescribeImages', 'ec2:DescribeSnapshotAttribute', 'ec2:ModifyImageAttribute'];

export type MarketplaceConfig = Config['publish']['marketplace'];

export interface SecurityGroupRule {
  IpProtocol: 'tcp' | 'udp';
  FromPort: number;
  ToPort: number;
  IpRanges: string[];
}

export interface AddDeliveryOptionsDetails {
  Version: { VersionTitle: string; ReleaseNotes: string };
  DeliveryOptions: {
    Details: {
      AmiDeliveryOptionDetails: {
        AmiSource: { AmiId: string; AccessRoleArn: string; UserName: string; OperatingSystemName: string; OperatingSystemVersion: string; ScanningPort: number };
        UsageInstructions: string;
        RecommendedInstanceType: string;
        SecurityGroups: SecurityGroupRule[];
      };
    };
  }[];
}

export interface VersionInput {
  imageVersion: string;
  buildId: string;
  amiId: string;
}

/** Fills {version}, {port_range}, {ssh_port}, {user} in the configured texts. */
function fill(text: string, cfg: Config, v: VersionInput): string {
  return text
    .replaceAll('{version}', v.imageVersion)
    .replaceAll('{build_id}', v.buildId)
    .replaceAll('{port_range}', cfg.firstboot.default_port_range)
    .replaceAll('{ssh_port}', String(cfg.ssh.port))
    .replaceAll('{user}', cfg.ssh.user);
}

/** The AddDeliveryOptions details for one image: the SSH port and the agent's UDP range, as the security group recommendation. */
export function deliveryDetails(cfg: Config, v: VersionInput): AddDeliveryOptionsDetails {
  const mp = cfg.publish.marketplace;
  // The config's schema has checked the range with first boot's own rule (rangeProblem).
  const [from, to] = cfg.firstboot.default_port_range.split('-').map(Number) as [number, number];
  return {
    Version: { VersionTitle: fill(mp.version_title, cfg, v), ReleaseNotes: fill(mp.release_notes, cfg, v) },
    DeliveryOptions: [
      {
        Details: {
          AmiDeliveryOptionDetails: {
            AmiSource: {
              AmiId: v.amiId,
              AccessRoleArn: mp.access_role_arn,
              UserName: cfg.ssh.user,
              OperatingSystemName: mp.os_name,
              OperatingSystemVersion: mp.os_version,
              ScanningPort: cfg.ssh.port,
            },
            UsageInstructions: fill(mp.usage_instructions, cfg, v),
            RecommendedInstanceType: mp.recommended_instance_type,
            SecurityGroups: [
              { IpProtocol: 'tcp', FromPort: cfg.ssh.port, ToPort: cfg.ssh.port, IpRanges: mp.ssh_cidrs },
              { IpProtocol: 'udp', FromPort: from, ToPort: to, IpRanges: ['0.0.0.0/0'] },
            ],
          },
        },
      },
    ],
  };
}

const NON_BLANK = /^\S+[\S\s]*/;

/** The limits AWS's AmiProduct change-type shapes state, checked before anything is sent. */
export function detailsProblems(d: AddDeliveryOptionsDetails): string[] {
  const p: string[] = [];
  const text = (what: string, s: string, max: number) => {
    if (!NON_BLANK.test(s)) p.push(`${what} must start with a non-blank character`);
    if (s.length > max) p.push(`${what} is ${s.length} characters; Marketplace allows ${max}`);
  };
  text('Version.VersionTitle', d.Version.VersionTitle, 64);
  text('Version.ReleaseNotes', d.Version.ReleaseNotes, 30000);
  for (const o of d.DeliveryOptions) {
    const a = o.Details.AmiDeliveryOptionDetails;
    const s = a.AmiSource;
    if (!/^ami-([a-zA-Z0-9]{8}|[a-zA-Z0-9]{17})$/.test(s.AmiId)) p.push(`AmiSource.AmiId ${s.AmiId} is not an AMI ID`);
    if (!/^arn:aws:iam::\d{12}:role\/[a-zA-Z_0-9+=,.@\-_/]+$/.test(s.AccessRoleArn)) p.push(`AmiSource.AccessRoleArn "${s.AccessRoleArn}" is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)`);
    if (!/^[\w-]+$/.test(s.UserName) || s.UserName.length > 100) p.push(`AmiSource.UserName "${s.UserName}" must be letters, digits, _ or - (100 at most)`);
    text('AmiSource.OperatingSystemName', s.OperatingSystemName, 100);
    text('AmiSource.OperatingSystemVersion', s.OperatingSystemVersion, 100);
    if (!Number.isInteger(s.ScanningPort) || s.ScanningPort < 1 || s.ScanningPort > 65535) p.push(`AmiSource.ScanningPort ${s.ScanningPort} is not a port`);
    text('UsageInstructions', a.UsageInstructions, 4000);
    if (!/^\S{1,24}$/.test(a.RecommendedInstanceType)) p.push(`RecommendedInstanceType "${a.RecommendedInstanceType}" is not an instance type`);
    if (a.SecurityGroups.length < 1 || a.SecurityGroups.length > 25) p.push(`SecurityGroups has ${a.SecurityGroups.length} rules; Marketplace takes 1 to 25`);
    for (const g of a.SecurityGroups) {
      if (g.FromPort < 1 || g.ToPort > 65535 || g.FromPort > g.ToPort) p.push(`SecurityGroups ${g.IpProtocol} ${g.FromPort}-${g.ToPort} is not a port range`);
      if (g.IpRanges.length < 1 || g.IpRanges.length > 5) p.push(`SecurityGroups ${g.IpProtocol} ${g.FromPort}-${g.ToPort} has ${g.IpRanges.length} IP ranges; Marketplace takes 1 to 5`);
    }
  }
  return p;
}

/**
 * The StartChangeSet request. Its ClientRequestToken is derived from the build, the intent and the
 * details, so a rerun of publish (after a crash or a timeout) gets the change set it already
 * started instead of a second version; changed details make a new request. `resubmit` (a
 * timestamp) forces a new one for the same details, e.g. after a SERVER_FAULT.
 */
export function changeSetRequest(cfg: Config, v: VersionInput, intent: 'VALIDATE' | 'APPLY', resubmit = ''): StartChangeSetCommandInput {
  const details = deliveryDetails(cfg, v);
  const token = createHash('sha256').update(JSON.stringify([v.buildId, intent, details, resubmit])).digest('hex').slice(0, 36);
  return {
    Catalog: 'AWSMarketplace',
    ChangeSetName: `${intent === 'VALIDATE' ? 'validate' : 'add'} version ${v.imageVersion} (build ${v.buildId})`.slice(0, 100),
    ClientRequestToken: token,
    Intent: intent,
    ChangeSet: [
      {
        ChangeType: 'AddDeliveryOptions',
        Entity: { Type: 'AmiProduct@1.0', Identifier: cfg.publish.marketplace.product_id },
        DetailsDocument: details as unknown as Record<string, never>,
      },
    ],
  };
}

/** detailsProblems of the details a changeSetRequest carries. */
export function requestProblems(req: StartChangeSetCommandInput): string[] {
  return detailsProblems(req.ChangeSet![0]!.DetailsDocument as unknown as AddDeliveryOptionsDetails);
}

interface PolicyStatement {
  Effect?: string;
  Action?: string | string[];
  NotAction?: string | string[];
  Principal?: string | { Service?: string | string[]; AWS?: string | string[] };
}

/**
 * IAM answers policy documents URL-encoded (IAM API Reference: Role.AssumeRolePolicyDocument,
 * GetRolePolicy.PolicyDocument and PolicyVersion.Document are "URL-encoded compliant with RFC 3986").
 */
function parseDocument(doc: string | undefined, what: string): PolicyStatement[] {
  if (!doc) return [];
  let text = doc;
  try {
    text = decodeURIComponent(doc);
  } catch {
    // already plain JSON
  }
  try {
    const parsed = JSON.parse(text) as { Statement?: PolicyStatement | PolicyStatement[] };
    return Array.isArray(parsed.Statement) ? parsed.Statement : parsed.Statement ? [parsed.Statement] : [];
  } catch {
    throw new Error(`${what} is not a JSON policy document`);
  }
}

const list = (x: string | string[] | undefined): string[] => (x === undefined ? [] : Array.isArray(x) ? x : [x]);

/** IAM action matching: case-insensitive, `*` and `?` wildcards. */
function actionMatches(pattern: string, action: string): boolean {
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 'i');
  return re.test(action);
}

/** Actions of `wanted` no Allow statement grants (Deny statements are not modelled: they can only take away). */
export function missingActions(statements: PolicyStatement[], wanted: string[]): string[] {
  return wanted.filter(
    (a) =>
      !statements.some(
        (s) =>
          s.Effect === 'Allow' &&
          (list(s.Action).some((p) => actionMatches(p, a)) || (s.NotAction !== undefined && !list(s.NotAction).some((p) => actionMatches(p, a)))),
      ),
  );
}

/** Whether a trust policy lets the Marketplace ingestion service assume the role. */
export function trustsMarketplace(statements: PolicyStatement[]): boolean {
  return statements.some((s) => {
    if (s.Effect !== 'Allow') return false;
    if (!list(s.Action).some((a) => actionMatches(a, 'sts:AssumeRole'))) return false;
    const p = s.Principal;
    return typeof p === 'object' && list(p.Service).includes(INGESTION_PRINCIPAL);
  });
}

/** Checks the access role: it exists, trusts Marketplace, and grants what AWSMarketplaceAmiIngestion does. Returns problems. */
export async function accessRoleProblems(iam: IAMClient, arn: string, retry?: RetryOptions): Promise<string[]> {
  const name = arn.split('/').pop() ?? '';
  const call = <T>(what: string, fn: () => Promise<T>) => awsCall('iam', what, fn, retry);
  let role;
  try {
    role = await call('IAM GetRole', () => iam.send(new GetRoleCommand({ RoleName: name })));
  } catch (e) {
    if (/NoSuchEntity/.test((e as Error).message)) return [`the access role ${arn} does not exist: create it (README "Handing the AMI to Marketplace")`];
    throw e;
  }
  const problems: string[] = [];
  if (role.Role?.Arn && role.Role.Arn !== arn) problems.push(`the role named ${name} is ${role.Role.Arn}, not ${arn}`);
  if (!trustsMarketplace(parseDocument(role.Role?.AssumeRolePolicyDocument, `the trust policy of ${name}`))) {
    problems.push(`the trust policy of ${arn} does not let ${INGESTION_PRINCIPAL} call sts:AssumeRole`);
  }
  const attached = await call('IAM ListAttachedRolePolicies', () => iam.send(new ListAttachedRolePoliciesCommand({ RoleName: name })));
  const arns = (attached.AttachedPolicies ?? []).map((p) => p.PolicyArn ?? '');
  if (arns.includes(INGESTION_POLICY_ARN)) return problems;
  // Without the managed policy, the role's own policies must allow every action it grants.
  const statements: PolicyStatement[] = [];
  for (const pArn of arns) {
    const pol = await call('IAM GetPolicy', () => iam.send(new GetPolicyCommand({ PolicyArn: pArn })));
    const ver = await call('IAM GetPolicyVersion', () => iam.send(new GetPolicyVersionCommand({ PolicyArn: pArn, VersionId: pol.Policy?.DefaultVersionId ?? 'v1' })));
    statements.push(...parseDocument(ver.PolicyVersion?.Document, pArn));
  }
  const inline = await call('IAM ListRolePolicies', () => iam.send(new ListRolePoliciesCommand({ RoleName: name })));
  for (const pName of inline.PolicyNames ?? []) {
    const pol = await call('IAM GetRolePolicy', () => iam.send(new GetRolePolicyCommand({ RoleName: name, PolicyName: pName })));
    statements.push(...parseDocument(pol.PolicyDocument, `${name}/${pName}`));
  }
  const missing = missingActions(statements, INGESTION_ACTIONS);
  if (missing.length > 0) problems.push(`the access role ${arn} does not allow ${missing.join(', ')}: attach ${INGESTION_POLICY_ARN}`);
  return problems;
}

export interface ChangeSetOutcome {
  change_set_id: string;
  change_set_arn: string;
  intent: 'VALIDATE' | 'APPLY';
  status: string;
  errors: string[];
}

/** The errors a finished change set reports, each with its code. */
export function changeSetErrors(d: DescribeChangeSetCommandOutput): string[] {
  const errs: string[] = [];
  if (d.FailureCode) errs.push(`${d.FailureCode}${d.FailureDescription ? `: ${d.FailureDescription}` : ''}`);
  for (const c of d.ChangeSet ?? []) for (const e of c.ErrorDetailList ?? []) errs.push(`${c.ChangeType ?? 'change'}: ${e.ErrorCode ?? '?'}: ${e.ErrorMessage ?? ''}`);
  return errs;
}

export interface SubmitOptions {
  retry?: RetryOptions;
  pollMs?: number;
  timeoutMs?: number;
  log?: (line: string) => void;
  sleep?: (ms: number) => Promise<void>;
  resubmit?: string;
}

const TERMINAL = new Set(['SUCCEEDED', 'FAILED', 'CANCELLED']);

/** Starts the change set (or finds the one the same request already started) and waits for it, printing its progress. */
export async function submitVersion(catalog: MarketplaceCatalogClient, cfg: Config, v: VersionInput, intent: 'VALIDATE' | 'APPLY', opts: SubmitOptions = {}): Promise<ChangeSetOutcome> {
  const log = opts.log ?? (() => undefined);
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const req = changeSetRequest(cfg, v, intent, opts.resubmit);
  const problems = requestProblems(req);
  if (problems.length > 0) throw new Error(`the Marketplace change set would be refused: ${problems.join('; ')}`);
  const started = await awsCall(INGESTION_REGION, 'Marketplace Catalog StartChangeSet', () => catalog.send(new StartChangeSetCommand(req)), opts.retry);
  const id = started.ChangeSetId;
  if (!id) throw new Error('Marketplace Catalog StartChangeSet returned no change set ID');
  log(`${INGESTION_REGION}: Marketplace change set ${id} (${intent}) for product ${cfg.publish.marketplace.product_id}, AMI ${v.amiId}`);
  const deadline = Date.now() + (opts.timeoutMs ?? cfg.publish.marketplace.wait_minutes * 60_000);
  let last = '';
  for (;;) {
    const d = await awsCall(INGESTION_REGION, 'Marketplace Catalog DescribeChangeSet', () => catalog.send(new DescribeChangeSetCommand({ Catalog: 'AWSMarketplace', ChangeSetId: id })), opts.retry);
    const status = d.Status ?? 'UNKNOWN';
    if (status !== last) {
      log(`${INGESTION_REGION}: change set ${id}: ${status}${d.StartTime ? ` (started ${d.StartTime})` : ''}`);
      last = status;
    }
    if (TERMINAL.has(status)) {
      return { change_set_id: id, change_set_arn: started.ChangeSetArn ?? d.ChangeSetArn ?? '', intent, status, errors: changeSetErrors(d) };
    }
    if (Date.now() > deadline) {
      // Not an error of the change set: it goes on in Marketplace. The caller records it and a
      // rerun (same request token) picks it up again.
      log(`${INGESTION_REGION}: change set ${id} is still ${status} after ${cfg.publish.marketplace.wait_minutes} min (Marketplace scans the AMI first); run publish again to keep waiting, or: aws marketplace-catalog describe-change-set --catalog AWSMarketplace --change-set-id ${id}`);
      return { change_set_id: id, change_set_arn: started.ChangeSetArn ?? d.ChangeSetArn ?? '', intent, status, errors: [] };
    }
    await sleep(opts.pollMs ?? 30_000);
  }
}
