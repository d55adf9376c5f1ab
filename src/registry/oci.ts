/**
 * A small client of the OCI distribution API: resolve a tag to its manifest digest (what Flui deploys), and push a
 * small image (what the GitHub emulator's runner and the sandbox do). Speaks Basic auth and the Bearer token flow
 * (`WWW-Authenticate` challenge), plain HTTP for local registries and HTTPS otherwise.
 */
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { parseImageReference, type ImageReference } from './reference.ts';

export interface RegistryCredentials {
  username: string;
  password: string;
}

export interface RegistryOptions {
  credentials?: RegistryCredentials;
  /** Hosts spoken to over plain HTTP (default: 127.0.0.1 and localhost on any port). */
  insecureHosts?: string[];
  timeoutMs?: number;
}

export class RegistryError extends Error {
  readonly status: number | undefined;
  /** 5xx, 429, timeouts and connection errors: worth retrying. */
  readonly retryable: boolean;
  constructor(message: string, status: number | undefined, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RegistryError';
    this.status = status;
    this.retryable = status === undefined || status === 429 || status >= 500;
  }
}

export const MANIFEST_TYPES = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
];

function baseUrl(ref: ImageReference, opts: RegistryOptions): string {
  const hostname = ref.host.replace(/:\d+$/, '');
  const insecure = (opts.insecureHosts ?? ['127.0.0.1', 'localhost']).some((h) => h === ref.host || h === hostname);
  return `${insecure ? 'http' : 'https'}://${ref.host}`;
}

const sha256 = (data: Buffer | string) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

/** One registry session: remembers the Bearer token a challenge earned, per scope. */
class Session {
  readonly #ref: ImageReference;
  readonly #opts: RegistryOptions;
  readonly #base: string;
  #authorization: string | undefined;

  constructor(ref: ImageReference, opts: RegistryOptions) {
    this.#ref = ref;
    this.#opts = opts;
    this.#base = baseUrl(ref, opts);
    const c = opts.credentials;
    this.#authorization = c ? `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}` : undefined;
  }

  async fetch(
    path: string,
    init: RequestInit & { headers?: Record<string, string> } = {},
    what = path,
  ): Promise<Response> {
    const url = path.startsWith('http') ? path : `${this.#base}${path}`;
    for (let attempt = 0; ; attempt++) {
      let res: Response;
      try {
        res = await fetch(url, {
          ...init,
          redirect: 'follow',
          headers: { ...init.headers, ...(this.#authorization ? { authorization: this.#authorization } : {}) },
          signal: AbortSignal.timeout(this.#opts.timeoutMs ?? 30_000),
        });
      } catch (err) {
        throw new RegistryError(
          `registry ${this.#ref.host} unreachable (${what}): ${(err as Error).message}`,
          undefined,
          { cause: err },
        );
      }
      if (res.status === 401 && attempt === 0) {
        const challenge = res.headers.get('www-authenticate') ?? '';
        await res.body?.cancel();
        if (/^Bearer /i.test(challenge)) {
          this.#authorization = `Bearer ${await this.#token(challenge)}`;
          continue;
        }
      }
      if (res.status === 401 || res.status === 403) {
        await res.body?.cancel();
        throw new RegistryError(
          `registry ${this.#ref.host} refused ${this.#opts.credentials ? 'the credentials' : 'anonymous access'} (${res.status}) for ${what}`,
          res.status,
        );
      }
      return res;
    }
  }

  /** The Bearer token flow: ask the realm for a token for the challenged scope, with Basic credentials if any. */
  async #token(challenge: string): Promise<string> {
    const params = Object.fromEntries([...challenge.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (!params.realm)
      throw new RegistryError(`registry ${this.#ref.host} sent an unusable challenge: ${challenge}`, 401);
    const url = new URL(params.realm);
    if (params.service) url.searchParams.set('service', params.service);
    url.searchParams.set('scope', params.scope ?? `repository:${this.#ref.repository}:pull,push`);
    const c = this.#opts.credentials;
    const res = await fetch(url, {
      headers: c ? { authorization: `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}` } : {},
      signal: AbortSignal.timeout(this.#opts.timeoutMs ?? 30_000),
    });
    if (!res.ok) throw new RegistryError(`registry token service refused (${res.status})`, res.status);
    const body = (await res.json()) as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    if (!token) throw new RegistryError('registry token service returned no token', 401);
    return token;
  }
}

async function expectStatus(res: Response, ok: number[], what: string, host: string): Promise<Response> {
  if (ok.includes(res.status)) return res;
  const text = await res.text().catch(() => '');
  const detail = /"message":"([^"]+)"/.exec(text)?.[1] ?? text.slice(0, 200);
  throw new RegistryError(
    `registry ${host} answered ${res.status} to ${what}${detail ? `: ${detail}` : ''}`,
    res.status,
  );
}

/** The digest of the manifest (or index) `image` names, as the registry computes it. Throws 404 as RegistryError. */
export async function headManifest(
  image: string,
  opts: RegistryOptions = {},
): Promise<{ digest: string; mediaType: string }> {
  const ref = parseImageReference(image);
  const session = new Session(ref, opts);
  const what = `manifest ${ref.repository}:${ref.tag ?? ref.digest}`;
  const res = await session.fetch(
    `/v2/${ref.repository}/manifests/${ref.digest ?? ref.tag ?? 'latest'}`,
    { method: 'HEAD', headers: { accept: MANIFEST_TYPES.join(', ') } },
    what,
  );
  if (res.status === 404) throw new RegistryError(`${image} not found in the registry`, 404);
  await expectStatus(res, [200], `HEAD ${what}`, ref.host);
  const digest = res.headers.get('docker-content-digest');
  if (!digest) throw new RegistryError(`registry ${ref.host} did not report a digest for ${image}`, res.status);
  return { digest, mediaType: res.headers.get('content-type') ?? '' };
}

async function pushBlob(session: Session, ref: ImageReference, opts: RegistryOptions, data: Buffer): Promise<string> {
  const digest = sha256(data);
  const exists = await session.fetch(`/v2/${ref.repository}/blobs/${digest}`, { method: 'HEAD' }, `blob ${digest}`);
  if (exists.status === 200) return digest;
  const start = await expectStatus(
    await session.fetch(`/v2/${ref.repository}/blobs/uploads/`, { method: 'POST' }, 'blob upload'),
    [202],
    'blob upload start',
    ref.host,
  );
  // The Location may be absolute or relative to the registry.
  const upload = new URL(start.headers.get('location') ?? '', baseUrl(ref, opts));
  upload.searchParams.set('digest', digest);
  await expectStatus(
    await session.fetch(
      upload.toString(),
      { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: data },
      'blob upload',
    ),
    [201],
    'blob upload',
    ref.host,
  );
  return digest;
}

/** A tar of `files` (regular files, mode 0644, fixed mtime so the same files give the same layer). */
export function tar(files: Record<string, string | Buffer>): Buffer {
  const blocks: Buffer[] = [];
  for (const [name, content] of Object.entries(files).sort(([a], [b]) => a.localeCompare(b))) {
    const body = Buffer.isBuffer(content) ? content : Buffer.from(content);
    const header = Buffer.alloc(512);
    header.write(name.slice(0, 100), 0, 'utf8');
    header.write('0000644\0', 100);
    header.write('0000000\0', 108);
    header.write('0000000\0', 116);
    header.write(`${body.length.toString(8).padStart(11, '0')}\0`, 124);
    header.write('00000000000\0', 136);
    header.write('        ', 148);
    header.write('0', 156);
    header.write('ustar\0', 257);
    header.write('00', 263);
    let sum = 0;
    for (const byte of header) sum += byte;
    header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
    blocks.push(header, body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

/** Pushes a one-layer image made of `files` as `image` (a tag); returns the manifest digest. */
export async function pushImage(
  image: string,
  opts: RegistryOptions & { files: Record<string, string | Buffer>; labels?: Record<string, string> },
): Promise<{ digest: string; size: number }> {
  const ref = parseImageReference(image);
  const session = new Session(ref, opts);
  const archive = tar(opts.files);
  const layer = gzipSync(archive, { level: 6 });
  const diffId = sha256(archive);
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Labels: opts.labels ?? {} },
      rootfs: { type: 'layers', diff_ids: [diffId] },
    }),
  );
  const configDigest = await pushBlob(session, ref, opts, config);
  const layerDigest = await pushBlob(session, ref, opts, layer);
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
  return {
    digest: res.headers.get('docker-content-digest') ?? sha256(manifest),
    size: layer.length + config.length + manifest.length,
  };
}
