/**
 * Flui's own metrics with prom-client, in a registry of their own (the process's default metrics included), and the
 * Prometheus text that the ops server serves: these, followed by the Temporal SDK's (see ./ops-server.ts).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Meter } from './meter.ts';

/** Every metric name Flui itself exports (the dashboard test checks its expressions against these and the SDK's). */
export const FLUI_METRICS = {
  deploysStarted: 'flui_deploys_started_total',
  deploysFinished: 'flui_deploys_finished_total',
  phaseSeconds: 'flui_deploy_phase_duration_seconds',
  ciRequests: 'flui_ci_requests_total',
  ciRateLimitRemaining: 'flui_ci_rate_limit_remaining',
  webhookDeliveries: 'flui_webhook_deliveries_total',
  rolloutsUndone: 'flui_rollouts_undone_total',
} as const;

/**
 * The Temporal SDK's metrics the dashboard uses, as the worker's runtime names them (prefix `temporal_`, counters
 * with `_total`, durations in seconds with `_seconds`; see main() in src/worker.ts). test/operations/workers.test.ts
 * checks that real worker processes export each of them.
 */
export const TEMPORAL_SDK_METRICS = {
  counters: ['temporal_workflow_completed_total', 'temporal_request_total'],
  gauges: ['temporal_worker_task_slots_available', 'temporal_sticky_cache_size', 'temporal_num_pollers'],
  histograms: [
    'temporal_workflow_task_schedule_to_start_latency_seconds',
    'temporal_activity_execution_latency_seconds',
    'temporal_activity_schedule_to_start_latency_seconds',
  ],
} as const;

export interface PrometheusMeter extends Meter {
  registry: Registry;
}

/** A registry with Flui's metrics and the Node.js process's (`process_*`, `nodejs_*`), and the meter feeding it. */
export function createPrometheusMeter(defaultLabels: Record<string, string> = {}): PrometheusMeter {
  const registry = new Registry();
  registry.setDefaultLabels(defaultLabels);
  collectDefaultMetrics({ register: registry });
  const started = new Counter({
    name: FLUI_METRICS.deploysStarted,
    help: 'Deploy runs started, by kind (Application, CatalogApp, Rollback).',
    labelNames: ['kind'],
    registers: [registry],
  });
  const finished = new Counter({
    name: FLUI_METRICS.deploysFinished,
    help: 'Deploy runs finished, by kind and outcome (succeeded, failed, cancelled, superseded).',
    labelNames: ['kind', 'outcome'],
    registers: [registry],
  });
  const phases = new Histogram({
    name: FLUI_METRICS.phaseSeconds,
    help: 'Time a deploy spent in each phase (preparing, building, resolving, rolling-out, awaiting-retry), seconds.',
    labelNames: ['kind', 'phase'],
    // From a cached pipeline file (tens of ms) to a long build (an hour).
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600],
    registers: [registry],
  });
  const ciRequests = new Counter({
    name: FLUI_METRICS.ciRequests,
    help: "HTTP requests to the CI's API, by backend, client (token hash or GitHub App installation) and HTTP status.",
    labelNames: ['backend', 'client', 'status'],
    registers: [registry],
  });
  const remaining = new Gauge({
    name: FLUI_METRICS.ciRateLimitRemaining,
    help: 'Requests left in the rate-limit window, as the CI reported on its last answer to each client.',
    labelNames: ['backend', 'client'],
    registers: [registry],
  });
  const webhooks = new Counter({
    name: FLUI_METRICS.webhookDeliveries,
    help: 'CI webhook deliveries by result: accepted, duplicate, refused (bad signature or request), ignored, failed.',
    labelNames: ['backend', 'result'],
    registers: [registry],
  });
  const undone = new Counter({
    name: FLUI_METRICS.rolloutsUndone,
    help: 'Rollouts undone, after a cancel or a failure: restored (the last good image is back) or removed (first one).',
    labelNames: ['after', 'action'],
    registers: [registry],
  });
  return {
    registry,
    deployStarted: (kind) => started.inc({ kind }),
    deployFinished: (kind, outcome) => finished.inc({ kind, outcome }),
    phaseDuration: (kind, phase, seconds) => phases.observe({ kind, phase }, seconds),
    ciRequest: (backend, client, status) => ciRequests.inc({ backend, client, status: statusLabel(status) }),
    ciRateLimitRemaining: (backend, client, value) => remaining.set({ backend, client }, value),
    webhookDelivery: (backend, result) => webhooks.inc({ backend, result }),
    rolloutUndone: (after, action) => undone.inc({ after, action }),
  };
}

/** The HTTP status (a small set: 200, 201, 204, 304, 403, 404, 422, 429, 5xx…), or `error` when none came back. */
function statusLabel(status: number): string {
  return Number.isInteger(status) && status >= 100 && status < 600 ? String(status) : 'error';
}
