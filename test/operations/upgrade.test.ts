/**
 * A new worker version rolls out while a deploy is in flight, without a non-deterministic replay: the deploy starts
 * on version 1 (the working tree's workflow), which stops while the CI builds (as in a rolling update); version 2
 * adds a durable step (a timer) in the preparing phase, which this deploy has already passed, and one in the resolving
 * phase, which it has not. First a version 2 that adds them unguarded takes over: replaying the deploy's history hits
 * a command the history does not have, so its workflow task fails (and Temporal retries it; nothing is lost). Then
 * version 2 as it should be written, each step behind `patched()`, takes over: the replay skips the preparing step
 * (no marker there), the deploy takes the new resolving step (its marker recorded) and completes, with one CI run
 * and one rollout. A deploy started on version 2 takes both steps.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { WorkflowBundleOption } from '@temporalio/worker';
import type { temporal } from '@temporalio/proto';
import { startDeploy } from '../../src/client/index.ts';
import { readHistory } from '../../src/kube/history.ts';
import { kubeClients } from '../../src/kube/rollout.ts';
import { startWorker, type RunningWorker } from '../../src/worker.ts';
import type { DeployOutcome } from '../../src/workflows/contract.ts';
import { createApplication, eventually, useStack } from '../helpers/stack.ts';
import { bundleSrc, workingTreeSrc } from '../workflows/workflow-code.ts';

const DEPLOY_TS = 'src/workflows/deploy.ts';

/** The working tree's workflow with a timer after entering preparing and resolving, guarded by patches or not. */
async function version2(guarded: boolean): Promise<WorkflowBundleOption> {
  const files = await workingTreeSrc();
  const step = (id: string) =>
    guarded ? `if (patched('${id}')) await sleep('1 millisecond');` : `await sleep('1 millisecond');`;
  let text = files.get(DEPLOY_TS)!;
  for (const [phase, id] of [
    ['preparing', 'ops-upgrade-prepare'],
    ['resolving', 'ops-upgrade-resolve'],
  ] as const) {
    const at = `setPhase('${phase}');`;
    assert.equal(text.split(at).length, 2, `one ${at} in ${DEPLOY_TS}`);
    text = text.replace(at, `${at}\n    ${step(id)}`);
  }
  files.set(DEPLOY_TS, text);
  return bundleSrc(files);
}

type History = temporal.api.history.v1.IHistory;
const patchesOf = (h: History) =>
  (h.events ?? []).flatMap((e) => {
    const data = e.markerRecordedEventAttributes?.details?.['patch-data']?.payloads?.[0]?.data;
    return data ? [(JSON.parse(Buffer.from(data).toString('utf8')) as { id: string }).id] : [];
  });
const timersOf = (h: History) => (h.events ?? []).filter((e) => e.timerStartedEventAttributes).length;
const taskFailuresOf = (h: History) =>
  (h.events ?? []).flatMap((e) =>
    e.workflowTaskFailedEventAttributes ? [e.workflowTaskFailedEventAttributes.failure?.message ?? ''] : [],
  );

describe('upgrading the worker while a deploy is in flight', () => {
  // A build long enough to swap workers while it runs.
  const stack = useStack({ worker: false, runner: { queuedMs: 200, buildMs: 6000 } });

  it('fails the replay without patched(), and completes the deploy exactly once with it', async () => {
    const s = stack();
    const [v1, v2unguarded, v2] = await Promise.all([
      bundleSrc(await workingTreeSrc()),
      version2(false),
      version2(true),
    ]);
    let worker: RunningWorker | undefined;
    const run = async (bundle: WorkflowBundleOption) => {
      await worker?.shutdown();
      worker = await startWorker(s.config, { workflowBundle: bundle, log: () => undefined });
    };
    try {
      await run(v1);
      const app = await createApplication(s);
      const { workflowId, deployId } = await startDeploy(s.client, app);
      const handle = s.client.workflow.getHandle(workflowId);
      // Version 1 dispatched the CI run: the deploy waits for it in the building phase.
      await eventually(() => (s.github!.records.dispatches[app.spec.source.repository] ? true : undefined), 60_000);

      await run(v2unguarded);
      const failures = await eventually(
        async () => {
          const f = taskFailuresOf(await handle.fetchHistory());
          return f.length ? f : undefined;
        },
        60_000,
        'a failed workflow task',
      );
      assert.match(failures[0]!, /nondetermin/i, failures[0]);

      await run(v2);
      const outcome = (await handle.result()) as DeployOutcome;
      assert.equal(outcome.phase, 'succeeded');
      const history = await handle.fetchHistory();
      assert.deepEqual(patchesOf(history), ['ops-upgrade-resolve'], 'only the step it had not passed');
      assert.equal(timersOf(history), 1);
      // Exactly once: one CI run, one rollout.
      assert.equal(s.github!.records.dispatches[app.spec.source.repository], 1);
      assert.equal(s.github!.runs(app.spec.source.repository).length, 1);
      const k = kubeClients(s.env.KUBECONFIG);
      const rollouts = (await readHistory(k, 'default', app.metadata.name)).filter((e) => e.deployId === deployId);
      assert.deepEqual(
        rollouts.map((e) => e.outcome),
        ['succeeded'],
      );

      // A deploy started on version 2 takes both new steps.
      const next = await startDeploy(s.client, await createApplication(s));
      const nextHandle = s.client.workflow.getHandle(next.workflowId);
      assert.equal(((await nextHandle.result()) as DeployOutcome).phase, 'succeeded');
      const nextHistory = await nextHandle.fetchHistory();
      assert.deepEqual(patchesOf(nextHistory).sort(), ['ops-upgrade-prepare', 'ops-upgrade-resolve']);
      assert.equal(timersOf(nextHistory), 2);
      assert.deepEqual(taskFailuresOf(nextHistory), []);
    } finally {
      await worker?.shutdown();
    }
  });
});
