// A loopback proxy in front of the emulator that fails chosen AWS calls, for the rehearsal's
// "a failure at any AWS step leaves nothing behind" runs. moto itself cannot be told to fail a
// call. It reads the action as AWS's protocols carry it: EC2, IAM and STS use the Query protocol
// (`Action=` in the form body or query string); SSM and the JSON services name it in the
// `X-Amz-Target` header ("Service.Action"). The error it answers has the shape of that protocol
// (EC2's <Response><Errors><Error>, the JSON protocol's `__type`), with a code the SDK does not
// retry, so the caller sees one failure as it would from AWS.
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Fault {
  /** The API action, e.g. CreateImage, RunInstances, CopyImage, PutParameter. */
  action: string;
  /** Fail the nth call of it (1 = the first); later calls pass. */
  nth: number;
  /** Instead of failing, hold the call this long and then forward it (a slow AWS). */
  delayMs?: number;
}

export function actionOf(req: IncomingMessage, body: Buffer): string {
  const target = req.headers['x-amz-target'];
  if (typeof target === 'string') return target.split('.').pop() ?? '';
  const query = new URL(req.url ?? '/', 'http://x').searchParams.get('Action');
  if (query) return query;
  return new URLSearchParams(body.toString('utf8')).get('Action') ?? '';
}

export class FaultProxy {
  private server: Server | null = null;
  private faults: Fault[] = [];
  private readonly counts = new Map<string, number>();
  readonly injected: { action: string; nth: number }[] = [];
  private readonly hooks = new Map<string, (body: string) => Promise<void>>();

  /**
   * Runs `fn` before each call of `action` reaches the emulator, holding the call until it is
   * done (the rehearsal's build instance shuts its guest down when Packer asks EC2 to stop it).
   */
  onCall(action: string, fn: ((body: string) => Promise<void>) | null): void {
    if (fn) this.hooks.set(action, fn);
    else this.hooks.delete(action);
  }
  port = 0;

  constructor(private readonly upstreamPort: number) {}

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Replaces the faults; counting starts again. */
  arm(faults: Fault[]): void {
    this.faults = faults;
    this.counts.clear();
  }

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        const action = actionOf(req, body);
        const hook = this.hooks.get(action);
        if (hook) {
          void hook(`${req.url ?? ''}&${body.toString('utf8')}`)
            .catch(() => undefined)
            .then(() => this.handle(req, res, body, action));
          return;
        }
        this.handle(req, res, body, action);
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', () => resolve()));
    this.port = (this.server!.address() as AddressInfo).port;
    return this.endpoint;
  }

  private handle(req: IncomingMessage, res: ServerResponse, body: Buffer, action: string): void {
    const n = (this.counts.get(action) ?? 0) + 1;
    this.counts.set(action, n);
    const fault = this.faults.find((f) => f.action === action && f.nth === n);
    if (fault?.delayMs) {
      this.injected.push({ action, nth: n });
      setTimeout(() => this.forward(req, res, body), fault.delayMs);
      return;
    }
    if (fault) {
      this.injected.push({ action, nth: n });
      const message = `injected by the rehearsal: ${action} call ${n} fails`;
      if (req.headers['x-amz-target']) {
        res.writeHead(400, { 'content-type': 'application/x-amz-json-1.1' });
        res.end(JSON.stringify({ __type: 'AccessDeniedException', message }));
      } else {
        res.writeHead(403, { 'content-type': 'text/xml' });
        res.end(`<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>${message}</Message></Error></Errors><RequestID>00000000-0000-0000-0000-000000000000</RequestID></Response>`);
      }
      return;
    }
    this.forward(req, res, body);
  }

  private forward(req: IncomingMessage, res: ServerResponse, body: Buffer): void {
    const up = request({ host: '127.0.0.1', port: this.upstreamPort, method: req.method, path: req.url, headers: req.headers }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      ur.pipe(res);
    });
    up.on('error', (e) => {
      res.writeHead(502);
      res.end(String(e));
    });
    up.end(body);
  }

  stop(): Promise<void> {
    return new Promise((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
