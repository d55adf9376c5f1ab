/**
 * What Flui counts, as a port: adapters and activities call these functions and know nothing of Prometheus (nor of
 * Temporal). The worker installs the prom-client implementation (./prometheus.ts) at start; until then, and in every
 * process that is not a worker (the CLI, unit tests), each call does nothing.
 *
 * Counting rules, so that a count means one thing happened once:
 * - deploys started/finished and phase durations come from the workflow through a sink that the SDK does not call
 *   while it replays history (see ./workflow-interceptors.ts), so a replay after a cache eviction or a crash counts
 *   nothing twice;
 * - CI requests are HTTP requests as sent (each retry is a request the CI saw, so it counts);
 * - webhook deliveries are counted by the receiver that answered them;
 * - rollouts undone are counted by the activity only when it changed the cluster, after the change.
 */

/** Deploy kinds as the workflow's request names them. */
export type DeployKindLabel = 'Application' | 'CatalogApp' | 'Rollback' | (string & {});

/** How a deploy run ended (`superseded`: a newer deploy of the app took over; `continued`: a queued one runs next). */
export type DeployOutcomeLabel = 'succeeded' | 'failed' | 'cancelled' | 'superseded' | (string & {});

/** What the webhook receiver did with a delivery. */
export type WebhookResult = 'accepted' | 'duplicate' | 'refused' | 'ignored' | 'failed';

export interface Meter {
  deployStarted(kind: DeployKindLabel): void;
  deployFinished(kind: DeployKindLabel, outcome: DeployOutcomeLabel): void;
  /** How long one phase of a deploy took, in seconds of workflow time. */
  phaseDuration(kind: DeployKindLabel, phase: string, seconds: number): void;
  /** One HTTP request to a CI's API; `client` names the credential (a token's hash or a GitHub App installation). */
  ciRequest(backend: string, client: string, status: number): void;
  /** The rate-limit budget the CI reported on its last answer to this client. */
  ciRateLimitRemaining(backend: string, client: string, remaining: number): void;
  webhookDelivery(backend: string, result: WebhookResult): void;
  /** A rollout was undone after a cancel or its failure: `restored` (last good image back) or `removed` (first one). */
  rolloutUndone(after: 'cancel' | 'failure', action: 'restored' | 'removed'): void;
}

const noop: Meter = {
  deployStarted() {},
  deployFinished() {},
  phaseDuration() {},
  ciRequest() {},
  ciRateLimitRemaining() {},
  webhookDelivery() {},
  rolloutUndone() {},
};

let current: Meter = noop;

/** The meter in use (a no-op until a worker installs one). */
export function meter(): Meter {
  return current;
}

/** Installs `m` for the whole process; returns a function putting the previous one back. */
export function useMeter(m: Meter): () => void {
  const previous = current;
  current = m;
  return () => {
    current = previous;
  };
}
