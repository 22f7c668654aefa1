// LiveSystem's firewall steps run the real commands: here against a ufw stand-in on PATH that
// records its arguments and the CPU priority it was started with.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { LiveSystem } from '../../firstboot/src/system.ts';

describe('LiveSystem firewall', () => {
  let dir = '';
  let path = '';
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'fake-ufw-'));
    writeFileSync(join(dir, 'ufw'), `#!/bin/sh\necho "$(nice) $*" >> ${join(dir, 'calls')}\n[ "$1" != fail ] || { echo "ERROR: Could not load logging rules" >&2; exit 1; }\n`, { mode: 0o755 });
    path = process.env.PATH!;
    process.env.PATH = `${dir}:${path}`;
  });
  afterEach(() => {
    process.env.PATH = path;
  });

  it('adds the rule at the lowest CPU priority, so the container start it runs beside goes first', async () => {
    await new LiveSystem().firewallAllowUdp({ start: 51820, end: 51919 });
    expect(readFileSync(join(dir, 'calls'), 'utf8')).toBe('19 allow proto udp from any to any port 51820:51919 comment syntropy-agent wireguard\n');
  });

  it('removes it with the same rule, and names a failing command with its message', async () => {
    await new LiveSystem().firewallDeleteUdp({ start: 40000, end: 40099 });
    expect(readFileSync(join(dir, 'calls'), 'utf8')).toMatch(/^\d+ delete allow proto udp from any to any port 40000:40099\n$/);
    writeFileSync(join(dir, 'ufw'), '#!/bin/sh\necho "ERROR: Could not load logging rules" >&2\nexit 1\n', { mode: 0o755 });
    await expect(new LiveSystem().firewallAllowUdp({ start: 51820, end: 51919 })).rejects.toThrow(/ufw allow proto udp .* failed \(exit 1\): ERROR: Could not load logging rules/);
  });
});
