// Probe batching and parsing, the SSH/SSM/root-directory hosts, the rendered apply script and the
// three report formats.
import { describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { gunzipSync, gzipSync } from 'node:zlib';
import { mockClient } from 'aws-sdk-client-mock';
import { GetCommandInvocationCommand, SendCommandCommand, SSMClient } from '@aws-sdk/client-ssm';
import { catalog } from '../../hardening/catalog.ts';
import { Facts, parseProbeOutput, probeScript } from '../../hardening/facts.ts';
import { LocalRootHost, SsmHost, SSM_OUTPUT_LIMIT } from '../../hardening/host.ts';
import { renderApply } from '../../hardening/render.ts';
import { buildReport, toJUnit, toMarkdown } from '../../hardening/report.ts';
import { judge, runChecks } from '../../hardening/runner.ts';
import { baseFixture } from '../../hardening/fixture.ts';
import { hostFromFlags } from '../../scripts/compliance.ts';
import type { ControlResult } from '../../hardening/types.ts';

const cat = catalog({ sshPort: 22, sshUser: 'admin' });

describe('probe script', () => {
  it('collects only offline facts for a root directory and every fact live', () => {
    const keys = ['read:/etc/passwd', 'sysctl:kernel.dmesg_restrict', 'cmd:sshd-T', 'pkg:ufw', 'unit:ufw.service'];
    const off = probeScript(keys, { root: '/mnt/img', live: false });
    expect(off.keys).toEqual(['pkg:ufw', 'read:/etc/passwd', 'unit:ufw.service']);
    expect(off.script).toContain("R=${PROBE_ROOT-'/mnt/img'}");
    expect(off.script).toContain('systemctl --root="$R" list-unit-files');
    const on = probeScript(keys, { root: '/', live: true });
    expect(on.keys).toContain('sysctl:kernel.dmesg_restrict');
    expect(on.script).toContain("R=${PROBE_ROOT-''}");
    expect(on.script).toContain('systemctl list-units --all');
  });

  it('is valid POSIX sh that shellcheck accepts, for the whole catalog', () => {
    const p = probeScript(cat.flatMap((c) => c.needs), { root: '/', live: true });
    const dir = mkdtempSync(join(tmpdir(), 'probe-'));
    writeFileSync(join(dir, 'probe.sh'), p.script);
    const r = spawnSync('shellcheck', [join(dir, 'probe.sh')], { encoding: 'utf8' });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('parses records around noise, empty outputs and outputs without a final newline', () => {
    const n = 'abc123';
    const out = `motd noise\n\n@@${n}:read:/a\nline1\nline2\n\n@@${n}=0\n\n@@${n}:read:/b\n\n@@${n}=1\n\n@@${n}:read:/c\nno-newline\n@@${n}=0\n`;
    const m = parseProbeOutput(out, n);
    expect(m.get('read:/a')).toEqual({ out: 'line1\nline2\n', rc: 0 });
    expect(m.get('read:/b')).toEqual({ out: '', rc: 1 });
    expect(m.get('read:/c')).toEqual({ out: 'no-newline', rc: 0 });
    const f = new Facts(m, false, new Set(['read:/a', 'read:/b']));
    expect(f.read('/b')).toBeNull();
    expect(() => f.read('/c')).toThrow(/without declaring/);
  });

  it('reads files, batched stats and globs from a root directory as cat and stat would', async () => {
    const root = mkdtempSync(join(tmpdir(), 'probe-root-'));
    mkdirSync(join(root, 'etc/ssh'), { recursive: true });
    writeFileSync(join(root, 'etc/hostname'), 'host\n');
    writeFileSync(join(root, 'etc/no-newline'), 'a=1\n\tb = "two words"');
    writeFileSync(join(root, 'etc/empty'), '');
    writeFileSync(join(root, 'etc/ssh/ssh_host_ed25519_key'), 'k', { mode: 0o600 });
    writeFileSync(join(root, 'etc/ssh/ssh_host_rsa_key'), 'k', { mode: 0o640 });
    chmodSync(join(root, 'etc/ssh/ssh_host_rsa_key'), 0o640);
    const keys = ['read:/etc/hostname', 'read:/etc/no-newline', 'read:/etc/empty', 'read:/etc/missing', 'read:/etc/ssh', 'stat:/etc/hostname', 'stat:/etc/ssh', 'stat:/etc/missing', 'stats:/etc/ssh/ssh_host_*_key', 'stats:/etc/none/*'];
    const p = probeScript(keys, { root, live: false });
    const f = new Facts(parseProbeOutput(await new LocalRootHost(root).run(p.script), p.nonce), false);
    expect(f.read('/etc/hostname')).toBe('host\n');
    expect(f.read('/etc/no-newline')).toBe('a=1\n\tb = "two words"\n');
    expect(f.read('/etc/empty')).toBe('');
    expect(f.read('/etc/missing')).toBeNull();
    expect(f.read('/etc/ssh')).toBeNull(); // a directory is not a file to read
    const uid = process.getuid!();
    expect(f.stat('/etc/hostname')).toMatchObject({ path: '/etc/hostname', mode: 0o644 & ~process.umask(), uid, type: 'regular file' });
    expect(f.stat('/etc/ssh')).toMatchObject({ path: '/etc/ssh', type: 'directory' });
    expect(f.stat('/etc/missing')).toBeNull();
    expect(f.stats('/etc/ssh/ssh_host_*_key').map((s) => [s.path, s.mode])).toEqual([
      ['/etc/ssh/ssh_host_ed25519_key', 0o600],
      ['/etc/ssh/ssh_host_rsa_key', 0o640],
    ]);
    expect(f.stats('/etc/none/*')).toEqual([]);
  });

  it('reads a kernel parameter where sysctl does, and refuses a key that is not one', () => {
    expect(probeScript(['sysctl:net.ipv4.conf.all.rp_filter'], { root: '/', live: true }).script).toContain("'rd /proc/sys/net/ipv4/conf/all/rp_filter'");
    expect(() => probeScript(['sysctl:kernel.x;reboot'], { root: '/', live: true })).toThrow(/unsafe sysctl key/);
  });

  it('rejects a glob that could inject shell', () => {
    expect(() => probeScript(['reads:/etc/$(reboot)/*.conf'], { root: '/', live: false })).toThrow(/unsafe glob/);
  });
});

describe('hosts', () => {
  it('runs the probe on a root directory and reports AUDIT lines', async () => {
    const fx = baseFixture();
    const dir = fx.materialize();
    const lines: string[] = [];
    const out = await runChecks(new LocalRootHost(dir), cat.filter((c) => c.id === '7.1.1' || c.id === '5.1.21'), { live: false, log: (l) => lines.push(l) });
    expect(lines).toEqual(['5.1.21 | AUDIT | Ensure sshd PermitRootLogin is disabled | FAIL', '7.1.1 | AUDIT | Ensure access to /etc/passwd is configured | PASS']);
    expect(out.results[0]!.evidence).toContain('PermitRootLogin prohibit-password');
  });

  it('batches one probe per section for a host with an output cap, judging the same as one round trip', async () => {
    const fx = baseFixture();
    for (const c of cat) c.fixture?.good(fx);
    const dir = fx.materialize();
    class CappedHost extends LocalRootHost {
      readonly maxOutputBytes = 24000;
      runs = 0;
      override run(script: string): Promise<string> {
        this.runs += 1;
        return super.run(script);
      }
    }
    const capped = new CappedHost(dir);
    const batched = await runChecks(capped, cat, { live: false });
    const single = await runChecks(new LocalRootHost(dir), cat, { live: false });
    const sections = new Set(cat.filter((c) => !c.manual).map((c) => c.section)).size;
    expect(batched.roundTrips).toBe(sections);
    expect(capped.runs).toBe(sections);
    expect(single.roundTrips).toBe(1);
    expect(batched.results.map((r) => [r.id, r.result])).toEqual(single.results.map((r) => [r.id, r.result]));
  });

  it('runs the probe through SSM with gzip+base64 both ways and polls until the command ends', async () => {
    const ssm = mockClient(SSMClient);
    let sentScript = '';
    ssm.on(SendCommandCommand).callsFake((input: { Parameters: { commands: string[] } }) => {
      sentScript = gunzipSync(Buffer.from(/^echo (\S+) \|/.exec(input.Parameters.commands[0]!)![1]!, 'base64')).toString();
      return { Command: { CommandId: 'c-1' } };
    });
    const payload = gzipSync('\n@@n:read:/etc/hostname\nhost\n\n@@n=0\n').toString('base64');
    ssm
      .on(GetCommandInvocationCommand)
      .rejectsOnce(Object.assign(new Error('not yet'), { name: 'InvocationDoesNotExist' }))
      .resolvesOnce({ Status: 'InProgress' })
      .resolves({ Status: 'Success', StandardOutputContent: payload });
    const host = new SsmHost(new SSMClient({ region: 'eu-west-1' }), 'i-0123456789abcdef0', { pollMs: 1 });
    const out = await host.run('echo probe');
    expect(sentScript).toBe('echo probe');
    expect(parseProbeOutput(out, 'n').get('read:/etc/hostname')?.out).toBe('host\n');
    const send = ssm.commandCalls(SendCommandCommand)[0]!.args[0].input;
    expect(send).toMatchObject({ InstanceIds: ['i-0123456789abcdef0'], DocumentName: 'AWS-RunShellScript' });
    ssm.restore();
  });

  it('names a failed SSM command and output cut at the SSM limit', async () => {
    const ssm = mockClient(SSMClient);
    ssm.on(SendCommandCommand).resolves({ Command: { CommandId: 'c-2' } });
    ssm.on(GetCommandInvocationCommand).resolvesOnce({ Status: 'Failed', StandardErrorContent: 'sh: 1: gzip: not found' }).resolves({ Status: 'Success', StandardOutputContent: 'A'.repeat(SSM_OUTPUT_LIMIT) });
    const host = new SsmHost(new SSMClient({ region: 'eu-west-1' }), 'i-0123456789abcdef0', { pollMs: 1 });
    await expect(host.run('x')).rejects.toThrow(/ssm i-0123456789abcdef0: probe Failed: sh: 1: gzip: not found/);
    await expect(host.run('x')).rejects.toThrow(/24000-character limit/);
    ssm.restore();
  });

  it('validates the compliance CLI host flags', () => {
    expect(() => hostFromFlags({}, 'eu-west-1')).toThrow(/exactly one host/);
    expect(() => hostFromFlags({ ssh: 'admin@127.0.0.1:2222' }, 'eu-west-1')).toThrow(/--key/);
    expect(() => hostFromFlags({ ssh: 'admin;reboot@x' }, 'eu-west-1')).toThrow(/USER@HOST/);
    expect(() => hostFromFlags({ ssm: 'i-nope' }, 'eu-west-1')).toThrow(/instance ID/);
    expect(hostFromFlags({ ssh: 'admin@127.0.0.1:2222', key: '/k' }, 'eu-west-1')).toMatchObject({ live: true, host: { name: 'ssh admin@127.0.0.1:2222' } });
  });
});

describe('rendered apply script', () => {
  const script = renderApply(cat);

  it('passes bash -n and shellcheck', () => {
    const dir = mkdtempSync(join(tmpdir(), 'apply-'));
    writeFileSync(join(dir, 'apply.sh'), script);
    execFileSync('bash', ['-n', join(dir, 'apply.sh')]);
    const r = spawnSync('shellcheck', ['-s', 'bash', join(dir, 'apply.sh')], { encoding: 'utf8' });
    expect(r.stdout).toBe('');
  });

  it('announces every control as PATCH, EXCEPTION, MANUAL or SKIP in benchmark order', () => {
    for (const c of cat.filter((x) => x.section !== 'MP')) {
      const verb = c.manual ? 'MANUAL' : c.excepted ? 'EXCEPTION' : c.disabled ? 'SKIP' : 'PATCH';
      expect(script, c.id).toContain(`echo '${c.id} | ${verb} | ${c.title.replace(/'/g, `'\\''`)}`);
    }
    expect(script.indexOf("'1.1.1.1 | PATCH")).toBeLessThan(script.indexOf("'7.2.10 | PATCH"));
    // The defense-in-depth layer after the benchmark; its options are announced as skipped.
    expect(script.indexOf("'7.2.10 | PATCH")).toBeLessThan(script.indexOf("'DD-1 | PATCH"));
    expect(script).toContain("DD-30 | SKIP | auditd installed and running (option; Level 2 territory) (an option");
    expect(script).toContain('70-syntropy-router.conf');
    expect(script).toContain('ufw_base_policy 22 ');
  });

  it('leaves controls off that config turns off, and applies no exception', () => {
    const off = renderApply(catalog({ sshPort: 2222, sshUser: 'admin' }, { levels: ['l1_server'], sections: { '4': false }, controls: {}, exceptions: [] }));
    expect(off).toContain("4.1.2 | SKIP | Ensure ufw service is configured (section 4 disabled");
    expect(off).not.toContain('ufw_base_policy 2222');
    expect(off).not.toContain('70-syntropy-router.conf');
    expect(off).toContain("set_sysctl 'net.ipv4.conf.all.forwarding' '0'");
  });
});

describe('reports', () => {
  const results: ControlResult[] = [
    { id: '1.1.1.1', title: 'cramfs', level: 'l1_server', section: '1', automated: true, tags: [], result: 'PASS', evidence: 'ok' },
    { id: '3.3.1.2', title: 'fwd', level: 'l1_server', section: '3', automated: true, tags: [], result: 'EXCEPTION', evidence: '1', exception: { name: 'router', reason: 'routes' } },
    { id: '5.1.21', title: 'root <login> & "x"', level: 'l1_server', section: '5', automated: true, tags: [], result: 'FAIL', evidence: 'PermitRootLogin yes' },
    { id: '1.1.1.11', title: 'manual', level: 'l1_server', section: '1', automated: false, tags: [], result: 'SKIP', evidence: 'manual: review', manual: 'review' },
    { id: 'MP-2', title: 'no passwords', level: 'l1_server', section: 'MP', automated: true, tags: ['marketplace'], result: 'PASS', evidence: 'none' },
  ];
  const r = buildReport(results, { phase: 'test', target: 'fixture', mode: 'offline', probeMs: 5, totalMs: 9, roundTrips: 1 });

  it('scores automated L1 controls, counts per section and fails on any FAIL', () => {
    expect(r.summary).toMatchObject({ automated_l1: 3, automated_l1_passing: 1, score: 33.3 });
    expect(r.summary.sections['1']).toMatchObject({ PASS: 1, SKIP: 1, manual: 1 });
    expect(r.summary.marketplace.PASS).toBe(1);
    expect(r.passed).toBe(false);
  });

  it('writes JUnit with failures, skips for exceptions and escaped names', () => {
    const x = toJUnit(r);
    expect(x).toContain('<testsuite name="CIS section 5" tests="1" failures="1" errors="0" skipped="0">');
    expect(x).toContain('name="5.1.21 root &lt;login&gt; &amp; &quot;x&quot;"><failure message="PermitRootLogin yes"/>');
    expect(x).toContain('<skipped message="EXCEPTION: router: routes"/>');
    expect(x).toContain('<testsuite name="Marketplace policy"');
  });

  it('writes a Markdown summary with the score, failures, exceptions and manual steps', () => {
    const md = toMarkdown(r);
    expect(md).toContain('**Score: 1/3 automated Level 1 Server recommendations passing (33.3%)**');
    expect(md).toContain('| 5 Access Control | 0 | 1 | 0 | 0 (0) | 0 |');
    expect(md).toContain('- **5.1.21** root <login> & "x": FAIL — PermitRootLogin yes');
    expect(md).toContain('`router`: routes');
    expect(md).toContain('- **1.1.1.11** manual: review');
  });

  it('accepts on a running instance only the login user\'s key and cloud-init\'s root stub (MP-4a)', () => {
    const c = cat.find((x) => x.id === 'MP-4a')!;
    const facts = (root: string) =>
      new Facts(new Map([['cmd:fs-scan', { out: 'o 0:0\nk /home/admin/.ssh/authorized_keys\nk /root/.ssh/authorized_keys\n', rc: 0 }], ['read:/root/.ssh/authorized_keys', { out: root, rc: 0 }]]), true);
    const stub = 'no-port-forwarding,no-agent-forwarding,no-X11-forwarding,command="echo \'Please login as the user \\"admin\\" rather than the user \\"root\\".\';echo;sleep 10;exit 142" ssh-ed25519 AAAA k\n';
    expect(judge(c, facts(stub)).result).toBe('PASS');
    expect(judge(c, facts('ssh-ed25519 AAAA build-key\n')).result).toBe('FAIL');
  });

  it('reports a check that throws as ERROR, not PASS', () => {
    const c = { ...cat.find((x) => x.id === '7.1.1')!, check: () => { throw new Error('boom'); } };
    expect(judge(c, new Facts(new Map(), false))).toMatchObject({ result: 'ERROR', evidence: 'check failed to run: boom' });
  });
});
