/**
 * The deploy workflow's public contract, shared by the workflow, the worker, the webhook receiver and the client:
 * names, inputs, signals, queries and search attributes. Deterministic-safe: it imports only `@temporalio/workflow`
 * definitions and types.
 */
import { defineQuery, defineSignal } from '@temporalio/workflow';
import { defineSearchAttributeKey } from '@temporalio/common';
import type { Application, CatalogApp, DeployPolicy } from '../manifest/schema.ts';

export const TASK_QUEUE = 'flui-deploy';

/** One workflow id per app: Temporal's id uniqueness is what keeps one deploy per app in flight. */
export function deployWorkflowId(namespace: string, app: string): string {
  return `deploy-${namespace}.${app}`;
}

/**
 * A deploy id names one deploy request: `<namespace>.<app>.<nonce>`. Names are DNS labels (no dots), so the app and
 * the workflow id can be recovered from it, e.g. by the webhook receiver from a CI run named `flui <runKey>`.
 */
export function parseDeployId(
  key: string,
): { deployId: string; namespace: string; app: string; workflowId: string; attempt: number } | undefined {
  const m = /^(([a-z0-9-]{1,63})\.([a-z0-9-]{1,63})\.([a-z0-9]{4,40}))(?:\/([0-9]{1,4}))?$/.exec(key);
  if (!m) return undefined;
  const [, deployId, namespace, app, , attempt] = m as unknown as [string, string, string, string, string, string?];
  return { deployId, namespace, app, workflowId: deployWorkflowId(namespace, app), attempt: Number(attempt ?? 1) };
}

/**
 * The key a CI run is found by (and named after): the deploy id, plus `/<attempt>` for a run started by `retry`.
 * It makes `triggerRun` idempotent: a crash after dispatch finds the run by this key instead of dispatching again.
 */
export function ciRunKey(deployId: string, attempt: number): string {
  return attempt > 1 ? `${deployId}/${attempt}` : deployId;
}

export const CI_RUN_NAME_PREFIX = 'flui ';

/** What the client asks for. Plain data, validated at the edge; never contains a secret. */
export type DeployRequest =
  | { deployId: string; kind: 'Application'; manifest: Application; policy: DeployPolicy; requestedBy?: string }
  | { deployId: string; kind: 'CatalogApp'; manifest: CatalogApp; policy: DeployPolicy; requestedBy?: string }
  | {
      deployId: string;
      kind: 'Rollback';
      namespace: string;
      app: string;
      /** Digest to roll back to; the previous good image when omitted. */
      digest?: string;
      policy: DeployPolicy;
      requestedBy?: string;
    };

export type DeployPhase =
  | 'queued'
  | 'preparing' // ensureWorkflowFile + ensureRegistryCredential
  | 'building' // triggerRun + awaitRun
  | 'resolving' // resolveImage
  | 'rolling-out' // rolloutImage
  | 'awaiting-retry'
  | 'succeeded'
  | 'failed'
  | 'cancelled'
  | 'superseded';

export const TERMINAL_PHASES: readonly DeployPhase[] = ['succeeded', 'failed', 'cancelled', 'superseded'];

export interface CiRunRef {
  /** The CI's own id for the run (GitHub: workflow run id). */
  id: string;
  /** Human page of the run: logs and reruns stay the CI's. */
  htmlUrl: string;
}

export interface CiRunResult {
  conclusion: 'success' | 'failure' | 'cancelled' | 'timed_out' | 'skipped' | 'neutral' | 'action_required' | 'stale';
  htmlUrl: string;
  /** The commit the run built; the image is tagged with it. */
  headSha: string;
  /** Digest the build reported, when the CI exposes it; the registry stays the source of truth. */
  digest?: string;
}

export interface PhaseTiming {
  phase: DeployPhase;
  startedAt: string;
  endedAt?: string;
}

export interface DeployStatus {
  deployId: string;
  kind: DeployRequest['kind'];
  namespace: string;
  app: string;
  phase: DeployPhase;
  /** Phase that failed, while awaiting retry or after failure. */
  failedPhase?: DeployPhase;
  error?: string;
  commit?: string;
  ciRun?: CiRunRef;
  image?: string;
  digest?: string;
  /** Digest the cluster was returned to after a failed or cancelled rollout. */
  rolledBackTo?: string;
  /** What a cancel during the rollout did to the cluster (see the abortRollout activity). */
  rolloutUndone?: 'none' | 'restored' | 'removed' | 'kept';
  attempt: number;
  timings: PhaseTiming[];
  /** Deploy ids waiting behind this one (policy `queue`). */
  queued: string[];
  supersededBy?: string;
}

export type DeployOutcome = Pick<
  DeployStatus,
  'deployId' | 'app' | 'namespace' | 'phase' | 'commit' | 'ciRun' | 'image' | 'digest' | 'timings'
>;

/** Stop this deploy: cancel the CI run if one is going, roll nothing out. */
export const cancelSignal = defineSignal<[{ reason?: string }?]>('cancel');
/** After a failure, re-run from the failed phase in the same workflow. */
export const retrySignal = defineSignal<[]>('retry');
/** A newer deploy of the same app (delivered with signal-with-start). */
export const deployRequestedSignal = defineSignal<[DeployRequest]>('deployRequested');
/** Sent by the webhook receiver when the CI reports the run finished. */
export const runCompletedSignal =
  defineSignal<[{ deployId: string; runId: string; result: CiRunResult }]>('runCompleted');
export const statusQuery = defineQuery<DeployStatus>('status');

export const FluiApp = defineSearchAttributeKey('FluiApp', 'KEYWORD');
export const FluiCommit = defineSearchAttributeKey('FluiCommit', 'KEYWORD');
export const FluiPhase = defineSearchAttributeKey('FluiPhase', 'KEYWORD');
export const FluiCiRun = defineSearchAttributeKey('FluiCiRun', 'KEYWORD');

/** `--search-attribute` arguments for `temporal server start-dev`. */
export const SEARCH_ATTRIBUTES: Record<string, 'Keyword'> = {
  FluiApp: 'Keyword',
  FluiCommit: 'Keyword',
  FluiPhase: 'Keyword',
  FluiCiRun: 'Keyword',
};
