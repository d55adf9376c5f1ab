/**
 * Hours of waiting in seconds: the deploy workflow on Temporal's time-skipping test server, with the real worker,
 * GitHub emulator, registry and cluster. Timers and activity retry backoffs are skipped; HTTP calls are real.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { WorkflowFailedError } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { newDeployId } from '../../src/client/index.ts';
import { freePort } from '../../dev/process.ts';
import { startLocalStack, type LocalStack } from '../../dev/stack.ts';
import { deployWorkflowId, type DeployOutcome, type DeployRequest } from '../../src/workflows/contract.ts';
import type { Application } from '../../src/manifest/schema.ts';
import { useServer } from '../helpers/suite.ts';
import { startTimeSkipping, workflowBundle } from '../helpers/temporal.ts';
import { createApplication, eventually } from '../helpers/stack.ts';

interface TimeSkippingStack {
  env: TestWorkflowEnvironment;
  stack: LocalStack;
  stop(): Promise<void>;
}

function useTimeSkippingStack() {
  return useServer<TimeSkippingStack>(async () => {
    const port = await freePort();
    const env = await startTimeSkipping(port);
    const stack = await startLocalStack({
      configured: { TEMPORAL_ADDRESS: `127.0.0.1:${port}` },
      webhooks: false, // polling only: an outage of GitHub's API stops its webhooks too
      runner: { queuedMs: 50, buildMs: 300 },
      workflowBundle: await workflowBundle('src/workflows/index.ts'),
    });
    return {
      env,
      stack,
      stop: async () => {
        // The worker's shutdown can wait on an activity attempt the test server already timed out (its clock
        // jumped hours ahead mid-attempt); bound it so the servers still go down.
        await Promise.race([stack.stop(), sleep(15_000)]);
        await env.teardown();
      },
    };
  });
}

function start(t: TimeSkippingStack, app: Application) {
  const request: DeployRequest = {
    deployId: newDeployId('default', app.metadata.name),
    kind: 'Application',
    manifest: app,
    policy: 'supersede',
  };
  return t.env.client.workflow.start('deployWorkflow', {
    taskQueue: t.stack.config.temporal.taskQueue,
    workflowId: deployWorkflowId('default', app.metadata.name),
    args: [request],
  });
}

describe('deploys through hours of waiting (time-skipping server)', () => {
  const ts = useTimeSkippingStack();

  it('completes after a two-hour GitHub outage in the middle of the build', async () => {
    const t = ts();
    const gh = t.stack.github!;
    const app = await createApplication(t.stack, { deploy: { buildTimeoutMinutes: 240 } });
    gh.faults.keepQueued(true);
    const handle = await start(t, app);
    await eventually(() => gh.runs(app.spec.source.repository)[0], 60_000, 'dispatch');
    gh.faults.outage({ forMs: 3600_000 });
    gh.faults.keepQueued(false); // the build runs and pushes during the outage; only the API is down
    const before = gh.records.requests;
    await t.env.sleep('2 hours');
    const duringOutage = gh.records.requests - before;
    gh.faults.reset();
    const outcome = (await handle.result()) as DeployOutcome;
    assert.equal(outcome.phase, 'succeeded');
    assert.equal(outcome.digest, gh.runs(app.spec.source.repository)[0]?.digest);
    // Exponential backoff while failing: a handful of calls per hour of outage, not one every 10 seconds.
    assert.ok(duringOutage < 60, `${duringOutage} requests during two hours of outage`);
    process.stdout.write(`# requests to GitHub during a 2 h outage: ${duringOutage}\n`);
  });

  it('fails with a clear reason when the run stays queued past its limit, and cancels it', async () => {
    const t = ts();
    const gh = t.stack.github!;
    const app = await createApplication(t.stack, { deploy: { queueTimeoutMinutes: 2, retryWindowMinutes: 0 } });
    gh.faults.keepQueued(true);
    try {
      const handle = await start(t, app);
      await assert.rejects(handle.result(), (err: unknown) => {
        assert.ok(err instanceof WorkflowFailedError);
        assert.match(
          String(err.cause?.message),
          /failed while building: CI run \d+ waited [2-3] minutes for a runner without starting \(limit 2 minutes\)/,
        );
        return true;
      });
      assert.equal(gh.runs(app.spec.source.repository)[0]?.conclusion, 'cancelled');
    } finally {
      gh.faults.keepQueued(false);
    }
  });
});
