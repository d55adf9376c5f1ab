/**
 * A small client of the OCI distribution API: resolve a tag to its manifest digest (what Flui deploys). The push side
 * (what the emulated CI and the sandbox do) lives with the emulator, on top of {@link RegistrySession}.
 *
 * Auth, as a careful docker client does it: every conversation starts anonymous; credentials, which belong to one
 * registry host, go to that host only after its own 401 challenge (`Basic`), or to a token realm (`Bearer realm=...`)
 * only when the realm is on the registry's own origin or among the realms configured for it; any other realm is asked
 * anonymously. A redirect to another origin is followed without the Authorization header, and no header is ever sent
 * to a URL outside the registry's origin (a blob upload's Location may point elsewhere). Plain HTTP for hosts in
 * `insecureHosts` (default 127.0.0.1 and localhost, any port), HTTPS otherwise.
 *
 * Errors are {@link RegistryError}s, Flui's service errors (src/errors.ts): {@link RegistryUnauthorizedError} for
 * 401/403 (kind `unauthorized`), {@link RegistryNotFoundError} for a missing manifest (`not-found`), `unavailable`
 * (retryable) for 5xx, timeouts and connection errors. No Temporal here: activities map these to failures.
 */
import { kindOfStatus, ServiceError, type ServiceErrorKind } from '../errors.ts';
import { parseImageReference } from './reference.ts';

export interface RegistryCredentials {
  username: string;
  password: string;
}

export interface RegistryOptions {
  /** Credentials of this registry's host: sent only after its own challenge, never on a first request. */
  credentials?: RegistryCredentials;
  /** Token realms on another origin (`https://auth.example.com`) trusted with the credentials of this registry. */
  trustedRealms?: string[];
  /**
   * A registry token to send as `Bearer` from the first request, instead of credentials (a docker config's
   * `registrytoken`): no token service is asked, and a 401 is a refusal.
   */
  bearerToken?: string;
  /** Hosts spoken to over plain HTTP (default: 127.0.0.1 and localhost on any port). */
  insecureHosts?: string[];
  /** Per request (default 30 s). */
  timeoutMs?: number;
  /** Aborts whatever is in flight (a cancelled build). */
  signal?: AbortSignal;
}

/** A registry call that failed; its kind follows the HTTP status (none: unreachable, hence `unavailable`). */
export class RegistryError extends ServiceError {
  /** The caller aborted the call (a cancelled build): nothing the registry did, and not worth retrying. */
  readonly aborted: boolean;
  constructor(
    message: string,
    status: number | undefined,
    options?: { cause?: unknown; kind?: ServiceErrorKind; aborted?: boolean },
  ) {
    super({ service: 'Registry', kind: options?.kind ?? kindOfStatus(status), message, status, cause: options?.cause });
    this.name = 'RegistryError';
    this.aborted = options?.aborted ?? false;
  }

  override get retryable(): boolean {
    return !this.aborted && super.retryable;
  }
}

/** The registry refused the credentials (or anonymous access): 401 or 403. Not retryable. */
export class RegistryUnauthorizedError extends RegistryError {
  constructor(message: string, status: 401 | 403) {
    super(message, status, { kind: 'unauthorized' });
    this.name = 'RegistryUnauthorizedError';
  }
}

/** The manifest (tag or digest) does not exist. Not retryable. */
export class RegistryNotFoundError extends RegistryError {
  constructor(message: string) {
    super(message, 404, { kind: 'not-found' });
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

const basic = (c: RegistryCredentials) => `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;

/** Hosts that challenged for Basic credentials: later conversations with them send credentials at once. */
const basicHosts = new Set<string>();
const MAX_REDIRECTS = 5;

/** One conversation with a registry: remembers the Bearer token the last challenge earned. */
export class RegistrySession {
  readonly host: string;
  readonly base: string;
  readonly #origin: string;
  readonly #repository: string | undefined;
  readonly #opts: RegistryOptions;
  #authorization: string | undefined;
  /** A token realm on another origin that was asked anonymously: the likely cause of a refusal. */
  #untrustedRealm: string | undefined;

  constructor(host: string, repository: string | undefined, opts: RegistryOptions) {
    this.host = host;
    this.#repository = repository;
    this.#opts = opts;
    this.base = baseUrl(host, opts);
    this.#origin = new URL(this.base).origin;
    // A registry token (a docker config's `registrytoken`) is this host's own, sent from the first request; a host that
    // asked for Basic credentials before gets them at once, skipping the anonymous round trip it would refuse again.
    if (opts.bearerToken) this.#authorization = `Bearer ${opts.bearerToken}`;
    else if (opts.credentials && basicHosts.has(this.#origin)) this.#authorization = basic(opts.credentials);
  }

  #signal(): AbortSignal {
    const timeout = AbortSignal.timeout(this.#opts.timeoutMs ?? 30_000);
    return this.#opts.signal ? AbortSignal.any([timeout, this.#opts.signal]) : timeout;
  }

  #unreachable(err: unknown, what: string): RegistryError {
    if (this.#opts.signal?.aborted) {
      return new RegistryError(`${what} on registry ${this.host} was aborted`, undefined, {
        cause: err,
        aborted: true,
      });
    }
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const detail = cause?.code ?? cause?.message ?? (err as Error).message;
    return new RegistryError(`registry ${this.host} unreachable (${what}): ${detail}`, undefined, { cause: err });
  }

  /**
   * One request, redirects followed by hand: the Authorization header goes only to the registry's own origin, so
   * neither a redirect nor an absolute Location can carry it to another host.
   */
  async #send(url: URL, init: RequestInit & { headers?: Record<string, string> }, what: string): Promise<Response> {
    for (let hops = 0; ; hops++) {
      const ours = url.origin === this.#origin;
      let res: Response;
      try {
        res = await fetch(url, {
          ...init,
          redirect: 'manual',
          headers: { ...init.headers, ...(ours && this.#authorization ? { authorization: this.#authorization } : {}) },
          signal: this.#signal(),
        });
      } catch (err) {
        throw this.#unreachable(err, what);
      }
      const location = res.headers.get('location');
      if (![301, 302, 303, 307, 308].includes(res.status) || !location || hops >= MAX_REDIRECTS) return res;
      await res.body?.cancel();
      url = new URL(location, url);
      // 303 (and 301/302 of a non-GET, as browsers do) continue as a GET without a body.
      if (res.status === 303 || ((res.status === 301 || res.status === 302) && init.method !== 'HEAD')) {
        init = { ...init, method: 'GET', body: undefined };
      }
    }
  }

  /** A request with auth; a challenge is answered once per request. 401/403 throw. */
  async fetch(
    path: string,
    init: RequestInit & { headers?: Record<string, string> } = {},
    what = path,
  ): Promise<Response> {
    const url = new URL(/^https?:/.test(path) ? path : `${this.base}${path}`);
    for (let attempt = 0; ; attempt++) {
      const res = await this.#send(url, init, what);
      if (res.status === 401 && attempt === 0 && url.origin === this.#origin && !this.#opts.bearerToken) {
        const challenge = res.headers.get('www-authenticate') ?? '';
        await res.body?.cancel();
        if (/^Bearer /i.test(challenge)) {
          this.#authorization = `Bearer ${await this.#token(challenge)}`;
          continue;
        }
        if (/^Basic /i.test(challenge) && this.#opts.credentials && !this.#authorization?.startsWith('Basic ')) {
          basicHosts.add(this.#origin);
          this.#authorization = basic(this.#opts.credentials);
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

  #refused(
    status: 401 | 403,
    what: string,
    sentCredentials = Boolean(this.#opts.credentials),
  ): RegistryUnauthorizedError {
    const who = this.#opts.bearerToken ? 'the token' : sentCredentials ? 'the credentials' : 'anonymous access';
    const realm = this.#untrustedRealm
      ? `; its token realm ${this.#untrustedRealm} was asked without credentials, as it is not configured for ${this.host}`
      : '';
    return new RegistryUnauthorizedError(
      `registry ${this.host} refused ${who} (${status} unauthorized) for ${what}${realm}`,
      status,
    );
  }

  /**
   * The Bearer token flow: ask the realm for a token for the challenged scope. The credentials go along only to a
   * realm on the registry's own origin or one configured for it; any other realm is asked anonymously.
   */
  async #token(challenge: string): Promise<string> {
    const params = Object.fromEntries([...challenge.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    let url: URL;
    try {
      url = new URL(params.realm ?? '');
    } catch {
      throw new RegistryError(`registry ${this.host} sent an unusable challenge: ${challenge}`, 401);
    }
    if (params.service) url.searchParams.set('service', params.service);
    const scope = params.scope ?? (this.#repository ? `repository:${this.#repository}:pull,push` : undefined);
    if (scope) url.searchParams.set('scope', scope);
    const trusted = url.origin === this.#origin || (this.#opts.trustedRealms ?? []).includes(url.origin);
    const credentials = trusted ? this.#opts.credentials : undefined;
    if (credentials) url.searchParams.set('account', credentials.username);
    // An anonymous token from a realm not trusted with the credentials explains a refusal that follows.
    if (!trusted && this.#opts.credentials) this.#untrustedRealm = url.origin;
    let res: Response;
    try {
      res = await fetch(url, {
        headers: credentials ? { authorization: basic(credentials) } : {},
        redirect: 'error',
        signal: this.#signal(),
      });
    } catch (err) {
      throw this.#unreachable(err, 'token request');
    }
    if (res.status === 401 || res.status === 403) {
      await res.body?.cancel();
      throw this.#refused(res.status, `a token from ${url.origin}`, Boolean(credentials));
    }
    if (!res.ok) {
      await res.body?.cancel();
      throw new RegistryError(`registry token service ${url.origin} answered ${res.status}`, res.status);
    }
    const body = (await res.json().catch(() => ({}))) as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    if (!token) {
      throw new RegistryError(`registry token service ${url.origin} returned no token`, res.status, {
        kind: 'invalid',
      });
    }
    return token;
  }
}

export async function expectStatus(res: Response, ok: number[], what: string, host: string): Promise<Response> {
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
  const session = new RegistrySession(ref.host, ref.repository, opts);
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
      kind: 'invalid',
    });
  }
  return { digest, mediaType: res.headers.get('content-type') ?? '' };
}
