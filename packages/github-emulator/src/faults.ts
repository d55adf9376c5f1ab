/**
 * Fault injection: what GitHub does on a bad day, on demand and deterministically (counts and time windows, never
 * chance), so a test can say exactly which requests fail and how.
 */
import { BaseFaultState } from '@flui/emulator-kit/faults';

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

/** The request-level fault state the server consults: the kit's, plus GitHub's secondary rate limit. */
export class FaultState extends BaseFaultState<'503' | 'reset', Record<string, unknown>> {
  #secondary: { count: number; retryAfter: number | undefined; status: 403 | 429 } = {
    count: 0,
    retryAfter: undefined,
    status: 403,
  };

  constructor() {
    super('503');
  }

  setSecondary(count: number, retryAfter: number | undefined, status: 403 | 429 = 403): void {
    this.#secondary = { count, retryAfter, status };
  }

  takeSecondary(): { retryAfter: number | undefined; status: 403 | 429 } | undefined {
    if (this.#secondary.count <= 0) return undefined;
    this.#secondary.count--;
    return this.#secondary;
  }

  override reset(): void {
    super.reset();
    this.#secondary = { count: 0, retryAfter: undefined, status: 403 };
  }
}
