// Pieces of the local boot test that run without a guest: the SSM double speaks the SDK's
// protocol (reached through AWS_ENDPOINT_URL_SSM, as the test's user data arranges in the guest),
// the IMDS double serves instance-role credentials, the user data is accepted by first boot,
// and the pass/fail rules for configured, firewall and reports.
import { afterEach, describe, expect, it } from 'vitest';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { SsmDouble } from '../../scripts/lib/boottest/parameter-store-double.ts';
import { ImdsDouble } from '../../scripts/lib/guest/imds-double.ts';
import { bootTestUserData } from '../../scripts/lib/boottest/local.ts';
import { assertConfigured, assertFirewallDelta, CONTAINER_PROBE, liveUfwProbe, liveUfwRuleProblems, parseGuestState, type GuestState } from '../../scripts/lib/boottest/guest-state.ts';
import { BOOT_CLEAN, bootCleanProblems, runPool } from '../../scripts/lib/boottest/common.ts';
import { bootJUnit, bootMarkdown, bootReport } from '../../scripts/lib/boottest/report.ts';
import { selectScenarios, readManifest } from '../../scripts/boot-test.ts';
import { parseUserData } from '../../firstboot/src/user-data.ts';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  delete process.env.AWS_ENDPOINT_URL_SSM;
  while (stops.length) await stops.pop()!();
});

describe('doubles', () => {
  it('answers GetParameter with decryption to the AWS SDK found through AWS_ENDPOINT_URL_SSM', async () => {
    const ssm = new SsmDouble({ '/t/token': { value: 'tok-0123456789abcdef0123', type: 'SecureString' } });
    const port = await ssm.start();
    stops.push(() => ssm.stop());
    process.env.AWS_ENDPOINT_URL_SSM = `http://127.0.0.1:${port}`;
    const client = new SSMClient({ region: 'us-east-1', credentials: { accessKeyId: 'ASIATESTROLEKEY00001', secretAccessKey: 's', sessionToken: 't' } });
    const out = await client.send(new GetParameterCommand({ Name: '/t/token', WithDecryption: true }));
    expect(out.Parameter).toMatchObject({ Type: 'SecureString', Value: 'tok-0123456789abcdef0123' });
    await expect(client.send(new GetParameterCommand({ Name: '/t/missing', WithDecryption: true }))).rejects.toMatchObject({ name: 'ParameterNotFound' });
    expect(ssm.requests.map((r) => [r.name, r.withDecryption, r.accessKeyId, r.status])).toEqual([
      ['/t/token', true, 'ASIATESTROLEKEY00001', 200],
      ['/t/missing', true, 'ASIATESTROLEKEY00001', 400],
    ]);
  });

  it('serves the instance role\'s credentials under meta-data/iam with an IMDSv2 token', async () => {
    const imds = new ImdsDouble({ role: { name: 'boot-role', accessKeyId: 'ASIAROLE', secretAccessKey: 'sec', token: 'tok' } });
    const port = await imds.start();
    stops.push(() => imds.stop());
    const token = await (await fetch(`http://127.0.0.1:${port}/latest/api/token`, { method: 'PUT', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '60' } })).text();
    const get = (p: string) => fetch(`http://127.0.0.1:${port}/latest/meta-data/${p}`, { headers: { 'x-aws-ec2-metadata-token': token } });
    expect(await (await get('iam/security-credentials/')).text()).toBe('boot-role');
    expect(JSON.parse(await (await get('iam/security-credentials/boot-role')).text())).toMatchObject({ Code: 'Success', AccessKeyId: 'ASIAROLE', SecretAccessKey: 'sec', Token: 'tok' });
    expect((await fetch(`http://127.0.0.1:${port}/latest/meta-data/iam/info`)).status).toBe(401);
  });
});

describe('boot-test user data', () => {
  it('is a cloud-config that first boot reads as a Parameter Store configuration', () => {
    const ud = bootTestUserData('/syntropy/boot-test/agent-token', '51900-51910');
    expect(ud.startsWith('#cloud-config\n')).toBe(true);
    expect(ud).toContain('echo AWS_ENDPOINT_URL_SSM=http://169.254.169.250 > /run/syntropy-firstboot.env');
    expect(parseUserData(ud)).toEqual({ settings: { portRange: '51900-51910', tags: ['boot-test'], tokenSsmParameter: '/syntropy/boot-test/agent-token', agentName: undefined }, warnings: [] });
  });
});

const state = (o: Partial<GuestState>): GuestState => ({
  env: '600 root root',
  state: true,
  journal: false,
  container: { running: true, image: 'sha256:abc' },
  lockId: 'sha256:abc',
  udpPorts: [22, 51820],
  ufw: ['22/tcp ALLOW Anywhere'],
  agentEnabled: 'enabled',
  memUsedMib: 150,
  wgInterfaces: ['SYNTROPY_PUBLIC', 'SYNTROPY_SDN1', 'SYNTROPY_SDN2', 'SYNTROPY_SDN3'],
  wgPorts: [51820, 51821, 51822, 51823],
  agentLock: 'regular empty file',
  imdsGuard: true,
  provider: '1',
  agentName: 'i-0123456789abcdef0',
  ...o,
});

/**
 * BOOT_CLEAN run by bash against stand-ins for systemctl, journalctl and sudo. The journalctl
 * stand-in keeps journald's split: `fromPid1` has _PID=1 (logged once journald runs), `fromKmsg`
 * only SYSLOG_IDENTIFIER=systemd (logged to the kernel buffer before journald ran, as systemd
 * does while it loads units); each is printed only when a match names its field.
 */
function bootClean(state: string, failed: string, fromPid1: string, fromKmsg = ''): string[] {
  const bin = mkdtempSync(join(tmpdir(), 'bootclean-'));
  const tool = (name: string, body: string) => {
    writeFileSync(join(bin, name), `#!/bin/bash\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  };
  tool('systemctl', `case "$1" in is-system-running) printf '%s\\n' ${JSON.stringify(state)}; [ ${JSON.stringify(state)} = running ];; --failed) printf '%b' ${JSON.stringify(failed)};; esac`);
  tool('journalctl', `for a in "$@"; do case "$a" in SYSLOG_IDENTIFIER=systemd) printf '%b' ${JSON.stringify(fromKmsg)};; _PID=1) printf '%b' ${JSON.stringify(fromPid1)};; esac; done`);
  tool('sudo', 'exec "$@"');
  return bootCleanProblems(execFileSync('bash', ['-c', BOOT_CLEAN], { env: { ...process.env, PATH: `${bin}:${process.env.PATH}` }, encoding: 'utf8' }));
}

describe('pass/fail rules', () => {
  it('calls a boot clean only when it ran to the end without a failed unit or a job dropped by an ordering cycle', () => {
    const quiet = 'Queued start job for default target graphical.target.\nReached target multi-user.target - Multi-User System.\n';
    expect(bootClean('running', '', quiet)).toEqual([]);
    // systemd's own lines from a guest of build 20261206T181756Z, whose failover unit was
    // After=cloud-final.service: logged before journald ran, so they are kernel-buffer records.
    const cycle = 'multi-user.target: Found ordering cycle on syntropy-route-failover.service/start\nmulti-user.target: Found dependency on cloud-final.service/start\nmulti-user.target: Job syntropy-route-failover.service/start deleted to break ordering cycle starting with multi-user.target/start\n';
    const dropped = [
      'multi-user.target: Found ordering cycle on syntropy-route-failover.service/start',
      'multi-user.target: Job syntropy-route-failover.service/start deleted to break ordering cycle starting with multi-user.target/start',
    ];
    expect(bootClean('running', '', quiet, cycle)).toEqual(dropped);
    expect(bootClean('running', '', quiet + cycle)).toEqual(dropped);
    expect(bootClean('degraded', 'auditd.service loaded failed failed Security Audit Logging Service\n', quiet)).toEqual([
      'system state degraded, want running',
      'auditd.service loaded failed failed Security Audit Logging Service',
    ]);
    // Nothing read from the journal is no evidence of a clean boot.
    expect(bootClean('running', '', '')).toEqual(['journal of this boot unreadable:']);
  });

  it('accepts a configured guest and names what is missing otherwise', () => {
    expect(() => assertConfigured(state({}), '51820-51830')).not.toThrow();
    expect(() => assertConfigured(state({ container: { running: true, image: 'sha256:pulled' } }), '51820-51830')).toThrow(/not the preloaded/);
    expect(() => assertConfigured(state({ wgPorts: [51820, 51821, 51822, 40000] }), '51820-51830')).toThrow(/WireGuard ports 51820 51821 51822 40000: want 4, all inside 51820-51830/);
    expect(() => assertConfigured(state({ wgPorts: [51820] }), '51820-51830')).toThrow(/want 4/);
    expect(() => assertConfigured(state({ wgInterfaces: ['SYNTROPY_PUBLIC'] }), '51820-51830')).toThrow(/WireGuard interfaces: SYNTROPY_PUBLIC/);
    expect(() => assertConfigured(state({ agentLock: 'directory' }), '51820-51830')).toThrow(/is a directory; the agent os.Create\(\)s it/);
    expect(() => assertConfigured(state({ provider: '' }), '51820-51830')).toThrow(/SYNTROPY_PROVIDER/);
    expect(() => assertConfigured(state({ imdsGuard: false }), '51820-51830')).toThrow(/DOCKER-USER/);
    expect(() => assertConfigured(state({ env: '644 root root' }), '51820-51830')).toThrow(/want 600 root root/);
    expect(() => assertConfigured(state({ journal: true }), '51820-51830')).toThrow(/journal LEFT BEHIND/);
  });

  it('reads a missing container as absent even though docker inspect -f prints an empty line for it', () => {
    const probe = (dockerScript: string) => {
      const bin = mkdtempSync(join(tmpdir(), 'fake-docker-'));
      writeFileSync(join(bin, 'docker'), `#!/bin/sh\n${dockerScript}\n`);
      chmodSync(join(bin, 'docker'), 0o755);
      const out = execFileSync('sh', ['-c', CONTAINER_PROBE], { encoding: 'utf8', env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } });
      return parseGuestState(out).container;
    };
    expect(probe("echo; echo 'Error: No such object: syntropy-agent' >&2; exit 1")).toBeNull();
    expect(probe('exit 1')).toBeNull();
    expect(probe("echo 'false sha256:abc'")).toEqual({ running: false, image: 'sha256:abc' });
    expect(probe("echo 'true sha256:abc'")).toEqual({ running: true, image: 'sha256:abc' });
  });

  it('lets the firewall gain exactly the agent range', () => {
    const before = state({ ufw: ['22/tcp ALLOW Anywhere', '22/tcp (v6) ALLOW Anywhere (v6)'] });
    const ok = state({ ufw: [...before.ufw, '51820:51830/udp ALLOW Anywhere', '51820:51830/udp (v6) ALLOW Anywhere (v6)'] });
    expect(() => assertFirewallDelta(before, ok, '51820-51830')).not.toThrow();
    expect(() => assertFirewallDelta(before, state({ ufw: [...ok.ufw, '8080/tcp ALLOW Anywhere'] }), '51820-51830')).toThrow(/8080/);
    expect(() => assertFirewallDelta(before, state({ ufw: ['51820:51830/udp ALLOW Anywhere'] }), '51820-51830')).toThrow(/removed: 22\/tcp/);
    expect(() => assertFirewallDelta(before, before, '51820-51830')).toThrow(/added: none/);
  });

  it('reads ufw\'s dry run and the running chains: the agent rule is ufw\'s own and loaded once', () => {
    // The shape of what liveUfwProbe printed in a guest of the image (ufw 0.36.2, iptables 1.8.11).
    const chain = (c: string) => `-N ${c}\n-A ${c} -p tcp -m tcp --dport 22 -j ACCEPT\n-A ${c} -p udp -m multiport --dports 51820:51830 -j ACCEPT\n`;
    const out = (dry: string, v4: string, v6: string, files = '2\n2') =>
      `${dry}\n### v4\n${v4}### v6\n${v6}### files\n${files}\n`;
    const seen = 'Skipping adding existing rule\nSkipping adding existing rule (v6)';
    expect(liveUfwProbe('51820-51830', 'syntropy-agent wireguard')).toContain("port 51820:51830 comment 'syntropy-agent wireguard'");
    expect(liveUfwRuleProblems(out(seen, chain('ufw-user-input'), chain('ufw6-user-input')), '51820-51830')).toEqual([]);
    // ufw would add it (it does not parse what was written as the same rule).
    expect(liveUfwRuleProblems(out('Rules updated\nRules updated (v6)', chain('ufw-user-input'), chain('ufw6-user-input')), '51820-51830').join()).toMatch(/IPv4 rule as its own.*IPv6 rule as its own/);
    // In the files but not loaded, or loaded twice.
    const notLoaded = '-N ufw6-user-input\n-A ufw6-user-input -p tcp -m tcp --dport 22 -j ACCEPT\n';
    expect(liveUfwRuleProblems(out(seen, chain('ufw-user-input'), notLoaded), '51820-51830')).toEqual([
      'IPv6: the running ufw6-user-input holds "-A ufw6-user-input -p udp -m multiport --dports 51820:51830 -j ACCEPT" 0 times, want once',
      'IPv6: the running ufw6-user-input has 1 rules, its rules file 2',
    ]);
    const twice = chain('ufw-user-input') + '-A ufw-user-input -p udp -m multiport --dports 51820:51830 -j ACCEPT\n';
    expect(liveUfwRuleProblems(out(seen, twice, chain('ufw6-user-input')), '51820-51830').join()).toMatch(/2 times, want once.*3 rules, its rules file 2/);
    expect(liveUfwRuleProblems('', '51820-51830').length).toBe(6);
  });

  it('passes a report only when every requested scenario ran and passed', () => {
    const s = (name: string, passed: boolean) => ({ name, passed, ms: 1000, steps: [{ name: 'boot', ms: 900, ok: passed, ...(passed ? {} : { detail: 'no <ssh>' }) }], figures: { a: 1 } });
    expect(bootReport('b', 'local', [s('dialogue', true), s('reboot', true)], ['dialogue', 'reboot']).passed).toBe(true);
    expect(bootReport('b', 'local', [s('dialogue', true)], ['dialogue', 'reboot']).passed).toBe(false);
    const bad = bootReport('b', 'local', [s('dialogue', true), s('reboot', false)], ['dialogue', 'reboot']);
    expect(bad.passed).toBe(false);
    expect(bootJUnit(bad)).toContain('<failure message="no &lt;ssh&gt;"/>');
    expect(bootMarkdown(bad)).toContain('| reboot | FAIL | 1 s | a=1 |');
  });

  it('validates scenario names and the manifest', () => {
    expect(selectScenarios('reboot,dialogue', ['dialogue', 'reboot'])).toEqual(['reboot', 'dialogue']);
    expect(() => selectScenarios('reboot,bogus', ['dialogue', 'reboot'])).toThrow(/unknown scenario bogus/);
    expect(() => readManifest('/nonexistent/build-manifest.json')).toThrow(/run npm run build first/);
  });

  it('runs at most N scenarios at once and keeps their order', async () => {
    let running = 0;
    let peak = 0;
    const out = await runPool(['a', 'b', 'c', 'd'], 2, async (n) => {
      running += 1;
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, n === 'a' ? 30 : 5));
      running -= 1;
      return n.toUpperCase();
    });
    expect(out).toEqual(['A', 'B', 'C', 'D']);
    expect(peak).toBe(2);
  });
});
