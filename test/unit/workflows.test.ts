// The GitHub Actions workflows parse, pin every action to a commit, keep permissions minimal,
// run no untrusted code with credentials, and reference only scripts and files that exist.
import { describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { REPO } from '../../scripts/lib/paths.ts';

interface Step {
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
}
interface Job {
  permissions?: Record<string, string>;
  steps: Step[];
}
interface Workflow {
  on: Record<string, unknown>;
  permissions: Record<string, string>;
  jobs: Record<string, Job>;
}

const dir = join(REPO, '.github', 'workflows');
const files = readdirSync(dir).filter((f) => f.endsWith('.yml'));
const workflows = Object.fromEntries(files.map((f) => [f, parse(readFileSync(join(dir, f), 'utf8')) as Workflow]));
/** action -> the tag and the commit that tag points to, verified against the action's repository. */
const PINS = new Map(
  readFileSync(join(REPO, '.github', 'action-pins.tsv'), 'utf8')
    .split('\n')
    .filter((l) => l && !l.startsWith('#') && !l.startsWith('action\t'))
    .map((l) => l.split('\t'))
    .map(([action, tag, sha]) => [action!, { tag: tag!, sha: sha! }]),
);
const scripts = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;

describe('GitHub Actions workflows', () => {
  it('exist for pull requests and releases', () => {
    expect(files.sort()).toEqual(['ci.yml', 'release.yml']);
    expect(Object.keys(workflows['ci.yml']!.on)).toContain('pull_request');
    expect(Object.keys(workflows['release.yml']!.on).sort()).toEqual(['push', 'workflow_dispatch']);
  });

  for (const f of files) {
    const wf = () => workflows[f]!;

    it(`${f}: pins every action to the commit of a verified tag (.github/action-pins.tsv), tag beside SHA`, () => {
      for (const job of Object.values(wf().jobs)) {
        for (const step of job.steps) {
          if (step.uses) expect(step.uses, step.uses).toMatch(/^[\w.-]+\/[\w.-]+@[0-9a-f]{40}$/);
        }
      }
      const text = readFileSync(join(dir, f), 'utf8');
      for (const m of text.matchAll(/uses: ([\w.-]+\/[\w.-]+)@(\S+)(?: # (\S+))?/g)) {
        const pin = PINS.get(m[1]!);
        expect(pin, `${m[1]} has no row in .github/action-pins.tsv`).toBeDefined();
        expect(`${m[2]} # ${m[3]}`, m[0]).toBe(`${pin!.sha} # ${pin!.tag}`);
      }
    });

    it(`${f}: grants only read access by default`, () => {
      expect(wf().permissions).toEqual({ contents: 'read' });
    });

    it(`${f}: runs only npm scripts and files that exist`, () => {
      for (const job of Object.values(wf().jobs)) {
        for (const step of job.steps.filter((s) => s.run)) {
          for (const m of step.run!.matchAll(/npm run (?:--silent )?([\w:-]+)/g)) expect(scripts, `npm run ${m[1]}`).toHaveProperty(m[1]!);
          for (const m of step.run!.matchAll(/\b((?:scripts|config|packer|firstboot)\/[\w./-]+\.(?:sh|ya?ml|ts))\b/g)) {
            expect(existsSync(join(REPO, m[1]!)), m[1]).toBe(true);
          }
        }
      }
    });

    it(`${f}: never checks out with persisted credentials`, () => {
      for (const job of Object.values(wf().jobs)) {
        for (const step of job.steps.filter((s) => s.uses?.startsWith('actions/checkout@'))) {
          expect(step.with?.['persist-credentials']).toBe(false);
        }
      }
    });
  }

  it('keeps the release session as long as the release job (the default is one hour)', () => {
    const job = workflows['release.yml']!.jobs.release as Job & { 'timeout-minutes': number };
    const creds = job.steps.find((s) => s.uses?.startsWith('aws-actions/configure-aws-credentials@'))!;
    expect(Number(creds.with?.['role-duration-seconds'])).toBeGreaterThanOrEqual(job['timeout-minutes'] * 60);
  });

  it('ci: rehearses the aws release against the emulator on every pull request, with no credentials', () => {
    const ci = workflows['ci.yml']!;
    const job = ci.jobs.rehearse!;
    expect(job.steps.some((s) => /npm run rehearse\b/.test(s.run ?? ''))).toBe(true);
    expect(Object.keys(ci.on)).toContain('pull_request');
  });

  it('gives AWS credentials only to the release job, through OIDC, never to pull requests', () => {
    const ci = workflows['ci.yml']!;
    expect(JSON.stringify(ci)).not.toMatch(/configure-aws-credentials|id-token|AWS_ACCESS_KEY|secrets\./);
    expect(Object.keys(ci.on)).not.toContain('pull_request_target');
    const rel = workflows['release.yml']!;
    const job = rel.jobs.release!;
    expect(job.permissions).toEqual({ contents: 'read', 'id-token': 'write' });
    const aws = job.steps.find((s) => s.uses?.startsWith('aws-actions/configure-aws-credentials@'))!;
    expect(aws.with).toHaveProperty('role-to-assume');
    expect(JSON.stringify(aws.with)).not.toMatch(/aws-access-key-id|aws-secret-access-key/);
  });

  it('release: only the attach job may write, holds no AWS credentials, runs for tags after the release job', () => {
    const rel = workflows['release.yml']!;
    const writers = Object.entries(rel.jobs).filter(([, j]) => Object.values(j.permissions ?? {}).includes('write') && j.permissions?.contents === 'write');
    expect(writers.map(([n]) => n)).toEqual(['attach']);
    const attach = rel.jobs.attach as Job & { needs: string; if: string };
    expect(attach.permissions).toEqual({ contents: 'write' });
    expect(attach.needs).toBe('release');
    expect(attach.if).toMatch(/refs\/tags\/v/);
    expect(JSON.stringify(attach)).not.toMatch(/configure-aws-credentials|id-token|AWS_/);
    expect(attach.steps.some((s) => /scripts\/attach-release-assets\.sh/.test(s.run ?? ''))).toBe(true);
  });

  it('release: bakes, then publishes (publish refuses without passing reports), and keeps the manifests', () => {
    const runs = workflows['release.yml']!.jobs.release!.steps.map((s) => s.run ?? s.uses ?? '');
    const bake = runs.findIndex((r) => r.includes('npm run build -- --target aws'));
    const pub = runs.findIndex((r) => r.includes('npm run publish'));
    expect(bake).toBeGreaterThan(-1);
    expect(pub).toBeGreaterThan(bake);
    expect(runs.some((r) => r.startsWith('actions/upload-artifact@'))).toBe(true);
  });
});
