// An IMDSv2 double on loopback. Local guests reach it through QEMU's guestfwd for
// 169.254.169.254:80, so cloud-init and the first-boot service see an EC2-like instance
// and no metadata request ever leaves the machine. Like an instance launched with
// HttpTokens=required, it answers only requests that carry a session token (no IMDSv1).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';

export interface ImdsOptions {
  instanceId?: string;
  amiId?: string;
  instanceType?: string;
  region?: string;
  availabilityZone?: string;
  /** MAC of the guest's first NIC (QEMU's default for the first NIC). */
  mac?: string;
  /** Address QEMU user networking hands the guest on net=169.254.169.0/24. */
  localIpv4?: string;
  hostname?: string;
  /** OpenSSH public keys, served under meta-data/public-keys/. */
  publicKeys?: Record<string, string>;
  userData?: string | Buffer;
  /** Seconds; tokens older than their TTL are refused with 401, as on EC2. */
  maxTokenTtl?: number;
  /** An instance profile: its role's temporary credentials are served under meta-data/iam/. */
  role?: InstanceRole;
  /**
   * Instance tags, served under meta-data/tags/instance/ only when set: on EC2 that path exists
   * only for instances launched with InstanceMetadataTags=enabled ("View tags for your EC2
   * instances using instance metadata", EC2 user guide); otherwise it answers 404.
   */
  tags?: Record<string, string>;
}

export interface InstanceRole {
  name: string;
  accessKeyId: string;
  secretAccessKey: string;
  token: string;
}

export interface ImdsRequestRecord {
  method: string;
  path: string;
  status: number;
  withToken: boolean;
}

type Tree = { [k: string]: Tree | string };

const TOKEN_TTL_HEADER = 'x-aws-ec2-metadata-token-ttl-seconds';
const TOKEN_HEADER = 'x-aws-ec2-metadata-token';
const VERSIONS = ['1.0', '2009-04-04', '2016-09-02', '2018-09-24', '2021-03-23', 'latest'];

export function metadataTree(o: Required<Omit<ImdsOptions, 'userData' | 'maxTokenTtl' | 'role' | 'tags'>> & { role?: InstanceRole; tags?: Record<string, string> }): Tree {
  const keys: Tree = {};
  Object.entries(o.publicKeys).forEach(([name, key], i) => {
    keys[`${i}=${name}`] = { 'openssh-key': key };
  });
  const vpcCidr = '169.254.169.0/24';
  const iam: Tree = {};
  if (o.role) {
    const now = new Date();
    iam.info = JSON.stringify({ Code: 'Success', LastUpdated: now.toISOString(), InstanceProfileArn: `arn:aws:iam::000000000000:instance-profile/${o.role.name}`, InstanceProfileId: 'AIPALOCAL0000000000' });
    iam['security-credentials'] = {
      [o.role.name]: JSON.stringify({
        Code: 'Success',
        LastUpdated: now.toISOString(),
        Type: 'AWS-HMAC',
        AccessKeyId: o.role.accessKeyId,
        SecretAccessKey: o.role.secretAccessKey,
        Token: o.role.token,
        Expiration: new Date(now.getTime() + 6 * 3600_000).toISOString(),
      }),
    };
  }
  return {
    ...(o.role ? { iam } : {}),
    ...(o.tags ? { tags: { instance: { ...o.tags } } } : {}),
    'ami-id': o.amiId,
    'ami-launch-index': '0',
    'instance-id': o.instanceId,
    'instance-type': o.instanceType,
    hostname: o.hostname,
    'local-hostname': o.hostname,
    'local-ipv4': o.localIpv4,
    mac: o.mac,
    placement: { 'availability-zone': o.availabilityZone, region: o.region },
    'public-keys': keys,
    services: { domain: 'amazonaws.com', partition: 'aws' },
    network: {
      interfaces: {
        macs: {
          [o.mac]: {
            'device-number': '0',
            'interface-id': 'eni-0local0000000000',
            'local-hostname': o.hostname,
            'local-ipv4s': o.localIpv4,
            mac: o.mac,
            'owner-id': '000000000000',
            'subnet-id': 'subnet-0local000000000',
            'subnet-ipv4-cidr-block': vpcCidr,
            'vpc-id': 'vpc-0local00000000000',
            'vpc-ipv4-cidr-block': vpcCidr,
            'vpc-ipv4-cidr-blocks': vpcCidr,
          },
        },
      },
    },
  };
}

export class ImdsDouble {
  readonly requests: ImdsRequestRecord[] = [];
  private server: Server | null = null;
  private readonly tokens = new Map<string, number>();
  private readonly opts: Required<Omit<ImdsOptions, 'userData' | 'role' | 'tags'>> & { userData?: string | Buffer; role?: InstanceRole; tags?: Record<string, string> };

  constructor(options: ImdsOptions = {}) {
    const instanceId = options.instanceId ?? `i-0${randomBytes(8).toString('hex')}`;
    this.opts = {
      instanceId,
      amiId: options.amiId ?? 'ami-0local00000000000',
      instanceType: options.instanceType ?? 't3.small',
      region: options.region ?? 'us-east-1',
      availabilityZone: options.availabilityZone ?? `${options.region ?? 'us-east-1'}a`,
      mac: options.mac ?? '52:54:00:12:34:56',
      localIpv4: options.localIpv4 ?? '169.254.169.15',
      hostname: options.hostname ?? `ip-169-254-169-15.ec2.internal`,
      publicKeys: options.publicKeys ?? {},
      maxTokenTtl: options.maxTokenTtl ?? 21600,
      userData: options.userData,
      role: options.role,
      tags: options.tags,
    };
  }

  get instanceId(): string {
    return this.opts.instanceId;
  }

  setUserData(data: string | Buffer | undefined): void {
    this.opts.userData = data;
  }

  setPublicKeys(keys: Record<string, string>): void {
    this.opts.publicKeys = keys;
  }

  async start(port = 0, host = '127.0.0.1'): Promise<number> {
    this.server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((ok, bad) => {
      this.server!.once('error', bad);
      this.server!.listen(port, host, () => ok());
    });
    return (this.server.address() as AddressInfo).port;
  }

  get port(): number {
    if (!this.server) throw new Error('IMDS double is not started');
    return (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((ok) => s.close(() => ok()));
  }

  private reply(req: IncomingMessage, res: ServerResponse, status: number, body: string | Buffer, withToken: boolean): void {
    this.requests.push({ method: req.method ?? '', path: req.url ?? '', status, withToken });
    res.writeHead(status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://169.254.169.254');
    const path = url.pathname;
    // EC2 refuses token requests that went through a proxy.
    if (req.headers['x-forwarded-for'] !== undefined) return this.reply(req, res, 403, 'Forbidden\n', false);

    if (path === '/latest/api/token') {
      if (req.method !== 'PUT') return this.reply(req, res, 405, 'Method Not Allowed\n', false);
      const ttl = Number(req.headers[TOKEN_TTL_HEADER]);
      if (!Number.isInteger(ttl) || ttl < 1 || ttl > this.opts.maxTokenTtl) {
        return this.reply(req, res, 400, 'Bad Request\n', false);
      }
      const token = randomBytes(24).toString('base64url');
      this.tokens.set(token, Date.now() + ttl * 1000);
      res.setHeader(TOKEN_TTL_HEADER, String(ttl));
      return this.reply(req, res, 200, token, false);
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return this.reply(req, res, 405, 'Method Not Allowed\n', false);

    const token = req.headers[TOKEN_HEADER];
    const expiry = typeof token === 'string' ? this.tokens.get(token) : undefined;
    if (expiry === undefined || expiry < Date.now()) return this.reply(req, res, 401, 'Unauthorized\n', false);

    if (path === '/' ) return this.reply(req, res, 200, VERSIONS.join('\n'), true);
    const [, version, category, ...rest] = path.split('/');
    if (!version || !VERSIONS.includes(version)) return this.reply(req, res, 404, 'Not Found\n', true);
    if (!category) return this.reply(req, res, 200, 'dynamic\nmeta-data\nuser-data', true);

    if (category === 'user-data') {
      if (this.opts.userData === undefined || rest.some(Boolean)) return this.reply(req, res, 404, 'Not Found\n', true);
      return this.reply(req, res, 200, this.opts.userData, true);
    }
    if (category === 'dynamic') {
      const doc = {
        accountId: '000000000000',
        architecture: 'x86_64',
        availabilityZone: this.opts.availabilityZone,
        imageId: this.opts.amiId,
        instanceId: this.opts.instanceId,
        instanceType: this.opts.instanceType,
        privateIp: this.opts.localIpv4,
        region: this.opts.region,
        version: '2017-09-30',
      };
      const sub = rest.filter(Boolean).join('/');
      if (sub === '') return this.reply(req, res, 200, 'instance-identity/', true);
      if (sub === 'instance-identity') return this.reply(req, res, 200, 'document', true);
      if (sub === 'instance-identity/document') return this.reply(req, res, 200, JSON.stringify(doc, null, 2), true);
      return this.reply(req, res, 404, 'Not Found\n', true);
    }
    if (category !== 'meta-data') return this.reply(req, res, 404, 'Not Found\n', true);

    let node: Tree | string = metadataTree(this.opts);
    for (const seg of rest.filter(Boolean)) {
      if (typeof node === 'string') return this.reply(req, res, 404, 'Not Found\n', true);
      // public-keys/0 addresses the "0=name" entry, as on EC2.
      const key: string | undefined = seg in node ? seg : Object.keys(node).find((k) => k.startsWith(`${seg}=`));
      if (key === undefined) return this.reply(req, res, 404, 'Not Found\n', true);
      const next: Tree | string | undefined = node[key];
      if (next === undefined) return this.reply(req, res, 404, 'Not Found\n', true);
      node = next;
    }
    if (typeof node === 'string') return this.reply(req, res, 200, node, true);
    // Directory listing: sub-trees end with '/', and public-keys list "0=name" without it.
    const listing = Object.entries(node).map(([k, v]) => (typeof v === 'string' || /^\d+=/.test(k) ? k : `${k}/`));
    return this.reply(req, res, 200, listing.join('\n'), true);
  }
}

/** The QEMU -netdev value that routes the guest's 169.254.169.254:80 to this double. */
export function imdsNetdev(opts: { id: string; imdsPort: number; hostfwd?: string[]; guestfwd?: { ip: string; port: number; hostPort: number }[] }): string {
  // The `cmd:` form starts the relay for every connection (the `tcp:` form serves only the first).
  // IPv6 is off so the IPv6 metadata endpoint cannot leave through the host either.
  const parts = [
    'user',
    `id=${opts.id}`,
    'net=169.254.169.0/24',
    'ipv6=off',
    `guestfwd=tcp:169.254.169.254:80-cmd:socat STDIO TCP:127.0.0.1:${opts.imdsPort}`,
    // More doubles (an SSM endpoint for boot tests) on other addresses of the same private net.
    ...(opts.guestfwd ?? []).map((g) => `guestfwd=tcp:${g.ip}:${g.port}-cmd:socat STDIO TCP:127.0.0.1:${g.hostPort}`),
    ...(opts.hostfwd ?? []).map((f) => `hostfwd=${f}`),
  ];
  return parts.join(',');
}
