/**
 * One deploy, start to finish. This file is the product story:
 *
 *   Application: ensureWorkflowFile → ensureRegistryCredential → triggerRun → awaitRun → resolveImage → rolloutImage
 *   CatalogApp:                                                              resolveImage → rolloutImage
 *   Rollback:                                                                               rolloutImage
 *
 * Deterministic code only: every side effect is an activity; waiting is timers, signals and activity retries, so a
 * deploy survives CI outages and worker or server restarts. One workflow id per app keeps one deploy in flight; a
 * newer request supersedes it (cancels the CI run, continues as new with the newer request) or queues behind it.
 */
import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  condition,
  continueAsNew,
  isCancellation,
  log,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  upsertMemo,
  upsertSearchAttributes,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { DeployActivities } from '../activities/types.ts';
import {
  appOf,
  cancelSignal,
  ciImageTag,
  ciRunKey,
  ciRunName,
  deployMemo,
  DeployFailureType,
  deployRequestedSignal,
  FailureType,
  FluiApp,
  FluiCiRun,
  FluiCommit,
  FluiPhase,
  initialStatus,
  isTerminal,
  retrySignal,
  runCompletedSignal,
  statusQuery,
  type CiRunRef,
  type CiRunResult,
  type DeployOutcome,
  type DeployPhase,
  type DeployRequest,
  type DeployStatus,
} from './contract.ts';

// ---- Failure model -------------------------------------------------------------------------------------------
// Permanent refusals end the phase at once; everything else is retried with backoff for hours, so an outage of the
// CI, the registry or the cluster delays a deploy instead of failing it.
const PERMANENT = Object.values(FailureType);

/**
 * How soon an attempt whose worker died is retried elsewhere. Activities heartbeat while they run (the worker's
 * keep-alive interceptor, or the activity itself), so this, not the start-to-close timeout, bounds what a worker
 * crash or a restart costs a deploy. (The CI poll, one short request per attempt, goes without.)
 */
const LIVENESS = '10 seconds';

/**
 * Calls to GitHub/GitLab/registry APIs: quick requests, retried through outages for up to 12 hours. Start-to-close is
 * generous because liveness is the heartbeat's job: under load an attempt may queue behind the worker's paced GitHub
 * writes (one a second) for minutes, and timing it out would only queue its retry behind them again.
 */
const API_CALL: ActivityOptions = {
  startToCloseTimeout: '15 minutes',
  heartbeatTimeout: LIVENESS,
  scheduleToCloseTimeout: '12 hours',
  retry: {
    initialInterval: '2 seconds',
    backoffCoefficient: 2,
    maximumInterval: '5 minutes',
    nonRetryableErrorTypes: PERMANENT,
  },
};

/** Rollout: waits on the cluster with heartbeats; the activity enforces the progress deadline itself. */
const ROLLOUT: ActivityOptions = {
  // Up to a 1 h progress deadline, then as long again for the rollback; heartbeats catch a dead worker sooner.
  startToCloseTimeout: '3 hours',
  heartbeatTimeout: LIVENESS,
  // A cancelled rollout is undone only once its attempt has stopped (within a heartbeat or two, or when the
  // heartbeat timeout finds its worker dead), so it cannot record the restored image as its own.
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  scheduleToCloseTimeout: '6 hours',
  retry: {
    initialInterval: '2 seconds',
    backoffCoefficient: 2,
    maximumInterval: '2 minutes',
    nonRetryableErrorTypes: PERMANENT,
  },
};

/** Cleanup (cancelling a CI run): bounded, so an outage cannot hold a finished deploy for hours. */
const CLEANUP: ActivityOptions = {
  startToCloseTimeout: '1 minute',
  heartbeatTimeout: LIVENESS,
  scheduleToCloseTimeout: '15 minutes',
  retry: {
    initialInterval: '2 seconds',
    backoffCoefficient: 2,
    maximumInterval: '1 minute',
    nonRetryableErrorTypes: PERMANENT,
  },
};

/** Interval between status checks of a CI run when no webhook tells us first. */
const POLL_INTERVAL_SECONDS = 10;

function activities(options: ActivityOptions, summary: string) {
  return proxyActivities<DeployActivities>({ ...options, summary });
}

// ---- The workflow --------------------------------------------------------------------------------------------

/** What a run carries over when it continues as new (queued deploys of the same app). */
export interface DeployCarryOver {
  queued: DeployRequest[];
}

export async function deployWorkflow(
  request: DeployRequest,
  carried: DeployCarryOver = { queued: [] },
): Promise<DeployOutcome> {
  const { namespace, app } = appOf(request);
  const status: DeployStatus = initialStatus(
    request,
    carried.queued.map((r) => r.deployId),
  );
  const queue = [...carried.queued];
  const seen = new Set([request.deployId, ...queue.map((r) => r.deployId)]);
  let main: CancellationScope | undefined;
  /** Set by the cancel signal (a Temporal cancel request cancels `main` and leaves this unset). */
  let cancelRequest: { reason?: string } | undefined;
  let superseder: DeployRequest | undefined;
  let retryRequested = false;
  let webhookResult: CiRunResult | undefined;
  /** The dispatch of the current CI run, while it may still be in flight. */
  let dispatching: Promise<CiRunRef> | undefined;

  setHandler(statusQuery, () => status);
  setHandler(cancelSignal, (arg) => {
    cancelRequest = { reason: arg?.reason };
    main?.cancel();
  });
  setHandler(retrySignal, () => {
    if (status.phase === 'awaiting-retry') retryRequested = true;
    else log.warn('retry ignored: the deploy is not waiting for a retry', { phase: status.phase });
  });
  setHandler(deployRequestedSignal, (next) => {
    if (seen.has(next.deployId)) return; // signal-with-start delivers our own request too
    seen.add(next.deployId);
    if (next.policy === 'queue') {
      queue.push(next);
      status.queued = queue.map((r) => r.deployId);
      return;
    }
    // The newest request wins: it replaces anything queued and stops the current deploy.
    superseder = next;
    queue.length = 0;
    status.queued = [];
    status.supersededBy = next.deployId;
    main?.cancel();
  });
  setHandler(runCompletedSignal, ({ runId, result }) => {
    if (status.ciRun?.id === runId) webhookResult = result;
  });

  upsertSearchAttributes([{ key: FluiApp, value: `${namespace}/${app}` }]);

  // Phases run from `from` on; a retry re-enters at the phase that failed, keeping what earlier phases produced.
  let from: DeployPhase =
    request.kind === 'Application' ? 'preparing' : request.kind === 'CatalogApp' ? 'resolving' : 'rolling-out';
  let outcome: 'succeeded' | 'failed' | 'cancelled' = 'failed';
  for (;;) {
    try {
      main = new CancellationScope();
      await main.run(() => runPhases(from));
      outcome = 'succeeded';
      break;
    } catch (err) {
      if (superseder || cancelRequest !== undefined || isCancellation(err)) {
        await CancellationScope.nonCancellable(async () => {
          await stopCiRun();
          // A newer deploy rolls out next anyway; a plain cancel puts the cluster back as it was. (A patch: deploys
          // cancelled mid-rollout by an older worker replay without the undo.)
          if (!superseder && patched('undo-cancelled-rollout')) await abortRollout();
        });
        outcome = 'cancelled';
        break;
      }
      const failedPhase = status.phase;
      status.failedPhase = failedPhase;
      status.error = describeFailure(err);
      status.rolledBackTo = restoredDigest(err);
      log.error('deploy phase failed', { phase: failedPhase, error: status.error });
      // A run we gave up on (stuck in the queue, past the build timeout) must not build and push later on its own.
      if (failedPhase === 'building' && !isBuildFailure(err)) await CancellationScope.nonCancellable(() => stopCiRun());
      const windowMinutes = 'manifest' in request ? request.manifest.spec.deploy.retryWindowMinutes : 0;
      if (windowMinutes === 0) break;
      // A manifest outside the worker's lanes cannot pass on a retry: it ends now. (A patch: deploys refused under an
      // older worker replay their wait for a retry.)
      if (isRefusal(err) && patched('refusal-ends-deploy')) break;
      setPhase('awaiting-retry');
      // A newer or queued deploy also ends the wait: a failed deploy should not hold the app hostage.
      await condition(
        () => retryRequested || cancelRequest !== undefined || superseder !== undefined || queue.length > 0,
        `${windowMinutes} minutes`,
      );
      if (!retryRequested) {
        if (superseder || cancelRequest !== undefined) outcome = 'cancelled';
        break;
      }
      retryRequested = false;
      status.attempt += 1;
      status.error = undefined;
      from = failedPhase;
    }
  }

  // ---- Ending: hand over to the next deploy of this app, or finish ----
  if (superseder) {
    setPhase('superseded');
    return continueAsNew<typeof deployWorkflow>(superseder, { queued: [] });
  }
  if (outcome === 'cancelled') {
    status.cancelled = cancelRequest ? { by: 'signal', reason: cancelRequest.reason } : { by: 'temporal' };
  }
  setPhase(outcome === 'succeeded' ? 'succeeded' : outcome === 'cancelled' ? 'cancelled' : 'failed');
  const next = queue.shift();
  if (next) return continueAsNew<typeof deployWorkflow>(next, { queued: queue });
  if (outcome === 'failed') {
    throw ApplicationFailure.nonRetryable(
      `deploy ${request.deployId} failed while ${status.failedPhase}: ${status.error}`,
      DeployFailureType.Failed,
      status,
    );
  }
  if (outcome === 'cancelled') {
    // Cancelled through Temporal (Web UI, `flui cancel`): end as Cancelled. Through the signal: a failure that says so.
    const undone =
      status.rolloutUndone === 'restored'
        ? `; its rollout was undone, ${status.rolledBackTo} restored`
        : status.rolloutUndone === 'removed'
          ? '; its first rollout was undone, the app removed'
          : '';
    const reason = cancelRequest?.reason;
    if (CancellationScope.current().consideredCancelled) {
      throw new CancelledFailure(`${reason ?? 'cancelled'}${undone}`);
    }
    throw ApplicationFailure.nonRetryable(
      `deploy ${request.deployId} cancelled: ${reason ?? 'cancelled by signal'}${undone}`,
      DeployFailureType.Cancelled,
      status,
    );
  }
  return {
    deployId: status.deployId,
    namespace,
    app,
    phase: status.phase,
    commit: status.commit,
    ciRun: status.ciRun,
    image: status.image,
    digest: status.digest,
    timings: status.timings,
  };

  // ---- Phases ----

  async function runPhases(start: DeployPhase): Promise<void> {
    const order: DeployPhase[] = ['preparing', 'building', 'resolving', 'rolling-out'];
    for (const phase of order.slice(order.indexOf(start))) {
      if (phase === 'preparing' && request.kind === 'Application') await prepare(request.manifest);
      if (phase === 'building' && request.kind === 'Application') await build(request.manifest);
      if (phase === 'resolving' && request.kind !== 'Rollback') await resolve();
      if (phase === 'rolling-out') await rollout();
    }
  }

  async function prepare(manifest: Extract<DeployRequest, { kind: 'Application' }>['manifest']): Promise<void> {
    setPhase('preparing');
    const repo = `${manifest.spec.source.repository}@${manifest.spec.source.branch}`;
    // The pipeline file and the credential are independent: check both at once.
    const [file] = await Promise.all([
      activities(API_CALL, `Write the build pipeline to ${repo} if it changed`).ensureWorkflowFile({ app: manifest }),
      activities(
        API_CALL,
        `Store the registry push credential as a CI secret of ${manifest.spec.source.repository}`,
      ).ensureRegistryCredential({ app: manifest }),
    ]);
    log.info('pipeline file', {
      path: file.path,
      changed: file.changed,
      commit: file.commitSha,
      changes: file.changes,
    });
    // Shown by `flui status` and recorded with the next phase change (no command of its own: replay-safe).
    status.pipeline = {
      path: file.path,
      changed: file.changed,
      ...(file.commitSha ? { commit: file.commitSha } : {}),
      ...(file.changes?.length ? { changes: file.changes } : {}),
    };
  }

  async function build(manifest: Extract<DeployRequest, { kind: 'Application' }>['manifest']): Promise<void> {
    setPhase('building');
    const runKey = ciRunKey(request.deployId, status.attempt);
    webhookResult = undefined;
    status.ciRun = undefined; // a retry's run is a new one: the failed attempt's must not be taken for it
    // The dispatch is not cancelled with the deploy: a run created after the cleanup looked for it would build and
    // push on its own. A cancel stops waiting for it here, and the cleanup lets it land first (stopCiRun).
    dispatching = CancellationScope.nonCancellable(() =>
      activities(API_CALL, `Start the CI run "${ciRunName(runKey)}" on ${manifest.spec.source.branch}`).triggerRun({
        runKey,
        app: manifest,
      }),
    );
    dispatching.catch(() => undefined); // observed below, or by the cleanup
    const run = await Promise.race([dispatching, CancellationScope.current().cancelRequested]);
    status.ciRun = run;
    upsertSearchAttributes([{ key: FluiCiRun, value: run.htmlUrl }]);
    recordMemo();

    // Two ways to learn the run finished, raced: the CI's webhook (signal) and cheap conditional polling, whose
    // interval is the activity's retry policy (coefficient 1) so no loop runs in workflow code.
    const { buildTimeoutMinutes, queueTimeoutMinutes } = manifest.spec.deploy;
    const poller = new CancellationScope();
    const polled = poller.run(() =>
      activities(
        {
          // One status check per attempt, well inside this (GitHub requests time out after 30 s), so a poll that
          // died with its worker is retried within a minute; no heartbeat timeout for so short an attempt.
          startToCloseTimeout: '45 seconds',
          scheduleToCloseTimeout: `${buildTimeoutMinutes} minutes`,
          retry: {
            initialInterval: `${POLL_INTERVAL_SECONDS} seconds`,
            backoffCoefficient: 1,
            maximumInterval: `${POLL_INTERVAL_SECONDS} seconds`,
            nonRetryableErrorTypes: PERMANENT,
          },
        },
        `Wait for CI run ${run.id} to complete`,
      ).awaitRun({ app: manifest, run, queuedTimeoutSeconds: queueTimeoutMinutes * 60 }),
    );
    polled.catch(() => undefined); // observed below, or abandoned when the webhook wins
    const result = await Promise.race([
      polled,
      condition(() => webhookResult !== undefined).then(() => webhookResult!),
    ]);
    if (webhookResult) poller.cancel();

    status.commit = result.headSha;
    upsertSearchAttributes([{ key: FluiCommit, value: result.headSha }]);
    if (result.conclusion !== 'success') {
      throw ApplicationFailure.nonRetryable(
        `CI run ${run.id} concluded "${result.conclusion}": see ${result.htmlUrl}`,
        FailureType.BuildFailed,
      );
    }
    status.ciRun = { ...run, htmlUrl: result.htmlUrl };
    // The tag this run pushed for this deploy attempt (the commit's tag may since name another build).
    status.image = `${manifest.spec.image.repository}:${ciImageTag(runKey)}`;
    recordMemo();
  }

  async function resolve(): Promise<void> {
    setPhase('resolving');
    const image = request.kind === 'CatalogApp' ? request.manifest.spec.image : status.image!;
    const resolved = await activities(API_CALL, `Resolve ${image} to its digest`).resolveImage({ image });
    status.image = resolved.pinned;
    status.digest = resolved.digest;
    recordMemo();
  }

  async function rollout(): Promise<void> {
    setPhase('rolling-out');
    const target = request.kind === 'Rollback' ? (request.digest ?? 'the previous image') : status.image!;
    // A rollback names no image: the activity finds its target (the digest asked for, or the previous good image).
    const result = await activities(ROLLOUT, `Roll out ${target} to ${namespace}/${app}`).rolloutImage(
      request.kind === 'Rollback'
        ? { request, attempt: status.attempt }
        : { request, image: status.image!, commit: status.commit, attempt: status.attempt },
    );
    status.image = result.image;
    status.digest = result.digest;
    recordMemo();
  }

  /** Undo a rollout that a cancel interrupted: the last good image back, or no app if it was the first rollout. */
  async function abortRollout(): Promise<void> {
    if (status.phase !== 'rolling-out') return;
    try {
      const undone = await activities(ROLLOUT, `Undo the cancelled rollout of ${namespace}/${app}`).abortRollout({
        deployId: request.deployId,
        namespace,
        app,
      });
      status.rolloutUndone = undone.action;
      if (undone.action === 'restored') status.rolledBackTo = undone.digest;
    } catch (err) {
      status.error = describeFailure(err);
      log.error('could not undo the cancelled rollout', { error: status.error });
    }
  }

  /** Cancel the CI run we started, if it may still be going. Idempotent on the CI side. */
  async function stopCiRun(): Promise<void> {
    if (request.kind !== 'Application' || status.phase !== 'building') return;
    if (!status.ciRun && dispatching) {
      // Cancelled while dispatching: let the dispatch land (within reason, it may be waiting out an outage).
      const landed = await Promise.race([dispatching.catch(() => undefined), sleep('2 minutes')]);
      if (landed) status.ciRun = landed;
    }
    // Without a recorded run, a dispatch may still have happened (an attempt in flight): look it up by key.
    const runKey = ciRunKey(request.deployId, status.attempt);
    try {
      await activities(CLEANUP, `Cancel CI run ${status.ciRun?.id ?? `"${ciRunName(runKey)}"`}`).cancelRun({
        app: request.manifest,
        run: status.ciRun,
        runKey,
      });
    } catch (err) {
      log.warn('could not cancel the CI run; it may still finish on its own', { runKey, error: describeFailure(err) });
    }
  }

  function setPhase(phase: DeployPhase): void {
    const now = new Date().toISOString();
    const current = status.timings.at(-1);
    if (current && !current.endedAt) current.endedAt = now;
    status.phase = phase;
    if (!isTerminal(phase)) status.timings.push({ phase, startedAt: now });
    upsertSearchAttributes([{ key: FluiPhase, value: phase }]);
    setCurrentDetails(
      `**${phase}**${status.ciRun ? ` · [CI run](${status.ciRun.htmlUrl})` : ''}${status.digest ? ` · ${status.digest}` : ''}${status.error ? `\n\n${status.error}` : ''}`,
    );
    recordMemo();
  }

  /** The memo is what `flui builds` lists without replaying histories. */
  function recordMemo(): void {
    upsertMemo(deployMemo(status));
  }
}

/** The digest a failed rollout put back, from the failure's details. */
function restoredDigest(err: unknown): string | undefined {
  const cause = err instanceof ActivityFailure ? err.cause : undefined;
  if (!(cause instanceof ApplicationFailure) || cause.type !== FailureType.RolloutFailed) return undefined;
  const restored = (cause.details?.[0] as { restored?: unknown } | undefined)?.restored;
  return typeof restored === 'string' ? restored : undefined;
}

/** The CI run itself concluded without success (as opposed to us giving up on it). */
function isBuildFailure(err: unknown): boolean {
  return err instanceof ApplicationFailure && err.type === FailureType.BuildFailed;
}

/** An activity refused the deploy: its manifest is outside the lanes this worker allows. */
function isRefusal(err: unknown): boolean {
  return (
    err instanceof ActivityFailure && err.cause instanceof ApplicationFailure && err.cause.type === FailureType.Refused
  );
}

/** The message a person needs: the root cause of an activity failure, without Temporal's wrapping. */
function describeFailure(err: unknown): string {
  if (err instanceof ActivityFailure && err.cause) {
    const cause = err.cause;
    return cause instanceof ApplicationFailure ? cause.message : `${err.activityType}: ${cause.message}`;
  }
  return err instanceof Error ? err.message : String(err);
}
