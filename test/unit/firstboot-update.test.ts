// update-agent: loads or pulls the new image, repoints the lock file, recreates the container,
// and restores the previous image when the new one does not come up.
import { describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { updateAgent, type Env } from '../../firstboot/src/cli.ts';
import { Console } from '../../firstboot/src/secrets.ts';
import { paths, writeState } from '../../firstboot/src/state.ts';
import { FakeSystem } from '../helpers/fake-system.ts';
import { parseAgentImageLock } from '../../contracts/agent-image-lock.ts';
import { recordImage } from '../../firstboot/src/commands/record-image.ts';

const OLD = `sha256:${'c'.repeat(64)}`;
const NEW = `sha256:${'d'.repeat(64)}`;

function env(configured = true): { e: Env; sys: FakeSystem; lock: () => string; out: string[] } {
  const root = mkdtempSync(join(tmpdir(), 'fb-update-'));
  const p = paths(root);
  mkdirSync(join(root, 'etc/syntropy'), { recursive: true });
  writeFileSync(p.lockFile, `AGENT_IMAGE_REF=syntropy-agent-test-double:local\nAGENT_IMAGE_DIGEST=${OLD}\nAGENT_IMAGE_ID=${OLD}\nAGENT_IMAGE_SOURCE=archive\n`);
  writeFileSync(join(root, 'etc/machine-id'), `${'a'.repeat(32)}\n`);
  if (configured) {
    writeState(p, { status: 'configured', instanceId: `local-${'a'.repeat(32)}`, configuredAt: 't', source: 'dialogue', settings: { portRange: '51820-51830', agentName: 'a', tags: [], networkApi: 'none' }, boundPort: 51820 });
  }
  const sys = new FakeSystem();
  sys.imageIdValue = NEW;
  const out: string[] = [];
  const sink = { write: (s: string) => void out.push(s) };
  const e: Env = { con: new Console(sink, sink), p, sys, imds: null, prompt: {}, readStdin: async () => '', confirmTimeoutMs: 300 };
  return { e, sys, lock: () => readFileSync(p.lockFile, 'utf8'), out };
}

describe('update-agent', () => {
  it('loads the archive, repoints the lock file and recreates the container', async () => {
    const { e, sys, lock } = env();
    expect(await updateAgent(e, 'syntropy-agent-test-double:v2', '/tmp/agent-v2.tar')).toBe(0);
    expect(sys.calls).toEqual(['load', 'image', 'start']);
    expect(lock()).toContain(`AGENT_IMAGE_ID=${NEW}\n`);
    // The new image's entrypoint goes with its ID, for run-agent.
    expect(parseAgentImageLock(lock(), 'lock').exec).toEqual(sys.imageExecValue);
    expect(lock()).toContain('AGENT_IMAGE_REF=syntropy-agent-test-double:v2\n');
  });

  it('pulls only by digest, and restores the previous image when the new one does not come up', async () => {
    const { e, sys, lock } = env();
    const before = lock();
    sys.failAt = 'no-port';
    await expect(updateAgent(e, `syntropynet/agent@${NEW}`, undefined)).rejects.toThrow(/did not come up; restored the previous image/);
    expect(sys.calls).toEqual(['pull', 'image', 'start', 'start']);
    expect(lock()).toBe(before);
    await expect(updateAgent(e, 'syntropynet/agent:latest', undefined)).rejects.toThrow(/pinned by digest/);
    await expect(updateAgent(e, undefined, undefined)).rejects.toThrow(/needs --image/);
  });

  it('refuses when Docker does not hold the image afterwards, leaving the lock file alone', async () => {
    const { e, sys, lock } = env(false);
    const before = lock();
    sys.imageIdValue = null;
    await expect(updateAgent(e, 'syntropy-agent-test-double:v2', '/tmp/a.tar')).rejects.toThrow(/Docker does not have syntropy-agent-test-double:v2/);
    expect(lock()).toBe(before);
  });
});

describe('record-image (bake time)', () => {
  it("writes the lock with the image's ID and its entrypoint and command, through the contract's writer", async () => {
    const { e, sys, lock } = env(false);
    sys.imageExecValue = ['/usr/bin/syntropy_agent', '--log', 'info'];
    expect(await recordImage(e, 'syntropy-agent-test-double:v2', NEW, 'archive')).toBe(0);
    expect(parseAgentImageLock(lock(), 'lock')).toEqual({ ref: 'syntropy-agent-test-double:v2', digest: NEW, id: NEW, source: 'archive', exec: sys.imageExecValue });
  });

  it('refuses an image with nothing to run, and one Docker does not hold, leaving the lock alone', async () => {
    const { e, sys, lock } = env(false);
    const before = lock();
    sys.imageExecValue = [];
    await expect(recordImage(e, 'syntropy-agent-test-double:v2', NEW, 'archive')).rejects.toThrow(/has no entrypoint or command/);
    sys.imageIdValue = null;
    await expect(recordImage(e, 'syntropy-agent-test-double:v2', NEW, 'archive')).rejects.toThrow(/Docker does not hold/);
    expect(lock()).toBe(before);
  });
});
