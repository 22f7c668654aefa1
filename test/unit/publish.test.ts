// publish and clean against the real AWS SDK v3, mocked at the client boundary: one client
// (and one mock) per region, so each region's calls can be told apart.
import { beforeEach, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mockClient, type AwsClientStub } from 'aws-sdk-client-mock';
import {
  CopyImageCommand,
  CreateTagsCommand,
  DeleteSnapshotCommand,
  DeregisterImageCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeSnapshotsCommand,
  EC2Client,
  ModifyImageAttributeCommand,
  ModifySnapshotAttributeCommand,
  TerminateInstancesCommand,
  type Image,
} from '@aws-sdk/client-ec2';
import { DeleteParameterCommand, GetParameterCommand, GetParametersByPathCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { BatchGetAccountStatusCommand, Inspector2Client, ListFindingsCommand, type Finding } from '@aws-sdk/client-inspector2';
import { GetPolicyCommand, GetPolicyVersionCommand, GetRoleCommand, GetRolePolicyCommand, IAMClient, ListAttachedRolePoliciesCommand, ListRolePoliciesCommand } from '@aws-sdk/client-iam';
import { DescribeChangeSetCommand, MarketplaceCatalogClient, StartChangeSetCommand } from '@aws-sdk/client-marketplace-catalog';
import { deliveryDetails, detailsProblems, submitVersion } from '../../scripts/lib/release/marketplace.ts';
import { loadConfig, type Config } from '../../scripts/lib/config.ts';
import { marketplaceProblems, planLines, publish, reportProblems, validateMarketplace, type BuildManifestLike, type Clients } from '../../scripts/lib/release/publish.ts';
import { clean, selectForRemoval, type ImageInfo } from '../../scripts/lib/release/retention.ts';
import { awsCall } from '../../scripts/lib/aws-call.ts';
import { writeReport } from '../../scripts/lib/compliance.ts';
import { bootReport, writeBootReport } from '../../scripts/lib/boottest/report.ts';
import { buildReport } from '../../hardening/report.ts';
import { passingReport } from '../helpers/build-output.ts';

const REGIONS = ['us-east-1', 'eu-west-1', 'eu-central-1'];
let ec2: Record<string, { client: EC2Client; mock: AwsClientStub<EC2Client> }>;
let ssm: Record<string, { client: SSMClient; mock: AwsClientStub<SSMClient> }>;
let insp: Record<string, { client: Inspector2Client; mock: AwsClientStub<Inspector2Client> }>;
let clients: Clients;
let iam: IAMClient;
let iamMock: AwsClientStub<IAMClient>;
let catalog: MarketplaceCatalogClient;
let catalogMock: AwsClientStub<MarketplaceCatalogClient>;
const ACCOUNT = '444455556666';
/** BatchGetAccountStatus as the Inspector2 API reference shapes it (State: status, errorCode, errorMessage). */
const accountStatus = (ec2: 'ENABLED' | 'DISABLED') => {
  const st = (status: 'ENABLED' | 'DISABLED') => ({ status, errorCode: 'ALREADY_ENABLED' as const, errorMessage: '' });
  return { accounts: [{ accountId: ACCOUNT, state: st('ENABLED'), resourceState: { ec2: st(ec2), ecr: st('DISABLED') } }], failedAccounts: [] };
};
/** ListFindings answering page by page on nextToken, as Inspector2 paginates. */
const findingsPages = (pages: Finding[][]) => (input: { nextToken?: string }) => {
  const i = input.nextToken ? Number(input.nextToken.slice(1)) : 0;
  return { findings: pages[i] ?? [], ...(i + 1 < pages.length ? { nextToken: `p${i + 1}` } : {}) };
};

beforeEach(() => {
  ec2 = {};
  ssm = {};
  insp = {};
  for (const r of REGIONS) {
    const c = new EC2Client({ region: r });
    ec2[r] = { client: c, mock: mockClient(c) };
    const s = new SSMClient({ region: r });
    ssm[r] = { client: s, mock: mockClient(s) };
    // Parameter Store as AWS documents it: an aws:ec2:image value is validated after PutParameter
    // returns, so the first GetParameter right after may not find it yet.
    const store = new Map<string, string>();
    const fresh = new Set<string>();
    ssm[r].mock.on(PutParameterCommand).callsFake((input: { Name: string; Value: string }) => {
      store.set(input.Name, input.Value);
      fresh.add(input.Name);
      return { Version: 1 };
    });
    ssm[r].mock.on(GetParameterCommand).callsFake((input: { Name: string }) => {
      if (fresh.delete(input.Name) || !store.has(input.Name)) throw Object.assign(new Error(`${input.Name} not found`), { name: 'ParameterNotFound' });
      return { Parameter: { Name: input.Name, Value: store.get(input.Name), DataType: 'aws:ec2:image' } };
    });
    // Snapshots unencrypted unless a test says otherwise.
    ec2[r].mock.on(DescribeSnapshotsCommand).callsFake((input: { SnapshotIds: string[] }) => ({ Snapshots: input.SnapshotIds.map((SnapshotId) => ({ SnapshotId, Encrypted: false })) }));
    ec2[r].mock.on(CreateTagsCommand).resolves({});
    ec2[r].mock.on(ModifyImageAttributeCommand).resolves({});
    ec2[r].mock.on(ModifySnapshotAttributeCommand).resolves({});
    // Amazon Inspector as its API reference shows it: EC2 scanning on, no findings unless a test adds some.
    const i = new Inspector2Client({ region: r });
    insp[r] = { client: i, mock: mockClient(i) };
    insp[r].mock.on(BatchGetAccountStatusCommand).resolves(accountStatus('ENABLED'));
    insp[r].mock.on(ListFindingsCommand).resolves({ findings: [] });
  }
  iam = new IAMClient({ region: 'us-east-1' });
  iamMock = mockClient(iam);
  catalog = new MarketplaceCatalogClient({ region: 'us-east-1' });
  catalogMock = mockClient(catalog);
  clients = { ec2: (r) => ec2[r]!.client, ssm: (r) => ssm[r]!.client, inspector: (r) => insp[r]!.client, iam: () => iam, catalog: () => catalog };
});

const manifest: BuildManifestLike = { build_id: '20260101T000000Z', target: 'aws', image: { name: 'syntropy-agent-debian13', version: '1.2.0' }, outputs: { amis: { 'us-east-1': 'ami-src' } } };

const goodImage = (id: string, snap: string, state = 'available'): Image => ({
  ImageId: id,
  OwnerId: ACCOUNT,
  Name: 'syntropy-agent-debian13-1.2.0-20260101T000000Z',
  State: state as Image['State'],
  VirtualizationType: 'hvm',
  RootDeviceType: 'ebs',
  Architecture: 'x86_64',
  EnaSupport: true,
  ImdsSupport: 'v2.0',
  BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { SnapshotId: snap } }],
});

/** A build folder whose reports come from their real writers; `compliance: false` makes it fail. */
function buildDir(reports: { compliance?: boolean; boot?: boolean } = { compliance: true, boot: true }): string {
  const d = mkdtempSync(join(tmpdir(), 'publish-'));
  mkdirSync(join(d, 'reports'));
  if (reports.compliance !== undefined) {
    const r = passingReport();
    writeReport(join(d, 'reports'), 'compliance', reports.compliance ? r : buildReport(r.results.map((x) => ({ ...x, result: 'FAIL' as const })), { phase: 'p', target: 't', mode: 'offline', probeMs: 0, totalMs: 0, roundTrips: 1 }));
  }
  if (reports.boot !== undefined) writeBootReport(join(d, 'reports'), bootReport('20260101T000000Z', 'aws', [{ name: 'user-data', passed: reports.boot, ms: 1, steps: [], figures: {} }], ['user-data']));
  return d;
}

function cfg(extra: Record<string, unknown> = {}): Config {
  return loadConfig({ overrides: [{ target: 'aws', publish: { regions: ['eu-west-1'], launch_accounts: ['111122223333'], ...extra } }] }).config;
}

function sourceIsGood(id = 'ami-src'): void {
  ec2['us-east-1']!.mock.on(DescribeImagesCommand, { ImageIds: [id] }).resolves({ Images: [goodImage(id, 'snap-src')] });
  ec2['us-east-1']!.mock.on(DescribeSnapshotsCommand).resolves({ Snapshots: [{ SnapshotId: 'snap-src', Encrypted: false }] });
}

const fast = { retry: { sleep: async () => undefined }, pollMs: 1 };

describe('publish', () => {
  it('waits for a copy EC2 does not show yet (InvalidAMIID.NotFound) instead of failing', async () => {
    sourceIsGood();
    const eu = ec2['eu-west-1']!.mock;
    eu.on(DescribeImagesCommand, { Owners: ['self'] }).resolves({ Images: [] });
    eu.on(CopyImageCommand).resolves({ ImageId: 'ami-copy' });
    eu.on(DescribeImagesCommand, { ImageIds: ['ami-copy'] })
      .rejectsOnce(Object.assign(new Error("The image id '[ami-copy]' does not exist"), { name: 'InvalidAMIID.NotFound' }))
      .resolves({ Images: [goodImage('ami-copy', 'snap-copy')] });
    const out = (await publish(manifest, cfg(), buildDir(), { dryRun: false, force: false, clients, ...fast }))!;
    expect(out.regions['eu-west-1']!.imageId).toBe('ami-copy');
  });

  it("refuses a copy the destination region encrypted by default, naming the region and the fix", async () => {
    sourceIsGood();
    const eu = ec2['eu-west-1']!.mock;
    eu.on(DescribeImagesCommand, { Owners: ['self'] }).resolves({ Images: [] });
    eu.on(CopyImageCommand).resolves({ ImageId: 'ami-copy' });
    eu.on(DescribeImagesCommand, { ImageIds: ['ami-copy'] }).resolves({ Images: [goodImage('ami-copy', 'snap-copy')] });
    eu.on(DescribeSnapshotsCommand).resolves({ Snapshots: [{ SnapshotId: 'snap-copy', Encrypted: true }] });
    await expect(publish(manifest, cfg(), buildDir(), { dryRun: false, force: false, clients, ...fast })).rejects.toThrow(
      /eu-west-1: the copy ami-copy has encrypted snapshots \(snap-copy\).*disable-ebs-encryption-by-default/,
    );
    expect(ssm['eu-west-1']!.mock.commandCalls(PutParameterCommand)).toHaveLength(0);
  });

  it('confirms each aws:ec2:image parameter with GetParameter (validated after PutParameter returns)', async () => {
    sourceIsGood();
    const eu = ec2['eu-west-1']!.mock;
    eu.on(DescribeImagesCommand, { Owners: ['self'] }).resolves({ Images: [] });
    eu.on(CopyImageCommand).resolves({ ImageId: 'ami-copy' });
    eu.on(DescribeImagesCommand, { ImageIds: ['ami-copy'] }).resolves({ Images: [goodImage('ami-copy', 'snap-copy')] });
    await publish(manifest, cfg(), buildDir(), { dryRun: false, force: false, clients, ...fast });
    expect(ssm['eu-west-1']!.mock.commandCalls(GetParameterCommand).length).toBeGreaterThanOrEqual(4);
    // Validation refused the value: the parameter keeps its old AMI.
    ssm['us-east-1']!.mock.on(GetParameterCommand).resolves({ Parameter: { Name: '/syntropy/ami/latest', Value: 'ami-older' } });
    await expect(publish(manifest, cfg(), buildDir(), { dryRun: false, force: false, clients, ...fast })).rejects.toThrow(/us-east-1: \/syntropy\/ami\/latest does not hold ami-src after PutParameter/);
  });

  it('copies, waits, tags, grants, shares with Marketplace and writes Parameter Store in every region', async () => {
    sourceIsGood();
    const eu = ec2['eu-west-1']!.mock;
    eu.on(DescribeImagesCommand, { Owners: ['self'] }).resolves({ Images: [] });
    eu.on(CopyImageCommand).resolves({ ImageId: 'ami-copy' });
    eu.on(DescribeImagesCommand, { ImageIds: ['ami-copy'] })
      .resolvesOnce({ Images: [goodImage('ami-copy', 'snap-copy', 'pending')] })
      .resolves({ Images: [goodImage('ami-copy', 'snap-copy')] });
    const log: string[] = [];
    const out = (await publish(manifest, cfg({ marketplace_account: '679593333241' }), buildDir(), { dryRun: false, force: false, clients, log: (l) => log.push(l), ...fast, now: () => new Date('2026-01-02T00:00:00Z') }))!;
    expect(out.regions).toEqual({
      'us-east-1': { imageId: 'ami-src', snapshotIds: ['snap-src'], copied: 'built' },
      'eu-west-1': { imageId: 'ami-copy', snapshotIds: ['snap-copy'], copied: 'new' },
    });
    expect(out.forced).toBeNull();
    expect(eu.commandCalls(CopyImageCommand)[0]!.args[0].input).toMatchObject({ SourceRegion: 'us-east-1', SourceImageId: 'ami-src', Encrypted: false, CopyImageTags: true });
    expect(log.some((l) => l.includes('eu-west-1: ami-copy pending'))).toBe(true);
    expect(eu.commandCalls(CreateTagsCommand)[0]!.args[0].input.Resources).toEqual(['ami-copy', 'snap-copy']);
    expect(eu.commandCalls(ModifyImageAttributeCommand)[0]!.args[0].input).toEqual({ ImageId: 'ami-copy', LaunchPermission: { Add: [{ UserId: '111122223333' }] } });
    expect(eu.commandCalls(ModifySnapshotAttributeCommand)[0]!.args[0].input).toMatchObject({ SnapshotId: 'snap-copy', OperationType: 'add', UserIds: ['111122223333'] });
    // The legacy Marketplace share happens in the source region, for the image and its snapshot.
    const us = ec2['us-east-1']!.mock;
    expect(us.commandCalls(ModifyImageAttributeCommand).map((c) => c.args[0].input.LaunchPermission)).toContainEqual({ Add: [{ UserId: '679593333241' }] });
    expect(us.commandCalls(ModifySnapshotAttributeCommand).map((c) => c.args[0].input.UserIds)).toContainEqual(['679593333241']);
    expect(ssm['eu-west-1']!.mock.commandCalls(PutParameterCommand).map((c) => c.args[0].input)).toEqual([
      { Name: '/syntropy/ami/latest', Value: 'ami-copy', Type: 'String', DataType: 'aws:ec2:image', Overwrite: true },
      { Name: '/syntropy/ami/1.2.0', Value: 'ami-copy', Type: 'String', DataType: 'aws:ec2:image', Overwrite: true },
    ]);
    expect(out.ssm_parameters).toContain('us-east-1:/syntropy/ami/latest');
    expect(out.next_step).toMatch(/Marketplace Management Portal.*ami-src/);
    // No product configured: no access role check, no change set.
    expect(iamMock.calls()).toHaveLength(0);
    expect(catalogMock.calls()).toHaveLength(0);
    expect(out.marketplace).toBeNull();
  });

  it('refuses without passing reports and calls no AWS API; --force proceeds and records why', async () => {
    const dir = buildDir({ compliance: false });
    await expect(publish(manifest, cfg({ regions: [] }), dir, { dryRun: false, force: false, clients, ...fast })).rejects.toThrow(
      /refusing to publish build 20260101T000000Z: compliance report is not passing .*; boot-test report is missing/,
    );
    for (const r of REGIONS) expect(ec2[r]!.mock.calls()).toHaveLength(0);
    sourceIsGood();
    const out = (await publish(manifest, cfg({ regions: [] }), dir, { dryRun: false, force: true, clients, ...fast }))!;
    expect(out.forced?.reasons).toEqual(['compliance report is not passing (reports/compliance.json: passed=false)', 'boot-test report is missing (reports/boot-test.json)']);
  });

  it('checks the Marketplace rules before copying or sharing anything', async () => {
    ec2['us-east-1']!.mock.on(DescribeImagesCommand).resolves({ Images: [{ ...goodImage('ami-src', 'snap-src'), ImdsSupport: undefined, EnaSupport: false }] });
    ec2['us-east-1']!.mock.on(DescribeSnapshotsCommand).resolves({ Snapshots: [{ SnapshotId: 'snap-src', Encrypted: true }] });
    await expect(publish(manifest, cfg(), buildDir(), { dryRun: false, force: false, clients, ...fast })).rejects.toThrow(
      'us-east-1: ami-src breaks AWS Marketplace rules: ENA support is off; IMDS support is unset, not v2.0 (IMDSv2 only); snapshot snap-src is encrypted',
    );
    expect(ec2['eu-west-1']!.mock.commandCalls(CopyImageCommand)).toHaveLength(0);
    expect(ec2['us-east-1']!.mock.commandCalls(ModifyImageAttributeCommand)).toHaveLength(0);
    expect(marketplaceProblems({ ...goodImage('a', 's'), VirtualizationType: 'paravirtual', RootDeviceType: 'instance-store', Architecture: 'i386' }, {})).toHaveLength(3);
  });

  it('lets a Marketplace rule through only with a current waiver for that rule, and records it', async () => {
    ec2['us-east-1']!.mock.on(DescribeImagesCommand, { ImageIds: ['ami-src'] }).resolves({ Images: [{ ...goodImage('ami-src', 'snap-src'), ImdsSupport: undefined, EnaSupport: false }] });
    ec2['us-east-1']!.mock.on(DescribeSnapshotsCommand).resolves({ Snapshots: [{ SnapshotId: 'snap-src', Encrypted: false }] });
    const eu = ec2['eu-west-1']!.mock;
    eu.on(DescribeImagesCommand, { Owners: ['self'] }).resolves({ Images: [goodImage('ami-copy', 'snap-copy')] });
    eu.on(DescribeImagesCommand, { ImageIds: ['ami-copy'] }).resolves({ Images: [goodImage('ami-copy', 'snap-copy')] });
    const now = () => new Date('2026-12-02T00:00:00Z');
    const reason = 'the emulator does not model it';
    // One rule waived, the other not: still refused, naming only the unwaived one.
    await expect(publish(manifest, cfg({ waivers: [{ rule: 'ena-support', reason, expires: '2026-12-31' }] }), buildDir(), { dryRun: false, force: false, clients, now, ...fast })).rejects.toThrow(
      /breaks AWS Marketplace rules: IMDS support is unset, not v2.0 \(IMDSv2 only\)$/,
    );
    // An expired waiver does not count, and says so.
    await expect(
      publish(manifest, cfg({ waivers: [{ rule: 'ena-support', reason, expires: '2026-12-01' }, { rule: 'imds-v2-only', reason, expires: '2026-12-31' }] }), buildDir(), { dryRun: false, force: false, clients, now, ...fast }),
    ).rejects.toThrow(/ENA support is off \(its waiver expired on 2026-12-01\)/);
    expect(eu.commandCalls(CopyImageCommand)).toHaveLength(0);
    const out = (await publish(manifest, cfg({ waivers: [{ rule: 'ena-support', reason, expires: '2026-12-02' }, { rule: 'imds-v2-only', reason, expires: '2026-12-31' }] }), buildDir(), { dryRun: false, force: false, clients, now, ...fast }))!;
    expect(out.waived).toEqual([
      { rule: 'ena-support', problem: 'ENA support is off', reason, expires: '2026-12-02' },
      { rule: 'imds-v2-only', problem: 'IMDS support is unset, not v2.0 (IMDSv2 only)', reason, expires: '2026-12-31' },
    ]);
    expect(() => cfg({ waivers: [{ rule: 'ena-support', reason: 'short', expires: '2026-12-31' }] })).toThrow(/publish.waivers.0.reason: must say why/);
    expect(() => cfg({ waivers: [{ rule: 'kernel', reason, expires: '2026-12-31' }] })).toThrow(/publish.waivers.0.rule: expected one of hvm, ebs-root/);
  });

  it('Amazon Inspector: findings at or above the threshold block, a current waiver by vulnerability ID lets one through, recorded', async () => {
    sourceIsGood();
    const eu = ec2['eu-west-1']!.mock;
    eu.on(DescribeImagesCommand, { Owners: ['self'] }).resolves({ Images: [goodImage('ami-copy', 'snap-copy')] });
    eu.on(DescribeImagesCommand, { ImageIds: ['ami-copy'] }).resolves({ Images: [goodImage('ami-copy', 'snap-copy')] });
    const finding = (id: string, severity: Finding['severity']): Finding =>
      ({
        findingArn: `arn:aws:inspector2:us-east-1:${ACCOUNT}:finding/${id}`,
        awsAccountId: ACCOUNT,
        type: 'PACKAGE_VULNERABILITY',
        description: 'd',
        severity,
        status: 'ACTIVE',
        title: `${id} - libfoo`,
        firstObservedAt: new Date(),
        lastObservedAt: new Date(),
        remediation: {},
        resources: [{ type: 'AWS_EC2_INSTANCE', id: 'i-0aaa', details: { awsEc2Instance: { imageId: 'ami-src' } } }],
        packageVulnerabilityDetails: { vulnerabilityId: id, source: 'DEBIAN_CVE', vulnerablePackages: [{ name: 'libfoo', version: '1.0-1', fixedInVersion: '1.0-1+deb13u1' }] },
      }) as Finding;
    // Two pages: a HIGH and a CRITICAL on the first, a LOW on the second.
    insp['us-east-1']!.mock.on(ListFindingsCommand).callsFake(findingsPages([[finding('CVE-2026-1111', 'HIGH'), finding('CVE-2026-2222', 'CRITICAL')], [finding('CVE-2026-3333', 'LOW')]]));
    const now = () => new Date('2026-12-02T00:00:00Z');
    const reason = 'not reachable: libfoo is not used by any service in the image';
    await expect(publish(manifest, cfg({ inspector: { waivers: [{ finding: 'CVE-2026-1111', reason, expires: '2026-12-31' }] } }), buildDir(), { dryRun: false, force: true, clients, now, ...fast })).rejects.toThrow(
      /refusing to publish ami-src: Amazon Inspector reports 1 finding\(s\) at or above HIGH: CVE-2026-2222 CRITICAL in libfoo 1.0-1 \(fixed in 1.0-1\+deb13u1\)/,
    );
    expect(eu.commandCalls(CopyImageCommand)).toHaveLength(0);
    const filter = insp['us-east-1']!.mock.commandCalls(ListFindingsCommand)[0]!.args[0].input.filterCriteria;
    expect(filter).toEqual({ ec2InstanceImageId: [{ comparison: 'EQUALS', value: 'ami-src' }], findingStatus: [{ comparison: 'EQUALS', value: 'ACTIVE' }] });
    const waivers = [
      { finding: 'CVE-2026-1111', reason, expires: '2026-12-31' },
      { finding: `arn:aws:inspector2:us-east-1:${ACCOUNT}:finding/CVE-2026-2222`, reason, expires: '2026-12-02' },
    ];
    const out = (await publish(manifest, cfg({ inspector: { waivers } }), buildDir(), { dryRun: false, force: false, clients, now, ...fast }))!;
    expect(out.inspector).toMatchObject({ min_severity: 'HIGH', below_threshold: 1 });
    expect(out.inspector!.waived.map((w) => [w.vulnerability, w.severity, w.expires])).toEqual([
      ['CVE-2026-1111', 'HIGH', '2026-12-31'],
      ['CVE-2026-2222', 'CRITICAL', '2026-12-02'],
    ]);
    // An expired waiver no longer counts.
    insp['us-east-1']!.mock.on(ListFindingsCommand).callsFake(findingsPages([[finding('CVE-2026-1111', 'HIGH')]]));
    await expect(publish(manifest, cfg({ inspector: { waivers: [{ finding: 'CVE-2026-1111', reason, expires: '2026-12-01' }] } }), buildDir(), { dryRun: false, force: false, clients, now, ...fast })).rejects.toThrow(/CVE-2026-1111 HIGH/);
    // The threshold is configurable; MEDIUM catches what HIGH let through.
    insp['us-east-1']!.mock.on(ListFindingsCommand).callsFake(findingsPages([[finding('CVE-2026-4444', 'MEDIUM'), finding('CVE-2026-5555', 'UNTRIAGED')]]));
    await expect(publish(manifest, cfg({ inspector: { min_severity: 'MEDIUM' } }), buildDir(), { dryRun: false, force: false, clients, now, ...fast })).rejects.toThrow(/2 finding\(s\) at or above MEDIUM: CVE-2026-4444 MEDIUM.*CVE-2026-5555 UNTRIAGED/);
    expect(() => cfg({ inspector: { waivers: [{ finding: 'libfoo', reason, expires: '2026-12-31' }] } })).toThrow(/publish.inspector.waivers.0.finding: must be a vulnerability ID/);
  });

  it('Amazon Inspector: refuses when EC2 scanning is off (no findings would prove nothing); off in the config is recorded', async () => {
    sourceIsGood();
    const eu = ec2['eu-west-1']!.mock;
    eu.on(DescribeImagesCommand, { Owners: ['self'] }).resolves({ Images: [goodImage('ami-copy', 'snap-copy')] });
    eu.on(DescribeImagesCommand, { ImageIds: ['ami-copy'] }).resolves({ Images: [goodImage('ami-copy', 'snap-copy')] });
    insp['us-east-1']!.mock.on(BatchGetAccountStatusCommand).resolves(accountStatus('DISABLED'));
    await expect(publish(manifest, cfg(), buildDir(), { dryRun: false, force: true, clients, ...fast })).rejects.toThrow(/Amazon Inspector EC2 scanning is DISABLED in account 444455556666/);
    expect(insp['us-east-1']!.mock.commandCalls(BatchGetAccountStatusCommand)[0]!.args[0].input).toEqual({ accountIds: [ACCOUNT] });
    const out = (await publish(manifest, cfg({ inspector: { enabled: false } }), buildDir(), { dryRun: false, force: false, clients, ...fast }))!;
    expect(out.inspector).toBeNull();
  });

  it('retries throttling, and names the region and call of a failure', async () => {
    sourceIsGood();
    const eu = ec2['eu-west-1']!.mock;
    eu.on(DescribeImagesCommand, { Owners: ['self'] }).resolves({ Images: [] });
    eu.on(CopyImageCommand)
      .rejectsOnce(Object.assign(new Error('Rate exceeded'), { name: 'RequestLimitExceeded' }))
      .resolves({ ImageId: 'ami-copy' });
    eu.on(DescribeImagesCommand, { ImageIds: ['ami-copy'] }).resolves({ Images: [goodImage('ami-copy', 'snap-copy')] });
    const ok = await publish(manifest, cfg(), buildDir(), { dryRun: false, force: false, clients, ...fast });
    expect(eu.commandCalls(CopyImageCommand)).toHaveLength(2);
    expect(ok?.regions['eu-west-1']?.imageId).toBe('ami-copy');

    const de = ec2['eu-central-1']!.mock;
    de.on(DescribeImagesCommand).resolves({ Images: [] });
    de.on(CopyImageCommand).rejects(Object.assign(new Error('You are not authorized'), { name: 'UnauthorizedOperation' }));
    await expect(publish(manifest, cfg({ regions: ['eu-west-1', 'eu-central-1'] }), buildDir(), { dryRun: false, force: false, clients, ...fast })).rejects.toThrow(
      'eu-central-1: EC2 CopyImage failed: UnauthorizedOperation: You are not authorized',
    );
  });

  it('finishes a partial run by reusing the copy it made, without copying again', async () => {
    sourceIsGood();
    const eu = ec2['eu-west-1']!.mock;
    eu.on(DescribeImagesCommand, { Owners: ['self'] }).resolves({ Images: [goodImage('ami-copy', 'snap-copy')] });
    eu.on(DescribeImagesCommand, { ImageIds: ['ami-copy'] }).resolves({ Images: [goodImage('ami-copy', 'snap-copy')] });
    const out = (await publish(manifest, cfg(), buildDir(), { dryRun: false, force: false, clients, ...fast }))!;
    expect(eu.commandCalls(CopyImageCommand)).toHaveLength(0);
    expect(out.regions['eu-west-1']).toEqual({ imageId: 'ami-copy', snapshotIds: ['snap-copy'], copied: 'reused' });
    const filters = eu.commandCalls(DescribeImagesCommand)[0]!.args[0].input.Filters;
    expect(filters).toEqual([{ Name: 'name', Values: [goodImage('ami-src', 'snap-src').Name] }]);
  });

  it('prints the whole plan on --dry-run without calling AWS', async () => {
    const log: string[] = [];
    const r = await publish(manifest, cfg({ public: true, marketplace_account: '679593333241' }), buildDir({}), { dryRun: true, force: false, clients, log: (l) => log.push(l) });
    expect(r).toBeNull();
    for (const reg of REGIONS) expect(ec2[reg]!.mock.calls()).toHaveLength(0);
    const text = log.join('\n');
    expect(text).toMatch(/WOULD REFUSE: compliance report is missing/);
    expect(text).toMatch(/eu-west-1: CopyImage from us-east-1 unless an image named syntropy-agent-debian13-1.2.0-20260101T000000Z exists there/);
    expect(text).toMatch(/launchPermission add 111122223333, all \(public\)/);
    expect(text).toMatch(/share ami-src and its snapshots with the AWS Marketplace account 679593333241/);
  });

  it('refuses a local build manifest', () => {
    expect(() => planLines({ ...manifest, target: 'local', outputs: { qcow2: '/x', qcow2_bytes: 1 } }, cfg(), buildDir(), false)).toThrow(/local build with no AMI/);
    expect(reportProblems('/nonexistent')).toHaveLength(2);
  });
});

const ROLE = 'arn:aws:iam::444455556666:role/MarketplaceAmiIngestion';
/** IAM returns policy documents URL-encoded (GetRole AssumeRolePolicyDocument, GetRolePolicy, GetPolicyVersion). */
const enc = (doc: unknown) => encodeURIComponent(JSON.stringify(doc));
const TRUST = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: 'assets.marketplace.amazonaws.com' }, Action: 'sts:AssumeRole' }] };

function roleIs(trust: unknown, attached: string[] = ['arn:aws:iam::aws:policy/AWSMarketplaceAmiIngestion'], inline: Record<string, unknown> = {}): void {
  iamMock.on(GetRoleCommand).resolves({ Role: { Path: '/', RoleName: 'MarketplaceAmiIngestion', RoleId: 'AROAEXAMPLE', Arn: ROLE, CreateDate: new Date(), AssumeRolePolicyDocument: enc(trust) } });
  iamMock.on(ListAttachedRolePoliciesCommand).resolves({ AttachedPolicies: attached.map((PolicyArn) => ({ PolicyArn, PolicyName: PolicyArn.split('/').pop() })), IsTruncated: false });
  iamMock.on(ListRolePoliciesCommand).resolves({ PolicyNames: Object.keys(inline), IsTruncated: false });
  for (const [PolicyName, doc] of Object.entries(inline)) {
    iamMock.on(GetRolePolicyCommand, { PolicyName }).resolves({ RoleName: 'MarketplaceAmiIngestion', PolicyName, PolicyDocument: enc(doc) });
  }
}

/** DescribeChangeSet walking through the statuses the Catalog API reference lists. */
function changeSetGoes(statuses: string[], failure: Record<string, unknown> = {}): void {
  catalogMock.on(StartChangeSetCommand).resolves({ ChangeSetId: 'cs-abc123', ChangeSetArn: 'arn:aws:aws-marketplace:us-east-1:444455556666:AWSMarketplace/ChangeSet/cs-abc123' });
  let i = 0;
  catalogMock.on(DescribeChangeSetCommand).callsFake(() => {
    const Status = statuses[Math.min(i++, statuses.length - 1)];
    return { ChangeSetId: 'cs-abc123', Status, StartTime: '2026-01-02T00:00:00Z', ...(Status === 'FAILED' ? failure : {}) };
  });
}

/** Marketplace checks AMI IDs against its pattern (ami- and 8 or 17 characters). */
const SRC = 'ami-0123456789abcdef0';
const mpManifest: BuildManifestLike = { ...manifest, outputs: { amis: { 'us-east-1': SRC } } };
const mpCfg = (extra: Record<string, unknown> = {}) => cfg({ marketplace: { product_id: 'prod-abcdefghijklm', access_role_arn: ROLE, ...extra } });

describe('publish to AWS Marketplace (Catalog API AddDeliveryOptions)', () => {
  function euCopies(): void {
    const eu = ec2['eu-west-1']!.mock;
    eu.on(DescribeImagesCommand, { Owners: ['self'] }).resolves({ Images: [] });
    eu.on(CopyImageCommand).resolves({ ImageId: 'ami-copy' });
    eu.on(DescribeImagesCommand, { ImageIds: ['ami-copy'] }).resolves({ Images: [goodImage('ami-copy', 'snap-copy')] });
  }

  it('checks the access role first, submits the us-east-1 AMI as a new version, waits with progress and records the change set', async () => {
    sourceIsGood(SRC);
    euCopies();
    roleIs(TRUST);
    changeSetGoes(['PREPARING', 'APPLYING', 'APPLYING', 'SUCCEEDED']);
    const log: string[] = [];
    const out = (await publish(mpManifest, mpCfg(), buildDir(), { dryRun: false, force: false, clients, log: (l) => log.push(l), ...fast, marketplacePollMs: 1 }))!;
    const req = catalogMock.commandCalls(StartChangeSetCommand)[0]!.args[0].input;
    expect(req).toMatchObject({ Catalog: 'AWSMarketplace', Intent: 'APPLY' });
    expect(req.ClientRequestToken!.length).toBeLessThanOrEqual(36);
    expect(req.ChangeSet).toEqual([
      {
        ChangeType: 'AddDeliveryOptions',
        Entity: { Type: 'AmiProduct@1.0', Identifier: 'prod-abcdefghijklm' },
        DetailsDocument: {
          Version: { VersionTitle: '1.2.0', ReleaseNotes: 'Syntropy agent 1.2.0 on CIS-hardened Debian 13 (build 20260101T000000Z).' },
          DeliveryOptions: [
            {
              Details: {
                AmiDeliveryOptionDetails: {
                  AmiSource: { AmiId: SRC, AccessRoleArn: ROLE, UserName: 'admin', OperatingSystemName: 'DEBIAN', OperatingSystemVersion: '13', ScanningPort: 22 },
                  UsageInstructions: expect.stringMatching(/UDP 51820-51919 .* TCP 22 .* Log in as admin/),
                  RecommendedInstanceType: 't3.small',
                  SecurityGroups: [
                    { IpProtocol: 'tcp', FromPort: 22, ToPort: 22, IpRanges: ['0.0.0.0/0'] },
                    { IpProtocol: 'udp', FromPort: 51820, ToPort: 51919, IpRanges: ['0.0.0.0/0'] },
                  ],
                },
              },
            },
          ],
        },
      },
    ]);
    // The role was read before any copy was made.
    const firstCopy = ec2['eu-west-1']!.mock.commandCalls(CopyImageCommand)[0]!;
    expect(iamMock.commandCalls(GetRoleCommand)[0]!.calledBefore(firstCopy)).toBe(true);
    expect(log.filter((l) => /change set cs-abc123: /.test(l))).toEqual([
      'us-east-1: change set cs-abc123: PREPARING (started 2026-01-02T00:00:00Z)',
      'us-east-1: change set cs-abc123: APPLYING (started 2026-01-02T00:00:00Z)',
      'us-east-1: change set cs-abc123: SUCCEEDED (started 2026-01-02T00:00:00Z)',
    ]);
    expect(out.marketplace).toMatchObject({ product_id: 'prod-abcdefghijklm', ami_id: SRC, region: 'us-east-1', change_set_id: 'cs-abc123', intent: 'APPLY', status: 'SUCCEEDED', errors: [] });
    expect(out.next_step).toMatch(/AWS Marketplace accepted version 1.2.0 of prod-abcdefghijklm \(change set cs-abc123/);
    // The same run again sends the same request token: Marketplace answers with the same change set.
    changeSetGoes(['SUCCEEDED']);
    await publish(mpManifest, mpCfg(), buildDir(), { dryRun: false, force: false, clients, ...fast, marketplacePollMs: 1 });
    const tokens = catalogMock.commandCalls(StartChangeSetCommand).map((c) => c.args[0].input.ClientRequestToken);
    expect(tokens[1]).toBe(tokens[0]);
    // Changed details or --resubmit make a new request.
    await publish(mpManifest, mpCfg({ release_notes: 'Fixes the thing.' }), buildDir(), { dryRun: false, force: false, clients, ...fast, marketplacePollMs: 1 });
    await publish(mpManifest, mpCfg(), buildDir(), { dryRun: false, force: false, clients, ...fast, marketplacePollMs: 1, resubmit: '2026-01-03T00:00:00Z' });
    const all = catalogMock.commandCalls(StartChangeSetCommand).map((c) => c.args[0].input.ClientRequestToken);
    expect(new Set(all).size).toBe(3);
  });

  it('refuses before copying anything when the access role is wrong, naming what is wrong', async () => {
    sourceIsGood(SRC);
    euCopies();
    const run = () => publish(mpManifest, mpCfg(), buildDir(), { dryRun: false, force: false, clients, ...fast });
    roleIs({ ...TRUST, Statement: [{ ...TRUST.Statement[0], Principal: { Service: 'ec2.amazonaws.com' } }] });
    await expect(run()).rejects.toThrow(/the trust policy of arn:aws:iam::444455556666:role\/MarketplaceAmiIngestion does not let assets.marketplace.amazonaws.com call sts:AssumeRole/);
    iamMock.reset();
    iamMock.on(GetRoleCommand).rejects(Object.assign(new Error('The role with name MarketplaceAmiIngestion cannot be found.'), { name: 'NoSuchEntityException' }));
    await expect(run()).rejects.toThrow(/the access role arn:aws:iam::444455556666:role\/MarketplaceAmiIngestion does not exist/);
    // Without the managed policy, the role's own policies must allow each of its actions.
    iamMock.reset();
    roleIs(TRUST, [], { ingest: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['ec2:DescribeImages', 'ec2:DescribeImageAttribute', 'ec2:ModifyImageAttribute', 'ec2:ModifySnapshotAttribute'], Resource: '*' }] } });
    await expect(run()).rejects.toThrow(/does not allow ec2:DescribeSnapshotAttribute: attach arn:aws:iam::aws:policy\/AWSMarketplaceAmiIngestion/);
    expect(ec2['eu-west-1']!.mock.commandCalls(CopyImageCommand)).toHaveLength(0);
    expect(catalogMock.calls()).toHaveLength(0);
    // Wildcards in a customer-managed policy count, as IAM matches them.
    iamMock.reset();
    roleIs(TRUST, ['arn:aws:iam::444455556666:policy/mp-ingest']);
    iamMock.on(GetPolicyCommand).resolves({ Policy: { Arn: 'arn:aws:iam::444455556666:policy/mp-ingest', DefaultVersionId: 'v3' } });
    iamMock
      .on(GetPolicyVersionCommand, { VersionId: 'v3' })
      .resolves({ PolicyVersion: { VersionId: 'v3', IsDefaultVersion: true, Document: enc({ Version: '2012-10-17', Statement: { Effect: 'Allow', Action: ['ec2:Describe*', 'EC2:Modify*Attribute'], Resource: '*' } }) } });
    changeSetGoes(['SUCCEEDED']);
    const out = (await run())!;
    expect(out.marketplace?.status).toBe('SUCCEEDED');
  });

  it('records a FAILED change set with its errors, and a change set still running at the timeout', async () => {
    sourceIsGood(SRC);
    euCopies();
    roleIs(TRUST);
    changeSetGoes(['PREPARING', 'FAILED'], {
      FailureCode: 'CLIENT_ERROR',
      ChangeSet: [{ ChangeType: 'AddDeliveryOptions', Entity: { Type: 'AmiProduct@1.0', Identifier: 'prod-abcdefghijklm' }, ErrorDetailList: [{ ErrorCode: 'INVALID_INPUT', ErrorMessage: 'The AMI failed the security scan: CVE-2026-0001' }] }],
    });
    const out = (await publish(mpManifest, mpCfg(), buildDir(), { dryRun: false, force: false, clients, ...fast, marketplacePollMs: 1 }))!;
    expect(out.marketplace).toMatchObject({ status: 'FAILED', errors: ['CLIENT_ERROR', 'AddDeliveryOptions: INVALID_INPUT: The AMI failed the security scan: CVE-2026-0001'] });
    expect(out.next_step).toMatch(/change set cs-abc123 FAILED: CLIENT_ERROR; AddDeliveryOptions: INVALID_INPUT: The AMI failed the security scan/);
    changeSetGoes(['APPLYING']);
    const log: string[] = [];
    const pending = (await publish(mpManifest, mpCfg(), buildDir(), { dryRun: false, force: false, clients, log: (l) => log.push(l), ...fast, marketplacePollMs: 1, marketplaceTimeoutMs: 0 }))!;
    expect(pending.marketplace?.status).toBe('APPLYING');
    expect(pending.next_step).toMatch(/still APPLYING; run publish again/);
  });

  it('refuses when no AMI will be in us-east-1, and a change set AWS would refuse, before calling AWS', async () => {
    const west = { ...manifest, outputs: { amis: { 'eu-west-1': 'ami-west' } } };
    await expect(publish(west, mpCfg(), buildDir(), { dryRun: false, force: false, clients, ...fast })).rejects.toThrow(/AWS Marketplace ingests AMIs from us-east-1, which is neither the build region nor in publish.regions \(eu-west-1\)/);
    const c = mpCfg();
    expect(detailsProblems(deliveryDetails(c, { imageVersion: '1.2.0', buildId: 'b', amiId: 'ami-src' }))).toEqual(['AmiSource.AmiId ami-src is not an AMI ID']);
    // A title within the config's limit that grows past Marketplace's once filled in.
    const long = mpCfg({ version_title: '{version} {build_id} {build_id}' });
    const v = { imageVersion: '1.2.0-rc.1', buildId: '20260101T000000Z-rebuild-of-the-week', amiId: SRC };
    const d = deliveryDetails(long, v);
    expect(detailsProblems(d)).toEqual(['Version.VersionTitle is 84 characters; Marketplace allows 64']);
    await expect(submitVersion(catalog, long, v, 'APPLY')).rejects.toThrow(/would be refused: Version.VersionTitle is 84 characters/);
    expect(catalogMock.calls()).toHaveLength(0);
  });

  it('--dry-run prints the change set it would send; --validate sends it with Intent VALIDATE and changes nothing', async () => {
    const log: string[] = [];
    await publish(mpManifest, mpCfg(), buildDir(), { dryRun: true, force: false, clients, log: (l) => log.push(l) });
    expect(iamMock.calls()).toHaveLength(0);
    expect(catalogMock.calls()).toHaveLength(0);
    const text = log.join('\n');
    expect(text).toMatch(/us-east-1: Marketplace Catalog StartChangeSet \(APPLY\)/);
    expect(text).toContain('"ChangeType": "AddDeliveryOptions"');
    expect(text).toContain(`"AmiId": "${SRC}"`);
    expect(text).not.toMatch(/WOULD REFUSE the change set/);
    const long: string[] = [];
    await publish(mpManifest, mpCfg({ version_title: '{version} {build_id} {build_id} {build_id} {build_id}' }), buildDir(), { dryRun: true, force: false, clients, log: (l) => long.push(l) });
    expect(long.join('\n')).toMatch(/WOULD REFUSE the change set: Version.VersionTitle is \d+ characters; Marketplace allows 64/);
    roleIs(TRUST);
    changeSetGoes(['PREPARING', 'SUCCEEDED']);
    const v = await validateMarketplace(mpManifest, mpCfg(), { clients, retry: fast.retry, marketplacePollMs: 1 });
    expect(v).toMatchObject({ intent: 'VALIDATE', status: 'SUCCEEDED' });
    expect(catalogMock.commandCalls(StartChangeSetCommand)[0]!.args[0].input.Intent).toBe('VALIDATE');
    for (const r of REGIONS) {
      expect(ec2[r]!.mock.commandCalls(CopyImageCommand)).toHaveLength(0);
      expect(ec2[r]!.mock.commandCalls(CreateTagsCommand)).toHaveLength(0);
      expect(ec2[r]!.mock.commandCalls(ModifyImageAttributeCommand)).toHaveLength(0);
      expect(ec2[r]!.mock.commandCalls(ModifySnapshotAttributeCommand)).toHaveLength(0);
      expect(ssm[r]!.mock.commandCalls(PutParameterCommand)).toHaveLength(0);
    }
  });
});

describe('awsCall', () => {
  it('gives up on throttling after the configured attempts, naming region and call', async () => {
    let n = 0;
    const fail = () => {
      n++;
      return Promise.reject(Object.assign(new Error('slow down'), { name: 'ThrottlingException' }));
    };
    await expect(awsCall('ap-south-1', 'SSM PutParameter', fail, { attempts: 3, sleep: async () => undefined })).rejects.toThrow(
      'ap-south-1: SSM PutParameter failed: ThrottlingException: slow down',
    );
    expect(n).toBe(3);
  });
});

describe('retention', () => {
  const now = new Date('2026-06-01T00:00:00Z');
  const img = (region: string, id: string, daysOld: number): ImageInfo => ({
    region,
    imageId: id,
    name: id,
    creationDate: new Date(now.getTime() - daysOld * 86_400_000).toISOString(),
    snapshotIds: [`snap-${id}`],
  });

  it('keeps the newest N per region and removes only what is older than the age limit', () => {
    const images = [img('us-east-1', 'a', 200), img('us-east-1', 'b', 150), img('us-east-1', 'c', 100), img('us-east-1', 'd', 95), img('us-east-1', 'e', 10), img('eu-west-1', 'x', 400), img('eu-west-1', 'y', 300)];
    expect(selectForRemoval(images, now, 3, 90).map((i) => i.imageId)).toEqual(['b', 'a']);
    expect(selectForRemoval(images, now, 1, 90).map((i) => i.imageId).sort()).toEqual(['a', 'b', 'c', 'd', 'x']);
    expect(selectForRemoval(images, now, 3, 365)).toEqual([]);
    expect(selectForRemoval([], now, 3, 90)).toEqual([]);
  });

  it('deregisters before deleting snapshots, terminates only stale tagged instances, and --dry-run changes nothing', async () => {
    const c = loadConfig({ overrides: [{ retention: { keep_newest: 1, max_age_days: 30 } }] }).config;
    const us = ec2['us-east-1']!.mock;
    us.on(DescribeImagesCommand).resolves({
      Images: [
        { ImageId: 'ami-new', CreationDate: '2026-05-30T00:00:00Z', BlockDeviceMappings: [{ Ebs: { SnapshotId: 'snap-new' } }] },
        { ImageId: 'ami-old', CreationDate: '2026-01-01T00:00:00Z', BlockDeviceMappings: [{ Ebs: { SnapshotId: 'snap-old' } }] },
      ],
    });
    us.on(DescribeInstancesCommand).resolves({
      Reservations: [{ Instances: [{ InstanceId: 'i-stale', LaunchTime: new Date('2026-05-31T00:00:00Z') }, { InstanceId: 'i-building', LaunchTime: new Date('2026-05-31T23:00:00Z') }] }],
    });
    us.on(DeregisterImageCommand).resolves({});
    // Right after deregistration EC2 may still hold the snapshot for the image: retried.
    us.on(DeleteSnapshotCommand).rejectsOnce(Object.assign(new Error('snap-old is in use by ami-old'), { name: 'InvalidSnapshot.InUse' })).resolves({});
    us.on(TerminateInstancesCommand).resolves({});
    const ssmUs = ssm['us-east-1']!.mock;
    ssmUs.on(GetParametersByPathCommand).resolves({
      Parameters: [
        { Name: '/syntropy/ami/latest', Value: 'ami-new' },
        { Name: '/syntropy/ami/0.9.0', Value: 'ami-old' },
        { Name: '/syntropy/ami/1.0.0', Value: 'ami-new' },
      ],
    });
    ssmUs.on(DeleteParameterCommand).resolves({});
    const dry = await clean(c, { dryRun: true, now, clients: { ...clients } });
    expect(dry.parameters).toEqual(['us-east-1:/syntropy/ami/0.9.0']);
    expect(ssmUs.commandCalls(DeleteParameterCommand)).toHaveLength(0);
    expect(dry.images.map((i) => i.imageId)).toEqual(['ami-old']);
    expect(dry.instances).toEqual([{ region: 'us-east-1', instanceId: 'i-stale' }]);
    expect(us.commandCalls(DeregisterImageCommand)).toHaveLength(0);
    expect(us.commandCalls(TerminateInstancesCommand)).toHaveLength(0);

    await clean(c, { dryRun: false, now, clients, retry: { sleep: async () => undefined } });
    const order = us.calls().map((x) => (x.args[0] as { constructor: { name: string } }).constructor.name).filter((n) => n !== 'DescribeImagesCommand' && n !== 'DescribeInstancesCommand');
    expect(order).toEqual(['DeregisterImageCommand', 'DeleteSnapshotCommand', 'DeleteSnapshotCommand', 'TerminateInstancesCommand']);
    expect(us.commandCalls(DeleteSnapshotCommand)[0]!.args[0].input).toEqual({ SnapshotId: 'snap-old' });
    expect(us.commandCalls(TerminateInstancesCommand)[0]!.args[0].input).toEqual({ InstanceIds: ['i-stale'] });
    expect(ssmUs.commandCalls(DeleteParameterCommand).map((x) => x.args[0].input)).toEqual([{ Name: '/syntropy/ami/0.9.0' }]);
  });

  it('reads every page, and goes on with the other regions when one fails, reporting it at the end', async () => {
    const c = loadConfig({ overrides: [{ target: 'aws', aws: { region: 'us-east-1' }, publish: { regions: ['eu-west-1'] }, retention: { keep_newest: 1, max_age_days: 30 } }] }).config;
    ec2['us-east-1']!.mock.on(DescribeImagesCommand).rejects(Object.assign(new Error('denied'), { name: 'UnauthorizedOperation' }));
    const eu = ec2['eu-west-1']!.mock;
    eu.on(DescribeImagesCommand)
      .resolvesOnce({ Images: [{ ImageId: 'ami-new', CreationDate: '2026-05-30T00:00:00Z' }], NextToken: 'p2' })
      .resolves({ Images: [{ ImageId: 'ami-old', CreationDate: '2026-01-01T00:00:00Z', BlockDeviceMappings: [{ Ebs: { SnapshotId: 'snap-old' } }] }] });
    eu.on(DescribeInstancesCommand).resolves({ Reservations: [] });
    eu.on(DeregisterImageCommand).resolves({});
    eu.on(DeleteSnapshotCommand).resolves({});
    ssm['eu-west-1']!.mock.on(GetParametersByPathCommand).resolves({ Parameters: [] });
    await expect(clean(c, { dryRun: false, now, clients, retry: { sleep: async () => undefined } })).rejects.toThrow(/retention failed in 1 region\(s\): us-east-1: EC2 DescribeImages failed: UnauthorizedOperation/);
    expect(eu.commandCalls(DescribeImagesCommand)[1]!.args[0].input.NextToken).toBe('p2');
    expect(eu.commandCalls(DeregisterImageCommand).map((x) => x.args[0].input)).toEqual([{ ImageId: 'ami-old' }]);
  });

  it('makes one client per service and region, and reuses it', async () => {
    const { cachedClients } = await import('../../scripts/lib/release/publish.ts');
    const cc = cachedClients();
    expect(cc.ec2('eu-west-1')).toBe(cc.ec2('eu-west-1'));
    expect(cc.ec2('eu-west-1')).not.toBe(cc.ec2('us-east-1'));
    expect(cc.ssm('eu-west-1')).toBe(cc.ssm('eu-west-1'));
  });
});

describe('npm run publish -- --dry-run (real process, no AWS credentials)', () => {
  it('prints the plan for the fixture manifest and exits 0', async () => {
    const { spawnSync } = await import('node:child_process');
    const { REPO } = await import('../../scripts/lib/paths.ts');
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AWS_')));
    const r = spawnSync(
      'npm',
      ['run', '--silent', 'publish', '--', '--dry-run', '--manifest', 'test/fixtures/aws-build-manifest.json', '--set', 'publish.regions=[eu-west-1]'],
      { cwd: REPO, encoding: 'utf8', env: { ...env, AWS_EC2_METADATA_DISABLED: 'true' } },
    );
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('publish syntropy-agent-debian13 0.1.0 (build 20260101T120000Z) from ami-0123456789abcdef0 in us-east-1');
    expect(r.stdout).toMatch(/WOULD REFUSE: compliance report is missing/);
    expect(r.stdout).toMatch(/eu-west-1: CopyImage from us-east-1/);
  }, 30_000);
});
