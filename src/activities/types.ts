/**
 * The activities the deploy workflow chains, as the workflow sees them. Inputs and results are plain data and never
 * carry a secret: each implementation reads credentials from the worker's configuration.
 *
 * Failure model (shared by every implementation):
 * - permanent errors (bad credentials 401/403, missing repository 404, invalid object 422, invalid manifest) throw
 *   `ApplicationFailure.nonRetryable` with a `type` from {@link FailureType} and a message a human can act on;
 * - transient errors (5xx, timeouts, connection resets, rate limits) throw ordinary errors so Temporal retries them;
 *   where the server says when to come back (`Retry-After`, `x-ratelimit-reset`) the failure carries
 *   `nextRetryDelay`.
 */
import type { Application } from '../manifest/schema.ts';
import type { CiRunRef, CiRunResult, DeployRequest } from '../workflows/api.ts';

export const FailureType = {
  /** The CI, registry or cluster refused our credentials (401/403). */
  Unauthorized: 'Unauthorized',
  /** Repository, workflow, image or namespace does not exist or is not visible (404). */
  NotFound: 'NotFound',
  /** The request was understood and refused (422, invalid object). */
  Invalid: 'Invalid',
  /** The CI run finished without success. */
  BuildFailed: 'BuildFailed',
  /** The CI run did not start within the allowed time. */
  RunQueuedTooLong: 'RunQueuedTooLong',
  /** The rollout made no progress; the previous image was restored. */
  RolloutFailed: 'RolloutFailed',
  /** Configuration of the worker is missing something this deploy needs. */
  Misconfigured: 'Misconfigured',
} as const;
export type FailureType = (typeof FailureType)[keyof typeof FailureType];

export interface EnsureWorkflowFileInput {
  deployId: string;
  app: Application;
}
export interface EnsureWorkflowFileResult {
  /** Path of the pipeline definition in the repository. */
  path: string;
  /** True when this call wrote a commit (or opened/updated a pull request). */
  changed: boolean;
  /** The commit this call wrote, when it wrote one. */
  commitSha?: string;
  pullRequestUrl?: string;
}

export interface EnsureRegistryCredentialInput {
  app: Application;
}
export interface EnsureRegistryCredentialResult {
  secretName: string;
  /** Non-reversible fingerprint of the stored credential (never the credential). */
  fingerprint: string;
  changed: boolean;
}

export interface TriggerRunInput {
  /** `ciRunKey` (src/workflows/api.ts): the deploy id, with `/<attempt>` for retries. */
  runKey: string;
  app: Application;
}

export interface AwaitRunInput {
  runKey: string;
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

export interface RolloutImageInput {
  deployId: string;
  request: DeployRequest;
  /** Pinned `host/repo@sha256:...`; for a Rollback request, empty means "the previous good image". */
  image: string;
  commit?: string;
}
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
  /**
   * `none`: the Deployment does not carry this deploy (nothing of it was applied, or it is already undone);
   * `restored`: the last good image is back; `removed`: a first rollout, so the app is removed as it never ran;
   * `kept`: no image of the app is known good and the Deployment existed before this deploy, so it is left as it is.
   */
  action: 'none' | 'restored' | 'removed' | 'kept';
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
  /** Idempotency key: the digest (server-side apply of the same object is a no-op). */
  rolloutImage(input: RolloutImageInput): Promise<RolloutImageResult>;
  /** Idempotency key: the deploy id on the Deployment; once undone, the Deployment names another deploy (or is gone). */
  abortRollout(input: AbortRolloutInput): Promise<AbortRolloutResult>;
}

export type { CiRunRef, CiRunResult };
