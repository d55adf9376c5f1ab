/**
 * The emulator's own bookkeeping, for tests that assert what happened ("exactly one commit", "no request while the
 * limit said 0") rather than what a client believes happened.
 */

export interface Records {
  /** API requests received (not the control API). */
  requests: number;
  /** API requests per operation, `METHOD /documented/path`. */
  operations: Record<string, number>;
  /** Requests that counted against the rate limit, per token (every authenticated request: no 304s on /api/v4). */
  rateLimited: Record<string, number>;
  /** Requests refused with 429, per token. */
  limitRefusals: Record<string, number>;
  /** Requests a token made while its limit said 0 remaining (a well-behaved client keeps this near 0). */
  requestsOverLimit: number;
  /** Commits made through the API (files API or Commits API), per project path. */
  commits: Record<string, number>;
  /** Pipelines created through the API, per project path. */
  pipelinesCreated: Record<string, number>;
  /** CI/CD variable writes (create, update, delete), per project path. */
  variableWrites: Record<string, number>;
  /** Merge requests opened, per project path. */
  mergeRequestsOpened: Record<string, number>;
  /** Pipelines canceled through the API. */
  cancels: number;
  /** Webhook deliveries attempted (a duplicated delivery counts twice). */
  webhooksSent: number;
  /** Webhook deliveries lost on purpose by the `webhooks({ drop })` fault. */
  webhooksDropped: number;
  /** Webhook deliveries skipped because GitLab had auto-disabled the hook (`webhook.autoDisable`). */
  webhooksSkippedDisabled: number;
  /** Requests the `latency` fault delayed. */
  delayed: number;
  /** Handled requests whose answers the `loseResponses` fault dropped. */
  responsesLost: number;
  /** Requests failed by the `outage` fault (503 or reset). */
  outageFailures: number;
}

export function createRecords(): Records {
  return {
    requests: 0,
    operations: {},
    rateLimited: {},
    limitRefusals: {},
    requestsOverLimit: 0,
    commits: {},
    pipelinesCreated: {},
    variableWrites: {},
    mergeRequestsOpened: {},
    cancels: 0,
    webhooksSent: 0,
    webhooksDropped: 0,
    webhooksSkippedDisabled: 0,
    delayed: 0,
    outageFailures: 0,
    responsesLost: 0,
  };
}

/** `counter[key] += 1`. */
export function bump(counter: Record<string, number>, key: string): void {
  counter[key] = (counter[key] ?? 0) + 1;
}
