/**
 * The CI backend interface. The deploy workflow and its activities talk only to this; GitHub Actions is the first
 * implementation, GitLab CI and a self-hosted builder come next without the workflow changing.
 *
 * Every method is idempotent and safe to call again after a crash at any point. Implementations throw
 * `ApplicationFailure.nonRetryable` for permanent refusals and plain errors (optionally with `nextRetryDelay`) for
 * transient ones, as described in `src/activities/types.ts`.
 */
import type { Application } from '../manifest/schema.ts';
import type { CiRunRef, CiRunResult } from '../workflows/api.ts';

export interface PipelineResult {
  path: string;
  changed: boolean;
  /** The commit this call wrote, when it wrote one. */
  commitSha?: string;
  pullRequestUrl?: string;
}

export interface CredentialResult {
  secretName: string;
  fingerprint: string;
  changed: boolean;
}

/** The push credential, read from worker configuration; never leaves the activity that uses it. */
export interface RegistryCredential {
  registry: string;
  username: string;
  password: string;
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
}

export interface CiBackend {
  readonly name: string;
  /** Write or refresh the pipeline definition in the repository; no commit when it is already current. */
  ensurePipeline(app: Application): Promise<PipelineResult>;
  /** Make the push credential available to the pipeline; no write when the stored fingerprint matches. */
  ensureCredential(app: Application, credential: RegistryCredential): Promise<CredentialResult>;
  /** Find the run started for `deployId`, if any (the crash-between-dispatch-and-record case). */
  findRun(app: Application, deployId: string): Promise<CiRunRef | undefined>;
  /** Start a run for `deployId`; callers use `findRun` first. */
  trigger(app: Application, deployId: string): Promise<CiRunRef>;
  status(app: Application, run: CiRunRef, etag?: string): Promise<RunStatusResponse>;
  cancel(app: Application, run: CiRunRef): Promise<void>;
  logsUrl(app: Application, run: CiRunRef): Promise<string>;
}
