/**
 * Who may call, and how often: tokens (fine-grained and GitHub App installation tokens), GitHub App JWTs verified
 * with node:crypto, fine-grained permissions, and GitHub's primary rate limit per token or installation.
 */
import { createPublicKey, verify } from 'node:crypto';
import type { Route } from './http.ts';
import type { Store, Token } from './store.ts';

/** A GitHub App JWT's problem in GitHub's words, or the app id when it is valid. */
export function verifyAppJwt(store: Store, authorization: string | undefined): { appId: string } | { problem: string } {
  const jwt = /^Bearer (.+)$/i.exec(authorization ?? '')?.[1];
  const [h, p, s] = jwt?.split('.') ?? [];
  const undecodable = { problem: 'A JSON web token could not be decoded' };
  if (!h || !p || !s) return undecodable;
  let header: { alg?: string };
  let claims: { iss?: string | number; exp?: number; iat?: number };
  try {
    header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8'));
    claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
  } catch {
    return undecodable;
  }
  if (header.alg !== 'RS256') return undecodable;
  const appId = String(claims.iss);
  const app = store.state.apps[appId];
  if (!app) return { problem: 'Integration not found' };
  const ok = verify(
    'RSA-SHA256',
    Buffer.from(`${h}.${p}`),
    createPublicKey(app.publicKeyPem),
    Buffer.from(s, 'base64url'),
  );
  if (!ok) return undecodable;
  const nowS = Date.now() / 1000;
  if (typeof claims.exp !== 'number' || claims.exp < nowS) {
    return {
      problem:
        "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires",
    };
  }
  // GitHub allows at most ten minutes between issue and expiry, and an issue time not in the future.
  if (typeof claims.iat !== 'number' || claims.iat > nowS + 60) {
    return {
      problem: "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued",
    };
  }
  if (claims.exp - claims.iat > 600 + 60)
    return { problem: "'Expiration time' claim ('exp') is too far in the future" };
  return { appId };
}

/** Whether `grant` sees `fullName` (case-insensitive, as GitHub's names are). */
export function canSee(grant: Token, fullName: string): boolean {
  const full = fullName.toLowerCase();
  if (grant.owner !== undefined && grant.owner.toLowerCase() !== full.split('/')[0]) return false;
  return !grant.repos || grant.repos.some((r) => r.toLowerCase() === full);
}

/**
 * Whose primary rate limit a request spends: an installation token spends its installation's (every token of one
 * installation shares it, and installations never share), any other token its own.
 */
export function budgetOf(token: string, grant: Token | undefined): string {
  return grant?.kind === 'installation' && grant.installationId !== undefined
    ? `installation:${grant.installationId}`
    : token;
}

/** GitHub's 403 message when a token lacks the permission an operation needs, or undefined when it has it. */
export function lacksPermission(grant: Token, need: Route['permission']): string | undefined {
  if (!need) return undefined;
  const have = grant.permissions?.[need.area] ?? 'write';
  if (have === 'write' || (have === 'read' && need.level === 'read')) return undefined;
  return grant.kind === 'installation'
    ? 'Resource not accessible by integration'
    : 'Resource not accessible by personal access token';
}

interface Budget {
  used: number;
  /** Epoch ms when the window resets. */
  reset: number;
  exhaustedUntil?: number;
}

/**
 * The primary rate limit: `limit` requests per budget (a token, or an installation: see {@link budgetOf}) per hour,
 * with GitHub's `x-ratelimit-*` headers. A fault can make one budget's (or every budget's) remaining read 0 until a
 * time.
 */
export class RateLimits {
  readonly limit: number;
  readonly #budgets = new Map<string, Budget>();
  #exhaustAllUntil = 0;
  /** Status of a primary-limit refusal: GitHub documents 403 and 429. */
  status: 403 | 429 = 403;

  constructor(limit: number) {
    this.limit = limit;
  }

  #budget(key: string): Budget {
    let b = this.#budgets.get(key);
    const t = Date.now();
    if (!b || b.reset <= t) {
      b = { used: 0, reset: t + 3600_000, exhaustedUntil: b?.exhaustedUntil };
      this.#budgets.set(key, b);
    }
    return b;
  }

  state(key: string): { remaining: number; reset: number; used: number } {
    const b = this.#budget(key);
    const exhaustedUntil = Math.max(b.exhaustedUntil ?? 0, this.#exhaustAllUntil);
    if (exhaustedUntil > Date.now()) return { remaining: 0, reset: exhaustedUntil, used: this.limit };
    return { remaining: Math.max(0, this.limit - b.used), reset: b.reset, used: b.used };
  }

  charge(key: string): void {
    this.#budget(key).used++;
  }

  exhaust(forMs: number, key?: string): void {
    if (key) this.#budget(key).exhaustedUntil = Date.now() + forMs;
    else this.#exhaustAllUntil = Date.now() + forMs;
  }

  clearFaults(): void {
    this.#exhaustAllUntil = 0;
    this.status = 403;
    for (const b of this.#budgets.values()) b.exhaustedUntil = undefined;
  }

  headers(key: string): Record<string, string> {
    const r = this.state(key);
    return {
      'x-ratelimit-limit': String(this.limit),
      'x-ratelimit-remaining': String(r.remaining),
      'x-ratelimit-used': String(r.used),
      'x-ratelimit-reset': String(Math.ceil(r.reset / 1000)),
      'x-ratelimit-resource': 'core',
    };
  }

  /** The body of GET /rate_limit for a budget. */
  overview(key: string) {
    const r = this.state(key);
    const core = { limit: this.limit, remaining: r.remaining, reset: Math.ceil(r.reset / 1000), used: r.used };
    const other = (limit: number) => ({ limit, remaining: limit, reset: Math.ceil(Date.now() / 1000) + 3600, used: 0 });
    return {
      resources: { core, search: other(30), graphql: other(5000), integration_manifest: other(5000) },
      rate: core,
    };
  }
}
