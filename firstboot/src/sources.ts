// Where configuration comes from: EC2 user data through IMDSv2 (never IMDSv1), a SecureString
// in SSM Parameter Store, or the dialogue. This module covers the first two.
import { request } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { checkSsmParameterName, checkToken } from './validate.ts';
import { registerSecret } from './secrets.ts';
// Types only (erased from the bundle), naming the SDK calls this module makes; the SDK itself is
// loaded on demand through ssm-sdk.ts.
import type { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';

export class SourceError extends Error {
  override name = 'SourceError';
}

// ---------------------------------------------------------------- IMDSv2

export interface InstanceIdentity {
  instanceId: string;
  region: string;
}

interface HttpAnswer {
  status: number;
  body: string;
  raw: Buffer;
}

/**
 * A plain node:http request (lighter than fetch, which matters for first boot's memory), one
 * connection per request like curl: Node's default keep-alive leaves idle sockets open to the
 * metadata address, and several first-boot processes holding them starved new requests.
 */
function httpRequest(url: string, method: string, headers: Record<string, string>, timeoutMs: number, maxBytes: number): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers: { ...headers, Connection: 'close' }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > maxBytes) req.destroy(new Error(`answer larger than ${maxBytes} bytes`));
        else chunks.push(c);
      });
      res.on('end', () => {
        const raw = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, body: raw.toString('utf8'), raw });
      });
      res.on('error', reject);
    });
    // An overall deadline, not an idle timeout: a service that drips a byte now and then must not
    // hold first boot forever.
    const deadline = setTimeout(() => req.destroy(new Error(`no complete answer within ${timeoutMs} ms`)), timeoutMs);
    req.on('close', () => clearTimeout(deadline));
    req.on('error', reject);
    req.end();
  });
}

/** EC2 caps user data at 16 KiB (before base64); a larger answer is not this instance's user data. */
export const USER_DATA_MAX_BYTES = 16 * 1024;
/** Metadata values are small; anything over this is refused. */
const METADATA_MAX_BYTES = 64 * 1024;

export class ImdsClient {
  private token: string | null = null;
  /** Once the service has failed every attempt, later calls fail at once with the same reason. */
  private down: SourceError | null = null;

  constructor(
    readonly endpoint = 'http://169.254.169.254',
    private readonly timeoutMs = 2000,
    private readonly attempts = 3,
    /** Told once, when the first attempt fails, that the service is being waited for. */
    private readonly onWait: (message: string) => void = () => undefined,
  ) {}

  private async request(method: 'PUT' | 'GET', path: string, headers: Record<string, string>, maxBytes = METADATA_MAX_BYTES): Promise<HttpAnswer> {
    if (this.down) throw this.down;
    let last: unknown;
    for (let i = 0; i < this.attempts; i++) {
      try {
        return await httpRequest(`${this.endpoint}${path}`, method, headers, this.timeoutMs, maxBytes);
      } catch (e) {
        last = e;
        if (/larger than/.test((e as Error).message)) break;
        if (i === 0) this.onWait(`Waiting for the instance metadata service at ${this.endpoint} (up to ${this.attempts} tries of ${this.timeoutMs / 1000} s)...`);
        await new Promise((r) => setTimeout(r, 200 * (i + 1)));
      }
    }
    const err = new SourceError(`instance metadata service at ${this.endpoint} did not answer ${path} (${(last as Error).message})`);
    if (!/larger than/.test((last as Error).message)) this.down = err;
    throw err;
  }

  /** IMDSv2 session token; there is deliberately no IMDSv1 fallback. */
  private async sessionToken(): Promise<string> {
    if (this.token) return this.token;
    const res = await this.request('PUT', '/latest/api/token', { 'X-aws-ec2-metadata-token-ttl-seconds': '300' });
    if (res.status !== 200) throw new SourceError(`instance metadata service refused a session token (HTTP ${res.status})`);
    this.token = res.body;
    return this.token;
  }

  /** GET a metadata path; null when it does not exist (404). */
  async get(path: string, maxBytes = METADATA_MAX_BYTES): Promise<string | null> {
    return (await this.getRaw(path, maxBytes))?.toString('utf8') ?? null;
  }

  async getRaw(path: string, maxBytes = METADATA_MAX_BYTES): Promise<Buffer | null> {
    const token = await this.sessionToken();
    const res = await this.request('GET', path, { 'X-aws-ec2-metadata-token': token }, maxBytes);
    if (res.status === 404) return null;
    if (res.status !== 200) throw new SourceError(`instance metadata ${path} answered HTTP ${res.status}`);
    return res.raw;
  }

  private known: InstanceIdentity | null = null;

  async identity(): Promise<InstanceIdentity> {
    if (this.known) return this.known;
    // One round trip for both (after the session token): on the dialogue's path at boot.
    await this.sessionToken();
    const [instanceId, region] = await Promise.all([this.get('/latest/meta-data/instance-id'), this.get('/latest/meta-data/placement/region')]);
    if (!instanceId || !/^i-[0-9a-f]{8,17}$/.test(instanceId)) throw new SourceError('instance metadata gave no valid instance ID');
    this.known = { instanceId, region: region ?? '' };
    return this.known;
  }

  /** User data as text; gzip-compressed user data (a standard cloud-init form) is decompressed. */
  async userData(): Promise<string | null> {
    try {
      const raw = await this.getRaw('/latest/user-data', USER_DATA_MAX_BYTES);
      return raw === null ? null : decodeUserData(raw);
    } catch (e) {
      if (/larger than/.test((e as Error).message)) throw new SourceError(`user data is larger than EC2's ${USER_DATA_MAX_BYTES / 1024} KiB limit; it was not read`);
      throw e;
    }
  }
}

// ---------------------------------------------------------------- user data

/** What cloud-init accepts compressed: gzip. Decompressed text is capped as well. */
export function decodeUserData(raw: Buffer): string {
  if (raw.length >= 2 && raw[0] === 0x1f && raw[1] === 0x8b) {
    try {
      return gunzipSync(raw, { maxOutputLength: 1024 * 1024 }).toString('utf8');
    } catch (e) {
      throw new SourceError(`user data is gzip-compressed but does not decompress (${(e as Error).message.split('\n')[0]})`);
    }
  }
  return raw.toString('utf8');
}

/** Settings as given by a source, before the port range is checked against the host. */
export interface RawSettings {
  portRange?: string;
  agentName?: string;
  tags?: string[];
  token?: string;
  tokenSsmParameter?: string;
}

// ---------------------------------------------------------------- SSM Parameter Store

/** The part of SSMClient this service uses, so tests and callers can pass any SSMClient. */
export interface SsmLike {
  send(command: unknown, options?: { abortSignal?: AbortSignal }): Promise<unknown>;
}

/** The whole Parameter Store read, retries included, ends within this. */
export const SSM_DEADLINE_MS = 30_000;

/** What went wrong with a Parameter Store call, in words an operator can act on. */
export function describeSsmFailure(e: unknown): string {
  const err = e as Error & { code?: string; cause?: { code?: string } };
  const code = err.code ?? err.cause?.code;
  const msg = (err.message ?? '').split('\n')[0]!.slice(0, 200);
  if (code && ['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH'].includes(code)) {
    return `cannot reach Parameter Store (${code}${msg ? `: ${msg}` : ''}); check the route to the SSM endpoint or its VPC endpoint`;
  }
  if (err.name === 'TimeoutError' || err.name === 'AbortError') return `Parameter Store did not answer within ${SSM_DEADLINE_MS / 1000} s`;
  if (/region is missing/i.test(msg)) return 'no AWS region is known (the instance metadata gave none): pass --region';
  if (err.name === 'SyntaxError' || /deserializ|unexpected token|not valid json/i.test(msg)) {
    return `the answer was not Parameter Store's JSON (${err.name}: ${msg}); is AWS_ENDPOINT_URL_SSM or --ssm-endpoint right?`;
  }
  return `${err.name}: ${msg || 'no message'}`;
}

/**
 * Reads the token from a SecureString parameter with decryption, under the instance role.
 * Errors name the parameter and what to fix, never the value.
 */
export async function readTokenParameter(name: string, region: string, makeClient: (region: string) => Promise<SsmLike>): Promise<string> {
  const { GetParameterCommand } = await import('./ssm-sdk.ts');
  const client = await makeClient(region);
  let res: { Parameter?: { Type?: string; Value?: string } };
  try {
    res = (await client.send(new GetParameterCommand({ Name: name, WithDecryption: true }), { abortSignal: AbortSignal.timeout(SSM_DEADLINE_MS) })) as typeof res;
  } catch (e) {
    const err = e as Error;
    const where = `SSM parameter ${name}${region ? ` in ${region}` : ''}`;
    switch (err.name) {
      case 'ParameterNotFound':
        throw new SourceError(`${where} does not exist`);
      case 'AccessDeniedException':
        throw new SourceError(`the instance role may not read ${where}: allow ssm:GetParameter on it and kms:Decrypt on its key`);
      case 'ParameterVersionNotFound':
        throw new SourceError(`${where}: that version does not exist`);
      default:
        throw new SourceError(`reading ${where} failed: ${describeSsmFailure(err)}`);
    }
  }
  const p = res.Parameter;
  if (!p || typeof p.Value !== 'string') throw new SourceError(`SSM parameter ${name} has no value`);
  registerSecret(p.Value);
  // `put-parameter --value file://token` stores the file's trailing newline; --token-file strips one too.
  const value = p.Value.replace(/\r?\n$/, '');
  registerSecret(value);
  if (p.Type !== 'SecureString') {
    throw new SourceError(`SSM parameter ${name} is a ${p.Type ?? 'plain'} parameter; store the agent token as a SecureString`);
  }
  const ok = checkToken(value);
  if (ok !== true) throw new SourceError(`SSM parameter ${name}: ${ok}`);
  return value;
}

export async function defaultSsmClient(region: string, endpoint?: string): Promise<SsmLike> {
  const { SSMClient } = await import('./ssm-sdk.ts');
  // Bounded: a silent endpoint costs seconds, not the SDK's defaults (no socket timeout).
  return new SSMClient({ region: region || undefined, maxAttempts: 3, requestHandler: { connectionTimeout: 3000, requestTimeout: 10_000 }, ...(endpoint ? { endpoint } : {}) });
}
