/**
 * A small client of the OCI distribution API: resolve a tag to its manifest digest (what Flui deploys), check a
 * login, and push a small image (what the GitHub emulator's runner and the sandbox do), monolithically or in chunks.
 *
 * Auth: Basic credentials, and the Bearer token flow (a 401 with `WWW-Authenticate: Bearer realm=...,service=...,
 * scope=...` is answered by asking the realm for a token with the Basic credentials, then retrying). Plain HTTP for
 * hosts in `insecureHosts` (default 127.0.0.1 and localhost, any port), HTTPS otherwise.
 *
 * Errors are {@link RegistryError}s: {@link RegistryUnauthorizedError} for 401/403 ("unauthorized"),
 * {@link RegistryNotFoundError} for a missing manifest ("not found"), and `retryable` set for 5xx, 429, timeouts and
 * connection errors. No Temporal here: activities map these to failures.
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
  /** Per request (default 30 s). */
  timeoutMs?: number;
  /** Aborts whatever is in flight (a cancelled build). */
  signal?: AbortSignal;
}

export type RegistryErrorReason = 'unauthorized' | 'not-found' | 'unavailable' | 'invalid' | 'aborted';

export class RegistryError extends Error {
  readonly status: number | undefined;
  readonly reason: RegistryErrorReason;
  /** 5xx, 429, timeouts and connection errors: worth retrying. */
  readonly retryable: boolean;
  constructor(
    message: string,
    status: number | undefined,
    options?: { cause?: unknown; reason?: RegistryErrorReason },
  ) {
    super(message, options);
    this.name = 'RegistryError';
    this.status = status;
    this.reason =
      options?.reason ??
      (status === 401 || status === 403
        ? 'unauthorized'
        : status === 404
          ? 'not-found'
          : status === undefined || status === 429 || status >= 500
            ? 'unavailable'
            : 'invalid');
    this.retryable = this.reason === 'unavailable';
  }
}

/** The registry refused the credentials (or anonymous access): 401 or 403. Not retryable. */
export class RegistryUnauthorizedError extends RegistryError {
  constructor(message: string, status: 401 | 403) {
    super(message, status, { reason: 'unauthorized' });
    this.name = 'RegistryUnauthorizedError';
  }
}

/** The manifest (tag or digest) does not exist. Not retryable. */
export class RegistryNotFoundError extends RegistryError {
  constructor(message: string) {
    super(message, 404, { reason: 'not-found' });
    this.name = 'RegistryNotFoundError';
  }
}

export const MANIFEST_TYPES = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
];

function baseUrl(host: string, opts: RegistryOptions): string {
  const hostname = host.replace(/:\d+$/, '');
  const insecure = (opts.insecureHosts ?? ['127.0.0.1', 'localhost']).some((h) => h === host || h === hostname);
  return `${insecure ? 'http' : 'https'}://${host}`;
}

const sha256 = (data: Buffer | string) => `sha256:${createHash('sha256').update(data).digest('hex')}`;
const basic = (c: RegistryCredentials) => `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;

/** One conversation with a registry: remembers the Bearer token the last challenge earned. */
class Session {
  readonly host: string;
  readonly base: string;
  readonly #repository: string | undefined;
  readonly #opts: RegistryOptions;
  #authorization: string | undefined;

  constructor(host: string, repository: string | undefined, opts: RegistryOptions) {
    this.host = host;
    this.#repository = repository;
    this.#opts = opts;
    this.base = baseUrl(host, opts);
    this.#authorization = opts.credentials ? basic(opts.credentials) : undefined;
  }

  #signal(): AbortSignal {
    const timeout = AbortSignal.timeout(this.#opts.timeoutMs ?? 30_000);
    return this.#opts.signal ? AbortSignal.any([timeout, this.#opts.signal]) : timeout;
  }

  #unreachable(err: unknown, what: string): RegistryError {
    if (this.#opts.signal?.aborted) {
      return new RegistryError(`${what} on registry ${this.host} was aborted`, undefined, {
        cause: err,
        reason: 'aborted',
      });
    }
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const detail = cause?.code ?? cause?.message ?? (err as Error).message;
    return new RegistryError(`registry ${this.host} unreachable (${what}): ${detail}`, undefined, { cause: err });
  }

  /** A request with auth; a Bearer challenge is answered once per request. 401/403 throw. */
  async fetch(
    path: string,
    init: RequestInit & { headers?: Record<string, string> } = {},
    what = path,
  ): Promise<Response> {
    const url = /^https?:/.test(path) ? path : `${this.base}${path}`;
    for (let attempt = 0; ; attempt++) {
      let res: Response;
      try {
        res = await fetch(url, {
          ...init,
          redirect: 'follow',
          headers: { ...init.headers, ...(this.#authorization ? { authorization: this.#authorization } : {}) },
          signal: this.#signal(),
        });
      } catch (err) {
        throw this.#unreachable(err, what);
      }
      if (res.status === 401 && attempt === 0) {
        const challenge = res.headers.get('www-authenticate') ?? '';
        await res.body?.cancel();
        if (/^Bearer /i.test(challenge)) {
          this.#authorization = `Bearer ${await this.#token(challenge)}`;
          continue;
        }
        throw this.#refused(401, what);
      }
      if (res.status === 401 || res.status === 403) {
        await res.body?.cancel();
        throw this.#refused(res.status, what);
      }
      return res;
    }
  }

  #refused(status: 401 | 403, what: string): RegistryUnauthorizedError {
    const who = this.#opts.credentials ? 'the credentials' : 'anonymous access';
    return new RegistryUnauthorizedError(
      `registry ${this.host} refused ${who} (${status} unauthorized) for ${what}`,
      status,
    );
  }

  /** The Bearer token flow: ask the realm for a token for the challenged scope, with Basic credentials if any. */
  async #token(challenge: string): Promise<string> {
    const params = Object.fromEntries([...challenge.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (!params.realm) {
      throw new RegistryError(`registry ${this.host} sent an unusable challenge: ${challenge}`, 401, {
        reason: 'unauthorized',
      });
    }
    const url = new URL(params.realm);
    if (params.service) url.searchParams.set('service', params.service);
    const scope = params.scope ?? (this.#repository ? `repository:${this.#repository}:pull,push` : undefined);
    if (scope) url.searchParams.set('scope', scope);
    if (this.#opts.credentials) url.searchParams.set('account', this.#opts.credentials.username);
    let res: Response;
    try {
      res = await fetch(url, {
        headers: this.#opts.credentials ? { authorization: basic(this.#opts.credentials) } : {},
        signal: this.#signal(),
      });
    } catch (err) {
      throw this.#unreachable(err, 'token request');
    }
    if (res.status === 401 || res.status === 403) {
      await res.body?.cancel();
      throw this.#refused(res.status, `a token from ${url.origin}`);
    }
    if (!res.ok) {
      await res.body?.cancel();
      throw new RegistryError(`registry token service ${url.origin} answered ${res.status}`, res.status);
    }
    const body = (await res.json().catch(() => ({}))) as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    if (!token) {
      throw new RegistryError(`registry token service ${url.origin} returned no token`, res.status, {
        reason: 'invalid',
      });
    }
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

/**
 * The digest of the manifest (or index) `image` names, as the registry computes it (`Docker-Content-Digest` of a
 * HEAD). A missing tag throws {@link RegistryNotFoundError}.
 */
export async function headManifest(
  image: string,
  opts: RegistryOptions = {},
): Promise<{ digest: string; mediaType: string }> {
  const ref = parseImageReference(image);
  const session = new Session(ref.host, ref.repository, opts);
  const what = `manifest ${ref.repository}:${ref.tag ?? ref.digest}`;
  const res = await session.fetch(
    `/v2/${ref.repository}/manifests/${ref.digest ?? ref.tag ?? 'latest'}`,
    { method: 'HEAD', headers: { accept: MANIFEST_TYPES.join(', ') } },
    what,
  );
  if (res.status === 404) throw new RegistryNotFoundError(`${image} not found in the registry`);
  await expectStatus(res, [200], `HEAD ${what}`, ref.host);
  const digest = res.headers.get('docker-content-digest');
  if (!digest) {
    throw new RegistryError(`registry ${ref.host} did not report a digest for ${image}`, res.status, {
      reason: 'invalid',
    });
  }
  return { digest, mediaType: res.headers.get('content-type') ?? '' };
}

/** What `docker login` checks: GET /v2/ with the credentials (Basic or the token flow). Throws when refused. */
export async function checkLogin(registry: string, opts: RegistryOptions = {}): Promise<void> {
  const session = new Session(registry, undefined, opts);
  const res = await session.fetch('/v2/', { method: 'GET' }, 'login');
  await res.body?.cancel();
  if (res.status !== 200) await expectStatus(res, [200], 'GET /v2/', registry);
}

async function pushBlob(
  session: Session,
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
  if (chunkSize && chunkSize > 0) {
    for (let offset = 0; offset < data.length; offset += chunkSize) {
      const chunk = data.subarray(offset, Math.min(data.length, offset + chunkSize));
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
  const chunked = Boolean(chunkSize && chunkSize > 0);
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

/** A tar of `files` (regular files, mode 0644, fixed mtime so the same files give the same layer). */
export function tar(files: Record<string, string | Buffer>): Buffer {
  const blocks: Buffer[] = [];
  for (const [name, content] of Object.entries(files).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const body = Buffer.isBuffer(content) ? content : Buffer.from(content);
    const header = Buffer.alloc(512);
    const bytes = Buffer.from(name);
    if (bytes.length > 100) {
      // ustar: the last `/` that leaves at most 100 bytes of name and 155 of prefix.
      const cut = bytes.lastIndexOf(0x2f, 155);
      if (cut <= 0 || bytes.length - cut - 1 > 100) throw new Error(`path too long for a tar layer: ${name}`);
      bytes.subarray(cut + 1).copy(header, 0);
      bytes.subarray(0, cut).copy(header, 345);
    } else {
      bytes.copy(header, 0);
    }
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
  const session = new Session(ref.host, ref.repository, opts);
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
