// One validated build configuration: built-in defaults -> optional YAML file -> CLI flags.
// Everything Packer and the provisioners see is derived from the object this module returns.
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { cidrsOverlap, isCidr } from './net.ts';
import { DEFAULT_MAX_RANGE_WIDTH, DEFAULT_PORT_RANGE, rangeProblem } from '../../firstboot/src/validate.ts';
import { EXCEPTION_NAMES } from '../../hardening/exceptions.ts';

/** The AWS Marketplace AMI rules publish reads from EC2 (scripts/lib/release/publish.ts). */
export const MARKETPLACE_RULES = ['hvm', 'ebs-root', 'architecture', 'ena-support', 'imds-v2-only', 'unencrypted-snapshots', 'available'] as const;
export type MarketplaceRule = (typeof MARKETPLACE_RULES)[number];
/** Amazon Inspector severities publish can gate at (Inspector2's own names, lowest first). */
export const INSPECTOR_SEVERITIES = ['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'] as const;

/** The agent's overlay network; Docker's address pools must stay clear of it. */
export const AGENT_OVERLAY_CIDR = '10.69.0.0/16';

const cidr = z.string().refine(isCidr, { message: 'must be an IPv4 CIDR such as 172.30.0.0/16' });
const name = (re: RegExp, what: string) => z.string().regex(re, { message: `must be ${what}` });

const addressPool = z
  .object({
    base: cidr,
    size: z.number().int().min(16).max(30),
  })
  .strict();

export const ConfigSchema = z
  .object({
    target: z.enum(['local', 'aws']).default('local'),
    output_dir: z.string().min(1).default('output'),
    image: z
      .object({
        name: name(/^[a-z0-9][a-z0-9-]{2,62}$/, 'lower-case letters, digits and dashes (3-63 characters)').default(
          'syntropy-agent-debian13',
        ),
        version: name(/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/, 'a semantic version such as 1.2.3').default('0.1.0'),
        disk_gib: z.number().int().min(4).max(1024).default(8),
      })
      .strict()
      .default({}),
    debian: z
      .object({
        suite: z.enum(['trixie']).default('trixie'),
        mirror: z.string().url().default('http://deb.debian.org/debian'),
        security_mirror: z.string().url().default('http://deb.debian.org/debian-security'),
      })
      .strict()
      .default({}),
    ssh: z
      .object({
        port: z.number().int().min(1).max(65535).default(22),
        user: z.enum(['admin']).default('admin'),
      })
      .strict()
      .default({}),
    docker: z
      .object({
        address_pools: z
          .array(addressPool)
          .min(1)
          .default([{ base: '172.30.0.0/16', size: 24 }]),
        log_max_size: name(/^\d+[kmg]$/, 'a size such as 10m').default('10m'),
        log_max_file: z.number().int().min(1).max(100).default(3),
        // Where the engine comes from. debian: Debian's docker.io (trixie), security-supported
        // with Debian 13 (Go packages: limited, fixes mostly via point releases). docker-ce:
        // Docker's own repository, whose signing key is fetched at bake time and must carry
        // ce_key_fingerprint (Docker's documented key) or the bake stops.
        source: z.enum(['debian', 'docker-ce']).default('debian'),
        ce_repo: z.string().url().default('https://download.docker.com/linux/debian'),
        ce_key_fingerprint: name(/^[0-9A-F]{40}$/, 'a 40-hex-digit OpenPGP fingerprint in capitals').default('9DC858229FC7DD38854AE2D88D81803C0EBFCD88'),
      })
      .strict()
      .default({}),
    agent: z
      .object({
        image: name(/^[a-z0-9]+([._/-][a-z0-9]+)*$/, 'a registry repository such as syntropynet/agent').default(
          'syntropynet/agent',
        ),
        tag: name(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/, 'a Docker tag such as stable').default('stable'),
        digest: z
          .union([z.literal(''), name(/^sha256:[a-f0-9]{64}$/, 'empty or sha256:<64 hex digits>')])
          .default(''),
        network_api: z.enum(['none', 'docker', 'host', 'kubernetes']).default('none'),
        // aws bakes pull the agent by digest. A Docker Hub mirror for that one pull (a pull-through
        // cache, or the rehearsal's registry double); set only while the bake pulls, never baked in.
        registry_mirror: z.union([z.literal(''), z.string().url().regex(/^https?:\/\/[^/]+\/?$/, { message: 'must be a registry root URL such as https://mirror.example.com' })]).default(''),
      })
      .strict()
      .default({}),
    firstboot: z
      .object({
        // The rule and its default are first boot's (firstboot/src/validate.ts): one source.
        default_port_range: z.string().default(DEFAULT_PORT_RANGE),
        max_port_range_width: z.number().int().min(1).max(64512).default(DEFAULT_MAX_RANGE_WIDTH),
      })
      .strict()
      .default({}),
    hardening: z
      .object({
        enabled: z.boolean().default(true),
        levels: z.array(z.enum(['l1_server', 'l2_server'])).min(1).default(['l1_server']),
        sections: z.record(z.enum(['1', '2', '3', '4', '5', '6', '7', 'DD']), z.boolean()).default({}),
        controls: z.record(name(/^(\d+(\.\d+)+|DD-\d+)$/, 'a CIS recommendation ID such as 1.4.1, or a defense-in-depth ID such as DD-20'), z.boolean()).default({}),
        exceptions: z
          .array(z.enum(EXCEPTION_NAMES))
          .default([...EXCEPTION_NAMES]),
      })
      .strict()
      .default({}),
    local: z
      .object({
        accelerator: z.enum(['auto', 'kvm', 'tcg']).default('auto'),
        cpus: z.number().int().min(1).max(64).default(2),
        memory_mib: z.number().int().min(512).max(65536).default(2048),
        base_disk_gib: z.number().int().min(2).max(64).default(3),
        ssh_timeout: name(/^\d+[smh]$/, 'a duration such as 20m').default('20m'),
        headless: z.boolean().default(true),
      })
      .strict()
      .default({}),
    aws: z
      .object({
        region: name(/^[a-z]{2}(-gov)?-[a-z]+-\d$/, 'an AWS region such as us-east-1').default('us-east-1'),
        instance_type: name(/^[a-z0-9]+\.[a-z0-9]+$/, 'an EC2 instance type such as t3.small').default('t3.small'),
        source_ami_owner: name(/^\d{12}$/, 'a 12-digit AWS account ID').default('136693071363'),
        source_ami_name: z.string().min(1).default('debian-13-amd64-*'),
        root_volume_type: z.enum(['gp3']).default('gp3'),
        encrypt_boot: z.boolean().default(false),
        kms_key_id: z.string().default(''),
        ami_regions: z.array(name(/^[a-z]{2}(-gov)?-[a-z]+-\d$/, 'an AWS region')).default([]),
        ami_users: z.array(name(/^\d{12}$/, 'a 12-digit AWS account ID')).default([]),
        subnet_id: z.union([z.literal(''), name(/^subnet-[0-9a-f]+$/, 'empty or subnet-<hex>')]).default(''),
        ssh_source_cidrs: z.array(cidr).default([]),
        // SSM Agent installed into aws images (Debian's AMIs have none); >= 3.3.2746.0 exports
        // ENV_VAR-interpolated document parameters. Pinned; its signature is checked at bake time.
        ssm_agent_version: name(/^\d+\.\d+\.\d+\.\d+$/, 'an SSM Agent version such as 3.3.3572.0').default('3.3.3572.0'),
        // Where the package comes from (empty: AWS's regional bucket) and the key its signature
        // must verify with (empty: AWS's key in packer/keys/; the fingerprint file sits beside it).
        ssm_agent_base_url: z.union([z.literal(''), z.string().url()]).default(''),
        ssm_agent_key_file: z.string().default(''),
        // How Packer reaches the build instance's SSH (empty host: the instance's own address).
        build_ssh: z
          .object({
            host: z.string().default(''),
            port: z.number().int().min(1).max(65535).default(22),
            timeout: name(/^\d+[smh]$/, 'a duration such as 10m').default('10m'),
          })
          .strict()
          .default({}),
        boot_test: z
          .object({
            instance_type: name(/^[a-z0-9]+\.[a-z0-9]+$/, 'an EC2 instance type such as t3.micro').default('t3.micro'),
            instance_profile: name(/^[\w+=,.@-]{1,128}$/, 'an IAM instance profile name').default('syntropy-boot-test'),
            token_parameter: name(/^(\/[A-Za-z0-9_.-]+)+$/, 'a Parameter Store name such as /syntropy/boot-test/agent-token').default('/syntropy/boot-test/agent-token'),
            ssm_document: name(/^[A-Za-z0-9_.-]{3,128}$/, 'an SSM document name').default('SyntropyConfigureAgent'),
            timeout_minutes: z.number().int().min(5).max(120).default(20),
          })
          .strict()
          .default({}),
      })
      .strict()
      .default({}),
    publish: z
      .object({
        regions: z.array(name(/^[a-z]{2}(-gov)?-[a-z]+-\d$/, 'an AWS region')).default([]),
        launch_accounts: z.array(name(/^\d{12}$/, 'a 12-digit AWS account ID')).default([]),
        public: z.boolean().default(false),
        // Legacy hand-off: share the AMI with this account (AWS Marketplace's old ingestion account
        // 679593333241) for a person to add the version in the portal. Off by default: publish.marketplace
        // submits the version through the Catalog API with an access role instead.
        marketplace_account: z.union([z.literal(''), name(/^\d{12}$/, 'empty or a 12-digit AWS account ID')]).default(''),
        // A new version of an AMI product through the Marketplace Catalog API (AddDeliveryOptions),
        // ingested from us-east-1 through access_role_arn (scripts/lib/release/marketplace.ts).
        marketplace: z
          .object({
            product_id: z.union([z.literal(''), name(/^[\w-]{1,255}$/, 'empty or the product\'s entity ID such as prod-abcdefghijklm')]).default(''),
            access_role_arn: z
              .union([z.literal(''), name(/^arn:aws:iam::\d{12}:role\/[a-zA-Z_0-9+=,.@\-_/]+$/, 'empty or an IAM role ARN such as arn:aws:iam::123456789012:role/MarketplaceAmiIngestion')])
              .default(''),
            os_name: z.string().min(1).max(100).default('DEBIAN'),
            os_version: z.string().min(1).max(100).default('13'),
            recommended_instance_type: name(/^[a-z0-9]+\.[a-z0-9]+$/, 'an EC2 instance type such as t3.small').default('t3.small'),
            ssh_cidrs: z.array(cidr).min(1).max(5).default(['0.0.0.0/0']),
            version_title: z.string().min(1).max(64).default('{version}'),
            release_notes: z.string().min(1).max(30000).default('Syntropy agent {version} on CIS-hardened Debian 13 (build {build_id}).'),
            usage_instructions: z
              .string()
              .min(1)
              .max(4000)
              .default(
                'Launch with a key pair and a security group that opens UDP {port_range} (WireGuard) and TCP {ssh_port} (SSH). ' +
                  'Log in as {user} (ssh {user}@<address>): the first-boot dialogue asks for the Syntropy agent token and the UDP port range, then starts the agent. ' +
                  'Without a person: put the token in EC2 user data or in a Parameter Store SecureString, or run the SyntropyConfigureAgent SSM document. ' +
                  'Turn off the source/destination check on the instance to route VPC traffic.',
              ),
            wait_minutes: z.number().int().min(1).max(1440).default(240),
          })
          .strict()
          .default({}),
        ssm_parameter_prefix: name(/^(\/[A-Za-z0-9_.-]+)+$/, 'a Parameter Store path such as /syntropy/ami').default('/syntropy/ami'),
        // A Marketplace rule publish may pass over, each with why and until when; recorded in the
        // publish manifest. For rules a reader of AWS cannot see (the rehearsal's emulator models
        // neither ENA nor IMDS support on images), never to ship an image that breaks them.
        waivers: z
          .array(
            z
              .object({
                rule: z.enum(MARKETPLACE_RULES),
                reason: z.string().min(10, { message: 'must say why (10 characters or more)' }),
                expires: z.string().regex(/^\d{4}-\d{2}-\d{2}$/, { message: 'must be a date such as 2027-01-31' }),
              })
              .strict(),
          )
          .default([]),
        // Amazon Inspector's findings for the image (from its scan of the boot-test instances) at
        // or above min_severity block publish, unless a current waiver names the vulnerability
        // (e.g. CVE-2026-1234) or the finding ARN. Off only deliberately (recorded).
        inspector: z
          .object({
            enabled: z.boolean().default(true),
            min_severity: z.enum(INSPECTOR_SEVERITIES).default('HIGH'),
            waivers: z
              .array(
                z
                  .object({
                    finding: z.string().regex(/^([A-Z]+-[A-Za-z0-9-]+|arn:aws[a-z-]*:inspector2:.+)$/, { message: 'must be a vulnerability ID (CVE-2026-1234, GHSA-...) or an Inspector finding ARN' }),
                    reason: z.string().min(10, { message: 'must say why (10 characters or more)' }),
                    expires: z.string().regex(/^\d{4}-\d{2}-\d{2}$/, { message: 'must be a date such as 2027-01-31' }),
                  })
                  .strict(),
              )
              .default([]),
          })
          .strict()
          .default({}),
      })
      .strict()
      .default({}),
    retention: z
      .object({
        keep_newest: z.number().int().min(1).max(100).default(3),
        max_age_days: z.number().int().min(1).max(3650).default(90),
        instance_max_age_hours: z.number().int().min(1).max(720).default(6),
      })
      .strict()
      .default({}),
  })
  .strict()
  .superRefine((cfg, ctx) => {
    cfg.docker.address_pools.forEach((pool, i) => {
      if (cidrsOverlap(pool.base, AGENT_OVERLAY_CIDR)) {
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path: ['docker', 'address_pools', i, 'base'],
          message: `overlaps the agent's overlay network ${AGENT_OVERLAY_CIDR}; pick a range outside it`,
        });
      }
    });
    const problem = rangeProblem(cfg.firstboot.default_port_range, { maxWidth: cfg.firstboot.max_port_range_width, sshPort: cfg.ssh.port });
    if (problem) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['firstboot', 'default_port_range'], message: problem });
    const mp = cfg.publish.marketplace;
    if (mp.product_id !== '' && mp.access_role_arn === '') {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['publish', 'marketplace', 'access_role_arn'], message: 'is empty but publish.marketplace.product_id is set: Marketplace reads the AMI through this role' });
    }
    if (cfg.aws.kms_key_id !== '' && !cfg.aws.encrypt_boot) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['aws', 'kms_key_id'],
        message: 'is set but aws.encrypt_boot is false; enable encryption or clear the key',
      });
    }
  });

export type Config = z.infer<typeof ConfigSchema>;

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

function describeIssue(issue: z.ZodIssue, schemaKeys: (path: (string | number)[]) => string[]): string {
  const field = issue.path.join('.') || '(top level)';
  switch (issue.code) {
    case z.ZodIssueCode.invalid_enum_value:
      return `${field}: expected one of ${issue.options.map(String).join(', ')}; got ${JSON.stringify(issue.received)}`;
    case z.ZodIssueCode.unrecognized_keys:
      return issue.keys
        .map((k) => {
          const at = [...issue.path, k].join('.');
          const allowed = schemaKeys(issue.path);
          return `${at}: unknown key (allowed here: ${allowed.join(', ')})`;
        })
        .join('\n');
    case z.ZodIssueCode.invalid_type:
      return `${field}: expected ${issue.expected}, got ${issue.received}`;
    case z.ZodIssueCode.too_small:
    case z.ZodIssueCode.too_big:
      return `${field}: ${issue.message.replace(/^(Number|String|Array) /, '').toLowerCase()}`;
    default:
      return `${field}: ${issue.message}`;
  }
}

/** Keys the schema allows at a path, for "unknown key" messages. */
function allowedKeysAt(path: (string | number)[]): string[] {
  let node: z.ZodTypeAny = ConfigSchema;
  const unwrap = (t: z.ZodTypeAny): z.ZodTypeAny => {
    for (;;) {
      if (t instanceof z.ZodEffects) t = t.innerType();
      else if (t instanceof z.ZodDefault) t = t._def.innerType;
      else if (t instanceof z.ZodOptional) t = t.unwrap();
      else return t;
    }
  };
  node = unwrap(node);
  for (const seg of path) {
    if (node instanceof z.ZodObject) node = unwrap(node.shape[seg as string]);
    else if (node instanceof z.ZodArray) node = unwrap(node.element);
    else return [];
  }
  return node instanceof z.ZodObject ? Object.keys(node.shape) : [];
}

export function validateConfig(raw: unknown, source: string): Config {
  const result = ConfigSchema.safeParse(raw ?? {});
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  - ${describeIssue(i, allowedKeysAt)}`);
    throw new ConfigError(`invalid configuration (${source}):\n${lines.join('\n')}`);
  }
  return result.data;
}

/** Parses a YAML config file; errors name the file, line and column. */
export function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read config file ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const first = doc.errors[0]!;
    const pos = first.linePos?.[0];
    const where = pos ? `${file}:${pos.line}:${pos.col}` : file;
    throw new ConfigError(`malformed YAML in ${where}: ${first.message.split('\n')[0]}`);
  }
  const value: unknown = doc.toJS();
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError(`config file ${file} must hold a mapping at the top level, not ${Array.isArray(value) ? 'a list' : typeof value}`);
  }
  return value as Record<string, unknown>;
}

type Plain = Record<string, unknown>;
const isPlain = (v: unknown): v is Plain => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Deep merge where later layers win; lists are replaced, not concatenated. */
export function mergeLayers(...layers: Plain[]): Plain {
  const out: Plain = {};
  for (const layer of layers) {
    for (const [k, v] of Object.entries(layer)) {
      const prev = out[k];
      out[k] = isPlain(prev) && isPlain(v) ? mergeLayers(prev, v) : v;
    }
  }
  return out;
}

/** Turns `a.b.c=value` into a nested object; the value is read as a YAML scalar/flow value. */
export function parseSetFlag(expr: string): Plain {
  const eq = expr.indexOf('=');
  if (eq <= 0) throw new ConfigError(`--set expects key.path=value, got ${JSON.stringify(expr)}`);
  const path = expr.slice(0, eq).split('.');
  if (path.some((p) => !/^[a-z0-9_]+$/.test(p))) {
    throw new ConfigError(`--set key ${JSON.stringify(expr.slice(0, eq))} is not a dotted path of lower-case keys`);
  }
  const doc = parseDocument(expr.slice(eq + 1));
  if (doc.errors.length > 0) throw new ConfigError(`--set ${path.join('.')}: value is not valid YAML`);
  let value: unknown = doc.toJS();
  for (const seg of [...path].reverse()) value = { [seg]: value };
  return value as Plain;
}

export interface CliConfigInput {
  configFile?: string;
  /** Dotted overrides from --set and the named shortcut flags, applied in order. */
  overrides?: Plain[];
}

export interface LoadedConfig {
  config: Config;
  /** sha256 of the resolved config, recorded in the build manifest. */
  hash: string;
  sources: string[];
}

export function loadConfig(input: CliConfigInput): LoadedConfig {
  const sources = ['defaults'];
  const layers: Plain[] = [];
  if (input.configFile) {
    layers.push(readConfigFile(input.configFile));
    sources.push(input.configFile);
  }
  const overrides = input.overrides ?? [];
  if (overrides.length > 0) sources.push('command line');
  layers.push(...overrides);
  const config = validateConfig(mergeLayers(...layers), sources.join(' -> '));
  return { config, hash: configHash(config), sources };
}

export function configHash(config: Config): string {
  return createHash('sha256').update(stableStringify(config)).digest('hex');
}

export function stableStringify(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableStringify).join(',')}]`;
  if (isPlain(v)) {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableStringify(v[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}
