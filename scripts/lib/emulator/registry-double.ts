// TEST DOUBLE of a Docker Hub mirror for the rehearsal's aws bake, which pulls the agent by digest
// (preload-agent.sh) where no registry is reachable. It serves one image, the agent test double's
// docker-archive, through the read side of the registry API that dockerd's pull uses, as the
// OCI Distribution Specification v1.1 states it ("Pulling manifests", "Pulling blobs", the
// `GET /v2/` end-point check) and with Docker's Image Manifest V2 Schema 2 media types
// (application/vnd.docker.distribution.manifest.v2+json, ...container.image.v1+json,
// ...image.rootfs.diff.tar.gzip). The manifest's sha256 is the digest the bake pins
// (agent.digest), and Docker verifies every blob against its digest as the real pull does.
// Pushes, tags lists and authentication are not served: a pull by digest does not use them.
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

export const MANIFEST_V2 = 'application/vnd.docker.distribution.manifest.v2+json';

export interface ServedImage {
  repository: string;
  /** Digest of the manifest: what `docker pull <repository>@<digest>` names. */
  digest: string;
  manifest: Buffer;
  blobs: Map<string, Buffer>;
}

/**
 * Turns a docker-archive (the `docker save` layout the agent double is built as: manifest.json,
 * a config blob, one layer.tar per layer) into a registry image. Gzipped layers are cached beside
 * the archive's layers in `cacheDir`, so the digest is stable from run to run.
 */
export function imageFromDockerArchive(extractedDir: string, repository: string, cacheDir = extractedDir): ServedImage {
  const [entry] = JSON.parse(readFileSync(join(extractedDir, 'manifest.json'), 'utf8')) as { Config: string; Layers: string[] }[];
  if (!entry) throw new Error(`${extractedDir}/manifest.json lists no image`);
  const config = readFileSync(join(extractedDir, entry.Config));
  const blobs = new Map<string, Buffer>([[sha(config), config]]);
  const layers = entry.Layers.map((l, i) => {
    const gzFile = join(cacheDir, `layer-${i}.tar.gz`);
    if (!existsSync(gzFile)) writeFileSync(gzFile, gzipSync(readFileSync(join(extractedDir, l)), { level: 1 }));
    const gz = readFileSync(gzFile);
    blobs.set(sha(gz), gz);
    return { mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', size: gz.length, digest: sha(gz) };
  });
  const manifest = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType: MANIFEST_V2, config: { mediaType: 'application/vnd.docker.container.image.v1+json', size: config.length, digest: sha(config) }, layers }),
  );
  return { repository, digest: sha(manifest), manifest, blobs };
}

export class RegistryDouble {
  private server: Server | null = null;
  readonly requests: { method: string; path: string; status: number }[] = [];

  constructor(private readonly image: ServedImage) {}

  start(): Promise<number> {
    const { repository, digest, manifest, blobs } = this.image;
    const manifestPath = `/v2/${repository}/manifests/`;
    const blobPath = `/v2/${repository}/blobs/`;
    this.server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0]!;
      const head = req.method === 'HEAD';
      const send = (status: number, body?: Buffer, headers: Record<string, string | number> = {}) => {
        this.requests.push({ method: req.method ?? '', path, status });
        res.writeHead(status, { 'docker-distribution-api-version': 'registry/2.0', ...headers });
        res.end(head ? undefined : body);
      };
      const error = (status: number, code: string, message: string) =>
        send(status, Buffer.from(JSON.stringify({ errors: [{ code, message }] })), { 'content-type': 'application/json' });
      if (req.method !== 'GET' && !head) return error(405, 'UNSUPPORTED', 'this mirror serves pulls only');
      if (path === '/v2/' || path === '/v2') return send(200, Buffer.from('{}'), { 'content-type': 'application/json' });
      if (path.startsWith(manifestPath)) {
        const ref = path.slice(manifestPath.length);
        // By digest only: the bake never pulls by tag, and a mirror answering a tag could drift.
        if (ref !== digest) return error(404, 'MANIFEST_UNKNOWN', `manifest unknown: ${ref}`);
        return send(200, manifest, { 'content-type': MANIFEST_V2, 'content-length': manifest.length, 'docker-content-digest': digest });
      }
      if (path.startsWith(blobPath)) {
        const blob = blobs.get(path.slice(blobPath.length));
        if (!blob) return error(404, 'BLOB_UNKNOWN', 'blob unknown');
        return send(200, blob, { 'content-type': 'application/octet-stream', 'content-length': blob.length, 'docker-content-digest': path.slice(blobPath.length) });
      }
      return error(404, 'NAME_UNKNOWN', `repository name not known to registry: ${path}`);
    });
    return new Promise((resolve) => this.server!.listen(0, '127.0.0.1', () => resolve((this.server!.address() as AddressInfo).port)));
  }

  stop(): Promise<void> {
    return new Promise((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
