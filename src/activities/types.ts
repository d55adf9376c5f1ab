/**
 * The activities the deploy workflow chains, as the workflow sees them. Inputs and results are plain data and never
 * carry a secret: each implementation reads credentials from the worker's configuration.
 *
 * Failure model (shared by every implementation): the adapters throw a `ServiceError` (src/errors.ts) saying what
 * kind of trouble they met; src/activities/failures.ts turns it into the Temporal failure the workflow's retry policy
 * understands, for every activity at once:
 * - permanent errors (bad credentials 401/403, missing repository 404, invalid object 422, invalid manifest, missing
 *   configuration) become non-retryable failures typed by `FailureType` (src/workflows/contract.ts), with a message
 *   a human can act on;
 * - transient errors (5xx, timeouts, connection resets, rate limits) stay retryable; where the server said when to
 *   come back (`Retry-After`, `x-ratelimit-reset`) the failure carries `nextRetryDelay`.
 * Outcomes that belong to the workflow's contract (a rollout that failed and was rolled back, a run stuck in the
 * queue) are thrown by the activities themselves with their `FailureType`.
 */
import type { CredentialResult, PipelineResult } from '../ci/backend.ts';
import type { Application } from '../manifest/schema.ts';
import type { CiRunRef, CiRunResult, DeployRequest, RolloutUndo } from '../workflows/contract.ts';

export interface EnsureWorkflowFileInput {
  app: Application;
}
/** What the CI backend reports; a proposed change (pull-request mode) fails the activity instead. */
export type EnsureWorkflowFileResult = PipelineResult;

export interface EnsureRegistryCredentialInput {
  app: Application;
}
export type EnsureRegistryCredentialResult = CredentialResult;

export interface TriggerRunInput {
  /** `ciRunKey` (src/workflows/contract.ts): the deploy id, with `/<attempt>` for retries. */
  runKey: string;
  app: Application;
}

export interface AwaitRunInput {
  app: Application;
  run: CiRunRef;
  /** Fail with RunQueuedTooLong when the run has not started this long after it was created. */
  queuedTimeoutSeconds: number;
}

export interface CancelRunInput {
  app: Application;
  /** The run, when the workflow recorded it; otherwise it is looked up by `runKey` (a cancel during dispatch). */
  run?: CiRunRef;
  runKey: string;
}

export interface ResolveImageInput {
  /** `host/repo:tag` or `host/repo@sha256:...` */
  image: string;
}
export interface ResolveImageResult {
  digest: string;
  /** `host/repo@sha256:...`: what the cluster runs. */
  pinned: string;
}

/**
 * A deploy rolls out the image it resolved; a rollback names none: its target is the digest it asks for, or the
 * previous good image, both found in the app's recorded history.
 */
export type RolloutImageInput = (
  | {
      request: Exclude<DeployRequest, { kind: 'Rollback' }>;
      /** Pinned `host/repo@sha256:...`. */
      image: string;
      commit?: string;
    }
  | { request: Extract<DeployRequest, { kind: 'Rollback' }> }
) & {
  /**
   * The deploy's attempt (`status.attempt`; 1 when absent): a `flui retry` is a new attempt and applies again, while
   * a retry of the same attempt after a crash does not start an image that already failed.
   */
  attempt?: number;
};

export interface RolloutImageResult {
  namespace: string;
  app: string;
  digest: string;
  image: string;
  /** Deployment revision now serving. */
  revision: string;
  /** True when the cluster already ran this digest and nothing was changed. */
  unchanged: boolean;
}

export interface AbortRolloutInput {
  deployId: string;
  namespace: string;
  app: string;
}
export interface AbortRolloutResult {
  action: RolloutUndo;
  /** For `restored`: the digest put back, and whether it became healthy within its progress deadline. */
  digest?: string;
  healthy?: boolean;
}

export interface DeployActivities {
  /** Idempotency key: the rendered file content (blob SHA) on the branch. */
  ensureWorkflowFile(input: EnsureWorkflowFileInput): Promise<EnsureWorkflowFileResult>;
  /** Idempotency key: the credential fingerprint stored beside the secret. */
  ensureRegistryCredential(input: EnsureRegistryCredentialInput): Promise<EnsureRegistryCredentialResult>;
  /** Idempotency key: the deploy id, carried in the CI run's name. */
  triggerRun(input: TriggerRunInput): Promise<CiRunRef>;
  /** Read-only; throws a retryable `RunInProgress` failure until the run completes. */
  awaitRun(input: AwaitRunInput): Promise<CiRunResult>;
  /** Idempotent: cancelling a finished or cancelled run is a no-op. */
  cancelRun(input: CancelRunInput): Promise<void>;
  /** Read-only. */
  resolveImage(input: ResolveImageInput): Promise<ResolveImageResult>;
  /** Idempotency key: deploy id, attempt and digest (server-side apply of the same object is a no-op). */
  rolloutImage(input: RolloutImageInput): Promise<RolloutImageResult>;
  /** Idempotency key: the deploy id on the Deployment; once undone, the Deployment names another deploy (or is gone). */
  abortRollout(input: AbortRolloutInput): Promise<AbortRolloutResult>;
}

export type { CiRunRef, CiRunResult };
