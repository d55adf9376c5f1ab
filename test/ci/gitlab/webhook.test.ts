/**
 * GitLab's Pipeline Hook on the worker's webhook receiver, beside GitHub's: the token is checked before anything else,
 * each X-Gitlab-Event-UUID is handled once, only finished pipelines are reported, a GitHub delivery still needs its
 * signature, and a failed callback lets GitLab redeliver. With a signing token configured, a real signed delivery
 * from the GitLab emulator is accepted and an unsigned one (the right token, no signature) refused.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { startGitLabEmulator } from '@flui/gitlab-emulator';
import { startWebhookReceiver, type WebhookReceiver } from '../../../src/ci/github/webhook.ts';
import type { PipelineCompletedEvent } from '../../../src/ci/gitlab/webhook.ts';
import { useMeter } from '../../../src/observability/meter.ts';
import { createPrometheusMeter } from '../../../src/observability/prometheus.ts';
import { parseSamples, sampleSum } from '../../operations/prometheus-text.ts';
import { pollUntil } from '../../helpers/eventually.ts';
import { FAST_GITLAB_RUNNER } from '../../helpers/gitlab-emulator.ts';

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

describe('signed Pipeline Hook deliveries from the GitLab emulator', () => {
  it('accepts what the emulator signs with the configured signing token, and refuses its unsigned deliveries', async () => {
    const signingToken = `whsec_${randomBytes(32).toString('base64')}`;
    const seen: PipelineCompletedEvent[] = [];
    const signed = await startWebhookReceiver({
      host: '127.0.0.1',
      port: 0,
      secret: 'github-secret',
      onRunCompleted: async () => undefined,
      gitlab: { token: TOKEN, signingToken, onPipelineCompleted: async (e) => void seen.push(e) },
    });
    const prom = createPrometheusMeter();
    const restore = useMeter(prom);
    const ci = 'workflow:\n  name: flui default.web.signed\nbuild:\n  script:\n    - echo building\n';
    /** Runs one pipeline to success on an emulator delivering to the receiver; its id once delivered. */
    async function runOn(webhook: { url: string; token: string; signingToken?: string }) {
      const gl = await startGitLabEmulator({ runner: FAST_GITLAB_RUNNER, webhook });
      try {
        await gl.createProject({ path: 'acme/signed', files: { '.gitlab-ci.yml': ci } });
        const res = await fetch(`${gl.url}/api/v4/projects/${encodeURIComponent('acme/signed')}/pipeline`, {
          method: 'POST',
          headers: { 'private-token': gl.createToken(), 'content-type': 'application/json' },
          body: JSON.stringify({ ref: 'main' }),
        });
        assert.equal(res.status, 201);
        const { id } = (await res.json()) as { id: number };
        await pollUntil(() => (gl.pipelines('acme/signed')[0]?.status === 'success' ? true : undefined), {
          what: 'the pipeline',
          timeoutMs: 20_000,
          intervalMs: 25,
        });
        assert.deepEqual(gl.contract.violations, []);
        return { id, gl };
      } finally {
        await gl.stop(); // delivers what is queued first
      }
    }
    try {
      const good = await runOn({ url: signed.url, token: TOKEN, signingToken });
      assert.ok(good.gl.records.webhooksSent >= 3, 'pending, running, success');
      assert.deepEqual(
        seen.map((e) => [e.runId, e.conclusion]),
        [[good.id, 'success']],
        'the signed delivery of the finished pipeline was accepted',
      );
      const unsigned = await runOn({ url: signed.url, token: TOKEN });
      assert.ok(unsigned.gl.records.webhooksSent >= 3);
      assert.equal(seen.length, 1, 'nothing reported from unsigned deliveries');
    } finally {
      restore();
      await signed.stop();
    }
    const samples = parseSamples(await prom.registry.metrics());
    const count = (result: string) =>
      sampleSum(samples, 'flui_webhook_deliveries_total', { backend: 'gitlab', result });
    assert.equal(count('accepted'), 1);
    assert.equal(count('refused'), 3, 'every unsigned delivery refused (pending, running, success)');
  });
});
