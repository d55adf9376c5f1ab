/**
 * The GitHub emulator's faults, each deterministic: outages (503 or connection resets, by time or by request
 * count), latency, primary rate limits (spent, or exhausted on demand, with 403 or 429), and secondary limits with
 * `retry-after` or without it. Each is seen through @octokit/rest the way production code sees it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { useGitHubEmulator } from '../../../test/helpers/github-emulator.ts';
import { errorOf, eventually, octokitFor } from './support.ts';

describe('GitHub emulator: faults', () => {
  const github = useGitHubEmulator();
  async function client() {
    const name = `faults${Math.random().toString(36).slice(2, 8)}`;
    await github().createRepo({ owner: 'acme', name });
    const token = github().createToken();
    const gh = octokitFor(github(), token);
    return { token, get: () => gh.rest.repos.get({ owner: 'acme', repo: name }) };
  }

  it('serves 503s in an outage window, then recovers when it ends', async (t) => {
    t.after(() => github().faults.reset());
    const { get } = await client();
    github().faults.outage({ forMs: 300 });
    const down = await errorOf(get());
    assert.equal(down.status, 503);
    assert.equal(down.message, 'Service Unavailable');
    assert.ok(down.body.documentation_url);
    const back = await eventually(() => get().catch(() => undefined), 'the outage to end', 10_000);
    assert.equal(back.status, 200);
    assert.ok(github().records.outageFailures >= 1);
  });

  it('fails exactly the next N requests when the outage is counted in requests', async (t) => {
    t.after(() => github().faults.reset());
    const { get } = await client();
    github().faults.outage({ requests: 2 });
    assert.equal((await errorOf(get())).status, 503);
    assert.equal((await errorOf(get())).status, 503);
    assert.equal((await get()).status, 200);
  });

  it('resets connections instead of answering', async (t) => {
    t.after(() => github().faults.reset());
    const { token } = await client();
    github().faults.outage({ mode: 'reset', requests: 1 });
    await assert.rejects(
      fetch(`${github().url}/rate_limit`, { headers: { authorization: `token ${token}` } }),
      (err: Error & { cause?: { code?: string } }) => {
        assert.match(`${err.message} ${err.cause?.code}`, /fetch failed|ECONNRESET|socket/i);
        return true;
      },
    );
    assert.equal(
      (await fetch(`${github().url}/rate_limit`, { headers: { authorization: `token ${token}` } })).status,
      200,
    );
  });

  it('adds latency to every request while set', async (t) => {
    t.after(() => github().faults.reset());
    const { get } = await client();
    const before = github().records.delayed;
    github().faults.latency(150);
    const started = performance.now();
    assert.equal((await get()).status, 200);
    const took = performance.now() - started;
    github().faults.latency(0);
    await get();
    assert.equal(github().records.delayed, before + 1, 'one delayed request, none after the latency was cleared');
    process.stdout.write(`# latency fault: 150 ms asked, request took ${took.toFixed(0)} ms\n`);
  });

  it('exhausts the primary rate limit on demand: 403 (or 429) with x-ratelimit-remaining 0 until the reset', async (t) => {
    t.after(() => github().faults.reset());
    const a = await client();
    const b = await client();
    github().faults.exhaustRateLimit({ forMs: 60_000, token: a.token });
    const limited = await errorOf(a.get());
    assert.equal(limited.status, 403);
    assert.match(limited.message, /^API rate limit exceeded/);
    assert.equal(limited.headers['x-ratelimit-remaining'], '0');
    const reset = Number(limited.headers['x-ratelimit-reset']);
    assert.ok(reset > Date.now() / 1000 + 50, 'the reset is when the window ends');
    assert.equal((await b.get()).status, 200, 'other tokens are unaffected');
    assert.equal(github().records.limitRefusals[a.token], 1);

    github().faults.exhaustRateLimit({ forMs: 300, status: 429 });
    assert.equal((await errorOf(b.get())).status, 429);
    const back = await eventually(() => b.get().catch(() => undefined), 'the window to pass', 10_000);
    assert.equal(back.status, 200);
  });

  it('hits a secondary rate limit with retry-after for the next N requests', async (t) => {
    t.after(() => github().faults.reset());
    const { get, token } = await client();
    github().faults.secondaryLimit({ count: 2, retryAfterSeconds: 7 });
    const first = await errorOf(get());
    assert.equal(first.status, 403);
    assert.equal(first.headers['retry-after'], '7');
    assert.match(first.message, /secondary rate limit/);
    github().faults.secondaryLimit({ count: 1, retryAfterSeconds: 3, status: 429 });
    const second = await errorOf(get());
    assert.equal(second.status, 429);
    assert.equal(second.headers['retry-after'], '3');
    assert.equal((await get()).status, 200);
    assert.equal(github().records.limitRefusals[token], 2);
  });

  it('can hit a secondary rate limit that names no wait (no retry-after), as GitHub sometimes does', async (t) => {
    t.after(() => github().faults.reset());
    const { get } = await client();
    github().faults.secondaryLimit({ count: 1 });
    const limited = await errorOf(get());
    assert.equal(limited.status, 403);
    assert.match(limited.message, /secondary rate limit/);
    assert.equal(limited.headers['retry-after'], undefined);
    assert.notEqual(limited.headers['x-ratelimit-remaining'], '0', 'not the primary limit either');
    assert.equal((await get()).status, 200);
  });

  it('is healthy again after reset', async () => {
    const { get } = await client();
    github().faults.outage({ forMs: 60_000 });
    github().faults.secondaryLimit({ count: 5, retryAfterSeconds: 60 });
    github().faults.exhaustRateLimit({ forMs: 60_000 });
    github().faults.latency(10);
    github().faults.reset();
    assert.equal((await get()).status, 200);
  });
});

describe('GitHub emulator: a primary rate limit that runs out', () => {
  const github = useGitHubEmulator({ rateLimit: 3 });

  it('counts every charged request in x-ratelimit-* and refuses the one past the limit', async () => {
    await github().createRepo({ owner: 'acme', name: 'busy' });
    const token = github().createToken();
    const gh = octokitFor(github(), token);
    const remaining: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await gh.rest.repos.get({ owner: 'acme', repo: 'busy' });
      remaining.push(res.headers['x-ratelimit-remaining']!);
      assert.equal(res.headers['x-ratelimit-limit'], '3');
      assert.equal(res.headers['x-ratelimit-resource'], 'core');
    }
    assert.deepEqual(remaining, ['2', '1', '0']);
    const refused = await errorOf(gh.rest.repos.get({ owner: 'acme', repo: 'busy' }));
    assert.equal(refused.status, 403);
    assert.equal(refused.headers['x-ratelimit-remaining'], '0');
    assert.equal(refused.headers['x-ratelimit-used'], '3');
    assert.equal(github().records.requestsOverLimit, 1);
    assert.equal(github().records.rateLimited[token], 3);
    const other = octokitFor(github(), github().createToken());
    assert.equal((await other.rest.repos.get({ owner: 'acme', repo: 'busy' })).status, 200, 'limits are per token');
  });
});
