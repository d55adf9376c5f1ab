/**
 * Fault injection: what GitLab does on a bad day, on demand and deterministically (counts and time windows, never
 * chance), so a test can say exactly which requests fail and how. Names follow the GitHub emulator's where the fault
 * is the same.
 */

export interface Faults {
  /**
   * An outage: every API request gets a 503 (GitLab's `{"message": "503 Service Unavailable"}`) or a 502 from the
   * front end, or its connection reset (`mode: 'reset'`), for `forMs` from now or for the next `requests` requests
   * (default: one hour). A later call replaces it.
   */
  outage(opts?: { mode?: '502' | '503' | 'reset'; forMs?: number; requests?: number }): void;
  /** Every API request waits `ms` before it is handled (0: none). */
  latency(ms: number): void;
  /**
   * The rate limit of every token (or of `token`) reads 0 for `forMs`: requests get GitLab's throttled answer, a 429
   * with `Retry-After` and `RateLimit-*` headers (without `Retry-After` when `retryAfter: false`).
   */
  exhaustRateLimit(opts: { forMs: number; token?: string; retryAfter?: boolean }): void;
  /**
   * The next `count` authenticated requests are throttled by a protection GitLab does not announce in headers (for
   * example a path-specific or a front-end limit): 429 `Retry later`, with `Retry-After` only when
   * `retryAfterSeconds` is given. Named after the GitHub emulator's fault of the same nature.
   */
  secondaryLimit(opts: { count: number; retryAfterSeconds?: number }): void;
  /** New pipelines stay `pending` (no runner picks their jobs up) while on; they start as soon as it is off. */
  keepPending(on: boolean): void;
  /** The GitHub emulator's name for {@link keepPending}. */
  keepQueued(on: boolean): void;
  /** At most `count` jobs running at once, like a runner's `concurrent` setting (unlimited by default). */
  runnerCapacity(count: number): void;
  /** The next `count` jobs fail in their script (`failure_reason: script_failure`), before any push. */
  failBuilds(count: number): void;
  /** The next `drop` webhook deliveries are lost; the next `duplicate` ones are delivered twice (same UUIDs). */
  webhooks(opts: { drop?: number; duplicate?: number }): void;
  /**
   * Mutate the next JSON response of `operation` (a documented path such as `/projects/:id/pipelines/:pipeline_id`;
   * optionally only for `method`). Test-only: it proves the contract check catches a wrong response.
   */
  corruptNextResponse(operation: string, mutate: (body: unknown) => unknown, method?: string): void;
  /**
   * The next `count` requests (of `operation`, a documented path, and `method`, when given) are handled — their
   * changes happen — but the connection is reset before the answer leaves, as when a proxy or the network drops
   * it: the client cannot tell whether, say, its pipeline was created.
   */
  loseResponses(opts: { count: number; operation?: string; method?: string }): void;
  /** Back to a healthy GitLab. */
  reset(): void;
}

type Mutation = { method?: string; mutate: (body: unknown) => unknown };

/** The request-level fault state the server consults. */
export class FaultState {
  #outage: { mode: '502' | '503' | 'reset'; until: number; requests: number } | undefined;
  latencyMs = 0;
  #secondary: { count: number; retryAfter: number | undefined } = { count: 0, retryAfter: undefined };
  #drop = 0;
  #duplicate = 0;
  readonly #corrupt = new Map<string, Mutation>();

  setOutage(opts: { mode?: '502' | '503' | 'reset'; forMs?: number; requests?: number } = {}): void {
    const byCount = opts.requests !== undefined && opts.forMs === undefined;
    this.#outage = {
      mode: opts.mode ?? '503',
      until: byCount ? Infinity : Date.now() + (opts.forMs ?? 3600_000),
      requests: byCount ? opts.requests! : Infinity,
    };
  }

  takeOutage(): '502' | '503' | 'reset' | undefined {
    const o = this.#outage;
    if (!o) return undefined;
    if (Date.now() >= o.until || o.requests <= 0) {
      this.#outage = undefined;
      return undefined;
    }
    o.requests--;
    return o.mode;
  }

  setSecondary(count: number, retryAfter: number | undefined): void {
    this.#secondary = { count, retryAfter };
  }

  takeSecondary(): { retryAfter: number | undefined } | undefined {
    if (this.#secondary.count <= 0) return undefined;
    this.#secondary.count--;
    return { retryAfter: this.#secondary.retryAfter };
  }

  setWebhooks(drop = 0, duplicate = 0): void {
    this.#drop = drop;
    this.#duplicate = duplicate;
  }

  /** How many times to deliver the next webhook: 0 (lost), 1 or 2 (delivered again). */
  takeWebhook(): number {
    if (this.#drop > 0) {
      this.#drop--;
      return 0;
    }
    if (this.#duplicate > 0) {
      this.#duplicate--;
      return 2;
    }
    return 1;
  }

  corrupt(operation: string, mutate: Mutation['mutate'], method?: string): void {
    this.#corrupt.set(operation, { method: method?.toUpperCase(), mutate });
  }

  takeCorruption(method: string, operation: string): Mutation['mutate'] | undefined {
    const c = this.#corrupt.get(operation);
    if (!c || (c.method && c.method !== method)) return undefined;
    this.#corrupt.delete(operation);
    return c.mutate;
  }

  #lose: { count: number; operation?: string; method?: string } = { count: 0 };

  setLoseResponses(opts: { count: number; operation?: string; method?: string }): void {
    this.#lose = { ...opts, method: opts.method?.toUpperCase() };
  }

  /** Whether this handled request's answer is lost. */
  takeLostResponse(method: string, operation: string): boolean {
    const l = this.#lose;
    if (l.count <= 0 || (l.operation && l.operation !== operation) || (l.method && l.method !== method)) return false;
    l.count--;
    return true;
  }

  reset(): void {
    this.#lose = { count: 0 };
    this.#outage = undefined;
    this.latencyMs = 0;
    this.#secondary = { count: 0, retryAfter: undefined };
    this.#drop = 0;
    this.#duplicate = 0;
    this.#corrupt.clear();
  }
}

/**
 * GitLab's authenticated API rate limit: requests per token per minute (gitlab.com: 2,000), counted in fixed
 * one-minute windows as Rack::Attack does. Every response to an authenticated request carries
 * `RateLimit-Limit`, `RateLimit-Observed`, `RateLimit-Remaining`, `RateLimit-Reset` (Unix seconds) and
 * `RateLimit-ResetTime` (HTTP date), per "Rate limits" in GitLab's docs; a throttled one adds `Retry-After`.
 */
export class RateLimits {
  readonly limit: number;
  readonly #used = new Map<string, { window: number; count: number }>();
  /** Exhausted budgets (a token, or `*` for all) until a time, and whether their 429 says `Retry-After`. */
  readonly #exhausted = new Map<string, { until: number; retryAfter: boolean }>();

  constructor(limit: number) {
    this.limit = limit;
  }

  #window(): number {
    return Math.floor(Date.now() / 60_000);
  }

  #exhaustion(token: string): { until: number; retryAfter: boolean } | undefined {
    for (const key of [token, '*']) {
      const e = this.#exhausted.get(key);
      if (e && e.until > Date.now()) return e;
      if (e) this.#exhausted.delete(key);
    }
    return undefined;
  }

  /** `{ remaining, reset }` (reset in ms since the epoch) and whether a 429 would carry `Retry-After`. */
  state(token: string): { remaining: number; reset: number; observed: number; retryAfter: boolean } {
    const window = this.#window();
    const used = this.#used.get(token);
    const observed = used && used.window === window ? used.count : 0;
    const exhausted = this.#exhaustion(token);
    if (exhausted) return { remaining: 0, reset: exhausted.until, observed, retryAfter: exhausted.retryAfter };
    return {
      remaining: Math.max(0, this.limit - observed),
      reset: (window + 1) * 60_000,
      observed,
      retryAfter: true,
    };
  }

  charge(token: string): void {
    const window = this.#window();
    const used = this.#used.get(token);
    if (used && used.window === window) used.count++;
    else this.#used.set(token, { window, count: 1 });
  }

  exhaust(forMs: number, token: string | undefined, retryAfter: boolean): void {
    this.#exhausted.set(token ?? '*', { until: Date.now() + forMs, retryAfter });
  }

  headers(token: string): Record<string, string> {
    const s = this.state(token);
    return {
      'ratelimit-name': 'throttle_authenticated_api',
      'ratelimit-limit': String(this.limit),
      'ratelimit-observed': String(s.observed),
      'ratelimit-remaining': String(s.remaining),
      'ratelimit-reset': String(Math.ceil(s.reset / 1000)),
      'ratelimit-resettime': new Date(s.reset).toUTCString(),
    };
  }

  clearFaults(): void {
    this.#exhausted.clear();
  }
}
