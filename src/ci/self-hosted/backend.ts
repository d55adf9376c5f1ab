/**
 * Self-hosted builds as Flui's CI backend (FLUI_CI=self-hosted): a "CI run" is a build workflow
 * (src/workflows/build.ts) whose id is derived from the deploy's run key, served by `flui-builder` processes on the
 * build task queue. So the deploy workflow is the same as with GitHub Actions; only this adapter differs.
 *
 * The one adapter that speaks Temporal: it is the Temporal-native backend (its "CI API" is Temporal's), so it uses a
 * Temporal client, the worker's own when it runs in an activity. It still throws only `ServiceError`s.
 *
 * - `ensurePipeline` writes nothing: there is no CI file (the builder builds the manifest's Dockerfile);
 * - `ensureCredential` stores nothing: the builder pushes with its own configured credential;
 * - `trigger` resolves the branch to an exact commit, then starts the build workflow, id `build-<run key>`: a repeat
 *   start while it runs returns the same build (USE_EXISTING), and a finished build is never started again for the
 *   same key (REJECT_DUPLICATE: a retry of the deploy has a new run key);
 * - `status` reads the build's description (no query: it answers with no worker or builder running): queued while no
 *   builder has started it, in progress while one builds, completed with the outcome;
 * - `cancel` cancels the build workflow, whose activity's cancel aborts the engine on the builder;
 * - `readLogs` queries the build workflow, which holds the last MiB of the build's output.
 */
import {
  Client,
  Connection,
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  type WorkflowExecutionDescription,
} from '@temporalio/client';
import type { Config } from '../../config.ts';
import { ServiceError } from '../../errors.ts';
import type { Application } from '../../manifest/schema.ts';
import {
  BUILD_MEMO_KEY,
  buildLogsQuery,
  buildRunUrl,
  buildWorkflowId,
  type BuildJob,
  type BuildMemo,
  type BuildOutcome,
  type BuildRequest,
  type BuildSource,
} from '../../workflows/build-contract.ts';
import { ciImageTag, parseCiRunKey, type CiRunRef } from '../../workflows/contract.ts';
import type {
  CiBackend,
  CredentialResult,
  LogChunk,
  NoStoredCredential,
  PipelineResult,
  RegistryCredential,
  RegistryToken,
  RunStatusResponse,
} from '../backend.ts';

/** `PendingActivityInfo.state` values (temporal.api.enums.v1.PendingActivityState). */
const ACTIVITY_STARTED = 2;
const ACTIVITY_CANCEL_REQUESTED = 3;

/** Branch → exact commit (the build engine's `resolveCommit`), injected so the backend stays testable. */
export type ResolveCommit = (
  source: { kind: 'github'; repository: string; branch: string } | { kind: 'git'; url: string; branch: string },
) => Promise<string>;

export interface SelfHostedOptions {
  /** The Temporal client to use (in an activity: the worker's own). Without it, one is connected on first use. */
  client?: () => Client;
  resolveCommit: ResolveCommit;
}

/** The git URL of `repository` (`owner/name`) from FLUI_GIT_URL_TEMPLATE. */
export function gitUrl(template: string, repository: string): string {
  return template.replaceAll('{repository}', repository);
}

export class SelfHostedBackend implements CiBackend {
  readonly name = 'self-hosted';
  readonly #config: Pick<Config, 'temporal' | 'build'>;
  readonly #options: SelfHostedOptions;
  #own: Promise<Client> | undefined;

  constructor(config: Pick<Config, 'temporal' | 'build'>, options: SelfHostedOptions) {
    this.#config = config;
    this.#options = options;
  }

  async #client(): Promise<Client> {
    if (this.#options.client) {
      try {
        return this.#options.client();
      } catch {
        // Not in an activity: use a connection of our own.
      }
    }
    const { address, tls, apiKey, metadata, connectTimeoutMs, namespace } = this.#config.temporal;
    this.#own ??= Connection.connect({ address, tls, apiKey, metadata, connectTimeout: connectTimeoutMs }).then(
      (connection) => new Client({ connection, namespace }),
    );
    this.#own.catch(() => (this.#own = undefined));
    return this.#own;
  }

  #webUi(): BuildRequest['webUi'] {
    const { uiUrl, address, uiPort, namespace } = this.#config.temporal;
    const host = address.replace(/:[0-9]+$/, '');
    const base = uiUrl ?? (['127.0.0.1', 'localhost', '[::1]'].includes(host) ? `http://${host}:${uiPort}` : undefined);
    return base ? { base, namespace } : undefined;
  }

  /** Nothing to write: builds need no CI file. Key: none needed (writes nothing). */
  async ensurePipeline(_app: Application): Promise<PipelineResult> {
    return { path: '(none: self-hosted builds need no CI file)', changed: false };
  }

  /** Nothing to store: the builder pushes with the credential of its own configuration. */
  async ensureCredential(
    _app: Application,
    _credential: RegistryCredential | RegistryToken | NoStoredCredential,
  ): Promise<CredentialResult> {
    return { changed: false };
  }

  /** Key: the build workflow id, `build-<run key>`. */
  async findRun(_app: Application, runKey: string): Promise<CiRunRef | undefined> {
    const workflowId = buildWorkflowId(runKey);
    const description = await this.#describe(workflowId, `looking for the build of ${runKey}`);
    return description && { id: workflowId, htmlUrl: buildRunUrl(this.#webUi(), workflowId, description.runId) };
  }

  /**
   * Key: the build workflow id, `build-<run key>`: Temporal's id uniqueness makes a repeat start return the build
   * already running (or find the finished one), never start a second one.
   */
  async trigger(app: Application, runKey: string): Promise<CiRunRef> {
    const key = parseCiRunKey(runKey);
    if (!key) {
      throw new ServiceError({ service: 'Builder', kind: 'invalid', message: `"${runKey}" is not a run key` });
    }
    const source = await this.#source(app);
    const job: BuildJob = {
      buildId: runKey.replace(/[^A-Za-z0-9_.-]/g, '-'),
      app: `${app.metadata.namespace}.${app.metadata.name}`,
      source,
      context: app.spec.source.context,
      dockerfile: app.spec.source.dockerfile,
      buildArgs: app.spec.source.buildArgs,
      image: app.spec.image.repository,
      tags: [ciImageTag(runKey), source.commit],
      timeoutMs: Math.min(app.spec.deploy.buildTimeoutMinutes, this.#config.build.timeoutMinutes) * 60_000,
    };
    const webUi = this.#webUi();
    const request: BuildRequest = {
      runKey,
      job,
      buildTaskQueue: this.#config.build.taskQueue,
      deploy: { workflowId: key.workflowId, deployId: key.deployId },
      ...(webUi ? { webUi } : {}),
    };
    const workflowId = buildWorkflowId(runKey);
    const client = await this.#client();
    const memo: Record<string, BuildMemo> = { [BUILD_MEMO_KEY]: { headSha: source.commit, image: job.image } };
    try {
      const handle = await client.workflow.start('buildWorkflow', {
        workflowId,
        // The build workflow runs beside the deploys; its activity goes to the builders.
        taskQueue: this.#config.temporal.taskQueue,
        args: [request],
        memo,
        workflowIdConflictPolicy: 'USE_EXISTING',
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
        // Bounds a build whose deploy is gone: its queue and build limits, and as long again.
        workflowExecutionTimeout: `${2 * (app.spec.deploy.queueTimeoutMinutes + app.spec.deploy.buildTimeoutMinutes)} minutes`,
        staticSummary: `Build ${app.spec.source.repository}@${source.commit.slice(0, 12)} into ${job.image}`,
      });
      return { id: workflowId, htmlUrl: buildRunUrl(webUi, workflowId, handle.firstExecutionRunId) };
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) {
        // Started and finished before (a crash after the start, before recording it): that build is this run.
        const found = await this.findRun(app, runKey);
        if (found) return found;
      }
      throw temporalError(err, `starting the build of ${runKey}`);
    }
  }

  /** The exact commit to build: the branch is resolved once, here, so a branch moving during the build is harmless. */
  async #source(app: Application): Promise<BuildSource> {
    const { repository, branch } = app.spec.source;
    const { source, gitUrlTemplate } = this.#config.build;
    if (source === 'git') {
      if (!gitUrlTemplate) {
        throw new ServiceError({
          service: 'Builder',
          kind: 'misconfigured',
          message: 'FLUI_BUILD_SOURCE=git without FLUI_GIT_URL_TEMPLATE',
          hint: 'set FLUI_GIT_URL_TEMPLATE, e.g. http://git.internal/{repository}.git',
        });
      }
      const url = gitUrl(gitUrlTemplate, repository);
      return { kind: 'git', url, commit: await this.#options.resolveCommit({ kind: 'git', url, branch }) };
    }
    return {
      kind: 'github',
      repository,
      commit: await this.#options.resolveCommit({ kind: 'github', repository, branch }),
    };
  }

  async #describe(workflowId: string, doing: string): Promise<WorkflowExecutionDescription | undefined> {
    const client = await this.#client();
    try {
      return await client.workflow.getHandle(workflowId).describe();
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return undefined;
      throw temporalError(err, doing);
    }
  }

  /** Read-only: the build workflow's description (and its result once closed); no ETags (Temporal has no rate limit). */
  async status(_app: Application, run: CiRunRef): Promise<RunStatusResponse> {
    const description = await this.#describe(run.id, `checking build ${run.id}`);
    if (!description) {
      throw new ServiceError({ service: 'Builder', kind: 'not-found', message: `build ${run.id} does not exist` });
    }
    const memo = description.memo?.[BUILD_MEMO_KEY] as BuildMemo | undefined;
    const headSha = memo?.headSha ?? '';
    const htmlUrl = buildRunUrl(this.#webUi(), run.id, description.runId);
    const createdAt = description.startTime.toISOString();
    switch (description.status.name) {
      case 'RUNNING': {
        const pending = description.raw.pendingActivities ?? [];
        const started = pending.some((a) => a.state === ACTIVITY_STARTED || a.state === ACTIVITY_CANCEL_REQUESTED);
        return { status: { state: started ? 'in_progress' : 'queued', createdAt, htmlUrl, headSha } };
      }
      case 'COMPLETED': {
        const client = await this.#client();
        const outcome = (await client.workflow.getHandle(run.id).result()) as BuildOutcome;
        if (outcome.conclusion === 'failure' && outcome.error) {
          // The reason and the log tail go into the deploy's error (a non-retryable failure, like a bad manifest).
          throw new ServiceError({
            service: 'Builder',
            kind: 'invalid',
            message: `build ${run.id} failed: ${outcome.error}`,
            hint: 'its whole output is in `flui logs <app>` and on the build page',
          });
        }
        return {
          status: {
            state: 'completed',
            result: {
              conclusion: outcome.conclusion,
              htmlUrl,
              headSha: outcome.headSha,
              ...(outcome.digest ? { digest: outcome.digest } : {}),
            },
          },
        };
      }
      case 'CANCELLED':
        return { status: { state: 'completed', result: { conclusion: 'cancelled', htmlUrl, headSha } } };
      case 'TIMED_OUT':
        return { status: { state: 'completed', result: { conclusion: 'timed_out', htmlUrl, headSha } } };
      default:
        // FAILED, TERMINATED: ended without a build.
        return { status: { state: 'completed', result: { conclusion: 'failure', htmlUrl, headSha } } };
    }
  }

  /** Key: the build workflow id; cancelling a finished build is a no-op. */
  async cancel(_app: Application, run: CiRunRef): Promise<void> {
    const client = await this.#client();
    try {
      await client.workflow.getHandle(run.id).cancel();
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return; // finished (or never started)
      throw temporalError(err, `cancelling build ${run.id}`);
    }
  }

  async logsUrl(_app: Application, run: CiRunRef): Promise<string> {
    return run.htmlUrl;
  }

  /**
   * The build's own output after `cursor`, from the build workflow (which the Flui worker runs, so this answers with
   * no builder running, and after a builder died).
   */
  async readLogs(_app: Application, run: CiRunRef, cursor?: string): Promise<LogChunk> {
    if (cursor !== undefined && !/^[0-9]{1,15}$/.test(cursor)) {
      throw new ServiceError({ service: 'Builder', kind: 'invalid', message: `"${cursor}" is not a build log cursor` });
    }
    const client = await this.#client();
    try {
      return await client.workflow.getHandle(run.id).query(buildLogsQuery, cursor);
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) {
        throw new ServiceError({ service: 'Builder', kind: 'not-found', message: `build ${run.id} does not exist` });
      }
      throw temporalError(err, `reading the log of build ${run.id}`);
    }
  }
}

/** Temporal's own errors, as a service error (transient unless Temporal said the request is wrong). */
function temporalError(err: unknown, doing: string): ServiceError {
  if (err instanceof ServiceError) return err;
  const code = (err as { code?: number }).code;
  // gRPC INVALID_ARGUMENT (3), PERMISSION_DENIED (7), UNAUTHENTICATED (16): retrying cannot help.
  const kind = code === 3 ? 'invalid' : code === 7 || code === 16 ? 'unauthorized' : 'unavailable';
  return new ServiceError({
    service: 'Temporal',
    kind,
    message: `${doing}: ${(err as Error).message}`,
    cause: err,
  });
}
