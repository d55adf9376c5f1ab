/**
 * The emulator's own bookkeeping, for tests that assert what happened ("exactly one commit", "no request while the
 * limit said 0") rather than what a client believes happened.
 */

export interface Records {
  /** API requests received (not the control API). */
  requests: number;
  /** API requests per operation, `METHOD /path/template`. */
  operations: Record<string, number>;
  /** Requests that counted against the primary rate limit, per token. */
  rateLimited: Record<string, number>;
  /** The same, per installation id, for requests made with installation tokens (one budget per installation). */
  rateLimitedByInstallation: Record<string, number>;
  /** Requests refused by a primary or secondary rate limit, per token. */
  limitRefusals: Record<string, number>;
  /** Conditional requests answered 304 (free). */
  notModified: number;
  /** Commits written through the contents API, per `owner/name:path`. */
  commits: Record<string, number>;
  /** Workflow dispatches (runs created), per `owner/name`. */
  dispatches: Record<string, number>;
  /** Secret writes (PUT), per `owner/name`. */
  secretWrites: Record<string, number>;
  /** Pull requests opened, per `owner/name`. */
  pullsOpened: Record<string, number>;
  /** Runs cancelled through the API. */
  cancels: number;
  /** Runs re-run through the API. */
  reruns: number;
  /** Webhook deliveries attempted (a duplicated delivery counts twice). */
  webhooksSent: number;
  /** Webhook deliveries lost on purpose by the `webhooks({ drop })` fault. */
  webhooksDropped: number;
  /** Requests a token made while its limit said 0 remaining (a well-behaved client keeps this near 0). */
  requestsOverLimit: number;
  /** Requests the `latency` fault delayed. */
  delayed: number;
  /** Requests failed by the `outage` fault (503 or reset). */
  outageFailures: number;
}

export function createRecords(): Records {
  return {
    requests: 0,
    operations: {},
    rateLimited: {},
    rateLimitedByInstallation: {},
    limitRefusals: {},
    notModified: 0,
    commits: {},
    dispatches: {},
    secretWrites: {},
    pullsOpened: {},
    cancels: 0,
    reruns: 0,
    webhooksSent: 0,
    webhooksDropped: 0,
    requestsOverLimit: 0,
    delayed: 0,
    outageFailures: 0,
  };
}

/** `counter[key] += 1`. */
export function bump(counter: Record<string, number>, key: string): void {
  counter[key] = (counter[key] ?? 0) + 1;
}
