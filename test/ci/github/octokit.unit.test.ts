/**
 * How GitHub's answers become service errors, and through the activities' one translation, Temporal failures. The
 * emulator covers 401, 404, 422, rate limits and outages end to end (actions.test.ts, and below a secondary limit
 * that names no wait); the answers it cannot produce (a permission 403, a 429 without headers) are checked here on
 * the error shape Octokit throws. And how the client paces writes.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { performance } from 'node:perf_hooks';
import { ApplicationFailure } from '@temporalio/activity';
import { toActivityFailure } from '../../../src/activities/failures.ts';
import { GitHubActionsBackend } from '../../../src/ci/github/actions.ts';
import { authHint, createGitHubClient, githubError, retryAfterSeconds } from '../../../src/ci/github/octokit.ts';
import { loadConfig } from '../../../src/config.ts';
import { ServiceError } from '../../../src/errors.ts';
import { validateManifest } from '../../../src/manifest/parse.ts';
import type { Application } from '../../../src/manifest/schema.ts';
import { useGitHubEmulator } from '../../helpers/github-emulator.ts';
import type { PipelineSettings } from '../../../src/ci/backend.ts';

/** The pipeline pushes with a stored password. */
const STATIC: PipelineSettings = { push: { method: 'static', registry: 'registry.example.com' } };

function requestError(status: number, message: string, headers: Record<string, string> = {}, url = '') {
  return Object.assign(new Error(`${message} - https://docs.github.com/rest`), {
    name: 'HttpError',
    status,
    request: { url, headers: { authorization: 'token [REDACTED]' } },
    response: { status, headers, data: { message } },
  });
}

function failure(err: unknown): ApplicationFailure {
  const e = githubError(err, 'writing the pipeline to acme/hello', 'check GITHUB_TOKEN');
  assert.ok(e instanceof ServiceError);
  const f = toActivityFailure(e);
  assert.ok(f instanceof ApplicationFailure);
  return f;
}

describe('githubError', () => {
  it('makes refusals permanent, with a message that says what to fix', () => {
    const cases: [number, string, string, RegExp][] = [
      [401, 'Bad credentials', 'Unauthorized', /acme\/hello \(401 Bad credentials\): check GITHUB_TOKEN/],
      [403, 'Resource not accessible by personal access token', 'Unauthorized', /403 .*needs read and write/],
      [404, 'Not Found', 'NotFound', /404 Not Found\): check the repository name/],
      [422, 'Validation Failed', 'Invalid', /422 Validation Failed/],
      [400, 'Problems parsing JSON', 'Invalid', /400/],
    ];
    for (const [status, message, type, text] of cases) {
      const f = failure(requestError(status, message));
      assert.equal(f.type, type, `${status}`);
      assert.equal(f.nonRetryable, true, `${status}`);
      assert.match(f.message, text);
      assert.doesNotMatch(f.message, /https:\/\/docs/);
    }
  });

  it('retries rate limits after the time GitHub named, and everything else transient with backoff', () => {
    const secondary = failure(requestError(403, 'You have exceeded a secondary rate limit', { 'retry-after': '60' }));
    assert.deepEqual(
      [secondary.type, secondary.nonRetryable, secondary.nextRetryDelay],
      ['GitHubRateLimited', false, '60 seconds'],
    );
    const now = Date.now();
    const reset = String(Math.floor(now / 1000) + 600);
    const primary = requestError(403, 'API rate limit exceeded', {
      'x-ratelimit-remaining': '0',
      'x-ratelimit-reset': reset,
    });
    assert.ok(Math.abs(retryAfterSeconds(primary, now)! - 600) <= 1);
    assert.equal(failure(primary).type, 'GitHubRateLimited');
    assert.equal(failure(requestError(429, 'Too Many Requests', { 'retry-after': '5' })).nextRetryDelay, '5 seconds');

    for (const status of [500, 502, 503, 504, 409]) {
      const f = failure(requestError(status, 'Server Error'));
      assert.equal(f.nonRetryable, false, `${status}`);
      assert.equal(f.nextRetryDelay, undefined, `${status}: Temporal's backoff applies`);
    }
    const network = failure(Object.assign(new TypeError('fetch failed'), { cause: new Error('ECONNRESET') }));
    assert.equal(network.nonRetryable, false);
    assert.equal(network.type, 'GitHubUnavailable');
  });

  it('waits at least a minute after a rate limit that names no wait, instead of calling it a refusal', () => {
    const limits: [number, string, Record<string, string>][] = [
      [403, 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.', {}],
      [403, 'You have triggered an abuse detection mechanism. Please wait a few minutes before you try again.', {}],
      [429, 'Too Many Requests', {}],
      [403, 'API rate limit exceeded for installation ID 7.', { 'x-ratelimit-remaining': '0' }],
    ];
    for (const [status, message, headers] of limits) {
      const f = failure(requestError(status, message, headers));
      assert.deepEqual([f.type, f.nonRetryable, f.nextRetryDelay], ['GitHubRateLimited', false, '60 seconds'], message);
      assert.match(f.message, /rate limit/);
    }
    // A 403 that is about permissions stays a refusal.
    assert.equal(failure(requestError(403, 'Resource not accessible by integration')).type, 'Unauthorized');
  });

  it('blames the GitHub App settings when the installation token is refused', () => {
    const f = failure(requestError(404, 'Not Found', {}, 'https://api.github.com/app/installations/42/access_tokens'));
    assert.equal(f.type, 'Unauthorized');
    assert.match(f.message, /installation token/);
  });

  it('passes errors that are already service errors through', () => {
    const original = new ServiceError({ service: 'GitHub', kind: 'invalid', message: 'merge the PR' });
    assert.equal(githubError(original, 'x'), original);
  });

  it('names the configuration to check by kind of credentials', () => {
    const token = loadConfig({ GITHUB_TOKEN: 'github_pat_x' }).github;
    assert.equal(authHint(token), 'check GITHUB_TOKEN');
    const app = loadConfig({ GITHUB_APP_ID: '1', GITHUB_APP_PRIVATE_KEY: 'k', GITHUB_APP_INSTALLATION_ID: '2' }).github;
    assert.match(authHint(app), /GITHUB_APP_ID/);
    assert.doesNotMatch(authHint(token) + authHint(app), /github_pat_x|\bk\b/);
  });
});

describe('createGitHubClient write pacing', () => {
  /**
   * A loopback server that holds every write until `count` have arrived, and records when each arrived. A write to
   * `WARM` is answered at once and not recorded: one warms the client's code paths up first (on a busy machine the
   * first request of a process can take long enough to start that it would shorten the first measured gap).
   */
  async function recordingServer(count = 3) {
    const arrivals: number[] = [];
    const held: (() => void)[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    const server = createServer((req, res) => {
      if (req.url?.endsWith('/WARM')) return void req.resume().on('end', () => res.writeHead(204).end());
      arrivals.push(performance.now());
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      req.resume();
      held.push(() => {
        inFlight--;
        res.writeHead(204).end();
      });
      if (held.length === count) for (const answer of held.splice(0)) answer();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    return {
      url: `http://127.0.0.1:${port}`,
      arrivals,
      maxInFlight: () => maxInFlight,
      close: () => new Promise<void>((resolve) => server.close(() => resolve())),
    };
  }

  async function writeThrice(writeIntervalMs: number) {
    const server = await recordingServer();
    try {
      const github = { ...loadConfig({ GITHUB_TOKEN: 'github_pat_x' }).github, apiUrl: server.url, writeIntervalMs };
      const octokit = createGitHubClient(github);
      const write = (name: string) =>
        octokit.request('PATCH /repos/{owner}/{repo}/actions/variables/{name}', { owner: 'acme', repo: 'hello', name });
      await write('WARM');
      await Promise.all([1, 2, 3].map((n) => write(`V${n}`)));
      return {
        gaps: server.arrivals.slice(1).map((t, i) => t - server.arrivals[i]!),
        maxInFlight: server.maxInFlight(),
      };
    } finally {
      await server.close();
    }
  }

  it('starts writes GITHUB_WRITE_INTERVAL_MS apart, and unpaced when it is 0', async () => {
    const paced = await writeThrice(300);
    assert.equal(paced.gaps.length, 2);
    for (const gap of paced.gaps) assert.ok(gap >= 250, `writes started ${Math.round(gap)} ms apart`);
    // Unpaced, all three were on the wire at once (the server answered none before the third arrived).
    assert.equal((await writeThrice(0)).maxInFlight, 3);
  });

  it("paces each token's writes on their own: one tenant's writes never wait behind another's", async () => {
    const server = await recordingServer(3);
    try {
      const write = (token: string) =>
        createGitHubClient({ ...loadConfig({ GITHUB_TOKEN: token }).github, apiUrl: server.url }).request(
          'PATCH /repos/{owner}/{repo}/actions/variables/{name}',
          { owner: 'acme', repo: 'hello', name: 'V' },
        );
      // A second apart if they shared one queue; all at once, each the first of its own.
      await Promise.all(['github_pat_a', 'github_pat_b', 'github_pat_c'].map(write));
      const spread = Math.max(...server.arrivals) - Math.min(...server.arrivals);
      assert.ok(spread < 500, `three tokens' writes arrived within ${Math.round(spread)} ms`);
    } finally {
      await server.close();
    }
  });

  it('reads GITHUB_WRITE_INTERVAL_MS, one second by default', () => {
    assert.equal(loadConfig({}).github.writeIntervalMs, 1000);
    assert.equal(loadConfig({ GITHUB_WRITE_INTERVAL_MS: '0' }).github.writeIntervalMs, 0);
    assert.throws(() => loadConfig({ GITHUB_WRITE_INTERVAL_MS: '-1' }), /GITHUB_WRITE_INTERVAL_MS/);
  });
});

describe('a secondary rate limit without retry-after, from the emulator', () => {
  const github = useGitHubEmulator();

  it('is retried after a minute, not failed as Unauthorized, and not retried in place', async (t) => {
    t.after(() => github().faults.reset());
    await github().createRepo({ owner: 'acme', name: 'quiet-limit' });
    const token = github().createToken();
    const ci = new GitHubActionsBackend(loadConfig({ GITHUB_API_URL: github().url, GITHUB_TOKEN: token }).github);
    const a = validateManifest({
      apiVersion: 'flui.dev/v1',
      kind: 'Application',
      metadata: { name: 'quiet-limit' },
      spec: { source: { repository: 'acme/quiet-limit' }, image: { repository: '127.0.0.1:5999/acme/quiet-limit' } },
    }) as Application;

    github().faults.secondaryLimit({ count: 1 }); // GitHub's 403, and no retry-after
    const f = await ci.ensurePipeline(a, STATIC).then(
      () => assert.fail('the limit fails the attempt'),
      (err: unknown) => toActivityFailure(err as ServiceError),
    );
    assert.ok(f instanceof ApplicationFailure);
    assert.deepEqual([f.type, f.nonRetryable, f.nextRetryDelay], ['GitHubRateLimited', false, '60 seconds']);
    assert.match(f.message, /secondary rate limit/);
    assert.equal(github().records.limitRefusals[token], 1, 'a minute is not slept in place, nor retried early');

    // The next attempt, a minute later for Temporal, goes through.
    assert.equal((await ci.ensurePipeline(a, STATIC)).changed, true);
  });
});
