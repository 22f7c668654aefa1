// The route failover watcher as it runs on each agent of the reference deployment
// (syntropy-route-failover.service, bundled into the image beside first boot). It reads
// /etc/syntropy/failover.json (written by the stack's user data), learns its instance ID and
// region from IMDSv2, judges its own health from the agent container and its WireGuard
// interfaces, and runs the watcher (deploy/failover.ts) until stopped.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { EC2Client } from '@aws-sdk/client-ec2';
import { SSMClient } from '@aws-sdk/client-ssm';
import { FailoverConfigSchema, FailoverWatcher } from './failover.ts';
import { ImdsClient } from '../firstboot/src/sources.ts';
import { readJsonContract } from '../contracts/parse.ts';

const run = promisify(execFile);
export const FAILOVER_CONF = '/etc/syntropy/failover.json';

/**
 * Healthy: the agent container runs and at least one WireGuard interface is up. "Runs" is Docker's
 * State.Status "running": State.Running stays true while a crashed agent waits on its restart
 * policy (moby container/state.go SetRestarting), and its WireGuard links outlive it, so a
 * crash-looping agent would pass for healthy and keep its routes.
 */
export async function agentHealthy(exec: (cmd: string, args: string[]) => Promise<{ stdout: string }> = (c, a) => run(c, a, { timeout: 10_000 })): Promise<boolean> {
  try {
    const running = (await exec('docker', ['inspect', '-f', '{{.State.Status}}', 'syntropy-agent'])).stdout.trim() === 'running';
    if (!running) return false;
    const links = JSON.parse((await exec('ip', ['-j', 'link', 'show', 'type', 'wireguard'])).stdout || '[]') as { flags?: string[] }[];
    return links.some((l) => l.flags?.includes('UP'));
  } catch {
    return false;
  }
}

async function main(): Promise<void> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const cfg = readJsonContract(FailoverConfigSchema, process.argv[2] ?? FAILOVER_CONF);
  const imds = new ImdsClient('http://169.254.169.254', 5_000, 3, (m) => process.stderr.write(`${m}\n`));
  const { instanceId } = await imds.identity();
  const log = (l: string) => process.stdout.write(`${l}\n`);
  const watcher = new FailoverWatcher(cfg, { ec2: new EC2Client({ region: cfg.region }), ssm: new SSMClient({ region: cfg.region }), instanceId, health: () => agentHealthy(), log });
  log(`route failover: agent ${cfg.self} (${instanceId}) watching ${cfg.tables.map((t) => `${t.id}/${t.home}`).join(', ')} for ${cfg.routed_cidr}`);
  const ac = new AbortController();
  for (const s of ['SIGTERM', 'SIGINT'] as const) process.once(s, () => ac.abort());
  await watcher.run(ac.signal);
}

if (import.meta.url === `file://${process.argv[1]}` || process.env.SYNTROPY_ROUTE_FAILOVER_MAIN === '1') {
  main().catch((e: Error) => {
    process.stderr.write(`route failover: ${e.message}\n`);
    process.exit(1);
  });
}
