// Resolves an image tag to its manifest digest through the Docker Registry HTTP API v2, so the
// aws target pulls the agent by digest and tags the AMI with it before Packer starts.

const ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
].join(', ');

export interface RegistryOptions {
  /** Registry API base, e.g. https://registry-1.docker.io */
  registry?: string;
  fetchImpl?: typeof fetch;
}

/** Docker Hub's official images live under library/. */
export function repositoryPath(image: string): string {
  return image.includes('/') ? image : `library/${image}`;
}

function parseBearerChallenge(header: string): { realm: string; params: Record<string, string> } | null {
  const m = /^Bearer\s+(.*)$/i.exec(header);
  if (!m) return null;
  const params: Record<string, string> = {};
  for (const p of m[1]!.matchAll(/(\w+)="([^"]*)"/g)) params[p[1]!] = p[2]!;
  if (!params.realm) return null;
  const { realm, ...rest } = params;
  return { realm, params: rest };
}

export async function resolveDigest(image: string, tag: string, opts: RegistryOptions = {}): Promise<string> {
  const registry = opts.registry ?? 'https://registry-1.docker.io';
  const doFetch = opts.fetchImpl ?? fetch;
  const url = `${registry}/v2/${repositoryPath(image)}/manifests/${encodeURIComponent(tag)}`;
  const where = `${image}:${tag} at ${registry}`;
  let res: Response;
  try {
    res = await doFetch(url, { method: 'HEAD', headers: { Accept: ACCEPT } });
    if (res.status === 401) {
      const challenge = parseBearerChallenge(res.headers.get('www-authenticate') ?? '');
      if (!challenge) throw new Error(`registry asked for authentication without a Bearer challenge (${where})`);
      const tokenUrl = new URL(challenge.realm);
      for (const [k, v] of Object.entries(challenge.params)) tokenUrl.searchParams.set(k, v);
      const tokenRes = await doFetch(tokenUrl);
      if (!tokenRes.ok) throw new Error(`registry token request failed with HTTP ${tokenRes.status} (${where})`);
      const body = (await tokenRes.json()) as { token?: string; access_token?: string };
      const token = body.token ?? body.access_token;
      if (!token) throw new Error(`registry token response had no token (${where})`);
      res = await doFetch(url, { method: 'HEAD', headers: { Accept: ACCEPT, Authorization: `Bearer ${token}` } });
    }
  } catch (e) {
    if (e instanceof Error && e.message.includes(where)) throw e;
    throw new Error(`cannot reach the registry to resolve ${where}: ${(e as Error).message}`);
  }
  if (res.status === 404) throw new Error(`tag not found: ${where}`);
  if (!res.ok) throw new Error(`registry answered HTTP ${res.status} for ${where}`);
  const digest = res.headers.get('docker-content-digest');
  if (!digest || !/^sha256:[a-f0-9]{64}$/.test(digest)) {
    throw new Error(`registry gave no valid Docker-Content-Digest for ${where}`);
  }
  return digest;
}
