/**
 * Fault injection: what GitHub does on a bad day, on demand and deterministically (counts and time windows, never
 * chance), so a test can say exactly which requests fail and how.
 */

export interface Faults {
  /**
   * An outage: every API request gets a 503 with GitHub's error body, or its connection reset (`mode: 'reset'`), for
   * `forMs` from now or for the next `requests` requests (default: one hour). A later call replaces it.
   */
  outage(opts?: { mode?: '503' | 'reset'; forMs?: number; requests?: number }): void;
  /** Every API request waits `ms` before it is handled (0: none). */
  latency(ms: number): void;
  /**
   * The primary rate limit of every token (or of `token`'s budget, or of every token of `installationId`) reads 0 for
   * `forMs`: requests get a 403 (or 429) with `x-ratelimit-remaining: 0` and `x-ratelimit-reset` at the window's end.
   * An installation token's budget is its installation's, so `token` may name any of them.
   */
  exhaustRateLimit(opts: { forMs: number; token?: string; installationId?: number; status?: 403 | 429 }): void;
  /**
   * The next `count` authenticated requests hit a secondary rate limit: 403 (or 429) with `retry-after`, or, without
   * `retryAfterSeconds`, with no header at all (GitHub then asks for at least a minute's wait in its docs only).
   */
  secondaryLimit(opts: { count: number; retryAfterSeconds?: number; status?: 403 | 429 }): void;
  /** Runs stay queued (no runner picks them up) while on; they start as soon as it is off. */
  keepQueued(on: boolean): void;
  /** At most `count` runs in progress at once, like a plan's concurrent-job limit (unlimited by default). */
  runnerCapacity(count: number): void;
  /** The next `count` builds fail in their build step. */
  failBuilds(count: number): void;
  /** The next `drop` webhook deliveries are lost; the next `duplicate` ones are delivered twice. */
  webhooks(opts: { drop?: number; duplicate?: number }): void;
  /**
   * Mutate the next JSON response of `operation` (an OpenAPI path template; optionally only for `method`). Test-only:
   * it proves the contract check catches a wrong response.
   */
  corruptNextResponse(operation: string, mutate: (body: Record<string, unknown>) => unknown, method?: string): void;
  /** Back to a healthy GitHub. */
  reset(): void;
}

type Mutation = { method?: string; mutate: (body: Record<string, unknown>) => unknown };

/** The request-level fault state the server consults. */
export class FaultState {
  #outage: { mode: '503' | 'reset'; until: number; requests: number } | undefined;
  latencyMs = 0;
  #secondary: { count: number; retryAfter: number | undefined; status: 403 | 429 } = {
    count: 0,
    retryAfter: undefined,
    status: 403,
  };
  #drop = 0;
  #duplicate = 0;
  readonly #corrupt = new Map<string, Mutation>();

  setOutage(opts: { mode?: '503' | 'reset'; forMs?: number; requests?: number } = {}): void {
    const byCount = opts.requests !== undefined && opts.forMs === undefined;
    this.#outage = {
      mode: opts.mode ?? '503',
      until: byCount ? Infinity : Date.now() + (opts.forMs ?? 3600_000),
      requests: byCount ? opts.requests! : Infinity,
    };
  }

  /** How this request fails in an outage, if it does. */
  takeOutage(): '503' | 'reset' | undefined {
    const o = this.#outage;
    if (!o) return undefined;
    if (Date.now() >= o.until || o.requests <= 0) {
      this.#outage = undefined;
      return undefined;
    }
    o.requests--;
    return o.mode;
  }

  setSecondary(count: number, retryAfter: number | undefined, status: 403 | 429 = 403): void {
    this.#secondary = { count, retryAfter, status };
  }

  takeSecondary(): { retryAfter: number | undefined; status: 403 | 429 } | undefined {
    if (this.#secondary.count <= 0) return undefined;
    this.#secondary.count--;
    return this.#secondary;
  }

  setWebhooks(drop = 0, duplicate = 0): void {
    this.#drop = drop;
    this.#duplicate = duplicate;
  }

  /** How many times to deliver the next webhook: 0 (lost), 1 or 2 (redelivered). */
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

  reset(): void {
    this.#outage = undefined;
    this.latencyMs = 0;
    this.#secondary = { count: 0, retryAfter: undefined, status: 403 };
    this.#drop = 0;
    this.#duplicate = 0;
    this.#corrupt.clear();
  }
}
