// The environment every rehearsal step runs in: the AWS SDK and Packer pointed at the emulator by
// their own endpoint settings, dummy credentials, and nothing that could reach AWS. The guard
// refuses to run unless every endpoint in it is loopback.
import { EMULATOR_CREDENTIALS } from '../emulator/moto.ts';

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

export class EndpointGuardError extends Error {
  override name = 'PreflightError';
}

/**
 * Every `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>` (the SDK's endpoint settings, which
 * Packer's EC2 endpoint follows through build.ts) must name a loopback host, and the general one
 * must be set, so no service falls back to AWS's own endpoint.
 */
export function requireLoopbackEndpoints(env: NodeJS.ProcessEnv): void {
  if (!env.AWS_ENDPOINT_URL) throw new EndpointGuardError('the rehearsal needs AWS_ENDPOINT_URL set to the emulator: without it, a call could reach AWS');
  for (const [k, v] of Object.entries(env)) {
    if (!/^AWS_ENDPOINT_URL(_[A-Z0-9_]+)?$/.test(k) || v === undefined) continue;
    let host = '';
    try {
      host = new URL(v).hostname;
    } catch {
      throw new EndpointGuardError(`${k}=${JSON.stringify(v)} is not a URL`);
    }
    if (!LOOPBACK_HOSTS.has(host)) throw new EndpointGuardError(`${k} points at ${host}, not loopback: the rehearsal talks to the emulator on this machine only`);
  }
  if (env.AWS_PROFILE || env.AWS_SESSION_TOKEN || env.AWS_CONTAINER_CREDENTIALS_FULL_URI || env.AWS_WEB_IDENTITY_TOKEN_FILE) {
    throw new EndpointGuardError('AWS credentials other than the rehearsal\'s dummy keys are in the environment');
  }
  if (env.AWS_EC2_METADATA_DISABLED !== 'true') throw new EndpointGuardError('AWS_EC2_METADATA_DISABLED must be true: the SDK must not ask 169.254.169.254 for credentials');
}

/** The parent's environment without any AWS setting, plus the emulator's. */
export function emulatorEnv(endpoint: string, region: string, parent: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(parent)) if (!k.startsWith('AWS_')) env[k] = v;
  Object.assign(env, EMULATOR_CREDENTIALS, {
    AWS_ENDPOINT_URL: endpoint,
    AWS_REGION: region,
    AWS_DEFAULT_REGION: region,
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    CHECKPOINT_DISABLE: '1',
  });
  requireLoopbackEndpoints(env);
  return env;
}
