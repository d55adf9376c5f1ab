/**
 * GitLab's signed webhooks (signing token, the Standard Webhooks scheme) in the Pipeline Hook handler, without a
 * server: the signature over the exact body and the timestamp's freshness decide before anything is parsed or
 * signalled; both secrets are required when both are configured; a replay is a duplicate by its webhook-id; and the
 * configuration refuses a token that cannot be GitLab's, without echoing it.
 */
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { loadConfig } from '../../../src/config.ts';
import {
  createGitLabWebhookHandler,
  signingKey,
  type GitLabWebhookOptions,
  type PipelineCompletedEvent,
} from '../../../src/ci/gitlab/webhook.ts';

const KEY = randomBytes(32);
const SIGNING_TOKEN = `whsec_${KEY.toString('base64')}`;
const NOW = 1_800_000_000_000; // ms
const nowSeconds = String(NOW / 1000);

const body = (status = 'success', id = 7) =>
  Buffer.from(
    JSON.stringify({
      object_kind: 'pipeline',
      object_attributes: {
        id,
        name: 'flui default.web.abc123',
        status,
        sha: 'c0ffee',
        url: 'https://gl/p/-/pipelines/7',
      },
      project: { web_url: 'https://gl/p' },
    }),
  );

const mac = (key: Buffer, id: string, ts: string, raw: Buffer) =>
  createHmac('sha256', key).update(`${id}.${ts}.`).update(raw).digest('base64');

function signed(raw: Buffer, opts: { key?: Buffer; id?: string; ts?: string } = {}) {
  const id = opts.id ?? 'idem-1';
  const ts = opts.ts ?? nowSeconds;
  return {
    'x-gitlab-event': 'Pipeline Hook',
    'webhook-id': id,
    'webhook-timestamp': ts,
    'webhook-signature': `v1,${mac(opts.key ?? KEY, id, ts, raw)}`,
  } as Record<string, string>;
}

function handler(opts: Partial<GitLabWebhookOptions> = {}) {
  const events: PipelineCompletedEvent[] = [];
  let reads = 0;
  const handle = createGitLabWebhookHandler({
    signingToken: SIGNING_TOKEN,
    now: () => NOW,
    onPipelineCompleted: async (e) => {
      events.push(e);
    },
    ...opts,
  });
  return {
    events,
    reads: () => reads,
    deliver: (headers: Record<string, string>, raw: Buffer) =>
      handle(headers, async () => {
        reads++;
        return raw;
      }),
  };
}

describe('GitLab signed webhooks', () => {
  it('accepts a delivery signed with the key, and reports the pipeline', async () => {
    const h = handler();
    const raw = body();
    assert.deepEqual(await h.deliver(signed(raw), raw), [202, 'accepted']);
    assert.equal(h.events.length, 1);
    assert.equal(h.events[0]!.runId, 7);
  });

  it('refuses a body changed after signing, before parsing it, and signals nothing', async () => {
    const h = handler();
    const raw = body();
    const headers = signed(raw);
    for (const tampered of [
      body('failed'),
      Buffer.concat([raw, Buffer.from(' ')]),
      Buffer.from('not json at all'), // would be a 400 if it were parsed first
    ]) {
      const [status] = await h.deliver(headers, tampered);
      assert.equal(status, 401);
    }
    assert.equal(h.events.length, 0);
  });

  it('refuses a signature made with another key, or over another id or timestamp', async () => {
    const h = handler();
    const raw = body();
    assert.equal((await h.deliver(signed(raw, { key: randomBytes(32) }), raw))[0], 401);
    const other = signed(raw, { id: 'idem-2' });
    assert.equal((await h.deliver({ ...other, 'webhook-id': 'idem-3' }, raw))[0], 401);
    const later = signed(raw, { ts: String(NOW / 1000 - 10) });
    assert.equal((await h.deliver({ ...later, 'webhook-timestamp': nowSeconds }, raw))[0], 401);
    assert.equal(h.events.length, 0);
  });

  it('refuses a stale or future timestamp even when correctly signed, without reading the body', async () => {
    const h = handler();
    const raw = body();
    for (const offset of [-301, 301, -86_400, 86_400]) {
      const ts = String(NOW / 1000 + offset);
      const [status, message] = await h.deliver(signed(raw, { ts }), raw);
      assert.equal(status, 401, `offset ${offset} s`);
      assert.match(message, /timestamp/);
    }
    for (const ts of ['', '1.8e9', ' 1800000000', '-1800000000', 'soon']) {
      assert.equal((await h.deliver(signed(raw, { ts }), raw))[0], 401, `timestamp ${JSON.stringify(ts)}`);
    }
    assert.equal(h.reads(), 0, 'the body was never read');
    // Within the tolerance, either way.
    assert.equal((await h.deliver(signed(raw, { id: 'a', ts: String(NOW / 1000 - 299) }), raw))[0], 202);
    assert.equal(
      (await h.deliver(signed(body('success', 8), { id: 'b', ts: String(NOW / 1000 + 299) }), body('success', 8)))[0],
      202,
    );
    assert.equal(h.events.length, 2);
  });

  it('refuses a delivery missing any of the signature headers', async () => {
    const h = handler();
    const raw = body();
    for (const name of ['webhook-id', 'webhook-timestamp', 'webhook-signature']) {
      const headers = signed(raw);
      delete headers[name];
      assert.equal((await h.deliver(headers, raw))[0], 401, `without ${name}`);
    }
    assert.equal((await h.deliver({ 'x-gitlab-event': 'Pipeline Hook' }, raw))[0], 401, 'unsigned');
    assert.equal(h.events.length, 0);
    assert.equal(h.reads(), 0);
  });

  it('accepts any one matching v1 signature among several, and only v1 ones', async () => {
    const h = handler();
    const raw = body();
    const wrong = mac(randomBytes(32), 'idem-1', nowSeconds, raw);
    const headers = (signature: string, id: string) => ({ ...signed(raw, { id }), 'webhook-signature': signature });
    // webhook-id is covered by the signature: sign each case over its own id.
    const sigFor = (id: string) => mac(KEY, id, nowSeconds, raw);
    assert.equal((await h.deliver(headers(`v1,${wrong} v1,${sigFor('m1')}`, 'm1'), raw))[0], 202);
    assert.equal((await h.deliver(headers(`v1,${sigFor('m2')} v1,${wrong}`, 'm2'), raw))[0], 202);
    assert.equal((await h.deliver(headers(`v1a,${sigFor('m3')} v1,${wrong}`, 'm3'), raw))[0], 401, 'not a v1 entry');
    assert.equal((await h.deliver(headers(`v2,${sigFor('m4')}`, 'm4'), raw))[0], 401);
    assert.equal((await h.deliver(headers(`v1,${wrong} v1,${wrong}`, 'm5'), raw))[0], 401);
    assert.equal((await h.deliver(headers(sigFor('m6'), 'm6'), raw))[0], 401, 'no version prefix');
    assert.equal((await h.deliver(headers(`v1,${sigFor('m7')}x`, 'm7'), raw))[0], 401, 'trailing garbage');
    assert.equal(h.events.length, 2, 'm1 and m2');
  });

  it('keys the HMAC with the bytes a whsec_ token encodes, not the token text', async () => {
    const h = handler();
    const raw = body();
    assert.deepEqual(signingKey(SIGNING_TOKEN), KEY);
    const withText = signed(raw, { key: Buffer.from(SIGNING_TOKEN) });
    assert.equal((await h.deliver(withText, raw))[0], 401);
    const withTail = signed(raw, { key: Buffer.from(SIGNING_TOKEN.slice('whsec_'.length)) });
    assert.equal((await h.deliver(withTail, raw))[0], 401);
    assert.equal((await h.deliver(signed(raw), raw))[0], 202);
    for (const bad of ['plain-secret', KEY.toString('base64'), 'whsec_', 'whsec_not base64!', 'whsec_AAAA']) {
      assert.equal(signingKey(bad), undefined, bad);
      assert.throws(() => handler({ signingToken: bad }), /whsec_/);
    }
  });

  it('handles a replayed delivery once by its webhook-id, whatever X-Gitlab-Event-UUID says', async () => {
    const h = handler();
    const raw = body();
    const headers = signed(raw, { id: 'idem-replayed' });
    assert.deepEqual(await h.deliver({ ...headers, 'x-gitlab-event-uuid': 'e-1' }, raw), [202, 'accepted']);
    assert.deepEqual(await h.deliver({ ...headers, 'x-gitlab-event-uuid': 'e-2' }, raw), [202, 'duplicate delivery']);
    assert.deepEqual(await h.deliver(headers, raw), [202, 'duplicate delivery']);
    // The same event to another hook (its own webhook-id) is still one event.
    const other = signed(raw, { id: 'idem-other-hook' });
    assert.deepEqual(await h.deliver({ ...other, 'x-gitlab-event-uuid': 'e-1' }, raw), [202, 'duplicate delivery']);
    assert.equal(h.events.length, 1);
  });

  it('requires both the token and the signature when both are configured', async () => {
    const h = handler({ token: 'hook-token' });
    const raw = body();
    assert.equal((await h.deliver(signed(raw, { id: 't1' }), raw))[0], 401, 'signed, no token');
    assert.equal(
      (await h.deliver({ 'x-gitlab-event': 'Pipeline Hook', 'x-gitlab-token': 'hook-token' }, raw))[0],
      401,
      'token, unsigned',
    );
    assert.equal((await h.deliver({ ...signed(raw, { id: 't3' }), 'x-gitlab-token': 'hook-token' }, raw))[0], 202);
    assert.equal(h.events.length, 1);
  });

  it('without a signing token, the token alone still suffices; with neither, no handler', async () => {
    const h = handler({ signingToken: undefined, token: 'hook-token' });
    const raw = body();
    assert.equal((await h.deliver({ 'x-gitlab-event': 'Pipeline Hook', 'x-gitlab-token': 'hook-token' }, raw))[0], 202);
    assert.throws(() => handler({ signingToken: undefined }), /token/);
  });
});

describe('GITLAB_WEBHOOK_SIGNING_TOKEN', () => {
  it('reads a whsec_ token', () => {
    const config = loadConfig({ FLUI_CI: 'gitlab', GITLAB_WEBHOOK_SIGNING_TOKEN: SIGNING_TOKEN });
    assert.equal(config.gitlab.webhookSigningToken, SIGNING_TOKEN);
    assert.equal(loadConfig({ FLUI_CI: 'gitlab' }).gitlab.webhookSigningToken, undefined);
  });

  it('refuses a token that is not whsec_ + base64, naming the variable without echoing the value', () => {
    for (const secret of ['my-plain-signing-secret', `whsec_${KEY.toString('hex')}!`, 'whsec_c2hvcnQ=']) {
      assert.throws(
        () => loadConfig({ FLUI_CI: 'gitlab', GITLAB_WEBHOOK_SIGNING_TOKEN: secret }),
        (err: unknown) => {
          const message = (err as Error).message;
          assert.match(message, /GITLAB_WEBHOOK_SIGNING_TOKEN/);
          assert.ok(!message.includes(secret), 'the value is not echoed');
          assert.ok(!message.includes(secret.slice(6, 14)), 'nor part of it');
          return true;
        },
      );
    }
  });
});
