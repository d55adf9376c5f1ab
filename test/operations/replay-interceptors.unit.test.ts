/**
 * The workflow code as the worker bundles it, with the metrics and OpenTelemetry workflow interceptors
 * (src/observability/workflow-modules.ts), replays every recorded deploy history as the bare workflow does (the
 * interceptors add no command), and calls none of the worker's sinks while it replays.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode, DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { useMeter, type Meter } from '../../src/observability/meter.ts';
import { metricsSinks } from '../../src/observability/worker-sinks.ts';
import { createTracing } from '../../src/observability/tracing.ts';
import { WORKFLOW_INTERCEPTOR_MODULES } from '../../src/observability/workflow-modules.ts';
import { recordedHistories } from '../workflows/history-files.ts';

Runtime.install({
  logger: new DefaultLogger('ERROR'),
  telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' }, forward: {} } },
});

/** Histories the bare workflow cannot replay either (see KNOWN_INCOMPATIBLE in test/workflows/replay.unit.test.ts). */
const KNOWN_INCOMPATIBLE = ['before-undo-cancelled-mid-rollout', 'before-undo-cancelled-by-signal-mid-rollout'];

describe("the worker's workflow bundle (with its interceptors)", () => {
  it('replays every recorded history, counting nothing', async () => {
    const histories = await recordedHistories();
    assert.ok(histories.length >= 5);
    // The worker's own sinks, feeding a meter that records every call: a replay must not reach it.
    const calls: string[] = [];
    const record = new Proxy({} as Meter, { get: (_t, name) => () => void calls.push(String(name)) });
    const restore = useMeter(record);
    after(restore);
    const results = Worker.runReplayHistories(
      {
        workflowBundle: await bundleWorkflowCode({
          workflowsPath: fileURLToPath(new URL('../../src/workflows/index.ts', import.meta.url)),
          workflowInterceptorModules: WORKFLOW_INTERCEPTOR_MODULES,
          logger: new DefaultLogger('WARN'),
        }),
        replayName: 'flui-replay-interceptors',
        sinks: { ...metricsSinks(), ...createTracing(undefined).sinks },
      },
      histories.map(({ name, history }) => ({ workflowId: name, history })),
    );
    const failed: string[] = [];
    for await (const r of results) if (r.error) failed.push(`${r.workflowId}: ${r.error.message}`);
    assert.deepEqual(failed.map((f) => f.split(':')[0]).sort(), [...KNOWN_INCOMPATIBLE].sort(), failed.join('\n'));
    assert.deepEqual(calls, []);
  });
});
