/**
 * Flui's metrics and traces with a real deploy (the whole stack: Temporal, registry, kwok, the GitHub emulator with
 * webhooks, the worker in this process). Metrics are scraped from the worker's /metrics while the deploy runs and
 * after; a replay of the finished deploy (a query makes the worker replay its whole history) counts nothing again.
 * Tracing is on (OTEL_EXPORTER_OTLP_ENDPOINT): a local OTLP/HTTP receiver gets the deploy's workflow and activity
 * spans, in one trace.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { startDeploy, status } from '../../src/client/index.ts';
import { cancelSignal, statusQuery, type DeployOutcome } from '../../src/workflows/contract.ts';
import { catalogApp, createApplication, eventually, useStack } from '../helpers/stack.ts';
import { sampleSum, scrape, type Sample } from './prometheus-text.ts';
import { startOtlpReceiver } from './otlp-receiver.ts';

const otlp = await startOtlpReceiver();

describe('Flui metrics during a real deploy', () => {
  const stack = useStack({
    runner: { queuedMs: 200, buildMs: 2000 },
    env: { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_SERVICE_NAME: 'flui-worker-test' },
  });
  after(() => otlp.stop());
  let deployed: string | undefined;

  it('count deploys, phases, CI requests, rate limits and webhooks, once each', async () => {
    const s = stack();
    const ops = s.worker!.opsUrl;
    const before = await scrape(ops);
    const delta = (now: Sample[], name: string, labels: Record<string, string> = {}) =>
      sampleSum(now, name, labels) - sampleSum(before, name, labels);

    const app = await createApplication(s);
    const { workflowId } = await startDeploy(s.client, app);

    // While it builds: started, not finished; GitHub requests counted with the budget GitHub reported.
    const during = await eventually(async () => {
      const now = await scrape(ops);
      return delta(now, 'flui_deploys_started_total', { kind: 'Application' }) === 1 &&
        delta(now, 'flui_ci_requests_total', { backend: 'github' }) > 0
        ? now
        : undefined;
    }, 60_000);
    assert.equal(delta(during, 'flui_deploys_finished_total'), 0, 'not finished yet');
    const budget = during.filter((x) => x.name === 'flui_ci_rate_limit_remaining' && x.labels.backend === 'github');
    assert.ok(budget.length > 0, 'a rate-limit gauge per client');
    assert.ok(
      budget.every((x) => x.value > 0 && x.value < 1_000_000),
      JSON.stringify(budget),
    );
    assert.ok(!budget.some((x) => x.labels.client!.includes(s.env.GITHUB_TOKEN!)), 'the client label is no token');

    const outcome = (await s.client.workflow.getHandle(workflowId).result()) as DeployOutcome;
    deployed = workflowId;
    assert.equal(outcome.phase, 'succeeded');
    const done = await eventually(async () => {
      const now = await scrape(ops);
      return delta(now, 'flui_deploys_finished_total', { kind: 'Application', outcome: 'succeeded' }) === 1
        ? now
        : undefined;
    }, 30_000);
    for (const phase of ['preparing', 'building', 'resolving', 'rolling-out']) {
      assert.equal(delta(done, 'flui_deploy_phase_duration_seconds_count', { kind: 'Application', phase }), 1, phase);
    }
    // The simulated build takes 2 s: the building phase's time says so.
    assert.ok(delta(done, 'flui_deploy_phase_duration_seconds_sum', { phase: 'building' }) >= 2);
    assert.equal(delta(done, 'flui_webhook_deliveries_total', { result: 'accepted' }), 1, 'the run-completed webhook');
    assert.equal(delta(done, 'flui_webhook_deliveries_total', { result: 'refused' }), 0);

    // A delivery with a bad signature is refused, and counted as such.
    const refused = await fetch(s.worker!.webhookUrl!, {
      method: 'POST',
      headers: {
        'x-github-event': 'workflow_run',
        'x-hub-signature-256': 'sha256=00',
        'content-type': 'application/json',
      },
      body: '{}',
    });
    assert.equal(refused.status, 401);

    // A query on the closed deploy replays its whole history on the worker: nothing counts again.
    await s.client.workflow.getHandle(workflowId).query(statusQuery);
    // A second kind: a catalog app of the image just built.
    const cat = await startDeploy(s.client, catalogApp(outcome.image!));
    await s.client.workflow.getHandle(cat.workflowId).result();
    const after = await eventually(async () => {
      const now = await scrape(ops);
      return delta(now, 'flui_deploys_finished_total', { kind: 'CatalogApp' }) === 1 ? now : undefined;
    }, 30_000);
    assert.equal(delta(after, 'flui_deploys_started_total', { kind: 'Application' }), 1, 'no recount on replay');
    assert.equal(delta(after, 'flui_deploys_finished_total', { kind: 'Application' }), 1, 'no recount on replay');
    assert.equal(
      delta(after, 'flui_deploy_phase_duration_seconds_count', { kind: 'CatalogApp', phase: 'resolving' }),
      1,
    );
    assert.equal(delta(after, 'flui_webhook_deliveries_total', { result: 'refused' }), 1);
  });

  it("sends the deploy's workflow and activity spans over OTLP/HTTP, in one trace", async () => {
    assert.ok(deployed, 'the deploy above ran');
    const activities = ['ensureWorkflowFile', 'ensureRegistryCredential', 'triggerRun', 'resolveImage', 'rolloutImage'];
    const trace = await eventually(() => {
      const root = otlp.spans.find(
        (x) => x.name === 'RunWorkflow:deployWorkflow' && x.attributes.workflowId === deployed,
      );
      const spans = root ? otlp.spans.filter((x) => x.traceId === root.traceId) : [];
      const names = new Set(spans.map((x) => x.name));
      return root && activities.every((a) => names.has(`RunActivity:${a}`)) ? { root, spans } : undefined;
    }, 30_000);
    const byId = new Map(trace.spans.map((x) => [x.spanId, x]));
    for (const run of trace.spans.filter((x) => x.name.startsWith('RunActivity:'))) {
      // Each activity attempt hangs under the workflow's StartActivity span, which hangs under the run.
      const start = byId.get(run.parentSpanId ?? '');
      assert.equal(start?.name, run.name.replace('RunActivity', 'StartActivity'), run.name);
      assert.equal(start?.parentSpanId, trace.root.spanId, run.name);
      assert.equal(run.attributes.temporalWorkflowId, deployed);
    }
    assert.ok(trace.spans.every((x) => x.service === 'flui-worker-test'));
  });

  it('counts a rollout undone by a cancel, and the cancelled deploy', async () => {
    const s = stack();
    const ops = s.worker!.opsUrl;
    const before = await scrape(ops);
    // Pods of images under a "fail-" path never become ready (dev/kwok-stages.yaml): the rollout waits for them.
    const app = await createApplication(s, {
      name: `fail-${Date.now().toString(36)}`,
      deploy: { progressDeadlineSeconds: 600 },
    });
    const { workflowId } = await startDeploy(s.client, app);
    await eventually(
      async () =>
        (await status(s.client, 'default', app.metadata.name).catch(() => undefined))?.phase === 'rolling-out' ||
        undefined,
      60_000,
      'rolling-out',
    );
    const handle = s.client.workflow.getHandle(workflowId);
    await handle.signal(cancelSignal, { reason: 'test: undo the rollout' });
    await assert.rejects(handle.result());
    assert.equal((await handle.query(statusQuery)).rolloutUndone, 'removed');
    const now = await eventually(async () => {
      const m = await scrape(ops);
      return sampleSum(m, 'flui_deploys_finished_total', { outcome: 'cancelled' }) >
        sampleSum(before, 'flui_deploys_finished_total', { outcome: 'cancelled' })
        ? m
        : undefined;
    }, 30_000);
    const delta = (name: string, labels: Record<string, string>) =>
      sampleSum(now, name, labels) - sampleSum(before, name, labels);
    assert.equal(delta('flui_rollouts_undone_total', { after: 'cancel', action: 'removed' }), 1);
    assert.equal(delta('flui_deploys_finished_total', { kind: 'Application', outcome: 'cancelled' }), 1);
    assert.equal(delta('flui_deploy_phase_duration_seconds_count', { phase: 'rolling-out' }), 1);
  });
});
