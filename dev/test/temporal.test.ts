import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { WorkflowFailedError } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import * as activities from '../../test/fixtures/activities.ts';
import { useTemporal, useTimeSkipping, workflowBundle } from '../../test/helpers/temporal.ts';

describe('Temporal dev server', () => {
  const temporal = useTemporal();

  it('cancels a workflow mid-activity and runs its cleanup', async () => {
    const { client, nativeConnection } = temporal();
    const worker = await Worker.create({
      connection: nativeConnection,
      taskQueue: 'foundation-cancel',
      workflowBundle: await workflowBundle('test/fixtures/workflows.ts'),
      activities,
    });
    await worker.runUntil(async () => {
      const handle = await client.workflow.start('cancellableWork', {
        taskQueue: 'foundation-cancel',
        workflowId: `cancel-${Date.now()}`,
        args: ['m1'],
      });
      while (!activities.events.includes('started:m1')) await sleep(50);
      await handle.cancel();
      await assert.rejects(handle.result(), (err: unknown) => {
        assert.ok(err instanceof WorkflowFailedError);
        assert.equal(err.cause?.name, 'CancelledFailure');
        return true;
      });
      const { status } = await handle.describe();
      assert.equal(status.name, 'CANCELLED');
    });
    assert.deepEqual(activities.events, ['started:m1', 'activity-cancelled:m1', 'cleaned:m1']);
  });

  it('has the Flui search attributes registered', async () => {
    const { connection, namespace } = temporal();
    const res = await connection.operatorService.listSearchAttributes({ namespace });
    for (const name of ['FluiApp', 'FluiCommit', 'FluiPhase', 'FluiCiRun']) {
      assert.ok(name in (res.customAttributes ?? {}), `${name} registered`);
    }
  });
});

describe('Temporal time-skipping test server', () => {
  const env = useTimeSkipping();

  it('runs a two-hour sleep without waiting two hours', async () => {
    const { client, nativeConnection } = env();
    const worker = await Worker.create({
      connection: nativeConnection,
      taskQueue: 'foundation-sleep',
      workflowBundle: await workflowBundle('test/fixtures/workflows.ts'),
      activities,
    });
    const slept = await worker.runUntil(
      client.workflow.execute('sleepTwoHours', { taskQueue: 'foundation-sleep', workflowId: `sleep-${Date.now()}` }),
    );
    assert.ok(slept >= 2 * 60 * 60 * 1000, `workflow clock advanced ${slept} ms`);
  });
});
