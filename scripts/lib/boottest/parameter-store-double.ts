// A Parameter Store double for local boot tests: answers GetParameter (the JSON protocol the AWS
// SDK speaks) on loopback; guests reach it through a QEMU guestfwd. It records who asked (the
// access key of the instance role the IMDS double hands out) and never logs values.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SsmParameter {
  value: string;
  type: 'String' | 'SecureString' | 'StringList';
}

export interface SsmRequestRecord {
  target: string;
  name: string;
  withDecryption: boolean;
  accessKeyId: string | null;
  status: number;
}

export class SsmDouble {
  readonly requests: SsmRequestRecord[] = [];
  private server: Server | null = null;

  constructor(private readonly params: Record<string, SsmParameter>) {}

  async start(port = 0): Promise<number> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const target = String(req.headers['x-amz-target'] ?? '');
        const auth = String(req.headers.authorization ?? '');
        const accessKeyId = /Credential=([^/]+)\//.exec(auth)?.[1] ?? null;
        let body: { Name?: string; WithDecryption?: boolean } = {};
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as typeof body;
        } catch {
          /* answered below as a bad request */
        }
        const send = (status: number, doc: unknown) => {
          this.requests.push({ target, name: body.Name ?? '', withDecryption: body.WithDecryption === true, accessKeyId, status });
          res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' });
          res.end(JSON.stringify(doc));
        };
        if (!accessKeyId) return send(403, { __type: 'MissingAuthenticationTokenException', message: 'Missing Authentication Token' });
        if (target !== 'AmazonSSM.GetParameter') return send(400, { __type: 'UnknownOperationException', message: target });
        const p = body.Name ? this.params[body.Name] : undefined;
        if (!p) return send(400, { __type: 'ParameterNotFound', message: '' });
        const value = p.type === 'SecureString' && body.WithDecryption !== true ? 'AQICAHencrypted' : p.value;
        return send(200, { Parameter: { Name: body.Name, Type: p.type, Value: value, Version: 1, ARN: `arn:aws:ssm:us-east-1:000000000000:parameter${body.Name}`, DataType: 'text' } });
      });
    });
    await new Promise<void>((ok, bad) => {
      this.server!.once('error', bad);
      this.server!.listen(port, '127.0.0.1', () => ok());
    });
    return (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    await new Promise<void>((ok) => this.server!.close(() => ok()));
    this.server = null;
  }
}
