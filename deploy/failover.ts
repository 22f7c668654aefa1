// Route failover between the two agents of the reference deployment. A VPC route table holds one
// route per destination, so "two static routes to the same destination" (the product's
// Typical Deployment) cannot work; instead each services route table has a home agent (its own
// AZ's) and a watcher on each agent moves routes with ec2:ReplaceRoute, as HA NAT-instance
// projects do (alterNAT's replace-route pattern).
//
// Health: an agent is healthy when its agent container runs and at least one WireGuard tunnel
// interface is up (not only the instance status checks). Each watcher writes its health as a
// heartbeat (a Parameter Store parameter under the stack's own path) every interval_s.
//
// Rules for the watcher on agent X, each tick (decide()):
//   - X unhealthy: X changes nothing (and says so in its heartbeat).
//   - a table whose home is X, pointing elsewhere: X reclaims it once X has been healthy, with
//     every heartbeat written, for reclaim_after_s (routes move back after recovery, with a
//     hold-down so a flapping agent does not pull them back and forth).
//   - a table whose home is the peer Y, not pointing at X: X takes it when Y's heartbeat says
//     unhealthy, or is older than stale_after_s (Y stopped, crashed or cut off), or is missing.
// No split brain: X only ever points routes at itself, and takes Y's tables only while Y is
// not healthy by its own account; Y takes them back only after reclaim_after_s of healthy
// heartbeats, which X sees as fresh, so X stops claiming before Y starts. Failover time is at
// most stale_after_s + interval_s (instance gone) or interval_s (container or tunnel down).
import { DescribeRouteTablesCommand, ReplaceRouteCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { GetParametersByPathCommand, PutParameterCommand, type SSMClient } from '@aws-sdk/client-ssm';
import { z } from 'zod';

export const FAILOVER_DEFAULTS = { interval_s: 5, stale_after_s: 20, reclaim_after_s: 30 } as const;

const Side = z.enum(['a', 'b']);

export const FailoverConfigSchema = z
  .object({
    group: z.string().min(1),
    region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/),
    self: Side,
    heartbeat_prefix: z.string().regex(/^\/[A-Za-z0-9_./-]+$/),
    routed_cidr: z.string().regex(/^(\d{1,3}\.){3}\d{1,3}\/\d{1,2}$/),
    tables: z.array(z.object({ id: z.string().regex(/^rtb-[0-9a-f]+$/), home: Side }).strict()).min(1),
    interval_s: z.number().int().min(1).max(60),
    stale_after_s: z.number().int().min(2).max(600),
    reclaim_after_s: z.number().int().min(0).max(3600),
  })
  .strict()
  .refine((c) => c.stale_after_s > c.interval_s * 2, { message: 'stale_after_s must exceed two heartbeat intervals', path: ['stale_after_s'] });

export type FailoverConfig = z.infer<typeof FailoverConfigSchema>;

export const HeartbeatSchema = z.object({ side: Side, instance_id: z.string(), healthy: z.boolean(), at: z.number() }).strict();
export type Heartbeat = z.infer<typeof HeartbeatSchema>;

export interface TableState {
  id: string;
  home: 'a' | 'b';
  /** The instance the routed CIDR's route points at (null: no such route, or not an instance). */
  target: string | null;
}

export interface Move {
  table: string;
  to: string;
  reason: string;
}

export interface DecideInput {
  cfg: FailoverConfig;
  selfInstance: string;
  selfHealthy: boolean;
  /** When this agent's current healthy streak began (every heartbeat written since); null if not healthy. */
  healthySince: number | null;
  now: number;
  heartbeats: Partial<Record<'a' | 'b', Heartbeat>>;
  tables: TableState[];
}

export function decide(i: DecideInput): Move[] {
  if (!i.selfHealthy) return [];
  const moves: Move[] = [];
  for (const t of i.tables) {
    if (t.target === i.selfInstance) continue;
    if (t.home === i.cfg.self) {
      const healthyFor = i.healthySince === null ? 0 : (i.now - i.healthySince) / 1000;
      if (healthyFor >= i.cfg.reclaim_after_s) moves.push({ table: t.id, to: i.selfInstance, reason: `home agent healthy for ${Math.floor(healthyFor)} s: reclaim` });
      continue;
    }
    const peer = i.heartbeats[t.home];
    const age = peer ? (i.now - peer.at) / 1000 : Infinity;
    if (!peer) moves.push({ table: t.id, to: i.selfInstance, reason: `agent ${t.home} has no heartbeat` });
    else if (!peer.healthy) moves.push({ table: t.id, to: i.selfInstance, reason: `agent ${t.home} reports unhealthy` });
    else if (age > i.cfg.stale_after_s) moves.push({ table: t.id, to: i.selfInstance, reason: `agent ${t.home}'s heartbeat is ${Math.floor(age)} s old` });
  }
  return moves;
}

export interface WatcherDeps {
  ec2: EC2Client;
  ssm: SSMClient;
  instanceId: string;
  /** The agent container runs and a WireGuard interface is up. */
  health: () => Promise<boolean>;
  now?: () => number;
  log?: (l: string) => void;
}

export class FailoverWatcher {
  private healthySince: number | null = null;
  readonly moves: (Move & { at: number })[] = [];

  constructor(
    readonly cfg: FailoverConfig,
    private readonly d: WatcherDeps,
  ) {}

  private now(): number {
    return this.d.now?.() ?? Date.now();
  }

  /** One round: health, heartbeat, peers, routes, moves. Returns the moves made. */
  async tick(): Promise<Move[]> {
    const now = this.now();
    const healthy = await this.d.health().catch(() => false);
    let written = false;
    try {
      await this.d.ssm.send(
        new PutParameterCommand({
          Name: `${this.cfg.heartbeat_prefix}/${this.cfg.self}`,
          Type: 'String',
          Overwrite: true,
          Value: JSON.stringify({ side: this.cfg.self, instance_id: this.d.instanceId, healthy, at: now } satisfies Heartbeat),
        }),
      );
      written = true;
    } catch (e) {
      this.d.log?.(`heartbeat not written: ${(e as Error).message}`);
    }
    // A streak counts only while every heartbeat is written: the peer must be seeing it.
    if (healthy && written) this.healthySince ??= now;
    else this.healthySince = null;
    const params = await this.d.ssm.send(new GetParametersByPathCommand({ Path: this.cfg.heartbeat_prefix }));
    const heartbeats: DecideInput['heartbeats'] = {};
    for (const p of params.Parameters ?? []) {
      try {
        const hb = HeartbeatSchema.parse(JSON.parse(p.Value ?? ''));
        heartbeats[hb.side] = hb;
      } catch {
        this.d.log?.(`ignoring malformed heartbeat ${p.Name}`);
      }
    }
    const rts = await this.d.ec2.send(new DescribeRouteTablesCommand({ RouteTableIds: this.cfg.tables.map((t) => t.id) }));
    const tables: TableState[] = this.cfg.tables.map((t) => {
      const rt = rts.RouteTables?.find((r) => r.RouteTableId === t.id);
      const route = rt?.Routes?.find((r) => r.DestinationCidrBlock === this.cfg.routed_cidr);
      return { ...t, target: route?.InstanceId ?? null };
    });
    const moves = decide({ cfg: this.cfg, selfInstance: this.d.instanceId, selfHealthy: healthy && written, healthySince: this.healthySince, now, heartbeats, tables });
    for (const m of moves) {
      await this.d.ec2.send(new ReplaceRouteCommand({ RouteTableId: m.table, DestinationCidrBlock: this.cfg.routed_cidr, InstanceId: m.to }));
      this.moves.push({ ...m, at: this.now() });
      this.d.log?.(`${m.table}: ${this.cfg.routed_cidr} -> ${m.to} (${m.reason})`);
    }
    return moves;
  }

  /** Ticks every interval until `signal` aborts; a failed tick is logged and retried. */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const t0 = this.now();
      try {
        await this.tick();
      } catch (e) {
        this.d.log?.(`tick failed: ${(e as Error).message}`);
      }
      const wait = Math.max(0, this.cfg.interval_s * 1000 - (this.now() - t0));
      await new Promise<void>((r) => {
        const onAbort = () => {
          clearTimeout(t);
          r();
        };
        const t = setTimeout(() => {
          signal.removeEventListener('abort', onAbort);
          r();
        }, wait);
        signal.addEventListener('abort', onAbort, { once: true });
      });
    }
  }
}
