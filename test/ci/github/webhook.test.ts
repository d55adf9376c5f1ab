import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { GitHubActionsBackend } from '../../../src/ci/github/actions.ts';
import {
  startWebhookReceiver,
  verifySignature,
  type RunCompletedEvent,
  type WebhookReceiver,
} from '../../../src/ci/github/webhook.ts';
import { loadConfig } from '../../../src/config.ts';
import { startGitHubEmulator } from '@flui/github-emulator';
import { validateManifest } from '../../../src/manifest/parse.ts';
import type { Application } from '../../../src/manifest/schema.ts';
import { assertContract } from '../../helpers/github-emulator.ts';
import { eventually } from '../../helpers/stack.ts';

const SECRET = 'webhook-s3cret';
const sign = (body: string, secret = SECRET) => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;

function completed(id: number, title: string): string {
  return JSON.stringify({
    action: 'completed',
    workflow_run: {
      id,
      name: 'flui build default/hello',
      display_title: title,
      conclusion: 'success',
      html_url: `https://github.com/acme/hello/actions/runs/${id}`,
      head_sha: 'a'.repeat(40),
    },
  });
}

describe('webhook receiver', () => {
  let receiver: WebhookReceiver;
  const events: RunCompletedEvent[] = [];
  const errors: unknown[] = [];
  /** Runs whose callback fails (the deploy could not be signalled) or is slow. */
  const failing = new Set<number>();
  const slow = new Set<number>();

  before(async () => {
    receiver = await startWebhookReceiver({
      host: '127.0.0.1',
      port: 0,
      secret: SECRET,
      onRunCompleted: async (e) => {
        if (slow.has(e.runId)) await sleep(300);
        if (failing.has(e.runId)) throw new Error('Temporal unavailable');
        events.push(e);
      },
      onError: (err) => errors.push(err),
    });
  });
  after(() => receiver.stop());

  async function post(body: string, headers: Record<string, string | undefined>): Promise<number> {
    const res = await fetch(receiver.url, {
      method: 'POST',
      headers: Object.fromEntries(
        Object.entries({ 'content-type': 'application/json', ...headers }).filter(([, v]) => v !== undefined),
      ) as Record<string, string>,
      body,
    });
    await res.arrayBuffer();
    return res.status;
  }
  const delivery = () => randomBytes(8).toString('hex');
  const runHeaders = (body: string, id = delivery()) => ({
    'x-github-event': 'workflow_run',
    'x-github-delivery': id,
    'x-hub-signature-256': sign(body),
  });

  it('rejects missing, malformed and wrong signatures before reading the payload', async () => {
    const body = completed(1, 'flui default.hello.a1');
    const good = runHeaders(body);
    assert.equal(await post(body, { ...good, 'x-hub-signature-256': undefined }), 401);
    assert.equal(await post(body, { ...good, 'x-hub-signature-256': 'sha1=abc' }), 401);
    assert.equal(await post(body, { ...good, 'x-hub-signature-256': 'sha256=abc' }), 401, 'wrong length');
    assert.equal(await post(body, { ...good, 'x-hub-signature-256': sign(body, 'other') }), 401);
    assert.equal(await post(`${body} `, good), 401, 'body changed after signing');
    assert.equal(await post('not json', { ...good, 'x-hub-signature-256': sign('not json') }), 400);
    assert.equal(await post('null', { ...good, 'x-hub-signature-256': sign('null') }), 400, 'JSON but not an object');
    assert.equal(await post('', { ...good, 'x-hub-signature-256': sign('') }), 401, 'nothing signed');
    assert.equal(events.length, 0);
    assert.equal(await verifySignature(SECRET, Buffer.from(body), sign(body)), true);
    assert.equal(await verifySignature(SECRET, Buffer.from(body), sign(body, 'other')), false);
  });

  it('reports completed runs once per delivery, and ignores other events and actions', async () => {
    const body = completed(2, 'flui default.hello.b2');
    const headers = runHeaders(body);
    assert.equal(await post(body, headers), 202);
    assert.equal(await post(body, headers), 202, 'a redelivery is accepted and dropped');
    assert.deepEqual(events.splice(0), [
      {
        runName: 'flui default.hello.b2',
        runId: 2,
        conclusion: 'success',
        htmlUrl: 'https://github.com/acme/hello/actions/runs/2',
        headSha: 'a'.repeat(40),
      },
    ]);
    const requested = JSON.stringify({ ...JSON.parse(body), action: 'requested' });
    assert.equal(await post(requested, runHeaders(requested)), 202);
    const ping = JSON.stringify({ zen: 'Keep it logically awesome.' });
    assert.equal(await post(ping, { ...runHeaders(ping), 'x-github-event': 'ping' }), 202);
    assert.equal(events.length, 0);
  });

  it('reports a run that never started, or has no conclusion, as failed', async () => {
    for (const [id, conclusion] of [
      [7, 'startup_failure'],
      [8, null],
    ] as const) {
      const run = (JSON.parse(completed(id, `flui default.hello.g${id}`)) as { workflow_run: object }).workflow_run;
      const body = JSON.stringify({ action: 'completed', workflow_run: { ...run, conclusion } });
      assert.equal(await post(body, runHeaders(body)), 202);
    }
    assert.deepEqual(
      events.splice(0).map((e) => [e.runId, e.conclusion]),
      [
        [7, 'failure'],
        [8, 'failure'],
      ],
    );
  });

  it('handles concurrent redeliveries once', async () => {
    slow.add(3);
    const body = completed(3, 'flui default.hello.c3');
    const headers = runHeaders(body);
    const statuses = await Promise.all([post(body, headers), post(body, headers), post(body, headers)]);
    assert.deepEqual(statuses, [202, 202, 202]);
    assert.equal(events.splice(0).length, 1);
  });

  it('answers 500 when the deploy cannot be told, and handles the redelivery of that delivery', async () => {
    failing.add(4);
    const body = completed(4, 'flui default.hello.d4');
    const headers = runHeaders(body);
    assert.equal(await post(body, headers), 500);
    assert.equal(errors.length, 1);
    failing.delete(4);
    assert.equal(await post(body, headers), 202);
    assert.equal(events.splice(0).length, 1);
  });

  it('accepts form-encoded payloads', async () => {
    const body = new URLSearchParams({ payload: completed(5, 'flui default.hello.e5') }).toString();
    const status = await post(body, { ...runHeaders(body), 'content-type': 'application/x-www-form-urlencoded' });
    assert.equal(status, 202);
    assert.equal(events.splice(0)[0]?.runName, 'flui default.hello.e5');
  });

  it('survives a client that goes away mid-body, and refuses other methods', async () => {
    await new Promise<void>((resolve) => {
      const req = request(receiver.url, { method: 'POST', headers: { 'content-length': '1000' } });
      req.on('error', () => resolve());
      req.write('{"action":');
      setTimeout(() => {
        req.destroy();
        resolve();
      }, 50);
    });
    assert.equal((await fetch(receiver.url)).status, 405);
    const body = completed(6, 'flui default.hello.f6');
    assert.equal(await post(body, runHeaders(body)), 202, 'still serving');
    events.splice(0);
  });
});

describe('webhook receiver with the GitHub emulator', () => {
  it("receives the emulator's signed workflow_run deliveries for the runs Flui dispatches", async () => {
    const events: RunCompletedEvent[] = [];
    const receiver = await startWebhookReceiver({
      host: '127.0.0.1',
      port: 0,
      secret: SECRET,
      onRunCompleted: async (e) => void events.push(e),
    });
    const github = await startGitHubEmulator({
      runner: { queuedMs: 50, buildMs: 100 },
      webhook: { url: receiver.url, secret: SECRET },
    });
    try {
      await github.createRepo({ owner: 'acme', name: 'hooked' });
      const app = validateManifest({
        apiVersion: 'flui.dev/v1',
        kind: 'Application',
        metadata: { name: 'hooked' },
        spec: { source: { repository: 'acme/hooked' }, image: { repository: '127.0.0.1:5999/acme/hooked' } },
      }) as Application;
      const ci = new GitHubActionsBackend(
        loadConfig({ GITHUB_API_URL: github.url, GITHUB_TOKEN: github.createToken() }).github,
      );
      await ci.ensurePipeline(app, { push: { method: 'static', registry: '127.0.0.1:5999' } });
      github.faults.webhooks({ duplicate: 1 });
      const run = await ci.trigger(app, 'default.hooked.w1');
      const event = await eventually(async () => events[0], 15_000, 'the webhook delivery');
      assert.equal(event.runName, 'flui default.hooked.w1');
      assert.equal(String(event.runId), run.id);
      assert.equal(event.htmlUrl, run.htmlUrl);
      assert.equal(event.headSha, github.runs('acme/hooked')[0]!.headSha);
      assert.ok(['success', 'failure'].includes(event.conclusion));
      await sleep(200);
      assert.equal(github.records.webhooksSent, 2, 'the emulator redelivered once');
      assert.equal(events.length, 1, 'and the redelivery was dropped');
      assertContract(github);
    } finally {
      await github.stop();
      await receiver.stop();
    }
  });
});
