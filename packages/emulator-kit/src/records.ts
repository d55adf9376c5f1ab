/**
 * The counters every emulator keeps about itself, for tests that assert what happened ("exactly one commit", "no
 * request while the limit said 0") rather than what a client believes happened. Each emulator adds its own.
 */

export interface BaseRecords {
  /** API requests received (not the control API). */
  requests: number;
  /** API requests per operation, `METHOD <operation>` (the route's documented path). */
  operations: Record<string, number>;
  /** Requests that counted against the rate limit, per token. */
  rateLimited: Record<string, number>;
  /** Requests refused by a rate limit, per token. */
  limitRefusals: Record<string, number>;
  /** Requests a token made while its limit said 0 remaining (a well-behaved client keeps this near 0). */
  requestsOverLimit: number;
  /** Commits made through the API, per repository or project. */
  commits: Record<string, number>;
  /** Runs or pipelines cancelled through the API. */
  cancels: number;
  /** Webhook deliveries attempted (a duplicated delivery counts twice). */
  webhooksSent: number;
  /** Webhook deliveries lost on purpose by the `webhooks({ drop })` fault. */
  webhooksDropped: number;
  /** Requests the `latency` fault delayed. */
  delayed: number;
  /** Requests failed by the `outage` fault (503 or reset). */
  outageFailures: number;
}

/** Every shared counter at zero. */
export function createBaseRecords(): BaseRecords {
  return {
    requests: 0,
    operations: {},
    rateLimited: {},
    limitRefusals: {},
    requestsOverLimit: 0,
    commits: {},
    cancels: 0,
    webhooksSent: 0,
    webhooksDropped: 0,
    delayed: 0,
    outageFailures: 0,
  };
}

/** `counter[key] += 1`. */
export function bump(counter: Record<string, number>, key: string): void {
  counter[key] = (counter[key] ?? 0) + 1;
}
