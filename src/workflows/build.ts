/**
 * One self-hosted build (FLUI_CI=self-hosted): the "CI run" of one deploy attempt, started by the self-hosted backend
 * with the id `buildWorkflowId(runKey)`, so a deploy attempt never gets two builds.
 *
 * The workflow runs on the Flui worker's task queue; its one activity, `build`, runs on the builders' task queue
 * (FLUI_BUILD_TASK_QUEUE), served by `flui-builder` processes. So the build's state and log stay readable (queries)
 * while no builder runs, and a builder needs no workflow code. The activity:
 * - has no schedule-to-start limit: with no builder it waits (the deploy's queue limit is the deploy's);
 * - heartbeats: a builder killed mid-build is noticed within `BUILDER_LIVENESS` and the build is redone by another
 *   builder (pushes are content-addressed and the deploy resolves the attempt's own tag, so one digest rolls out);
 * - gets cancellation through those heartbeats, which aborts the engine (the buildah process tree is killed); the
 *   workflow waits for that before it ends cancelled;
 * - sends its output here as batched signals; the workflow keeps the last MiB and answers `buildLogs` queries.
 *
 * A build that fails completes with `conclusion: 'failure'` and the reason (with the log tail), rather than failing:
 * the backend reads it. On success, the deploy is told at once through its `runCompleted` signal.
 */
import {
  ActivityCancellationType,
  ActivityFailure,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  proxyActivities,
  setHandler,
  TimeoutFailure,
  workflowInfo,
} from '@temporalio/workflow';
import type { BuildActivities } from '../activities/build-types.ts';
import {
  buildLogSignal,
  buildLogsQuery,
  buildRunUrl,
  buildStateQuery,
  LogTail,
  type BuildOutcome,
  type BuildRequest,
  type BuildState,
} from './build-contract.ts';
import { FailureType, runCompletedSignal } from './contract.ts';

/** A builder that stops heartbeating this long is taken for dead; its build goes to another builder. */
const BUILDER_LIVENESS = '20 seconds';
/** Time the build activity has beyond the build's own timeout (which the engine enforces) to report. */
const REPORT_MARGIN_MS = 60_000;

export async function buildWorkflow(request: BuildRequest): Promise<BuildOutcome> {
  const { workflowId, runId } = workflowInfo();
  const htmlUrl = buildRunUrl(request.webUi, workflowId, runId);
  const headSha = request.job.source.commit;
  const state: BuildState = { phase: 'waiting-for-builder', attempt: 0 };
  const logs = new LogTail();
  /** Highest batch seen per attempt: a batch resent after a lost answer is not appended twice. */
  const seen = new Map<number, number>();

  setHandler(buildStateQuery, () => state);
  setHandler(buildLogsQuery, (cursor) => ({ ...logs.read(cursor), done: state.phase === 'done' }));
  setHandler(buildLogSignal, ({ attempt, seq, text, builder }) => {
    if (state.phase === 'done' || seq <= (seen.get(attempt) ?? 0)) return;
    seen.set(attempt, seq);
    if (attempt > state.attempt) {
      if (state.attempt > 0) logs.append(`\n--- the build starts again on another builder (attempt ${attempt}) ---\n`);
      state.attempt = attempt;
      state.builder = builder;
      state.phase = 'building';
    }
    if (attempt === state.attempt) logs.append(text);
  });

  const { build } = proxyActivities<BuildActivities>({
    taskQueue: request.buildTaskQueue,
    startToCloseTimeout: request.job.timeoutMs + REPORT_MARGIN_MS,
    heartbeatTimeout: BUILDER_LIVENESS,
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: {
      initialInterval: '2 seconds',
      backoffCoefficient: 2,
      maximumInterval: '1 minute',
      // Builders dying or the registry down: retried; bounded so a build that keeps failing ends.
      maximumAttempts: 10,
      nonRetryableErrorTypes: Object.values(FailureType),
    },
    summary: `Build ${request.job.image} at ${headSha.slice(0, 12)}`,
  });

  let outcome: BuildOutcome;
  try {
    const result = await build(request.job);
    outcome = { conclusion: 'success', htmlUrl, headSha, ...result };
  } catch (err) {
    if (isCancellation(err)) {
      state.phase = 'done';
      logs.append('\n--- build cancelled ---\n');
      throw err;
    }
    const cause = err instanceof ActivityFailure ? err.cause : err;
    const timedOut = cause instanceof TimeoutFailure;
    const error = timedOut
      ? `the build did not finish within ${Math.round(request.job.timeoutMs / 60_000)} minutes`
      : cause instanceof Error
        ? cause.message
        : String(cause);
    outcome = { conclusion: timedOut ? 'timed_out' : 'failure', htmlUrl, headSha, error };
    log.warn('build failed', { error });
  }
  state.phase = 'done';

  if (outcome.conclusion === 'success') {
    // The fast path; polling finds the result anyway if this signal is lost (or the deploy ended meanwhile). A
    // failure reaches the deploy through its poll, which carries the reason and the log tail into its error.
    try {
      await getExternalWorkflowHandle(request.deploy.workflowId).signal(runCompletedSignal, {
        deployId: request.deploy.deployId,
        runId: workflowId,
        result: { conclusion: outcome.conclusion, htmlUrl, headSha, digest: outcome.digest },
      });
    } catch (err) {
      log.info('the deploy could not be told; it polls', { error: String(err) });
    }
  }
  return outcome;
}
