// Boot tests on a launched local instance: each scenario boots the built image on its own
// copy-on-write overlay (QEMU, IMDSv2 double, restrict=on so nothing but the doubles is
// reachable) and checks what an operator or automation would rely on.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { DPKG_LIST_FORMAT, sbomDpkgMismatch } from '../bake/sbom.ts';
import { check, checkBootEnded, recordScenario, Recorder, syntropyUserData, testToken, TEST_RANGE, USER_DATA_RANGE, type ScenarioResult } from './common.ts';
import { GUEST_PANIC, LocalVm, SSM_DOUBLE_ADDR } from '../guest/vm.ts';
import { panicRetries } from '../guest/panic.ts';
import type { Accelerator } from '../guest/qemu.ts';
import { SsmDouble } from './parameter-store-double.ts';
import { TerminalSession } from '../guest/pty.ts';
import type { InstanceRole } from '../guest/imds-double.ts';
import { SshHost } from '../../../hardening/host.ts';
import { runChecks } from '../../../hardening/runner.ts';
import { buildReport } from '../../../hardening/report.ts';
import type { CatalogEntry } from '../../../hardening/catalog.ts';
import { assertConfigured, assertFirewallDelta, firstbootSettled, firstbootStatus, inspectGuest, liveUfwProbe, liveUfwRuleProblems, tokenLeaks, waitFor, waitForAgent, type GuestState } from './guest-state.ts';
import { UFW_COMMENT } from '../../../firstboot/src/ufw-rules.ts';

export interface LocalBootContext {
  image: string;
  accel: Accelerator;
  catalog: CatalogEntry[];
  sshUser: string;
  log: (line: string) => void;
  /** vCPUs / MiB for scenarios that do not fix their own size. */
  cpus: number;
  memoryMib: number;
  /** The build's SBOM (sbom.cdx.json beside the manifest), compared with the running image's dpkg database. */
  sbom?: string | null;
}

const RANGE = TEST_RANGE;
const UD_RANGE = USER_DATA_RANGE;
const PARAM = '/syntropy/boot-test/agent-token';

function role(): InstanceRole {
  return { name: 'syntropy-boot-test', accessKeyId: `ASIA${randomBytes(8).toString('hex').toUpperCase()}`, secretAccessKey: randomBytes(20).toString('base64'), token: randomBytes(24).toString('base64') };
}

/** User data that configures through Parameter Store; bootcmd points the SDK at the SSM double. */
export function bootTestUserData(param: string, range: string): string {
  return [
    '#cloud-config',
    '# Boot test: Parameter Store is a double inside the test network, not AWS. bootcmd runs before',
    '# first boot starts; the unit reads /run/syntropy-firstboot.env when it starts.',
    'bootcmd:',
    `  - [sh, -c, 'echo AWS_ENDPOINT_URL_SSM=http://${SSM_DOUBLE_ADDR} > /run/syntropy-firstboot.env']`,
    ...syntropyUserData(param, range),
    '',
  ].join('\n');
}

interface VmChoice {
  cpus?: number;
  memoryMib?: number;
  userData?: string;
  role?: InstanceRole;
  ssmPort?: number;
  /** Instance tags in the metadata (as with InstanceMetadataTags=enabled). */
  tags?: Record<string, string>;
}

export async function withVm<T>(ctx: LocalBootContext, rec: Recorder, vmOpts: VmChoice, body: (vm: LocalVm) => Promise<T>): Promise<T> {
  const vm = new LocalVm({
    image: ctx.image,
    accel: ctx.accel,
    cpus: vmOpts.cpus ?? ctx.cpus,
    memoryMib: vmOpts.memoryMib ?? ctx.memoryMib,
    restrict: true,
    ssmPort: vmOpts.ssmPort,
    imds: { userData: vmOpts.userData, role: vmOpts.role, tags: vmOpts.tags },
  });
  try {
    await rec.step('power on', () => vm.start());
    return await body(vm);
  } catch (e) {
    // What failed after a panic (an SSH command cut off, a check) is not the finding: the panic is.
    if (vm.panic && !(e as Error).message.startsWith(GUEST_PANIC)) throw new Error(`${GUEST_PANIC}: "${vm.panic}" (then: ${(e as Error).message.split('\n')[0]})`);
    throw e;
  } finally {
    await vm.stop();
    vm.cleanup();
  }
}

async function bootToSsh(vm: LocalVm, rec: Recorder, name = 'boot to SSH'): Promise<number> {
  const ms = await rec.step(name, async () => {
    await vm.waitForSsh(900_000);
    return Date.now() - vm.poweredOnAt;
  }, (ms) => `${(ms / 1000).toFixed(1)}s after power-on`);
  return ms;
}

/** The boot-end check (checkBootEnded) over SSH. */
const bootEnded = (vm: LocalVm, rec: Recorder) => checkBootEnded(rec, async (script) => (await vm.ssh(script)).stdout);

/** Configures through user data + the SSM double and waits for the agent; returns the double. */
async function configureByUserData(vm: LocalVm, rec: Recorder, ssm: SsmDouble, r: InstanceRole): Promise<GuestState> {
  await bootToSsh(vm, rec);
  await rec.step('first boot applies user data', async () => {
    await firstbootSettled(vm);
    const s = await firstbootStatus(vm);
    check(s.configured && s.source === 'user-data', `not configured from user data: ${JSON.stringify(s)}`);
  });
  await bootEnded(vm, rec);
  const g = await rec.step('agent running from the preloaded image', async () => {
    const g = await waitForAgent(vm, 'the agent to bind its port', 120_000);
    assertConfigured(g, UD_RANGE);
    return g;
  }, (g) => `udp ${g.wgPorts.join(' ')}`);
  await rec.step('token read from Parameter Store with the instance role', async () => {
    const got = ssm.requests.filter((q) => q.target === 'AmazonSSM.GetParameter' && q.name === PARAM && q.status === 200);
    check(got.length > 0, `no GetParameter for ${PARAM} reached the SSM double (${JSON.stringify(ssm.requests)})`);
    check(got.every((q) => q.withDecryption && q.accessKeyId === r.accessKeyId), `GetParameter without decryption or without the instance role's key: ${JSON.stringify(got)}`);
  });
  return g;
}

/** A Parameter Store double holding the token, and the instance role allowed to read it. */
async function withSsmDouble<T>(token: string, body: (ssm: SsmDouble, r: InstanceRole, port: number) => Promise<T>): Promise<T> {
  const ssm = new SsmDouble({ [PARAM]: { value: token, type: 'SecureString' } });
  const port = await ssm.start();
  try {
    return await body(ssm, role(), port);
  } finally {
    await ssm.stop();
  }
}

type ScenarioFn = (ctx: LocalBootContext, rec: Recorder, token: string) => Promise<void>;

export const LOCAL_SCENARIOS: Record<string, ScenarioFn> = {
  async dialogue(ctx, rec, token) {
    await withVm(ctx, rec, { cpus: 1, memoryMib: 512 }, async (vm) => {
      rec.figures.vcpus = 1;
      rec.figures.memory_mib = 512;
      const consoleReady = rec.step('console dialogue appears on the serial console', () =>
        waitFor('the token prompt on ttyS0', 900_000, async () => (/agent token/i.test(vm.serial()) ? Date.now() - vm.poweredOnAt : null), 250),
      );
      rec.figures.power_on_to_dialogue_ms = await consoleReady;
      rec.figures.power_on_to_ssh_ms = await bootToSsh(vm, rec);
      await rec.step('the console dialogue started from the node startup snapshot built at bake', async () => {
        const r = await vm.ssh(`pid=$(systemctl show -P MainPID syntropy-firstboot-console@ttyS0.service); sudo tr '\\0' ' ' < /proc/$pid/cmdline`);
        check(/^\/usr\/bin\/node .*--snapshot-blob \/usr\/lib\/syntropy-firstboot\/node-startup\.blob -- console/.test(r.stdout), `console's command line: ${r.stdout.trim() || r.stderr.trim()}`);
      });
      await bootEnded(vm, rec);
      const before = await rec.step('firewall before configuring', () => inspectGuest(vm));
      const session = new TerminalSession(vm.sshArgs());
      try {
        await rec.step('dialogue at first SSH login, wrong answers first', async () => {
          await session.expect(/agent token/i, 300_000);
          await session.send('bad token\r');
          await session.expect(/spaces/);
          await session.erase(9);
          await session.send(`${token}\r`);
          await session.expect(/UDP port range/i);
          await session.send('\t');
          await session.erase(11);
          await session.send('80-90\r');
          await session.expect(/1024 or above/);
          await session.erase(5);
          await session.send(`${RANGE}\r`);
          // The default name is the instance ID (no Name tag in the metadata): unique across VPCs.
          // One expect: a match consumes what the session has read so far.
          await session.expect(new RegExp(`Agent name[\\s\\S]*${vm.imds.instanceId}`, 'i'));
          await session.send('\r');
          await session.expect(/Tags/i);
          await session.send('a b\r');
          await session.expect(/may contain only/i);
          await session.erase(3);
          await session.send('edge,relay\r');
          await session.expect(/Apply this configuration/i);
          const t0 = Date.now();
          await session.send('y\r', 0);
          await session.expect(/configured \(dialogue\)|could not/i, 300_000);
          rec.figures.confirm_to_configured_ms = Date.now() - t0;
          await session.send('exit\r');
        });
      } catch (e) {
        throw new Error(`${(e as Error).message}\n--- terminal transcript (tail) ---\n${session.transcript.slice(-1500)}`);
      } finally {
        await session.close();
      }
      const after = await rec.step('agent runs from the preloaded image, four WireGuard ports in range, env 0600', async () => {
        const g = await waitForAgent(vm, 'the agent to bind its four ports', 60_000);
        assertConfigured(g, RANGE);
        check(g.agentName === vm.imds.instanceId, `agent name ${g.agentName}, want the instance ID ${vm.imds.instanceId}`);
        return g;
      }, (g) => `udp ${g.wgPorts.join(' ')}`);
      await rec.step('a container on the Docker bridge cannot reach the instance metadata service', async () => {
        const probe = `docker run --rm --network bridge --pull never --entrypoint /bin/bash ${after.lockId} -c 'timeout 5 bash -c "exec 3<>/dev/tcp/169.254.169.254/80" && echo reachable || echo blocked'`;
        const r = await vm.ssh(`sudo ${probe}`);
        check(r.stdout.trim() === 'blocked', `bridge container -> 169.254.169.254:80: ${r.stdout.trim() || r.stderr.trim()}`);
      });
      await rec.step('the consoles\' dialogues closed and gave tty1 and ttyS0 back to their gettys', () =>
        waitFor('the gettys on tty1 and ttyS0', 120_000, async () => {
          const r = await vm.ssh('systemctl is-active getty@tty1.service serial-getty@ttyS0.service; ls -d /run/syntropy/console-*.active 2>/dev/null; true');
          return r.stdout.trim() === 'active\nactive' ? true : null;
        }),
      );
      rec.figures.used_memory_mib = after.memUsedMib;
      await rec.step('firewall opens exactly the UDP range', async () => assertFirewallDelta(before, after, RANGE));
      await rec.step('ufw reads the rule first boot wrote as its own, and the running firewall holds it once', async () => {
        const r = await vm.ssh(liveUfwProbe(RANGE, UFW_COMMENT));
        const problems = liveUfwRuleProblems(r.stdout, RANGE);
        check(problems.length === 0, `${problems.join('; ')}${r.stderr.trim() ? ` (stderr: ${r.stderr.trim()})` : ''}`);
      });
      await rec.step('token nowhere but agent.env (journal, console, ps, files)', async () => {
        const leaks = await tokenLeaks(vm, token);
        check(leaks.length === 0, `token found in: ${leaks.join('; ')}`);
      });
      await rec.step('the key-only login user is exempt from password ageing (no lockout after 365 + 45 days)', async () => {
        const r = await vm.ssh(`sudo chage -l ${ctx.sshUser}`);
        check(r.exitCode === 0, `chage -l failed: ${r.stderr.trim()}`);
        const field = (name: string) => new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm').exec(r.stdout)?.[1]?.trim();
        check(field('Password expires') === 'never' && field('Password inactive') === 'never', `chage -l ${ctx.sshUser}: ${r.stdout.replace(/\s+/g, ' ')}`);
      });
    });
  },

  async 'user-data'(ctx, rec, token) {
    await withSsmDouble(token, (ssm, r, ssmPort) =>
      withVm(ctx, rec, { userData: bootTestUserData(PARAM, UD_RANGE), role: r, ssmPort, tags: { Name: 'relay eu-west/1' } }, async (vm) => {
        const g = await configureByUserData(vm, rec, ssm, r);
        await rec.step('the agent is named after the instance\'s Name tag', async () => check(g.agentName === 'relay-eu-west-1', `agent name ${g.agentName}, want relay-eu-west-1`));
        await rec.step('no dialogue was offered', async () => {
          check(!/agent token/i.test(vm.serial()), 'the serial console showed the token prompt');
          const n = await vm.ssh('test -e /run/syntropy/needs-dialogue && echo yes || echo no');
          check(n.stdout.trim() === 'no', 'first boot still asks for the dialogue');
        });
        await rec.step('token nowhere but agent.env', async () => {
          const leaks = await tokenLeaks(vm, token);
          check(leaks.length === 0, `token found in: ${leaks.join('; ')}`);
        });
      }),
    );
  },

  async reboot(ctx, rec, token) {
    await withSsmDouble(token, (ssm, r, ssmPort) =>
      withVm(ctx, rec, { userData: bootTestUserData(PARAM, UD_RANGE), role: r, ssmPort }, async (vm) => {
        await configureByUserData(vm, rec, ssm, r);
        const mark = vm.serial().length;
        const asked = ssm.requests.length;
        await rec.step('reboot', async () => {
          await vm.ssh('sudo systemctl reboot');
          await waitFor('SSH to go down', 120_000, async () => ((await vm.ssh('true')).exitCode !== 0 ? true : null), 1000);
          await vm.waitForSsh(900_000);
        });
        await rec.step('agent comes back by itself', async () => {
          const g = await waitForAgent(vm, 'the agent after reboot', 180_000);
          assertConfigured(g, UD_RANGE);
        });
        await rec.step('no dialogue and no second configuration', async () => {
          await firstbootSettled(vm);
          check(!/agent token/i.test(vm.serial().slice(mark)), 'the dialogue appeared after reboot');
          check(ssm.requests.length === asked, 'first boot read the token again after reboot');
          const boots = await vm.ssh('journalctl --list-boots --no-pager | wc -l');
          check(Number(boots.stdout.trim()) >= 2, `expected two boots in the journal, got ${boots.stdout.trim()}`);
        });
      }),
    );
  },

  async interrupted(ctx, rec, token) {
    await withVm(ctx, rec, {}, async (vm) => {
      await bootToSsh(vm, rec);
      await firstbootSettled(vm);
      const before = await inspectGuest(vm);
      const steps = await rec.step('power cut in the middle of apply', async () => {
        // One SSH session starts the apply in the background (the token on its stdin, via fd 3) and
        // watches the journal; the cut follows once the agent's start is journaled (env file
        // written, firewall opened, container being created). One session, not two at once: a
        // second SSH handshake on a busy 1-vCPU guest can miss its connect timeout.
        const watch = await vm.ssh(
          `sudo timeout 180 sh -c 'exec 3<&0; syntropy-firstboot configure --non-interactive --token-stdin --port-range ${RANGE} <&3 >/dev/null 2>&1 & j=/var/lib/syntropy/firstboot/apply.journal; until grep -qs start-agent "$j"; do sleep 0.05; done; cat "$j"'`,
          `${token}\n`,
        );
        await vm.powerOff();
        check(watch.exitCode === 0, `the apply never journaled start-agent: ${watch.stderr.trim()}`);
        const journal = watch.stdout;
        try {
          return (JSON.parse(journal) as { steps: unknown[] }).steps.length;
        } catch {
          return -1;
        }
      }, (n) => `cut after ${n} journaled step(s)`);
      rec.figures.journaled_steps_at_cut = steps;
      await rec.step('power on again', () => vm.start());
      await bootToSsh(vm, rec, 'boot after the power cut');
      await firstbootSettled(vm);
      await rec.step('fully configured or cleanly unconfigured, never in between', async () => {
        const g = await inspectGuest(vm);
        const clean = !g.state && !g.journal && g.env === 'absent' && g.container === null && g.ufw.join('\n') === before.ufw.join('\n') && g.agentEnabled === before.agentEnabled;
        let complete = false;
        try {
          assertConfigured(g, RANGE);
          assertFirewallDelta(before, g, RANGE);
          complete = true;
        } catch {
          complete = false;
        }
        rec.figures.outcome = complete ? 'configured' : clean ? 'unconfigured' : 'in-between';
        check(clean || complete, `in between: ${JSON.stringify(g)}`);
      }, () => String(rec.figures.outcome));
      const st = await firstbootStatus(vm);
      if (!st.configured) {
        await rec.step('configures normally after the rollback', async () => {
          const r = await vm.ssh(`sudo syntropy-firstboot configure --non-interactive --token-stdin --port-range ${RANGE}`, `${token}\n`);
          check(r.exitCode === 0, `configure after rollback failed: ${r.stderr.trim()}`);
          const g = await waitForAgent(vm, 'the agent to bind its four ports', 60_000);
          assertConfigured(g, RANGE);
        });
      }
    });
  },

  async compliance(ctx, rec, token) {
    await withSsmDouble(token, (ssm, r, ssmPort) =>
      withVm(ctx, rec, { userData: bootTestUserData(PARAM, UD_RANGE), role: r, ssmPort }, async (vm) => {
        await configureByUserData(vm, rec, ssm, r);
        const host = new SshHost({ host: '127.0.0.1', port: vm.sshPort, user: ctx.sshUser, keyFile: vm.key!.privateKey });
        const report = await rec.step('CIS + Marketplace checks over SSH (live)', async () => {
          const out = await runChecks(host, ctx.catalog, { live: true });
          return buildReport(out.results, { phase: 'booted instance', target: 'local VM over SSH', mode: 'live', probeMs: out.probeMs, totalMs: out.totalMs, roundTrips: out.roundTrips });
        }, (rep) => `${rep.summary.automated_l1_passing}/${rep.summary.automated_l1} passing, ${rep.timing.total_ms} ms`);
        rec.figures.compliance_ms = report.timing.total_ms;
        rec.report = report;
        await rec.step('no check fails on the running instance', async () => {
          const bad = report.results.filter((x) => x.result === 'FAIL' || x.result === 'ERROR');
          check(bad.length === 0, `${bad.length} failing: ${bad.map((x) => `${x.id} (${x.evidence})`).join('; ')}`);
        });
        if (ctx.sbom) {
          const sbom = ctx.sbom;
          await rec.step("the SBOM lists exactly the packages of the image's dpkg database", async () => {
            const list = await host.run(`dpkg-query -W -f '${DPKG_LIST_FORMAT}'`);
            const diff = sbomDpkgMismatch(readFileSync(sbom, 'utf8'), list);
            check(diff.length === 0, `${diff.length} difference(s): ${diff.slice(0, 10).join('; ')}`);
          });
        }
      }),
    );
  },
};

/**
 * Runs a scenario; under TCG, one whose guest's kernel panicked runs once more from the start, in
 * fresh guests (a panic under KVM, or a second one, fails it). Such panics have come and gone
 * between runs of the same image on this project's TCG machine (scripts/lib/guest/panic.ts).
 * The retried scenario's figures say so (`retried_after_panic`: the first run's error).
 */
export async function runScenario(name: string, fn: ScenarioFn, ctx: LocalBootContext): Promise<ScenarioResult> {
  const first = await recordScenario(name, name, ctx.log, (rec) => fn(ctx, rec, testToken()));
  if (first.passed || panicRetries(ctx.accel) < 1 || !first.error?.startsWith(GUEST_PANIC)) return first;
  const panicked = first.error.split('\n')[0]!;
  ctx.log(`[${name}] warning: ${panicked}; under TCG the scenario runs once more in fresh guests`);
  const again = await recordScenario(name, name, ctx.log, (rec) => fn(ctx, rec, testToken()));
  return { ...again, figures: { ...again.figures, retried_after_panic: panicked } };
}
