// The IAM documents in iam/ allow every AWS call the code makes (found by reading the code, not
// listed by hand), condition every destructive call on this product's tags, and grant nothing
// the review found too broad.
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from '../../scripts/lib/paths.ts';
import { trustsMarketplace } from '../../scripts/lib/release/marketplace.ts';

interface Statement {
  Effect: string;
  Action: string | string[];
  Resource?: string | string[];
  Condition?: Record<string, Record<string, string | string[]>>;
  Principal?: Record<string, string>;
}
const policy = (f: string) => (JSON.parse(readFileSync(join(REPO, 'iam', f), 'utf8')) as { Statement: Statement[] }).Statement;
const actions = (s: Statement) => (Array.isArray(s.Action) ? s.Action : [s.Action]);
const allowed = (f: string) => new Set(policy(f).filter((s) => s.Effect === 'Allow').flatMap(actions));

/** SDK client packages whose IAM service prefix is not their name (Service Authorization Reference). */
const IAM_PREFIX: Record<string, string> = { 'marketplace-catalog': 'aws-marketplace' };

/** The IAM actions a set of source files calls: `new XCommand(` of @aws-sdk/client-<service>. */
function calls(files: string[]): Set<string> {
  const out = new Set<string>();
  for (const f of files) {
    const text = readFileSync(join(REPO, f), 'utf8');
    const services = new Map<string, string>();
    // Static imports, type-only ones naming what a lazily loaded module is used for (first boot),
    // and dynamic ones: const { X } = await import('@aws-sdk/client-y').
    for (const m of text.matchAll(/(?:import(?: type)?|const) \{([^}]*)\} (?:from |= await import\()'@aws-sdk\/client-([\w-]+)'/g)) {
      for (const name of m[1]!.split(',')) services.set(name.trim().replace(/^type /, ''), IAM_PREFIX[m[2]!] ?? m[2]!);
    }
    for (const m of text.matchAll(/new (\w+)Command\(/g)) {
      const service = services.get(`${m[1]}Command`);
      if (service) out.add(`${service}:${m[1]}`);
    }
  }
  return out;
}
const ts = (dir: string) => readdirSync(join(REPO, dir)).filter((f) => f.endsWith('.ts')).map((f) => `${dir}/${f}`);

describe('IAM documents', () => {
  it('allow every call of the build, the boot test, publish/retention and the appliance', () => {
    const groups: [string, string[], number][] = [
      ['build-policy.json', ts('scripts/lib/bake'), 2],
      ['boot-test-policy.json', ['scripts/lib/boottest/aws.ts', 'hardening/host.ts'], 9],
      ['release-policy.json', ts('scripts/lib/release'), 9],
      ['appliance-instance-role-policy.json', ts('firstboot/src'), 1],
    ];
    for (const [file, sources, atLeast] of groups) {
      const made = calls(sources);
      expect(made.size, `${file}: calls found in ${sources.join(', ')}`).toBeGreaterThanOrEqual(atLeast);
      const allow = allowed(file);
      for (const c of made) expect(allow.has(c), `${file} lacks ${c}`).toBe(true);
    }
  });

  it('add what the calls need besides the call itself', () => {
    const bt = policy('boot-test-policy.json');
    const pass = bt.find((s) => actions(s).includes('iam:PassRole'))!;
    expect(pass.Resource).toBe('arn:aws:iam::*:role/syntropy-boot-test');
    expect(pass.Condition?.StringEquals?.['iam:PassedToService']).toBe('ec2.amazonaws.com');
    const send = bt.filter((s) => actions(s).includes('ssm:SendCommand')).flatMap((s) => (Array.isArray(s.Resource) ? s.Resource : [s.Resource!]));
    expect(send).toEqual(expect.arrayContaining(['arn:aws:ec2:*:*:instance/*', 'arn:aws:ssm:*:*:document/SyntropyConfigureAgent', 'arn:aws:ssm:*::document/AWS-RunShellScript']));
    expect(allowed('boot-test-policy.json').has('ssm:DescribeInstanceInformation')).toBe(true);
    expect(allowed('release-policy.json').has('ssm:CreateDocument')).toBe(true);
    // Tags in RunInstances' TagSpecifications need ec2:CreateTags, limited to that launch.
    const tagAtLaunch = bt.find((s) => actions(s).includes('ec2:CreateTags'))!;
    expect(tagAtLaunch.Condition?.StringEquals?.['ec2:CreateAction']).toBe('RunInstances');
  });

  it('condition every destructive call on this product\'s tags', () => {
    const destructive = ['ec2:TerminateInstances', 'ec2:StopInstances', 'ec2:RebootInstances', 'ec2:DeregisterImage', 'ec2:DeleteSnapshot', 'ec2:DeleteVolume', 'ec2:ModifyInstanceAttribute'];
    for (const f of readdirSync(join(REPO, 'iam')).filter((x) => x.endsWith('-policy.json') && !x.includes('trust'))) {
      for (const s of policy(f)) {
        for (const a of actions(s).filter((x) => destructive.includes(x))) {
          const keys = Object.values(s.Condition ?? {}).flatMap((c) => Object.keys(c));
          expect(keys.some((k) => /^aws:ResourceTag\/syntropy:/.test(k)), `${f}: ${a} without a syntropy:* tag condition`).toBe(true);
        }
      }
      expect([...allowed(f)], f).not.toContain('ec2:GetPasswordData');
      expect([...allowed(f)].filter((a) => a.endsWith(':*') || a === '*'), f).toEqual([]);
    }
  });

  it('trust only this repository\'s release environment, for STS', () => {
    const [s] = policy('github-oidc-trust-policy.json');
    expect(actions(s!)).toEqual(['sts:AssumeRoleWithWebIdentity']);
    expect(s!.Principal?.Federated).toMatch(/:oidc-provider\/token\.actions\.githubusercontent\.com$/);
    expect(s!.Condition?.StringEquals).toEqual({
      'token.actions.githubusercontent.com:aud': 'sts.amazonaws.com',
      'token.actions.githubusercontent.com:sub': 'repo:OWNER/REPO:environment:release',
    });
    const release = readFileSync(join(REPO, '.github/workflows/release.yml'), 'utf8');
    expect(release).toMatch(/^\s+environment: release$/m);
  });

  it('the Marketplace access role document is one publish accepts, and publish refuses it for another service', () => {
    const doc = JSON.parse(readFileSync(join(REPO, 'iam', 'marketplace-access-role-trust-policy.json'), 'utf8')) as { Statement: Parameters<typeof trustsMarketplace>[0] };
    expect(trustsMarketplace(doc.Statement)).toBe(true);
    expect(trustsMarketplace(doc.Statement.map((x) => ({ ...x, Principal: { Service: 'ec2.amazonaws.com' } })))).toBe(false);
    expect(trustsMarketplace(doc.Statement.map((x) => ({ ...x, Effect: 'Deny' })))).toBe(false);
  });
});
