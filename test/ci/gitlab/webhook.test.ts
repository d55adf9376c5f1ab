/**
 * GitLab's Pipeline Hook on the worker's webhook receiver, beside GitHub's: the token is checked before anything else,
 * each X-Gitlab-Event-UUID is handled once, only finished pipelines are reported, a GitHub delivery still needs its
 * signature, and a failed callback lets GitLab redeliver.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startWebhookReceiver, type WebhookReceiver } from '../../../src/ci/github/webhook.ts';
import type { PipelineCompletedEvent } from '../../../src/ci/gitlab/webhook.ts';
import { useMeter } from '../../../src/observability/meter.ts';
import { createPrometheusMeter } from '../../../src/observability/prometheus.ts';
import { parseSamples, sampleSum } from '../../operations/prometheus-text.ts';

const TOKEN = 'gitlab-hook-token';
const events: PipelineCompletedEvent[] = [];
let failNext = false;
let receiver: WebhookReceiver;

before(async () => {
  receiver = await startWebhookReceiver({
    host: '127.0.0.1',
    port: 0,
    secret: 'github-secret',
    onRunCompleted: async () => undefined,
    gitlab: {
      token: TOKEN,
      onPipelineCompleted: async (e) => {
        if (failNext) {
          failNext = false;
          throw new Error('Temporal is down');
        }
        events.push(e);
      },
    },
  });
});
after(() => receiver.stop());

const payload = (status: string, id = 7) => ({
  object_kind: 'pipeline',
  object_attributes: { id, name: 'flui default.web.abc123', status, sha: 'c0ffee', url: 'https://gl/p/-/pipelines/7' },
  project: { web_url: 'https://gl/p' },
});

async function deliver(body: unknown, headers: Record<string, string>) {
  const res = await fetch(receiver.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-gitlab-event': 'Pipeline Hook', ...headers },
    body: JSON.stringify(body),
  });
  return res.status;
}

describe('GitLab Pipeline Hook on the webhook receiver', () => {
  it('refuses a missing or wrong token, and reports nothing', async () => {
    assert.equal(await deliver(payload('success'), {}), 401);
    assert.equal(await deliver(payload('success'), { 'x-gitlab-token': `${TOKEN}x` }), 401);
    assert.equal(events.length, 0);
  });

  it('reports a finished pipeline once per delivery UUID, and ignores running ones', async () => {
    const ok = { 'x-gitlab-token': TOKEN };
    assert.equal(await deliver(payload('running'), { ...ok, 'x-gitlab-event-uuid': 'u-0' }), 202);
    assert.equal(await deliver(payload('success'), { ...ok, 'x-gitlab-event-uuid': 'u-1' }), 202);
    assert.equal(await deliver(payload('success'), { ...ok, 'x-gitlab-event-uuid': 'u-1' }), 202);
    assert.deepEqual(events, [
      {
        runName: 'flui default.web.abc123',
        runId: 7,
        conclusion: 'success',
        htmlUrl: 'https://gl/p/-/pipelines/7',
        headSha: 'c0ffee',
      },
    ]);
    assert.equal(await deliver(payload('failed', 8), { ...ok, 'x-gitlab-event-uuid': 'u-2' }), 202);
    assert.equal(events.at(-1)?.conclusion, 'failure');
    assert.equal(await deliver(payload('canceled', 9), { ...ok, 'x-gitlab-event-uuid': 'u-3' }), 202);
    assert.equal(events.at(-1)?.conclusion, 'cancelled');
  });

  it('answers 500 when the deploy cannot be told, and handles the redelivery', async () => {
    const headers = { 'x-gitlab-token': TOKEN, 'x-gitlab-event-uuid': 'u-9' };
    const before = events.length;
    failNext = true;
    assert.equal(await deliver(payload('success', 10), headers), 500);
    assert.equal(await deliver(payload('success', 10), headers), 202);
    assert.equal(events.length, before + 1);
  });

  it("counts each delivery under the CI that sent it in the worker's metrics", async () => {
    const prom = createPrometheusMeter();
    const restore = useMeter(prom);
    try {
      const ok = { 'x-gitlab-token': TOKEN };
      assert.equal(await deliver(payload('success', 20), { ...ok, 'x-gitlab-event-uuid': 'm-1' }), 202);
      assert.equal(await deliver(payload('success', 20), { ...ok, 'x-gitlab-event-uuid': 'm-1' }), 202);
      assert.equal(await deliver(payload('success', 21), {}), 401);
      const github = await fetch(receiver.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-github-event': 'workflow_run' },
        body: '{}',
      });
      assert.equal(github.status, 401);
    } finally {
      restore();
    }
    const samples = parseSamples(await prom.registry.metrics());
    const count = (backend: string, result: string) =>
      sampleSum(samples, 'flui_webhook_deliveries_total', { backend, result });
    assert.equal(count('gitlab', 'accepted'), 1);
    assert.equal(count('gitlab', 'duplicate'), 1);
    assert.equal(count('gitlab', 'refused'), 1);
    assert.equal(count('github', 'refused'), 1);
    assert.equal(count('github', 'accepted'), 0);
  });

  it("still requires GitHub's signature for GitHub deliveries", async () => {
    const res = await fetch(receiver.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-github-event': 'workflow_run' },
      body: '{}',
    });
    assert.equal(res.status, 401);
  });
});
