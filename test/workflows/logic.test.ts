/**
 * The deploy workflow's own logic, driven step by step: the real workflow code on Temporal's time-skipping test server,
 * with stub activities a test holds, fails or answers (test/fixtures/deploy-activities.ts). What the real GitHub,
 * registry and cluster do is the real-server suite's job; here it is what the workflow decides: supersede and queue,
 * the retry window and signal, cancel in every phase, the webhook/poll race and the undo of a cancelled rollout.
 */
import assert from 'node:assert/strict';
import { describe, it as test } from 'node:test';
import { Client, WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { rollback, startDeploy, type StartedDeploy } from '../../src/client/index.ts';
import type { DeployPolicy, Manifest } from '../../src/manifest/schema.ts';
import {
  cancelSignal,
  ciImageTag,
  FailureType,
  readDeployMemo,
  retrySignal,
  runCompletedSignal,
  statusQuery,
  type CiRunResult,
  type DeployOutcome,
  type DeployPhase,
  type DeployStatus,
} from '../../src/workflows/contract.ts';
import type { deployWorkflow } from '../../src/workflows/deploy.ts';
import {
  commitOf,
  PREVIOUS_DIGEST,
  sha256,
  STUB_WORKER_OPTIONS,
  StubActivities,
  stubApplication,
  stubCatalogApp,
  type ActivityName,
} from '../fixtures/deploy-activities.ts';
import { pollUntil } from '../helpers/eventually.ts';
import { startTimeSkipping, useTimeSkipping, workflowBundle } from '../helpers/temporal.ts';

type DeployHandle = WorkflowHandle<typeof deployWorkflow>;

interface Harness {
  env: TestWorkflowEnvironment;
  /** A plain client: awaiting a result through it does not skip time (only `env.sleep` does). */
  client: Client;
  taskQueue: string;
  stubs: StubActivities;
  deploy(manifest: Manifest, policy?: DeployPolicy): Promise<StartedDeploy & { handle: DeployHandle }>;
}

const eventually = <T>(probe: () => Promise<T | undefined> | T | undefined, what: string) =>
  pollUntil(probe, { what, timeoutMs: 30_000, intervalMs: 50 });

let queues = 0;
let apps = 0;
const appName = () => `logic-${++apps}`;

// A workflow that waits where it should not would otherwise hold its test until the suite's own timeout.
const it = (name: string, fn: () => Promise<void>) => test(name, { timeout: 60_000 }, fn);

describe('deploy workflow logic (stub activities, time-skipping server)', () => {
  const env = useTimeSkipping();

  /**
   * Runs `body` with a worker of the real workflow and `stubs` on a task queue of its own; deploys it leaves running
   * are terminated. With `skipsTime`, on a test server of its own: the shared one's clock can stop skipping for good
   * after some workflow task races (a lock leaked), which would turn `env.sleep` into a wait in real time.
   */
  async function withWorker(
    stubs: StubActivities,
    body: (h: Harness) => Promise<void>,
    opts: { skipsTime?: boolean } = {},
  ): Promise<void> {
    const e = opts.skipsTime ? await startTimeSkipping() : env();
    try {
      const taskQueue = `logic-${++queues}`;
      const client = new Client({ connection: e.connection, namespace: e.namespace });
      const worker = await Worker.create({
        connection: e.nativeConnection,
        namespace: e.namespace,
        taskQueue,
        workflowBundle: await workflowBundle('src/workflows/index.ts'),
        activities: stubs.activities,
        ...STUB_WORKER_OPTIONS,
      });
      const workflowIds = new Set<string>();
      const h: Harness = {
        env: e,
        client,
        taskQueue,
        stubs,
        async deploy(manifest, policy) {
          const started = await startDeploy(client, manifest, { taskQueue, policy });
          workflowIds.add(started.workflowId);
          return { ...started, handle: client.workflow.getHandle(started.workflowId, started.runId) };
        },
      };
      await worker.runUntil(async () => {
        try {
          await body(h);
        } finally {
          for (const id of workflowIds)
            await client.workflow
              .getHandle(id)
              .terminate()
              .catch(() => undefined);
          stubs.releaseAll();
        }
      });
    } finally {
      if (opts.skipsTime) await e.teardown();
    }
  }

  const statusOf = (handle: DeployHandle) => handle.query(statusQuery);
  const phaseReached = (handle: DeployHandle, phase: DeployPhase) =>
    eventually(async () => {
      const s = await statusOf(handle);
      return s.phase === phase ? s : undefined;
    }, `phase ${phase}`);
  /** What `flui status` and `flui builds` read once the run ended: its memo, through the contract's reader. */
  const memoOf = async (handle: DeployHandle) => readDeployMemo((await handle.describe()).memo);
  /** The workflow asked for the cancellation of its (first) call of activity `name`: read from its history. */
  async function cancelRequested(handle: DeployHandle, name: ActivityName): Promise<boolean> {
    const events = (await handle.fetchHistory()).events ?? [];
    const scheduled = events.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === name);
    assert.ok(scheduled, `${name} was scheduled`);
    return events.some(
      (e) => String(e.activityTaskCancelRequestedEventAttributes?.scheduledEventId) === String(scheduled.eventId),
    );
  }

  /**
   * The result of the app's last run, once it ended. A deploy that continues as new is followed by polling its
   * workflow id, not through the first run's result: the test server can leave a run that continued as new while an
   * activity's cancellation was being reported without its closing event, so waiting on that run never ends.
   */
  async function lastRunResult(h: Harness, workflowId: string): Promise<DeployOutcome> {
    const last = await eventually(async () => {
      const d = await h.client.workflow.getHandle(workflowId).describe();
      return d.status.name === 'RUNNING' ? undefined : d;
    }, `${workflowId} to end`);
    return (await h.client.workflow.getHandle(workflowId, last.runId).result()) as DeployOutcome;
  }

  /** Waits until the workflow has run on the last `signal` it received (a workflow task completed after it). */
  const signalTaken = (handle: DeployHandle, signal: string) =>
    eventually(async () => {
      const events = (await handle.fetchHistory()).events ?? [];
      const at = events.map((e) => e.workflowExecutionSignaledEventAttributes?.signalName === signal).lastIndexOf(true);
      return at >= 0 && events.slice(at).some((e) => e.workflowTaskCompletedEventAttributes) ? true : undefined;
    }, `the workflow took ${signal}`);

  /** The deploy ended through the `cancel` signal: a DeployCancelled failure carrying its final status. */
  async function cancelledBySignal(handle: DeployHandle, message: RegExp): Promise<DeployStatus> {
    const err = await handle.result().then(
      () => assert.fail('the deploy succeeded'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof WorkflowFailedError, String(err));
    assert.ok(err.cause instanceof ApplicationFailure, String(err.cause));
    assert.equal(err.cause.type, 'DeployCancelled');
    assert.match(err.cause.message, message);
    assert.equal((await handle.describe()).status.name, 'FAILED');
    return err.cause.details?.[0] as DeployStatus;
  }

  /** The deploy ended through Temporal cancellation: the run is Cancelled. */
  async function cancelledByTemporal(handle: DeployHandle): Promise<void> {
    await assert.rejects(handle.result(), (err: unknown) => {
      assert.ok(err instanceof WorkflowFailedError, String(err));
      assert.ok(err.cause instanceof CancelledFailure, String(err.cause));
      return true;
    });
    assert.equal((await handle.describe()).status.name, 'CANCELLED');
    const memo = await memoOf(handle);
    assert.equal(memo?.phase, 'cancelled');
    assert.deepEqual(memo?.cancelled, { by: 'temporal' });
  }

  /** The deploy failed for good: a DeployFailed failure carrying its final status. */
  async function failed(handle: DeployHandle, message: RegExp): Promise<DeployStatus> {
    const err = await handle.result().then(
      () => assert.fail('the deploy succeeded'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof WorkflowFailedError, String(err));
    assert.ok(err.cause instanceof ApplicationFailure, String(err.cause));
    assert.equal(err.cause.type, 'DeployFailed');
    assert.match(err.cause.message, message);
    return err.cause.details?.[0] as DeployStatus;
  }

  const webhook = (runId: string, result: Partial<CiRunResult> = {}) => ({
    deployId: '',
    runId,
    result: {
      conclusion: 'success' as const,
      htmlUrl: `https://ci.test/runs/${runId}#webhook`,
      headSha: sha256(`webhook ${runId}`).slice(0, 40),
      ...result,
    },
  });

  describe('a deploy that goes through', () => {
    it('Application: prepares, builds, resolves the commit the CI built and rolls out that digest', async () => {
      const stubs = new StubActivities();
      await withWorker(stubs, async (h) => {
        const app = stubApplication(appName());
        const { deployId, handle } = await h.deploy(app);
        const outcome = (await handle.result()) as DeployOutcome;

        assert.deepEqual(
          new Set(stubs.names().slice(0, 2)),
          new Set(['ensureWorkflowFile', 'ensureRegistryCredential']),
        );
        assert.deepEqual(stubs.names().slice(2), ['triggerRun', 'awaitRun', 'resolveImage', 'rolloutImage']);
        assert.equal(stubs.inputs('triggerRun')[0]?.runKey, deployId);
        assert.equal(stubs.inputs('awaitRun')[0]?.run.id, '1');
        const commit = commitOf('1');
        // Exactly what this deploy's run pushed: its own tag, not the commit's (another run may push that too).
        const image = `${app.spec.image.repository}:${ciImageTag(deployId)}`;
        assert.equal(stubs.inputs('resolveImage')[0]?.image, image);
        const digest = `sha256:${sha256(image)}`;
        const rolledOut = stubs.inputs('rolloutImage')[0];
        assert.equal(rolledOut && 'image' in rolledOut && rolledOut.image, `${app.spec.image.repository}@${digest}`);

        assert.equal(outcome.deployId, deployId);
        assert.equal(outcome.phase, 'succeeded');
        assert.equal(outcome.commit, commit);
        assert.equal(outcome.digest, digest);
        assert.deepEqual(outcome.ciRun, { id: '1', htmlUrl: 'https://ci.test/runs/1' });
        assert.deepEqual(
          outcome.timings.map((t) => t.phase),
          ['preparing', 'building', 'resolving', 'rolling-out'],
        );
        assert.ok(
          outcome.timings.every((t) => t.endedAt),
          'every phase has ended',
        );
        const memo = await memoOf(handle);
        assert.equal(memo?.phase, 'succeeded');
        assert.equal(memo?.digest, digest);
        assert.equal(memo?.commit, commit);
        assert.equal(stubs.inputs('cancelRun').length, 0);
        assert.equal(stubs.inputs('abortRollout').length, 0);
      });
    });

    it('CatalogApp: resolves its image and rolls it out, with no CI', async () => {
      const stubs = new StubActivities();
      await withWorker(stubs, async (h) => {
        const app = stubCatalogApp(appName());
        const { handle } = await h.deploy(app);
        const outcome = (await handle.result()) as DeployOutcome;
        assert.deepEqual(stubs.names(), ['resolveImage', 'rolloutImage']);
        assert.equal(stubs.inputs('resolveImage')[0]?.image, app.spec.image);
        assert.equal(outcome.digest, `sha256:${sha256(app.spec.image)}`);
        assert.equal(outcome.ciRun, undefined);
      });
    });

    it('Rollback: rolls out only, to the digest asked for', async () => {
      const stubs = new StubActivities();
      await withWorker(stubs, async (h) => {
        const digest = `sha256:${sha256('an older image')}`;
        stubs.answer('rolloutImage', () => ({
          namespace: 'default',
          app: 'x',
          digest,
          image: `registry.test/x@${digest}`,
          revision: '3',
          unchanged: false,
        }));
        const name = appName();
        const started = await rollback(h.client, 'default', name, { digest, taskQueue: h.taskQueue });
        const outcome = (await h.client.workflow.getHandle(started.workflowId).result()) as DeployOutcome;
        assert.deepEqual(stubs.names(), ['rolloutImage']);
        const input = stubs.inputs('rolloutImage')[0]!;
        assert.ok(!('image' in input), 'a rollback names no image: the activity picks the digest');
        assert.equal(input.request.kind === 'Rollback' && input.request.digest, digest);
        assert.equal(outcome.digest, digest);
        assert.equal(outcome.deployId, started.deployId);
      });
    });
  });

  describe('a newer request for the same app', () => {
    it('supersedes the deploy in flight: its CI run is cancelled and the newer deploy continues as new', async () => {
      const stubs = new StubActivities();
      const polling = stubs.hold('awaitRun');
      await withWorker(stubs, async (h) => {
        const app = stubApplication(appName());
        const first = await h.deploy(app);
        await polling.reached;
        const second = await h.deploy(app, 'supersede');
        assert.equal(second.runId, first.runId, 'signal-with-start reached the running deploy');

        const outcome = await lastRunResult(h, first.workflowId); // the run it continued as
        assert.equal(outcome.deployId, second.deployId);
        assert.equal(outcome.phase, 'succeeded');
        const firstRun = await first.handle.describe();
        assert.equal(firstRun.status.name, 'CONTINUED_AS_NEW');
        assert.equal(readDeployMemo(firstRun.memo)?.phase, 'superseded');

        assert.deepEqual(
          stubs.inputs('triggerRun').map((i) => i.runKey),
          [first.deployId, second.deployId],
        );
        const cancelled = stubs.inputs('cancelRun');
        assert.equal(cancelled.length, 1);
        assert.equal(cancelled[0]?.run?.id, '1');
        assert.equal(cancelled[0]?.runKey, first.deployId);
        assert.ok(await cancelRequested(first.handle, 'awaitRun'), 'the poll was cancelled');
        assert.equal(stubs.inputs('abortRollout').length, 0);
      });
    });

    it('supersedes a rollout in flight without undoing it: the newer deploy rolls out next', async () => {
      const stubs = new StubActivities();
      const rolling = stubs.hold('rolloutImage');
      await withWorker(stubs, async (h) => {
        const app = stubApplication(appName());
        const first = await h.deploy(app);
        await rolling.reached;
        const second = await h.deploy(app);
        const outcome = await lastRunResult(h, first.workflowId);
        assert.equal(outcome.deployId, second.deployId);
        assert.equal(stubs.calls.find((c) => c.name === 'rolloutImage')?.outcome, 'cancelled');
        assert.equal(stubs.inputs('abortRollout').length, 0, 'no undo: the newer deploy replaces the rollout');
        assert.equal(stubs.inputs('cancelRun').length, 0, 'the CI run had finished');
        assert.equal(stubs.inputs('rolloutImage').length, 2);
      });
    });

    it('with policy queue waits its turn; queued deploys run in order, each as its own run', async () => {
      const stubs = new StubActivities();
      const polling = stubs.hold('awaitRun');
      await withWorker(stubs, async (h) => {
        const app = stubApplication(appName());
        const first = await h.deploy(app);
        await polling.reached;
        const second = await h.deploy(app, 'queue');
        const third = await h.deploy(app, 'queue');
        const waiting = await eventually(async () => {
          const s = await statusOf(first.handle);
          return s.queued.length === 2 ? s : undefined;
        }, 'two queued');
        assert.deepEqual(waiting.queued, [second.deployId, third.deployId]);
        assert.equal(waiting.phase, 'building', 'the running deploy goes on');
        polling.release();

        const outcome = await lastRunResult(h, first.workflowId);
        assert.equal(outcome.deployId, third.deployId);
        assert.deepEqual(
          stubs.inputs('triggerRun').map((i) => i.runKey),
          [first.deployId, second.deployId, third.deployId],
        );
        assert.equal(stubs.inputs('cancelRun').length, 0);
        assert.equal((await memoOf(first.handle))?.phase, 'succeeded', 'the first deploy finished before the next');
      });
    });

    it('with policy supersede replaces the queued ones too', async () => {
      const stubs = new StubActivities();
      const polling = stubs.hold('awaitRun');
      await withWorker(stubs, async (h) => {
        const app = stubApplication(appName());
        const first = await h.deploy(app);
        await polling.reached;
        await h.deploy(app, 'queue');
        const newest = await h.deploy(app, 'supersede');
        const outcome = await lastRunResult(h, first.workflowId);
        assert.equal(outcome.deployId, newest.deployId);
        assert.deepEqual(
          stubs.inputs('triggerRun').map((i) => i.runKey),
          [first.deployId, newest.deployId],
          'the queued deploy never ran',
        );
      });
    });
  });

  describe('the retry window and the retry signal', () => {
    it('a failed phase waits for a retry, then runs again from that phase with the next attempt', async () => {
      const stubs = new StubActivities().fail('resolveImage', 'image not found', { type: FailureType.NotFound });
      await withWorker(stubs, async (h) => {
        const { handle } = await h.deploy(stubApplication(appName(), { retryWindowMinutes: 60 }));
        const waiting = await phaseReached(handle, 'awaiting-retry');
        assert.equal(waiting.failedPhase, 'resolving');
        assert.equal(waiting.error, 'image not found');
        assert.equal(waiting.attempt, 1);
        assert.equal((await memoOf(handle))?.error, 'image not found');

        await handle.signal(retrySignal);
        const outcome = (await handle.result()) as DeployOutcome;
        assert.equal(outcome.phase, 'succeeded');
        assert.equal(outcome.commit, commitOf('1'), 'the build of the first attempt is kept');
        assert.deepEqual(stubs.names().slice(2), [
          'triggerRun',
          'awaitRun',
          'resolveImage',
          'resolveImage',
          'rolloutImage',
        ]);
        const memo = await memoOf(handle);
        assert.equal(memo?.attempt, 2);
        assert.equal(memo?.error, undefined, 'the retry cleared the error');
      });
    });

    it('a retried build is a new CI run keyed <deployId>/2; a run that failed on its own is not cancelled', async () => {
      const stubs = new StubActivities();
      let polls = 0;
      stubs.answer('awaitRun', ({ run }) => ({
        conclusion: ++polls === 1 ? 'failure' : 'success',
        htmlUrl: run.htmlUrl,
        headSha: commitOf(run.id),
      }));
      await withWorker(stubs, async (h) => {
        const { deployId, handle } = await h.deploy(stubApplication(appName(), { retryWindowMinutes: 60 }));
        const waiting = await phaseReached(handle, 'awaiting-retry');
        assert.equal(waiting.failedPhase, 'building');
        assert.match(waiting.error ?? '', /^CI run 1 concluded "failure": see https:\/\/ci\.test\/runs\/1$/);
        assert.equal(stubs.inputs('cancelRun').length, 0);

        await handle.signal(retrySignal);
        const outcome = (await handle.result()) as DeployOutcome;
        assert.deepEqual(
          stubs.inputs('triggerRun').map((i) => i.runKey),
          [deployId, `${deployId}/2`],
        );
        assert.equal(stubs.inputs('awaitRun')[1]?.run.id, '2', 'the retry waits for its own run');
        assert.equal(outcome.ciRun?.id, '2');
        assert.equal(outcome.commit, commitOf('2'));
        assert.equal(stubs.inputs('ensureWorkflowFile').length, 1, 'preparing is not repeated');
      });
    });

    it('a run given up on (queued too long) is cancelled before the deploy waits for a retry', async () => {
      const stubs = new StubActivities().fail('awaitRun', 'no runner picked the run up', {
        type: FailureType.RunQueuedTooLong,
      });
      await withWorker(stubs, async (h) => {
        const { deployId, handle } = await h.deploy(stubApplication(appName(), { retryWindowMinutes: 60 }));
        await phaseReached(handle, 'awaiting-retry');
        const cancelled = stubs.inputs('cancelRun');
        assert.equal(cancelled.length, 1);
        assert.equal(cancelled[0]?.run?.id, '1');
        assert.equal(cancelled[0]?.runKey, deployId);
      });
    });

    it('without a retry the window closes and the deploy fails, reporting what a failed rollout restored', async () => {
      const stubs = new StubActivities().fail('rolloutImage', 'no progress within 300 s; the previous image is back', {
        type: FailureType.RolloutFailed,
        details: [{ restored: PREVIOUS_DIGEST }],
      });
      await withWorker(
        stubs,
        async (h) => {
          const { deployId, handle } = await h.deploy(stubApplication(appName(), { retryWindowMinutes: 30 }));
          const waiting = await phaseReached(handle, 'awaiting-retry');
          assert.equal(waiting.rolledBackTo, PREVIOUS_DIGEST);
          await h.env.sleep('31 minutes');
          const final = await failed(
            handle,
            new RegExp(`^deploy ${deployId} failed while rolling-out: no progress within 300 s`),
          );
          assert.equal(final.phase, 'failed');
          assert.equal(final.failedPhase, 'rolling-out');
          assert.equal(final.rolledBackTo, PREVIOUS_DIGEST);
          assert.equal(stubs.inputs('rolloutImage').length, 1);
          assert.equal(stubs.inputs('abortRollout').length, 0, 'a failed rollout restores on its own');
        },
        { skipsTime: true },
      );
    });

    it('with no retry window a failure ends the deploy at once', async () => {
      const stubs = new StubActivities().fail('ensureWorkflowFile', 'GitHub refused the token', {
        type: FailureType.Unauthorized,
      });
      await withWorker(stubs, async (h) => {
        const { handle } = await h.deploy(stubApplication(appName(), { retryWindowMinutes: 0 }));
        const final = await failed(handle, /failed while preparing: GitHub refused the token$/);
        assert.equal(final.failedPhase, 'preparing');
        assert.equal(stubs.inputs('triggerRun').length, 0);
      });
    });

    it('a transient failure is retried by Temporal without waiting for a retry', async () => {
      const stubs = new StubActivities().fail('resolveImage', 'registry unavailable (503)', { times: 2 });
      await withWorker(stubs, async (h) => {
        const { handle } = await h.deploy(stubApplication(appName()));
        const outcome = (await handle.result()) as DeployOutcome;
        assert.equal(outcome.phase, 'succeeded');
        assert.equal(stubs.inputs('resolveImage').length, 3);
        assert.equal((await memoOf(handle))?.attempt, 1);
      });
    });

    it('ignores a retry signal while the deploy is not waiting for one', async () => {
      const stubs = new StubActivities();
      const polling = stubs.hold('awaitRun');
      await withWorker(stubs, async (h) => {
        const { handle } = await h.deploy(stubApplication(appName(), { retryWindowMinutes: 60 }));
        await polling.reached;
        await handle.signal(retrySignal);
        await signalTaken(handle, retrySignal.name);
        polling.release();
        await handle.result();
        assert.equal((await memoOf(handle))?.attempt, 1);
        assert.equal(stubs.inputs('triggerRun').length, 1);
      });
    });

    it('a queued deploy ends the wait: the failed one ends failed, the queued one runs', async () => {
      const stubs = new StubActivities().fail('resolveImage', 'image not found', { type: FailureType.NotFound });
      await withWorker(stubs, async (h) => {
        const app = stubApplication(appName(), { retryWindowMinutes: 60 });
        const first = await h.deploy(app);
        await phaseReached(first.handle, 'awaiting-retry');
        const queued = await h.deploy(app, 'queue');
        const outcome = await lastRunResult(h, first.workflowId);
        assert.equal(outcome.deployId, queued.deployId);
        assert.equal(outcome.phase, 'succeeded');
        assert.equal((await memoOf(first.handle))?.phase, 'failed');
      });
    });
  });

  describe('cancel', () => {
    // Each phase, held at its activity; cancelled through Temporal (Web UI, `flui cancel`) and through the signal.
    const phases: {
      phase: DeployPhase;
      hold: ActivityName;
      window?: number;
      /** What the cleanup must have done, once the deploy ended. */
      check(stubs: StubActivities, deployId: string): void;
    }[] = [
      {
        phase: 'preparing',
        hold: 'ensureWorkflowFile',
        check(stubs) {
          assert.deepEqual(
            stubs.names().filter((n) => !n.startsWith('ensure')),
            [],
            'nothing dispatched, nothing to clean up',
          );
        },
      },
      {
        phase: 'building',
        hold: 'awaitRun',
        check(stubs, deployId) {
          assert.deepEqual(
            stubs.inputs('cancelRun').map((i) => [i.run?.id, i.runKey]),
            [['1', deployId]],
          );
          assert.equal(stubs.inputs('resolveImage').length, 0);
          assert.equal(stubs.inputs('abortRollout').length, 0);
        },
      },
      {
        phase: 'resolving',
        hold: 'resolveImage',
        check(stubs) {
          assert.equal(stubs.inputs('cancelRun').length, 0, 'the CI run had finished');
          assert.equal(stubs.inputs('rolloutImage').length, 0);
          assert.equal(stubs.inputs('abortRollout').length, 0);
        },
      },
      {
        phase: 'rolling-out',
        hold: 'rolloutImage',
        check(stubs, deployId) {
          // The undo runs once the rollout attempt has stopped, so it cannot record the restored image as its own.
          const stopped = stubs.events.indexOf('rolloutImage:cancelled');
          assert.ok(stopped >= 0, 'the rollout was cancelled');
          assert.ok(stubs.events.indexOf('abortRollout:started') > stopped, stubs.events.join(', '));
          const undo = stubs.inputs('abortRollout');
          assert.equal(undo.length, 1);
          assert.equal(undo[0]?.deployId, deployId);
          assert.equal(stubs.inputs('cancelRun').length, 0);
        },
      },
    ];

    for (const p of phases) {
      it(`while ${p.phase}, through Temporal: ends Cancelled and cleans up`, async () => {
        const stubs = new StubActivities();
        const held = stubs.hold(p.hold);
        await withWorker(stubs, async (h) => {
          const { deployId, handle } = await h.deploy(stubApplication(appName()));
          await held.reached;
          assert.equal((await statusOf(handle)).phase, p.phase);
          await handle.cancel();
          await cancelledByTemporal(handle);
          assert.ok(await cancelRequested(handle, p.hold), `${p.hold} was cancelled`);
          p.check(stubs, deployId);
        });
      });

      it(`while ${p.phase}, through the cancel signal: fails as DeployCancelled with the reason`, async () => {
        const stubs = new StubActivities();
        const held = stubs.hold(p.hold);
        await withWorker(stubs, async (h) => {
          const { deployId, handle } = await h.deploy(stubApplication(appName()));
          await held.reached;
          await handle.signal(cancelSignal, { reason: 'wrong branch' });
          const final = await cancelledBySignal(handle, new RegExp(`^deploy ${deployId} cancelled: wrong branch`));
          assert.equal(final.phase, 'cancelled');
          assert.deepEqual(final.cancelled, { by: 'signal', reason: 'wrong branch' });
          assert.equal(final.timings.at(-1)?.phase, p.phase);
          assert.ok(await cancelRequested(handle, p.hold), `${p.hold} was cancelled`);
          p.check(stubs, deployId);
        });
      });
    }

    it('while awaiting a retry: ends at once, nothing to clean up', async () => {
      const stubs = new StubActivities().fail('resolveImage', 'image not found', { type: FailureType.NotFound });
      await withWorker(stubs, async (h) => {
        const { handle } = await h.deploy(stubApplication(appName(), { retryWindowMinutes: 60 }));
        await phaseReached(handle, 'awaiting-retry');
        await handle.signal(cancelSignal, {});
        const final = await cancelledBySignal(handle, /cancelled: cancelled by signal$/);
        assert.equal(final.failedPhase, 'resolving');
        assert.equal(stubs.inputs('cancelRun').length, 0);
        assert.equal(stubs.inputs('abortRollout').length, 0);
      });
    });

    for (const how of ['Temporal', 'signal'] as const) {
      it(`mid-dispatch (${how}): waits for the dispatch to land, then cancels the run it created`, async () => {
        const stubs = new StubActivities();
        const dispatching = stubs.hold('triggerRun');
        await withWorker(stubs, async (h) => {
          const { deployId, handle } = await h.deploy(stubApplication(appName()));
          await dispatching.reached;
          if (how === 'Temporal') await handle.cancel();
          else await handle.signal(cancelSignal, { reason: 'stop' });
          // The workflow took the cancel and waits for the dispatch to land (its timer bounds the wait)...
          await eventually(async () => {
            const { events } = await handle.fetchHistory();
            return events?.some((e) => e.timerStartedEventAttributes) || undefined;
          }, 'the wait for the dispatch');
          // ...which is not cancelled with the deploy: a run created after a cleanup looked would build on its own.
          assert.equal(stubs.inputs('cancelRun').length, 0, 'no cleanup before the dispatch landed');
          assert.equal(stubs.calls.find((c) => c.name === 'triggerRun')?.outcome, undefined, 'still dispatching');
          dispatching.release();

          if (how === 'Temporal') await cancelledByTemporal(handle);
          else await cancelledBySignal(handle, /cancelled: stop$/);
          assert.equal(stubs.calls.find((c) => c.name === 'triggerRun')?.outcome, 'returned');
          assert.deepEqual(
            stubs.inputs('cancelRun').map((i) => [i.run?.id, i.runKey]),
            [['1', deployId]],
            'the run the late dispatch created is cancelled',
          );
          assert.equal(stubs.inputs('awaitRun').length, 0);
        });
      });
    }

    it('mid-dispatch, when the dispatch does not land within two minutes: cancels by run key', async () => {
      const stubs = new StubActivities().fail('triggerRun', 'GitHub unavailable (502)', { times: 1000 });
      await withWorker(
        stubs,
        async (h) => {
          const { deployId, handle } = await h.deploy(stubApplication(appName()));
          await eventually(() => stubs.inputs('triggerRun')[0], 'dispatch');
          await handle.signal(cancelSignal, { reason: 'stop' });
          await phaseReached(handle, 'building');
          await h.env.sleep('3 minutes');
          await cancelledBySignal(handle, /cancelled: stop$/);
          assert.deepEqual(
            stubs.inputs('cancelRun').map((i) => [i.run, i.runKey]),
            [[undefined, deployId]],
            'the run is looked up by its key: a dispatch attempt may have created it',
          );
        },
        { skipsTime: true },
      );
    });
  });

  describe('the webhook and the poll, raced', () => {
    it('the webhook wins: its result is used and the poll is cancelled', async () => {
      const stubs = new StubActivities();
      stubs.hold('awaitRun');
      await withWorker(stubs, async (h) => {
        const { deployId, handle } = await h.deploy(stubApplication(appName()));
        await phaseReached(handle, 'building');
        await eventually(() => stubs.inputs('awaitRun')[0], 'poll');
        const hook = webhook('1');
        await handle.signal(runCompletedSignal, { ...hook, deployId });
        const outcome = (await handle.result()) as DeployOutcome;
        assert.equal(outcome.commit, hook.result.headSha);
        assert.equal(outcome.ciRun?.htmlUrl, hook.result.htmlUrl);
        assert.ok(await cancelRequested(handle, 'awaitRun'), 'the poll was cancelled');
        assert.equal(stubs.inputs('awaitRun').length, 1);
      });
    });

    it('a webhook about another run is ignored', async () => {
      const stubs = new StubActivities();
      const polling = stubs.hold('awaitRun');
      await withWorker(stubs, async (h) => {
        const { deployId, handle } = await h.deploy(stubApplication(appName()));
        await polling.reached;
        await handle.signal(runCompletedSignal, { ...webhook('999', { conclusion: 'failure' }), deployId });
        await signalTaken(handle, runCompletedSignal.name);
        polling.release();
        const outcome = (await handle.result()) as DeployOutcome;
        assert.equal(outcome.commit, commitOf('1'), 'the poll decided');
        assert.equal(stubs.calls.find((c) => c.name === 'awaitRun')?.outcome, 'returned');
      });
    });

    it('the poll wins: a webhook arriving after it changes nothing', async () => {
      const stubs = new StubActivities();
      const rolling = stubs.hold('rolloutImage');
      await withWorker(stubs, async (h) => {
        const { deployId, handle } = await h.deploy(stubApplication(appName()));
        await rolling.reached;
        await handle.signal(runCompletedSignal, { ...webhook('1', { conclusion: 'failure' }), deployId });
        await signalTaken(handle, runCompletedSignal.name);
        rolling.release();
        const outcome = (await handle.result()) as DeployOutcome;
        assert.equal(outcome.phase, 'succeeded');
        assert.equal(outcome.commit, commitOf('1'));
        assert.equal(outcome.ciRun?.htmlUrl, 'https://ci.test/runs/1');
      });
    });

    it('a webhook reporting a failed build fails the deploy without cancelling the finished run', async () => {
      const stubs = new StubActivities();
      stubs.hold('awaitRun');
      await withWorker(stubs, async (h) => {
        const { deployId, handle } = await h.deploy(stubApplication(appName()));
        await eventually(() => stubs.inputs('awaitRun')[0], 'poll');
        await handle.signal(runCompletedSignal, { ...webhook('1', { conclusion: 'timed_out' }), deployId });
        const final = await failed(handle, /failed while building: CI run 1 concluded "timed_out"/);
        assert.equal(final.failedPhase, 'building');
        assert.ok(await cancelRequested(handle, 'awaitRun'), 'the poll was cancelled');
        assert.equal(stubs.inputs('cancelRun').length, 0);
      });
    });
  });

  describe('undo of a cancelled rollout, as the deploy reports it', () => {
    const cases: {
      undo: 'restored' | 'removed' | 'kept' | 'none' | 'error';
      message: RegExp;
      check(final: DeployStatus): void;
    }[] = [
      {
        undo: 'restored',
        message: new RegExp(`cancelled: stop; its rollout was undone, ${PREVIOUS_DIGEST} restored$`),
        check: (final) => {
          assert.equal(final.rolloutUndone, 'restored');
          assert.equal(final.rolledBackTo, PREVIOUS_DIGEST);
        },
      },
      {
        undo: 'removed',
        message: /cancelled: stop; its first rollout was undone, the app removed$/,
        check: (final) => {
          assert.equal(final.rolloutUndone, 'removed');
          assert.equal(final.rolledBackTo, undefined);
        },
      },
      {
        undo: 'kept',
        message: /cancelled: stop$/,
        check: (final) => assert.equal(final.rolloutUndone, 'kept'),
      },
      {
        undo: 'none',
        message: /cancelled: stop$/,
        check: (final) => assert.equal(final.rolloutUndone, 'none'),
      },
      {
        undo: 'error',
        message: /cancelled: stop$/,
        check: (final) => {
          assert.equal(final.rolloutUndone, undefined);
          assert.equal(final.error, 'the cluster refused the restore');
        },
      },
    ];
    for (const c of cases) {
      it(`undo ${c.undo}`, async () => {
        const stubs = new StubActivities();
        const rolling = stubs.hold('rolloutImage');
        if (c.undo === 'error') {
          stubs.fail('abortRollout', 'the cluster refused the restore', { type: FailureType.Invalid });
        } else {
          const action = c.undo;
          stubs.answer('abortRollout', () =>
            action === 'restored' ? { action, digest: PREVIOUS_DIGEST, healthy: true } : { action },
          );
        }
        await withWorker(stubs, async (h) => {
          const { handle } = await h.deploy(stubApplication(appName()));
          await rolling.reached;
          await handle.signal(cancelSignal, { reason: 'stop' });
          const final = await cancelledBySignal(handle, c.message);
          assert.equal(final.phase, 'cancelled');
          c.check(final);
          assert.equal(stubs.inputs('abortRollout').length, 1);
        });
      });
    }
  });
});
