/**
 * Each fault the emulator injects, as a client sees it: outages (503, 502 HTML, reset), the rate limit exhausted
 * (429 with and without `Retry-After`), unannounced throttling, pipelines kept pending, runner capacity, failing
 * builds, lost and duplicated Pipeline Hook deliveries. No registry: the pipelines run an echo job.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, afterEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startGitLabEmulator } from '../src/index.ts';
import { useGitLabEmulator } from '../../../test/helpers/gitlab-emulator.ts';
import { api, eventually, gitbeakerFor } from './support.ts';

const deliveries: { headers: IncomingHttpHeaders; body: { object_attributes: { id: number; status: string } } }[] = [];
const receiver = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    deliveries.push({ headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as never });
    res.writeHead(200).end();
  });
});
await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
after(() => new Promise<void>((resolve) => receiver.close(() => resolve())));
const WEBHOOK = { url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`, token: 't0k3n' };

const CI = `build:\n  stage: build\n  script:\n    - echo building\n`;
const PATH = 'acme/faults';
const enc = encodeURIComponent;

describe('GitLab emulator faults', () => {
  const gitlab = useGitLabEmulator({ webhook: WEBHOOK, runner: { pendingMs: 20, buildMs: 50 } });
  afterEach(() => gitlab().faults.reset());

  const start = async () => {
    const gl = gitlab();
    await gl.createProject({ path: PATH, files: { '.gitlab-ci.yml': CI } });
    const token = gl.createToken();
    const res = await api(gl, token, 'POST', `/projects/${enc(PATH)}/pipeline`, { ref: 'main' });
    assert.equal(res.status, 201, res.text);
    return { gl, token, id: (res.body as { id: number }).id };
  };
  const statusOf = async (id: number) => {
    const gl = gitlab();
    return (await api(gl, gl.createToken(), 'GET', `/projects/${enc(PATH)}/pipelines/${id}`)).body as {
      status: string;
    };
  };
  const finished = (id: number) =>
    eventually(async () => {
      const s = (await statusOf(id)).status;
      return ['success', 'failed', 'canceled'].includes(s) ? s : undefined;
    }, `pipeline ${id} to finish`);

  it('outages: 503 with a JSON body, 502 from the front end, reset connections, for a number of requests', async () => {
    const gl = gitlab();
    await gl.createProject({ path: PATH, files: { '.gitlab-ci.yml': CI } });
    const token = gl.createToken();
    gl.faults.outage({ requests: 1 });
    const down = await api(gl, token, 'GET', `/projects/${enc(PATH)}`);
    assert.equal(down.status, 503);
    assert.deepEqual(down.body, { message: '503 Service Unavailable' });
    assert.equal((await api(gl, token, 'GET', `/projects/${enc(PATH)}`)).status, 200);
    gl.faults.outage({ mode: '502', requests: 1 });
    const front = await api(gl, token, 'GET', `/projects/${enc(PATH)}`);
    assert.equal(front.status, 502);
    assert.match(front.headers.get('content-type') ?? '', /text\/html/);
    gl.faults.outage({ mode: 'reset', requests: 1 });
    await assert.rejects(api(gl, token, 'GET', `/projects/${enc(PATH)}`));
    assert.equal(gl.records.outageFailures, 3);
  });

  it('rate limit exhausted: 429 with Retry-After and RateLimit headers, or without Retry-After; unannounced throttling', async () => {
    const gl = gitlab();
    await gl.createProject({ path: PATH, files: { '.gitlab-ci.yml': CI } });
    const token = gl.createToken();
    gl.faults.exhaustRateLimit({ forMs: 5000, token });
    const limited = await api(gl, token, 'GET', `/projects/${enc(PATH)}`);
    assert.equal(limited.status, 429);
    assert.equal(limited.text, 'Retry later\n');
    assert.equal(limited.headers.get('ratelimit-remaining'), '0');
    const retryAfter = Number(limited.headers.get('retry-after'));
    assert.ok(retryAfter >= 1 && retryAfter <= 5, String(retryAfter));
    assert.equal(
      (await api(gl, gl.createToken(), 'GET', `/projects/${enc(PATH)}`)).status,
      200,
      'other tokens are not limited',
    );

    gl.faults.reset();
    gl.faults.exhaustRateLimit({ forMs: 5000, retryAfter: false });
    const silent = await api(gl, token, 'GET', `/projects/${enc(PATH)}`);
    assert.equal(silent.status, 429);
    assert.equal(silent.headers.get('retry-after'), null);
    assert.equal(gl.records.requestsOverLimit, 2);

    gl.faults.reset();
    gl.faults.secondaryLimit({ count: 1 });
    const throttled = await api(gl, token, 'GET', `/projects/${enc(PATH)}`);
    assert.equal(throttled.status, 429);
    assert.equal(throttled.headers.get('retry-after'), null);
    gl.faults.secondaryLimit({ count: 1, retryAfterSeconds: 7 });
    assert.equal((await api(gl, token, 'GET', `/projects/${enc(PATH)}`)).headers.get('retry-after'), '7');
    assert.equal((await api(gl, token, 'GET', `/projects/${enc(PATH)}`)).status, 200);
  });

  it('loses the answer of a handled request: the pipeline exists, the client saw a reset', async () => {
    const gl = gitlab();
    await gl.createProject({ path: PATH, files: { '.gitlab-ci.yml': CI } });
    const token = gl.createToken();
    const before = gl.pipelines(PATH).length;
    gl.faults.loseResponses({ count: 1, operation: '/projects/:id/pipeline', method: 'POST' });
    assert.equal((await api(gl, token, 'GET', `/projects/${enc(PATH)}`)).status, 200, 'other operations answer');
    await assert.rejects(api(gl, token, 'POST', `/projects/${enc(PATH)}/pipeline`, { ref: 'main' }));
    assert.equal(gl.pipelines(PATH).length, before + 1, 'the pipeline was created all the same');
    assert.equal(gl.records.responsesLost, 1);
    assert.equal((await api(gl, token, 'POST', `/projects/${enc(PATH)}/pipeline`, { ref: 'main' })).status, 201);
  });

  it('delays every request by the latency fault', async () => {
    const gl = gitlab();
    await gl.createProject({ path: PATH, files: { '.gitlab-ci.yml': CI } });
    gl.faults.latency(150);
    const started = Date.now();
    assert.equal((await api(gl, gl.createToken(), 'GET', `/projects/${enc(PATH)}`)).status, 200);
    assert.ok(Date.now() - started >= 150);
    assert.ok(gl.records.delayed >= 1);
  });

  it('keeps pipelines pending, then runs them; runner capacity runs one at a time', async () => {
    const gl = gitlab();
    gl.faults.keepPending(true);
    const { id } = await start();
    await sleep(200);
    assert.equal((await statusOf(id)).status, 'pending');
    gl.faults.keepPending(false);
    assert.equal(await finished(id), 'success');

    gl.faults.runnerCapacity(1);
    const a = await start();
    const b = await start();
    const both = await eventually(() => {
      const [pa, pb] = [a.id, b.id].map((x) => gl.pipelines(PATH).find((p) => p.id === x)!);
      if (pa!.status === 'running') assert.equal(pb!.status, 'pending', 'the second waits for the runner');
      return pa!.status === 'success' && pb!.status === 'success' ? true : undefined;
    }, 'both pipelines');
    assert.ok(both);
  });

  it('fails the next build with script_failure', async () => {
    const gl = gitlab();
    gl.faults.failBuilds(1);
    const { id } = await start();
    assert.equal(await finished(id), 'failed');
    const [job] = gl.pipelines(PATH).find((p) => p.id === id)!.jobs;
    assert.equal(job!.failureReason, 'script_failure');
    assert.match(gl.trace(PATH, job!.id)!, /simulated build failure/);
    const next = await start();
    assert.equal(await finished(next.id), 'success', 'only the next build fails');
  });

  it('delivers to a project hook added through the API, with its own token, which the API never returns', async () => {
    const gl = gitlab();
    const path = 'acme/hooked';
    await gl.createProject({ path, files: { '.gitlab-ci.yml': CI } });
    const client = gitbeakerFor(gl, gl.createToken());
    const hook = await client.ProjectHooks.add(path, `${WEBHOOK.url}?project=hooked`, {
      pipelineEvents: true,
      pushEvents: false,
      token: 'project-hook-token',
    });
    assert.equal(hook.pipeline_events, true);
    assert.equal(hook.alert_status, 'executable');
    assert.ok(!('token' in hook));
    assert.deepEqual(
      (await client.ProjectHooks.all(path)).map((h) => h.id),
      [hook.id],
    );
    const res = await api(gl, gl.createToken(), 'POST', `/projects/${enc(path)}/pipeline`, { ref: 'main' });
    const id = (res.body as { id: number }).id;
    const both = await eventually(() => {
      const d = deliveries.filter(
        (x) => x.body.object_attributes.id === id && x.body.object_attributes.status === 'success',
      );
      return d.length === 2 ? d : undefined;
    }, 'the success delivery to both hooks');
    assert.deepEqual(both.map((d) => d.headers['x-gitlab-token']).sort(), ['project-hook-token', WEBHOOK.token].sort());
    assert.notEqual(both[0]!.headers['x-gitlab-webhook-uuid'], both[1]!.headers['x-gitlab-webhook-uuid']);
    await client.ProjectHooks.remove(path, hook.id);
    assert.deepEqual(await client.ProjectHooks.all(path), []);
    const refused = await api(gl, gl.createToken(), 'POST', `/projects/${enc(path)}/hooks`, { url: 'ftp://x' });
    assert.equal(refused.status, 400);
  });

  it('loses and duplicates Pipeline Hook deliveries (a duplicate carries the same UUID)', async () => {
    const gl = gitlab();
    gl.faults.webhooks({ drop: 1, duplicate: 1 });
    const { id } = await start();
    assert.equal(await finished(id), 'success');
    const mine = await eventually(() => {
      const d = deliveries.filter((x) => x.body.object_attributes.id === id);
      return d.some((x) => x.body.object_attributes.status === 'success') ? d : undefined;
    }, 'the success delivery');
    // pending is lost, running is delivered twice, success once.
    assert.deepEqual(
      mine.map((d) => d.body.object_attributes.status),
      ['running', 'running', 'success'],
    );
    assert.equal(mine[0]!.headers['x-gitlab-event-uuid'], mine[1]!.headers['x-gitlab-event-uuid']);
    assert.equal(mine[0]!.headers['idempotency-key'], mine[1]!.headers['idempotency-key']);
    assert.equal(gl.records.webhooksDropped, 1);
  });
});

describe('GitLab emulator webhook signing and auto-disabling', () => {
  it('signs deliveries with the signing token, and stops delivering to a hook that keeps failing', async () => {
    const seen: { headers: IncomingHttpHeaders; body: string; status: number }[] = [];
    let answer = 500;
    const failing = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        seen.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), status: answer });
        res.writeHead(answer).end();
      });
    });
    await new Promise<void>((resolve) => failing.listen(0, '127.0.0.1', resolve));
    const key = Buffer.from('a 32-byte signing key for tests!');
    const gl = await startGitLabEmulator({
      runner: { pendingMs: 10, buildMs: 10 },
      webhook: {
        url: `http://127.0.0.1:${(failing.address() as AddressInfo).port}/`,
        token: 't',
        signingToken: `whsec_${key.toString('base64')}`,
        autoDisable: true,
        autoDisableBaseMs: 60_000,
      },
    });
    try {
      await gl.createProject({ path: PATH, files: { '.gitlab-ci.yml': CI } });
      const token = gl.createToken();
      const run = async () => {
        const res = await api(gl, token, 'POST', `/projects/${enc(PATH)}/pipeline`, { ref: 'main' });
        const id = (res.body as { id: number }).id;
        await eventually(
          () => (gl.pipelines(PATH).find((p) => p.id === id)!.status === 'success' ? true : undefined),
          'the pipeline',
        );
      };
      await run(); // pending, running, success: 3 failed deliveries
      await run(); // the 4th fails and disables the hook; the next two are skipped
      await eventually(() => (gl.records.webhooksSkippedDisabled === 2 ? true : undefined), 'the skipped deliveries');
      assert.equal(seen.length, 4);
      const first = seen[0]!;
      const id = String(first.headers['webhook-id']);
      const ts = String(first.headers['webhook-timestamp']);
      const expected = createHmac('sha256', key).update(`${id}.${ts}.${first.body}`).digest('base64');
      assert.equal(first.headers['webhook-signature'], `v1,${expected}`);
      assert.equal(id, first.headers['idempotency-key'], "webhook-id is the delivery's Idempotency-Key");
      answer = 200;
      await run();
      assert.equal(seen.length, 4, 'a disabled hook gets nothing, even once the receiver is healthy again');
      assert.deepEqual(gl.contract.violations, []);
    } finally {
      await gl.stop();
      await new Promise<void>((resolve) => failing.close(() => resolve()));
    }
  });

  it('refuses a signing token GitLab would refuse (only whsec_ + base64 of a 32-byte key)', async () => {
    const url = 'http://127.0.0.1:9/';
    for (const signingToken of [
      'plain-secret',
      `whsec_${Buffer.alloc(21, 1).toString('base64')}`,
      Buffer.alloc(32, 1).toString('base64'),
    ]) {
      await assert.rejects(startGitLabEmulator({ webhook: { url, token: 't', signingToken } }), /whsec_/);
    }
  });
});
