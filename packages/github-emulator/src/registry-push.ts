/**
 * The client side of a registry push, as `docker login` and `docker push` do it: what the emulated CI's runner and
 * the sandbox use to put a small image into a real registry. Harness only: Flui itself never pushes. It speaks through
 * Flui's own registry session (Basic and Bearer auth, insecure hosts), so credentials are handled one way everywhere.
 */
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { pack } from 'tar-stream';
import { expectStatus, RegistrySession, type RegistryOptions } from '../../../src/registry/oci.ts';
import { parseImageReference, type ImageReference } from '../../../src/registry/reference.ts';

const sha256 = (data: Buffer | string) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

/** What `docker login` checks: GET /v2/ with the credentials (Basic or the token flow). Throws when refused. */
export async function checkLogin(registry: string, opts: RegistryOptions = {}): Promise<void> {
  const session = new RegistrySession(registry, undefined, opts);
  const res = await session.fetch('/v2/', { method: 'GET' }, 'login');
  await res.body?.cancel();
  if (res.status !== 200) await expectStatus(res, [200], 'GET /v2/', registry);
}

/** A tar of `files`: regular files, mode 0644, sorted, mtime 0, so the same files always give the same layer. */
export async function tar(files: Record<string, string | Buffer>): Promise<Buffer> {
  const archive = pack();
  const chunks: Buffer[] = [];
  archive.on('data', (chunk: unknown) => chunks.push(chunk as Buffer));
  const ended = new Promise<void>((resolve, reject) => {
    archive.on('end', resolve);
    archive.on('error', reject);
  });
  for (const name of Object.keys(files).sort()) {
    const content = files[name]!;
    archive.entry({ name, mode: 0o644, mtime: new Date(0) }, Buffer.isBuffer(content) ? content : Buffer.from(content));
  }
  archive.finalize();
  await ended;
  return Buffer.concat(chunks);
}

async function pushBlob(
  session: RegistrySession,
  ref: ImageReference,
  data: Buffer,
  chunkSize: number | undefined,
): Promise<string> {
  const digest = sha256(data);
  const exists = await session.fetch(`/v2/${ref.repository}/blobs/${digest}`, { method: 'HEAD' }, `blob ${digest}`);
  await exists.body?.cancel();
  if (exists.status === 200) return digest;
  const start = await expectStatus(
    await session.fetch(`/v2/${ref.repository}/blobs/uploads/`, { method: 'POST' }, 'blob upload'),
    [202],
    'blob upload start',
    ref.host,
  );
  await start.body?.cancel();
  // Each answer names where the upload continues; the Location may be absolute or relative to the registry.
  let location = new URL(start.headers.get('location') ?? '', session.base);
  const chunked = Boolean(chunkSize && chunkSize > 0);
  if (chunked) {
    for (let offset = 0; offset < data.length; offset += chunkSize!) {
      const chunk = data.subarray(offset, Math.min(data.length, offset + chunkSize!));
      const res = await expectStatus(
        await session.fetch(
          location.toString(),
          {
            method: 'PATCH',
            headers: {
              'content-type': 'application/octet-stream',
              'content-range': `${offset}-${offset + chunk.length - 1}`,
              'content-length': String(chunk.length),
            },
            body: chunk,
          },
          'blob chunk',
        ),
        [202],
        `blob chunk at ${offset}`,
        ref.host,
      );
      await res.body?.cancel();
      location = new URL(res.headers.get('location') ?? location.toString(), session.base);
    }
  }
  location.searchParams.set('digest', digest);
  const done = await expectStatus(
    await session.fetch(
      location.toString(),
      chunked
        ? { method: 'PUT', headers: { 'content-length': '0' } }
        : { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: data },
      'blob upload',
    ),
    [201],
    'blob upload',
    ref.host,
  );
  await done.body?.cancel();
  return digest;
}

export interface PushOptions extends RegistryOptions {
  files: Record<string, string | Buffer>;
  labels?: Record<string, string>;
  /** Upload blobs in PATCH chunks of this many bytes (default: one monolithic PUT). */
  chunkSize?: number;
}

/**
 * Pushes a one-layer image made of `files` as `image` (a tag): the layer (tar+gzip), an OCI config and an OCI
 * manifest. Returns the manifest digest the registry reports.
 */
export async function pushImage(image: string, opts: PushOptions): Promise<{ digest: string; size: number }> {
  const ref = parseImageReference(image);
  const session = new RegistrySession(ref.host, ref.repository, opts);
  const archive = await tar(opts.files);
  const layer = gzipSync(archive, { level: 6 });
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Labels: opts.labels ?? {} },
      rootfs: { type: 'layers', diff_ids: [sha256(archive)] },
    }),
  );
  const configDigest = await pushBlob(session, ref, config, opts.chunkSize);
  const layerDigest = await pushBlob(session, ref, layer, opts.chunkSize);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layerDigest, size: layer.length }],
    }),
  );
  const res = await expectStatus(
    await session.fetch(
      `/v2/${ref.repository}/manifests/${ref.tag ?? 'latest'}`,
      { method: 'PUT', headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }, body: manifest },
      `manifest ${ref.repository}:${ref.tag}`,
    ),
    [201],
    'manifest upload',
    ref.host,
  );
  await res.body?.cancel();
  return {
    digest: res.headers.get('docker-content-digest') ?? sha256(manifest),
    size: layer.length + config.length + manifest.length,
  };
}
