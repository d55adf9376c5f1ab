/**
 * Fault injection: what GitLab does on a bad day, on demand and deterministically (counts and time windows, never
 * chance), so a test can say exactly which requests fail and how. Names follow the GitHub emulator's where the fault
 * is the same.
 */
import { BaseFaultState } from '@flui/emulator-kit/faults';

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

/** The request-level fault state the server consults: the kit's, plus throttling and lost responses. */
export class FaultState extends BaseFaultState<'502' | '503' | 'reset', unknown> {
  #secondary: { count: number; retryAfter: number | undefined } = { count: 0, retryAfter: undefined };
  #lose: { count: number; operation?: string; method?: string } = { count: 0 };

  constructor() {
    super('503');
  }

  setSecondary(count: number, retryAfter: number | undefined): void {
    this.#secondary = { count, retryAfter };
  }

  takeSecondary(): { retryAfter: number | undefined } | undefined {
    if (this.#secondary.count <= 0) return undefined;
    this.#secondary.count--;
    return { retryAfter: this.#secondary.retryAfter };
  }

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

  override reset(): void {
    super.reset();
    this.#lose = { count: 0 };
    this.#secondary = { count: 0, retryAfter: undefined };
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
