/**
 * The deploy workflow's contract: everything the workflow, its activities, the worker (webhook receiver), the client
 * and the CLI must agree on, in one place. Names, inputs and statuses; signals, queries, search attributes and the
 * memo; the formats of deploy ids, CI run keys and run names; which phases are final; the failure types.
 *
 * Deterministic-safe: it imports only `@temporalio/workflow` definitions, types, and zod-free name patterns.
 */
import { defineQuery, defineSignal } from '@temporalio/workflow';
import { defineSearchAttributeKey } from '@temporalio/common';
import type { Application, CatalogApp, DeployPolicy } from '../manifest/schema.ts';
import { DNS_LABEL_SOURCE } from '../manifest/names.ts';

export const TASK_QUEUE = 'flui-deploy';

// ---- Failure types ---------------------------------------------------------------------------------------------

/**
 * Why an activity failed for good (`ApplicationFailure.type`, never retried); src/activities/failures.ts maps the
 * adapters' service errors onto them. Transient failures carry other types (`GitHubUnavailable`, ...) and are retried.
 */
export const FailureType = {
  /** The CI, registry or cluster refused our credentials (401/403). */
  Unauthorized: 'Unauthorized',
  /** Repository, workflow, image or namespace does not exist or is not visible (404). */
  NotFound: 'NotFound',
  /** The request was understood and refused (422, invalid object), or needs a person first (a proposed pipeline). */
  Invalid: 'Invalid',
  /** The CI run finished without success. */
  BuildFailed: 'BuildFailed',
  /** The CI run did not start within the allowed time. */
  RunQueuedTooLong: 'RunQueuedTooLong',
  /** The rollout made no progress; the previous image was restored. */
  RolloutFailed: 'RolloutFailed',
  /** Configuration of the worker is missing something this deploy needs. */
  Misconfigured: 'Misconfigured',
  /** The manifest names a namespace, repository owner or registry outside the worker's lanes (src/lanes.ts). */
  Refused: 'Refused',
} as const;
export type FailureType = (typeof FailureType)[keyof typeof FailureType];

/** How a deploy run itself ends when it does not succeed (the failure `flui` and Web UI show). */
export const DeployFailureType = { Failed: 'DeployFailed', Cancelled: 'DeployCancelled' } as const;

// ---- Requests and ids ------------------------------------------------------------------------------------------

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

/** The app a request is for. */
export function appOf(request: DeployRequest): { namespace: string; app: string } {
  if (request.kind === 'Rollback') return { namespace: request.namespace, app: request.app };
  return { namespace: request.manifest.metadata.namespace, app: request.manifest.metadata.name };
}

/** One workflow id per app: Temporal's id uniqueness is what keeps one deploy per app in flight. */
export function deployWorkflowId(namespace: string, app: string): string {
  return `deploy-${namespace}.${app}`;
}

export interface DeployIdParts {
  deployId: string;
  namespace: string;
  app: string;
  nonce: string;
  /** The app's deploy workflow. */
  workflowId: string;
}

const DEPLOY_ID_SOURCE = `(${DNS_LABEL_SOURCE})\\.(${DNS_LABEL_SOURCE})\\.([a-z0-9]{4,40})`;
const DEPLOY_ID = new RegExp(`^${DEPLOY_ID_SOURCE}$`);
const CI_RUN_KEY = new RegExp(`^(${DEPLOY_ID_SOURCE})(?:/([0-9]{1,4}))?$`);

/**
 * A deploy id names one deploy request: `<namespace>.<app>.<nonce>`, the nonce lowercase letters and digits (the
 * client makes it unique). Names are DNS labels (no dots), so the app and its workflow can be read back from the id.
 */
export function formatDeployId(namespace: string, app: string, nonce: string): string {
  const deployId = `${namespace}.${app}.${nonce}`;
  if (!DEPLOY_ID.test(deployId)) throw new Error(`"${deployId}" is not a valid deploy id`);
  return deployId;
}

export function parseDeployId(deployId: string): DeployIdParts | undefined {
  const m = DEPLOY_ID.exec(deployId);
  if (!m) return undefined;
  const [, namespace, app, nonce] = m as unknown as [string, string, string, string];
  return { deployId, namespace, app, nonce, workflowId: deployWorkflowId(namespace, app) };
}

/**
 * The key a CI run is found by (and named after): the deploy id, plus `/<attempt>` for a run started by `retry`.
 * It makes `triggerRun` idempotent: a crash after dispatch finds the run by this key instead of dispatching again.
 */
export function ciRunKey(deployId: string, attempt: number): string {
  return attempt > 1 ? `${deployId}/${attempt}` : deployId;
}

export function parseCiRunKey(runKey: string): (DeployIdParts & { runKey: string; attempt: number }) | undefined {
  const m = CI_RUN_KEY.exec(runKey);
  const parts = m ? parseDeployId(m[1]!) : undefined;
  return parts && { ...parts, runKey, attempt: Number(m![5] ?? 1) };
}

/**
 * The tag the CI run of `runKey` pushes the image under (besides the commit SHA), which Flui then resolves and rolls
 * out: it names this deploy attempt, so a later or concurrent build of the same commit cannot be taken for it.
 * `flui-<run key>` with `/` as `-` (a nonce holds no `-`, so keys stay distinct); past a tag's 128 characters, the
 * namespace is left out (the nonce already tells deploys apart).
 */
export function ciImageTag(runKey: string): string {
  const tag = `flui-${runKey.replace(/[^A-Za-z0-9_.-]/g, '-')}`;
  if (tag.length <= 128) return tag;
  const key = parseCiRunKey(runKey);
  const short = key ? `flui-${key.app}.${key.nonce}${key.attempt > 1 ? `-${key.attempt}` : ''}` : tag;
  return short.slice(0, 128);
}

const CI_RUN_NAME_PREFIX = 'flui ';

/**
 * The name a CI run carries (GitHub's `run-name`), from which Flui finds the run after a crash and the webhook
 * receiver finds the deploy to tell. `runKey` may also be a template the CI fills in (`${{ inputs.deploy_id }}`).
 */
export function ciRunName(runKey: string): string {
  return `${CI_RUN_NAME_PREFIX}${runKey}`;
}

/** The run key and deploy of a CI run named by {@link ciRunName}; undefined for a run that is not Flui's. */
export function parseCiRunName(name: string): ReturnType<typeof parseCiRunKey> {
  return name.startsWith(CI_RUN_NAME_PREFIX) ? parseCiRunKey(name.slice(CI_RUN_NAME_PREFIX.length)) : undefined;
}

// ---- Status ----------------------------------------------------------------------------------------------------

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

/** The deploy is over: nothing about it changes any more. */
export function isTerminal(phase: DeployPhase): boolean {
  return TERMINAL_PHASES.includes(phase);
}

/** Nothing moves without a person: the deploy is over, or failed and waits for `flui retry`. Followers stop here. */
export function isSettled(phase: DeployPhase): boolean {
  return isTerminal(phase) || phase === 'awaiting-retry';
}

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

/**
 * What undoing a cancelled rollout did: `none`, the cluster did not carry this deploy; `restored`, the last good
 * image is back; `removed`, it was the app's first rollout, so the app is gone as it never ran; `kept`, no image of
 * the app is known good and the Deployment existed before, so it was left as it is.
 */
export type RolloutUndo = 'none' | 'restored' | 'removed' | 'kept';

/** Who or what cancelled a deploy, and why. */
export interface Cancellation {
  /**
   * `signal`: the workflow's `cancel` signal (`flui cancel --reason`, `temporal workflow signal --name cancel`, Web
   * UI); `temporal`: a Temporal cancel request (`flui cancel`, Web UI's Cancel, `temporal workflow cancel`), which
   * carries no reason; `terminated`: the run was terminated through Temporal, so nothing was cleaned up.
   */
  by: 'signal' | 'temporal' | 'terminated';
  reason?: string;
}

/** Who cancelled and why, for people, to follow the word "cancelled": `by the cancel signal: wrong branch`. */
export function describeCancellation(c: Cancellation): string {
  const why = c.reason ? `: ${c.reason}` : '';
  if (c.by === 'signal') return `by the cancel signal${why || ' (no reason given)'}`;
  if (c.by === 'temporal') return `by a Temporal cancel request${why}`;
  return `by termination through Temporal${why} (no cleanup ran)`;
}

/** The build pipeline's definition as the preparing phase left it. */
export interface PipelineRecord {
  /** Its path in the repository (empty for a backend that keeps none there, such as self-hosted builds). */
  path: string;
  /** This deploy wrote a commit (or proposed one). */
  changed: boolean;
  commit?: string;
  /** What was changed, in words, e.g. "created .gitlab-ci.yml" or "added an include to .gitlab-ci.yml". */
  changes?: string[];
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
  /** Set once the deploy ended `cancelled`. */
  cancelled?: Cancellation;
  commit?: string;
  /** What the preparing phase did to the build pipeline in the repository (nothing, when it was current). */
  pipeline?: PipelineRecord;
  ciRun?: CiRunRef;
  image?: string;
  digest?: string;
  /** Digest the cluster was returned to after a failed or cancelled rollout. */
  rolledBackTo?: string;
  /** What a cancel during the rollout did to the cluster (see the abortRollout activity). */
  rolloutUndone?: RolloutUndo;
  attempt: number;
  timings: PhaseTiming[];
  /** Deploy ids waiting behind this one (policy `queue`). */
  queued: string[];
  supersededBy?: string;
}

/** The status of a request no worker has picked up yet: what the workflow starts from and the client records. */
export function initialStatus(request: DeployRequest, queued: string[] = []): DeployStatus {
  return {
    deployId: request.deployId,
    kind: request.kind,
    ...appOf(request),
    phase: 'queued',
    attempt: 1,
    timings: [],
    queued,
  };
}

export type DeployOutcome = Pick<
  DeployStatus,
  'deployId' | 'app' | 'namespace' | 'phase' | 'commit' | 'ciRun' | 'image' | 'digest' | 'timings'
>;

// ---- Memo: the status as recorded, for readers that do not ask the workflow ------------------------------------

/**
 * The memo of a deploy run: its status as of its last change, which `flui status` and `flui builds` read once the
 * run ended or when no worker answers. The app is in the workflow id and the queue belongs to the live run.
 */
export type DeployMemo = Omit<DeployStatus, 'namespace' | 'app' | 'queued'>;

const MEMO_KEY = 'deploy';

/** The memo to record for `status` (the workflow's upsertMemo, the client's signal-with-start). */
export function deployMemo(status: DeployStatus): Record<string, DeployMemo> {
  const { namespace: _namespace, app: _app, queued: _queued, ...recorded } = status;
  return { [MEMO_KEY]: recorded };
}

/** The recorded status in a run's memo, if it has one. Memos of older runs wrote missing fields as `null`. */
export function readDeployMemo(memo: Record<string, unknown> | undefined): DeployMemo | undefined {
  const value = memo?.[MEMO_KEY];
  if (!value || typeof value !== 'object') return undefined;
  const recorded = Object.fromEntries(Object.entries(value).filter(([, v]) => v !== null)) as Partial<DeployMemo>;
  if (typeof recorded.deployId !== 'string' || typeof recorded.phase !== 'string') return undefined;
  return { kind: 'Application', attempt: 1, timings: [], ...recorded } as DeployMemo;
}

// ---- Signals, queries, search attributes -----------------------------------------------------------------------

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
