// A real first-boot process (the bundle that ships) is killed with SIGKILL right after each of
// its durable steps (every fsync) during configure and reconfigure; `recover` then runs, and the
// instance must hold the old configuration or the new one, complete, and nothing else: no
// journal, no backup, no temporary file, and the token in no file but agent.env.
import { beforeAll, describe, expect, it } from 'vitest';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { REPO } from '../../scripts/lib/paths.ts';
import { bundleFirstboot } from '../../scripts/lib/bake/firstboot-stage.ts';

const PRELOAD = join(REPO, 'test/helpers/crash-at-fsync.mjs');
const OLD = { token: 'old-token-0123456789abcdef', range: '51820-51830' };
const NEW = { token: 'new-token-fedcba9876543210', range: '52000-52010' };
let bundle = '';

function cli(root: string, args: string[], input = '', crashAt = 0) {
  return spawnSync(process.execPath, [...(crashAt ? ['--import', PRELOAD] : []), bundle, ...args, '--root', root], {
    input,
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '', CRASH_AT_FSYNC: String(crashAt), AWS_EC2_METADATA_DISABLED: 'true' },
  });
}

function files(root: string, dir = ''): string[] {
  const out: string[] = [];
  for (const n of readdirSync(join(root, dir))) {
    const rel = join(dir, n);
    if (statSync(join(root, rel)).isDirectory()) out.push(...files(root, rel));
    else out.push(rel);
  }
  return out;
}

type Outcome = 'unconfigured' | 'old' | 'new';

/** What the root holds; throws on any mix of configurations or leftover. */
function judge(root: string): Outcome {
  const env = existsSync(join(root, 'etc/syntropy/agent.env')) ? readFileSync(join(root, 'etc/syntropy/agent.env'), 'utf8') : null;
  const stateFile = join(root, 'var/lib/syntropy/firstboot/state.json');
  const state = existsSync(stateFile) ? (JSON.parse(readFileSync(stateFile, 'utf8')) as { settings: { portRange: string } }) : null;
  const all = files(root);
  const leftovers = all.filter((f) => f.endsWith('apply.journal') || f.endsWith('agent.env.previous') || f.includes('.syntropy-tmp'));
  expect(leftovers, 'leftovers after recover').toEqual([]);
  for (const t of [OLD.token, NEW.token]) {
    const holders = all.filter((f) => readFileSync(join(root, f), 'utf8').includes(t));
    expect(holders.filter((f) => f !== 'etc/syntropy/agent.env'), `token ${t.slice(0, 3)} outside agent.env`).toEqual([]);
  }
  if (env === null && state === null) return 'unconfigured';
  expect(env, 'state without agent.env').not.toBeNull();
  expect(state, 'agent.env without state').not.toBeNull();
  for (const c of [OLD, NEW]) {
    if (env!.includes(`SYNTROPY_AGENT_TOKEN=${c.token}\n`)) {
      expect(env).toContain(`SYNTROPY_PORT_RANGE=${c.range}\n`);
      expect(state!.settings.portRange, 'state and agent.env from different configurations').toBe(c.range);
      return c === OLD ? 'old' : 'new';
    }
  }
  throw new Error(`agent.env holds neither configuration: ${env}`);
}

function freshRoot(): string {
  const root = mkdtempSync(join(tmpdir(), 'crash-root-'));
  mkdirSync(join(root, 'etc'), { recursive: true });
  writeFileSync(join(root, 'etc/machine-id'), `${'a'.repeat(32)}\n`);
  return root;
}

/** Kills `args` after each fsync in turn until a run completes; returns the outcomes after recover. */
function crashEverywhere(template: string, args: string[], token: string): Outcome[] {
  const outcomes: Outcome[] = [];
  for (let n = 1; n < 100; n++) {
    const root = mkdtempSync(join(tmpdir(), 'crash-run-'));
    cpSync(template, root, { recursive: true });
    const r = cli(root, args, `${token}\n`, n);
    if (r.signal !== 'SIGKILL') {
      expect(r.status, r.stderr).toBe(0);
      expect(judge(root)).toBe('new');
      return outcomes;
    }
    const rec = cli(root, ['recover']);
    expect(rec.status, rec.stderr).toBe(0);
    expect(`${rec.stdout}${rec.stderr}`).not.toContain(token);
    outcomes.push(judge(root));
  }
  throw new Error('the run never completed');
}

beforeAll(async () => {
  bundle = await bundleFirstboot(mkdtempSync(join(tmpdir(), 'fb-bundle-')));
}, 60_000);

describe('first boot killed at every durable step', () => {
  it('configure: after recover the instance is unconfigured or fully configured, never in between', () => {
    const outcomes = crashEverywhere(freshRoot(), ['configure', '--non-interactive', '--token-stdin', '--port-range', NEW.range], NEW.token);
    expect(outcomes.length, 'crash points').toBeGreaterThanOrEqual(5);
    expect(outcomes.every((o) => o === 'unconfigured' || o === 'new')).toBe(true);
    expect(outcomes).toContain('unconfigured');
    expect(outcomes).toContain('new');
  }, 120_000);

  it('reconfigure: after recover the instance holds the old configuration or the new one, never a mix', () => {
    const template = freshRoot();
    const first = cli(template, ['configure', '--non-interactive', '--token-stdin', '--port-range', OLD.range], `${OLD.token}\n`);
    expect(first.status, first.stderr).toBe(0);
    expect(judge(template)).toBe('old');
    const outcomes = crashEverywhere(template, ['reconfigure', '--non-interactive', '--token-stdin', '--port-range', NEW.range], NEW.token);
    expect(outcomes.length, 'crash points').toBeGreaterThanOrEqual(5);
    expect(outcomes.every((o) => o === 'old' || o === 'new')).toBe(true);
    expect(outcomes).toContain('old');
    expect(outcomes).toContain('new');
  }, 120_000);
});
