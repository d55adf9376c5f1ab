/**
 * The CI backend interface. The deploy workflow and its activities talk only to this; GitHub Actions is the first
 * implementation, GitLab CI and a self-hosted builder come next without the workflow changing.
 *
 * Every method is idempotent and safe to call again after a crash at any point. Implementations throw a
 * `ServiceError` (src/errors.ts) when the CI refuses or fails: its kind says whether retrying can help (`unauthorized`,
 * `not-found`, `invalid`, `misconfigured` cannot; `unavailable`, `rate-limited`, `conflict` can, after
 * `retryAfterSeconds` when the CI said so). A backend knows nothing of Temporal; the activities translate.
 */
import type { Application } from '../manifest/schema.ts';
import type { PushAccess } from '../registry/push-access.ts';
import type { CiRunRef, CiRunResult } from '../workflows/contract.ts';

export interface PipelineResult {
  /** Path of the pipeline definition in the repository. */
  path: string;
  /** True when this call wrote a commit (to the branch, or to a proposal's branch). */
  changed: boolean;
  /** The commit this call wrote, when it wrote one. */
  commitSha?: string;
  /**
   * Set when the change could only be proposed (pull or merge request), not written to the app's branch: the branch
   * still holds the old pipeline, so the deploy stops until a person merges this.
   */
  pullRequestUrl?: string;
  /** What this call changed, in words for the deploy's status (e.g. "created .gitlab-ci.yml"). */
  changes?: string[];
}

/**
 * No credential to store: the CI authenticates itself (the job's token, OIDC) or gets a token at dispatch. What Flui
 * stored before for the app (a password) is removed.
 */
export interface NoStoredCredential {
  registry: string;
  none: true;
}

/** What the pipeline definition depends on besides the manifest: how the CI may push (never a secret). */
export interface PipelineSettings {
  push: PushAccess;
}

export interface CredentialResult {
  /** How the CI pushes (src/registry/push-access.ts). */
  method?: PushAccess['method'];
  /** The secret the CI reads the credential from; none when nothing is stored (job token, OIDC). */
  secretName?: string;
  /** Non-reversible fingerprint of the stored credential (never the credential), when one is kept. */
  fingerprint?: string;
  changed: boolean;
}

/** A static push credential, read from worker configuration; never leaves the activity that uses it. */
export interface RegistryCredential {
  registry: string;
  username: string;
  password: string;
}

/** A push token Flui minted for one deploy (src/registry/push-token.ts); never leaves the activity that uses it. */
export interface RegistryToken {
  registry: string;
  token: string;
  expiresAt: string;
}

export type RunState =
  | { state: 'queued'; createdAt: string; htmlUrl: string; headSha: string }
  | { state: 'in_progress'; createdAt: string; htmlUrl: string; headSha: string }
  | { state: 'completed'; result: CiRunResult };

export interface RunStatusResponse {
  /** Undefined when the server answered 304 Not Modified to `etag`. */
  status?: RunState;
  /** Validator to send next time (conditional request); costs no rate limit when unchanged. */
  etag?: string;
  /**
   * For a CI without conditional requests (GitLab), where every read is charged: seconds until the next read, given
   * how long the caller has been waiting (measured on Temporal's clock, so it holds through restarts and time
   * skipping). Undefined keeps the workflow's own poll interval.
   */
  pollAfterSeconds?: (waitedSeconds: number) => number;
}

/** A piece of a run's own log (`CiBackend.readLogs`). */
export interface LogChunk {
  /** Log text from the cursor on (may be empty when nothing new was written). */
  text: string;
  /** Opaque position to pass next time to get only what follows. */
  cursor: string;
  /** The run has finished and `text` reached the end of its log: nothing more will come. */
  done: boolean;
}

/** Which CI builds the installation's apps (FLUI_CI); the manifest never says. */
export type CiBackendName = 'github-actions' | 'gitlab' | 'self-hosted';

export interface CiBackend {
  readonly name: CiBackendName;
  /**
   * Write or refresh the pipeline definition in the repository; no commit when it is already current. Where the
   * installation asks for reviews, propose the change instead and return its `pullRequestUrl`.
   */
  ensurePipeline(app: Application, settings: PipelineSettings): Promise<PipelineResult>;
  /**
   * Make a push credential available to the app's pipeline as its own secret(s). A static credential is written only
   * when the stored fingerprint differs; a minted token (a new one per deploy) is written every time; with none to
   * store, passwords stored earlier are removed.
   */
  ensureCredential(
    app: Application,
    credential: RegistryCredential | RegistryToken | NoStoredCredential,
  ): Promise<CredentialResult>;
  /**
   * Find the run started for `runKey` (`ciRunKey`, src/workflows/contract.ts), if any: the run is named
   * `ciRunName(runKey)`, so a crash between dispatch and record finds it instead of dispatching again.
   */
  findRun(app: Application, runKey: string): Promise<CiRunRef | undefined>;
  /**
   * Start a run named `ciRunName(runKey)` that also pushes the image as `ciImageTag(runKey)`; callers use `findRun`
   * first.
   */
  trigger(app: Application, runKey: string): Promise<CiRunRef>;
  status(app: Application, run: CiRunRef, etag?: string): Promise<RunStatusResponse>;
  cancel(app: Application, run: CiRunRef): Promise<void>;
  logsUrl(app: Application, run: CiRunRef): Promise<string>;
  /**
   * The run's own log text from `cursor` (undefined: from the start), for `flui logs [--follow]`: a client calls
   * again with the returned cursor until `done`. Secrets the CI masks stay masked.
   */
  readLogs(app: Application, run: CiRunRef, cursor?: string): Promise<LogChunk>;
}
