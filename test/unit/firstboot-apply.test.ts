// Apply is all or nothing: each step, when it fails, leaves the system as it was (and a
// reconfigure failure brings the previous agent back). A journal left by a power cut is undone.
import { beforeEach, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { applyConfiguration, confirmRunning, envFileContent, preverifyImage, recoverInterrupted, type ApplyDeps, type Preverified } from '../../firstboot/src/apply.ts';
import { Console, forgetSecrets } from '../../firstboot/src/secrets.ts';
import { paths, readState, removeTempFiles, TEMP_SUFFIX, writeFileAtomic, writeJournal, type AgentSettings, type Paths } from '../../firstboot/src/state.ts';
import { FAKE_IMAGE_ID, FakeSystem } from '../helpers/fake-system.ts';
import { readImageLock } from '../../firstboot/src/image-lock.ts';
import { execFile } from 'node:child_process';
import { LiveSystem, procStartTime, runFailure } from '../../firstboot/src/system.ts';
import { stats } from '../../firstboot/src/env.ts';

const TOKEN = 'apply-test-token-0123456789abcdef';
const IMAGE_ID = FAKE_IMAGE_ID;

function setup(): { p: Paths; sys: FakeSystem; deps: ApplyDeps; out: string[] } {
  const root = mkdtempSync(join(tmpdir(), 'fb-apply-'));
  const p = paths(root);
  mkdirSync(join(root, 'etc/syntropy'), { recursive: true });
  writeFileSync(p.lockFile, `AGENT_IMAGE_REF=syntropy-agent-test-double:local\nAGENT_IMAGE_DIGEST=${IMAGE_ID}\nAGENT_IMAGE_ID=${IMAGE_ID}\nAGENT_IMAGE_SOURCE=archive\n`);
  const out: string[] = [];
  const sink = { write: (s: string) => void out.push(s) };
  const sys = new FakeSystem();
  return { p, sys, out, deps: { p, sys, con: new Console(sink, sink), confirmTimeoutMs: 300, pollMs: 10, now: () => new Date('2026-01-01T00:00:00Z') } };
}

const settings: AgentSettings = { portRange: '51820-51919', agentName: 'relay-1', tags: ['edge'], networkApi: 'none' };

function filesUnder(root: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const f = join(d, e.name);
      if (e.isDirectory()) walk(f);
      else out.push(relative(root, f));
    }
  };
  walk(root);
  return out.sort();
}

beforeEach(() => forgetSecrets());

describe('apply', () => {
  it('writes the 0600 env file, opens exactly the range, starts the agent and records the bound port', async () => {
    const { p, sys, deps, out } = setup();
    const state = await applyConfiguration({ token: TOKEN, settings, source: 'dialogue', instanceId: 'i-1' }, deps);
    expect(state).toMatchObject({ status: 'configured', instanceId: 'i-1', boundPort: 51820, source: 'dialogue' });
    expect(statSync(p.envFile).mode & 0o777).toBe(0o600);
    expect(readFileSync(p.envFile, 'utf8')).toBe(envFileContent(TOKEN, settings, 1));
    expect(readFileSync(p.envFile, 'utf8')).toContain('SYNTROPY_PORT_RANGE=51820-51919\n');
    // An EC2 instance tells the agent its provider (1 = AWS) instead of leaving it to IP geolocation.
    expect(readFileSync(p.envFile, 'utf8')).toContain('SYNTROPY_PROVIDER=1\n');
    // Enabled for the next boots from the apply's start (beside the image check and the env file),
    // and waited for before the unit starts.
    expect(sys.calls).toEqual(['enable', 'imageId', 'start', 'ufw-allow 51820:51919']);
    expect(sys.enabled).toBe(true);
    expect(existsSync(p.journalFile)).toBe(false);
    expect(readState(p)?.settings).toEqual(settings);
    // Each step's finishing time, for the benchmark's breakdown: all of them, in time order.
    const steps = stats.applySteps!;
    expect(steps.map(([s]) => s).sort()).toEqual(['confirm-running', 'enable', 'firewall', 'record', 'start-unit', 'verify-image', 'write-env']);
    expect(steps.map(([, ms]) => ms)).toEqual([...steps.map(([, ms]) => ms)].sort((a, b) => a - b));
    expect(steps.at(-1)![0]).toBe('record');
    // The token is in the env file and nowhere else: not in state, journal, output.
    const others = filesUnder(p.root).filter((f) => f !== 'etc/syntropy/agent.env');
    for (const f of others) expect(readFileSync(join(p.root, f), 'utf8'), f).not.toContain(TOKEN);
    expect(out.join('')).not.toContain(TOKEN);
  });

  it('sets no provider off EC2 (a machine-ID instance), leaving the agent its own default', async () => {
    const { p, deps } = setup();
    await applyConfiguration({ token: TOKEN, settings, source: 'dialogue', instanceId: `local-${'a'.repeat(32)}` }, deps);
    expect(readFileSync(p.envFile, 'utf8')).not.toContain('SYNTROPY_PROVIDER');
  });

  it('puts network discovery mode and tags in the env file only when set', () => {
    const env = envFileContent(TOKEN, { ...settings, tags: [], networkApi: 'docker' });
    expect(env).toContain('SYNTROPY_NETWORK_API=docker\n');
    expect(env).not.toContain('SYNTROPY_TAGS');
  });

  const cases: { failAt: string; expectCalls: string[]; message: RegExp }[] = [
    // The enable was journaled before it began: disabled again.
    { failAt: 'imageId', expectCalls: ['enable', 'imageId', 'disable'], message: /could not verify the preloaded agent image: imageId exploded/ },
    // The firewall and the start run together, so both are undone when the firewall fails.
    { failAt: 'ufw-allow', expectCalls: ['enable', 'imageId', 'start', 'ufw-allow 51820:51919', 'stop', 'ufw-delete 51820:51919', 'disable'], message: /could not open UDP 51820-51919 in the firewall/ },
    { failAt: 'start-fails', expectCalls: ['enable', 'imageId', 'start', 'ufw-allow 51820:51919', 'stop', 'ufw-delete 51820:51919', 'disable'], message: /could not start the agent: systemctl restart failed/ },
    { failAt: 'no-run', expectCalls: ['enable', 'imageId', 'start', 'ufw-allow 51820:51919', 'stop', 'ufw-delete 51820:51919', 'disable'], message: /could not confirm the agent is running: the agent container did not start/ },
    { failAt: 'no-port', expectCalls: ['enable', 'imageId', 'start', 'ufw-allow 51820:51919', 'stop', 'ufw-delete 51820:51919', 'disable'], message: /runs but bound no UDP port in 51820-51919/ },
    // A failed enable is undone alone: nothing else had been started.
    { failAt: 'enable', expectCalls: ['enable', 'imageId', 'disable'], message: /could not enable the agent for the next boots: enable exploded/ },
  ];
  for (const c of cases) {
    it(`rolls back everything when "${c.failAt}" fails`, async () => {
      const { p, sys, deps } = setup();
      sys.failAt = c.failAt;
      const err = await applyConfiguration({ token: TOKEN, settings, source: 'flags', instanceId: 'i-1' }, deps).catch((e: Error) => e);
      expect((err as Error).message).toMatch(c.message);
      expect((err as Error).message).toMatch(/every change was rolled back/);
      expect((err as Error).message).not.toContain(TOKEN);
      expect(sys.calls).toEqual(c.expectCalls);
      expect(sys.enabled).toBe(false);
      expect(existsSync(p.envFile)).toBe(false);
      expect(readState(p)).toBeNull();
      expect(existsSync(p.journalFile)).toBe(false);
      expect(filesUnder(p.root).filter((f) => f.endsWith(TEMP_SUFFIX))).toEqual([]);
      expect(readFileSync(join(p.root, 'var/lib/syntropy/firstboot/last-error'), 'utf8')).toMatch(c.message);
    });
  }

  it('refuses an image that does not match the lock file', async () => {
    const { sys, deps } = setup();
    sys.imageIdValue = `sha256:${'d'.repeat(64)}`;
    await expect(applyConfiguration({ token: TOKEN, settings, source: 'flags', instanceId: 'i-1' }, deps)).rejects.toThrow(/lock file pins sha256:c/);
    sys.imageIdValue = null;
    await expect(applyConfiguration({ token: TOKEN, settings, source: 'flags', instanceId: 'i-1' }, deps)).rejects.toThrow(/is not in Docker; nothing will be pulled/);
  });

  it("uses the dialogue's early image check only while it passed and the lock file still pins that image", async () => {
    // Passed, lock unchanged: the apply asks Docker nothing more before starting the agent.
    let { p, sys, deps } = setup();
    let pre = preverifyImage(deps);
    await pre;
    expect(sys.calls).toEqual(['imageId']);
    sys.calls = [];
    await applyConfiguration({ token: TOKEN, settings, source: 'dialogue', instanceId: 'i-1', preverified: pre }, deps);
    expect(sys.calls).toEqual(['enable', 'start', 'ufw-allow 51820:51919']);
    // The lock file changed meanwhile (update-agent): verified again, against the new lock.
    ({ p, sys, deps } = setup());
    pre = preverifyImage(deps);
    await pre;
    const other = `sha256:${'e'.repeat(64)}`;
    writeFileSync(p.lockFile, `AGENT_IMAGE_REF=syntropy-agent-test-double:local\nAGENT_IMAGE_DIGEST=${other}\nAGENT_IMAGE_ID=${other}\nAGENT_IMAGE_SOURCE=archive\n`);
    sys.calls = [];
    await expect(applyConfiguration({ token: TOKEN, settings, source: 'dialogue', instanceId: 'i-1', preverified: pre }, deps)).rejects.toThrow(/lock file pins sha256:e/);
    expect(sys.calls).toEqual(['enable', 'imageId', 'disable']);
    // Failed early (dockerd still starting, or the image missing then): asked again, today's answer counts.
    ({ p, sys, deps } = setup());
    sys.imageIdValue = null;
    pre = preverifyImage(deps);
    expect(await pre).toHaveProperty('error');
    sys.imageIdValue = IMAGE_ID;
    sys.calls = [];
    await applyConfiguration({ token: TOKEN, settings, source: 'dialogue', instanceId: 'i-1', preverified: pre }, deps);
    expect(sys.calls).toEqual(['enable', 'imageId', 'start', 'ufw-allow 51820:51919']);
    // Not answered yet when the user confirms: the apply waits for that answer instead of asking twice.
    ({ p, sys, deps } = setup());
    let answered = false;
    const late: Preverified = new Promise((r) =>
      setTimeout(() => {
        answered = true;
        r({ ok: true, value: readImageLock(p) });
      }, 100),
    );
    sys.calls = [];
    await applyConfiguration({ token: TOKEN, settings, source: 'dialogue', instanceId: 'i-1', preverified: late }, deps);
    expect(answered).toBe(true);
    expect(sys.calls).toEqual(['enable', 'start', 'ufw-allow 51820:51919']);
    expect(readState(p)?.status).toBe('configured');
  });

  it('on a failed reconfigure brings back the previous env file, rule and agent', async () => {
    const { p, sys, deps } = setup();
    await applyConfiguration({ token: TOKEN, settings, source: 'dialogue', instanceId: 'i-1' }, deps);
    const before = readFileSync(p.envFile, 'utf8');
    sys.calls = [];
    sys.failAt = 'no-port';
    const next: AgentSettings = { ...settings, portRange: '40000-40010' };
    await expect(applyConfiguration({ token: `${TOKEN}-new`, settings: next, source: 'dialogue', instanceId: 'i-1' }, deps)).rejects.toThrow(/rolled back/);
    expect(readFileSync(p.envFile, 'utf8')).toBe(before);
    expect(statSync(p.envFile).mode & 0o777).toBe(0o600);
    expect(existsSync(p.envBackup)).toBe(false);
    // Enabled already: not enabled again; the previous agent comes back enabled.
    expect(sys.calls).toEqual(['imageId', 'start', 'ufw-allow 40000:40010', 'stop', 'ufw-delete 40000:40010', 'start']);
    expect(sys.enabled).toBe(true);
    expect(readState(p)?.settings.portRange).toBe('51820-51919');
  });

  it('on a successful reconfigure to a new range removes the old rule', async () => {
    const { sys, deps } = setup();
    await applyConfiguration({ token: TOKEN, settings, source: 'dialogue', instanceId: 'i-1' }, deps);
    sys.calls = [];
    sys.agentPort = 40001;
    await applyConfiguration({ token: TOKEN, settings: { ...settings, portRange: '40000-40010' }, source: 'ssm', instanceId: 'i-1' }, deps);
    expect(sys.calls).toEqual(['imageId', 'start', 'ufw-allow 40000:40010', 'ufw-delete 51820:51919']);
  });

  it('leaves a unit enabled from the bake as it is: not enabled again, and still enabled after a rollback', async () => {
    const { p, sys, deps } = setup();
    sys.enabled = true;
    await applyConfiguration({ token: TOKEN, settings, source: 'dialogue', instanceId: 'i-1' }, deps);
    expect(sys.calls).toEqual(['imageId', 'start', 'ufw-allow 51820:51919']);
    expect(stats.applySteps!.map(([step]) => step)).not.toContain('enable');
    const fresh = setup();
    fresh.sys.enabled = true;
    fresh.sys.failAt = 'no-port';
    await expect(applyConfiguration({ token: TOKEN, settings, source: 'dialogue', instanceId: 'i-1' }, fresh.deps)).rejects.toThrow(/every change was rolled back/);
    expect(fresh.sys.calls).toEqual(['imageId', 'start', 'ufw-allow 51820:51919', 'stop', 'ufw-delete 51820:51919']);
    expect(fresh.sys.enabled).toBe(true);
    expect(existsSync(fresh.p.envFile)).toBe(false);
    expect(readState(p)?.status).toBe('configured');
  });

  it('enables a unit disabled since (by hand) on a reconfigure, and a failure leaves it disabled as found', async () => {
    const { sys, deps } = setup();
    await applyConfiguration({ token: TOKEN, settings, source: 'dialogue', instanceId: 'i-1' }, deps);
    sys.enabled = false;
    sys.calls = [];
    await applyConfiguration({ token: TOKEN, settings: { ...settings, agentName: 'relay-2' }, source: 'dialogue', instanceId: 'i-1' }, deps);
    expect(sys.calls).toEqual(['enable', 'imageId', 'start']);
    expect(sys.enabled).toBe(true);
    sys.enabled = false;
    sys.calls = [];
    sys.failAt = 'imageId';
    await expect(applyConfiguration({ token: TOKEN, settings: { ...settings, agentName: 'relay-3' }, source: 'dialogue', instanceId: 'i-1' }, deps)).rejects.toThrow(/rolled back/);
    // Nothing of the previous agent was touched: it is not stopped or restarted, only the enable undone.
    expect(sys.calls).toEqual(['enable', 'imageId', 'disable']);
    expect(sys.enabled).toBe(false);
    // Failing after the start: the previous agent is started again for this boot, and its unit
    // stays disabled as found (it came back enabled before: restarted with startAgent).
    sys.calls = [];
    sys.failAt = 'no-port';
    sys.bound.clear();
    await expect(applyConfiguration({ token: TOKEN, settings: { ...settings, agentName: 'relay-4' }, source: 'dialogue', instanceId: 'i-1' }, deps)).rejects.toThrow(/rolled back/);
    expect(sys.calls).toEqual(['enable', 'imageId', 'start', 'stop', 'disable', 'start']);
    expect(sys.enabled).toBe(false);
  });

  it('undoes an apply cut off by a power failure on the next run', async () => {
    const { p, sys, deps } = setup();
    writeFileSync(p.envFile, envFileContent(TOKEN, settings), { mode: 0o600 });
    mkdirSync(join(p.root, 'var/lib/syntropy/firstboot'), { recursive: true });
    writeJournal(p, { instanceId: 'i-1', range: '51820-51919', previous: null, next: null, steps: ['enable', 'write-env', 'firewall', 'start-agent'] });
    expect(await recoverInterrupted(deps)).toBe(true);
    // Each step undone in reverse: the agent stopped, the rule removed, the env file, the enable.
    expect(sys.calls).toEqual(['stop', 'ufw-delete 51820:51919', 'disable']);
    expect(existsSync(p.envFile)).toBe(false);
    expect(existsSync(p.journalFile)).toBe(false);
    expect(await recoverInterrupted(deps)).toBe(false);
    // Cut off right after the enable began: disabled again, nothing else to undo.
    sys.calls = [];
    sys.enabled = true;
    writeJournal(p, { instanceId: 'i-1', range: '51820-51919', previous: null, next: null, steps: ['enable'] });
    expect(await recoverInterrupted(deps)).toBe(true);
    expect(sys.calls).toEqual(['disable']);
    expect(sys.enabled).toBe(false);
  });

  it('finishes, not undoes, an apply cut off after its state was written (the state names its journal)', async () => {
    const { p, sys, deps } = setup();
    const state = await applyConfiguration({ token: TOKEN, settings, source: 'dialogue', instanceId: 'i-1' }, deps);
    expect(state.applyId).toMatch(/^[0-9a-f]{16}$/);
    // The power cut came after the state's rename and before the journal's removal: the journal
    // is as the apply last wrote it, with no `commit` step.
    const journal = { id: state.applyId, instanceId: 'i-1', range: '51820-51919', previous: null, next: null, steps: ['write-env', 'firewall', 'start-agent'] as const };
    writeJournal(p, { ...journal, steps: [...journal.steps] });
    sys.calls = [];
    expect(await recoverInterrupted(deps)).toBe(true);
    expect(sys.calls).toEqual([]);
    expect(readState(p)).toEqual(state);
    expect(readFileSync(p.envFile, 'utf8')).toBe(envFileContent(TOKEN, settings, 1));
    expect(existsSync(p.journalFile)).toBe(false);

    // The same journal beside a state another apply wrote (this one was cut off before its own
    // state) is undone.
    writeJournal(p, { ...journal, id: 'f'.repeat(16), steps: [...journal.steps] });
    expect(await recoverInterrupted(deps)).toBe(true);
    expect(sys.calls).toEqual(['stop', 'ufw-delete 51820:51919']);
    expect(existsSync(p.envFile)).toBe(false);
  });

  it('treats a torn journal as an interrupted apply', async () => {
    const { p, sys, deps } = setup();
    mkdirSync(join(p.root, 'var/lib/syntropy/firstboot'), { recursive: true });
    writeFileSync(p.journalFile, '{"instanceId": "i-1", "ran');
    writeFileSync(p.envFile, 'SYNTROPY_AGENT_TOKEN=x\n', { mode: 0o600 });
    expect(await recoverInterrupted(deps)).toBe(true);
    expect(sys.calls).toContain('stop');
    expect(existsSync(p.envFile)).toBe(false);
  });
});

describe('system command failures', () => {
  const fail = (cmd: string, args: string[], timeout: number) =>
    new Promise<Parameters<typeof runFailure>[1]>((resolve) => execFile(cmd, args, { timeout }, (e, _out, stderr) => resolve({ ...(e as object), stderr })));

  it('name the exit code, a timeout, or a missing program', async () => {
    expect(runFailure('sh -c x', await fail('sh', ['-c', 'echo first >&2; echo oops >&2; exit 3'], 10_000))).toBe('sh -c x failed (exit 3): first oops');
    expect(runFailure('sleep 5', await fail('sleep', ['5'], 200), 200)).toBe('sleep 5 failed (no answer within 0.2 s, stopped with SIGTERM)');
    expect(runFailure('nope', await fail('/nonexistent/nope', [], 10_000))).toBe('nope failed (ENOENT)');
  });
});

describe('confirming the agent runs', () => {
  /** A container that binds its port after `bindAfterMs`; counts the Docker questions asked. */
  class SlowAgent extends FakeSystem {
    asked = 0;
    pidAsked = 0;
    constructor(bindAfterMs: number, port: number | null) {
      super();
      this.running = true;
      if (port !== null) setTimeout(() => this.bound.add(port), bindAfterMs);
    }
    override async agentRunning(): Promise<boolean> {
      this.asked += 1;
      return this.running;
    }
    override async agentPid(): Promise<number | null> {
      this.pidAsked += 1;
      return super.agentPid();
    }
  }
  const con = new Console({ write: () => {} }, { write: () => {} });
  const deps = (sys: FakeSystem, confirmTimeoutMs = 5000): ApplyDeps => ({ p: paths(mkdtempSync(join(tmpdir(), 'fb-confirm-'))), sys, con, confirmTimeoutMs, pollMs: 10 });
  const range = { start: 51820, end: 51830 };

  it("asks Docker for the container's process at once, and when the port appears reads that it still lives", async () => {
    for (const bindAfter of [50, 1500]) {
      const sys = new SlowAgent(bindAfter, 51825);
      const by: string[] = [];
      expect(await confirmRunning(range, deps(sys), (b) => by.push(b))).toBe(51825);
      // One question for the process, none when the port appears (and none while it has not).
      expect(sys.pidAsked).toBe(1);
      expect(sys.asked).toBe(0);
      expect(by).toEqual(['process']);
    }
  });

  it('asks Docker again when the process it named is gone or was restarted by the time the port appears', async () => {
    // Restarted by Docker (restart policy): a new start time; Docker says running, once.
    const restarted = new SlowAgent(200, 51821);
    setTimeout(() => (restarted.startTime = '2000'), 100);
    const by: string[] = [];
    expect(await confirmRunning(range, deps(restarted), (b) => by.push(b))).toBe(51821);
    expect(restarted.asked).toBe(1);
    expect(by).toEqual(['docker']);
    // Exited, and the port is held by WireGuard links it left behind: not confirmed.
    const exited = new SlowAgent(200, 51822);
    setTimeout(() => (exited.running = false), 100);
    await expect(confirmRunning(range, deps(exited, 1500))).rejects.toThrow(/the agent container did not start/);
    // Asked when the port appeared, at most once a second after that, and at the deadline.
    expect(exited.asked).toBeGreaterThanOrEqual(2);
    expect(exited.asked).toBeLessThanOrEqual(3);
    // Not running when first asked, started since (the restart policy): confirmed by Docker.
    const late = new SlowAgent(200, 51823);
    late.running = false;
    setTimeout(() => (late.running = true), 100);
    expect(await confirmRunning(range, deps(late))).toBe(51823);
    expect(late.asked).toBe(1);
  });

  it('reads a living process start time from /proc/PID/stat, and none for a zombie', () => {
    const line = (state: string) => `4242 (my (odd) name) ${state} 1 4242 4242 0 -1 4194560 200 0 0 0 1 2 0 0 20 0 1 0 123456 1000000 300 18446744073709551615`;
    expect(procStartTime(line('S'))).toBe('123456');
    expect(procStartTime(line('R'))).toBe('123456');
    expect(procStartTime(line('Z'))).toBeNull();
    expect(procStartTime(line('X'))).toBeNull();
    expect(procStartTime('garbage')).toBeNull();
    expect(new LiveSystem().processStartTime(process.pid)).toMatch(/^\d+$/);
    expect(new LiveSystem().processStartTime(process.pid)).toBe(new LiveSystem().processStartTime(process.pid));
    expect(new LiveSystem().processStartTime(2 ** 22 + 1)).toBeNull();
  });

  it('ignores ports outside the range and names a running agent without its port', async () => {
    const sys = new SlowAgent(10, 40000);
    await expect(confirmRunning({ start: 51820, end: 51830 }, deps(sys, 600))).rejects.toThrow(/runs but bound no UDP port in 51820-51830/);
    expect(sys.asked).toBe(1);
  });

  it('names a container that stopped by what Docker says at the deadline', async () => {
    const sys = new SlowAgent(10, 40000);
    setTimeout(() => (sys.running = false), 300);
    await expect(confirmRunning({ start: 51820, end: 51830 }, deps(sys, 600))).rejects.toThrow(/the agent container did not start/);
  });
});

describe('files first boot replaces', () => {
  it('get exactly the mode asked for, whatever the umask', () => {
    const root = mkdtempSync(join(tmpdir(), 'fb-mode-'));
    const old = process.umask(0o077);
    try {
      writeFileAtomic(join(root, 'etc/ufw/user.rules'), 'x\n', 0o644);
    } finally {
      process.umask(old);
    }
    expect(statSync(join(root, 'etc/ufw/user.rules')).mode & 0o7777).toBe(0o644);
  });

  it("lose the temporary files a killed run left, ufw's directory included", () => {
    const p = paths(mkdtempSync(join(tmpdir(), 'fb-tmp-')));
    const leftovers = [`${p.envFile}${TEMP_SUFFIX}`, join(p.root, 'etc/ufw', `user6.rules${TEMP_SUFFIX}`)];
    for (const f of leftovers) {
      mkdirSync(dirname(f), { recursive: true });
      writeFileSync(f, 'partial');
    }
    writeFileSync(join(p.root, 'etc/ufw/user6.rules'), 'kept');
    removeTempFiles(p);
    for (const f of leftovers) expect(existsSync(f)).toBe(false);
    expect(readFileSync(join(p.root, 'etc/ufw/user6.rules'), 'utf8')).toBe('kept');
  });
});
