/**
 * The GitLab backend's pure parts: how GitLab's answers become service errors (permanent or retried, and when),
 * pipeline statuses, the poll schedule, the webhook token check, and the configuration it reads.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pollAfterSeconds, toRunState } from '../../../src/ci/gitlab/backend.ts';
import {
  DEFAULT_RATE_LIMIT_WAIT_SECONDS,
  GitLabHttpError,
  gitlabError,
  retryAfterSeconds,
} from '../../../src/ci/gitlab/client.ts';
import { tokenMatches } from '../../../src/ci/gitlab/webhook.ts';
import { loadConfig } from '../../../src/config.ts';
import { pushAccessFor } from '../../../src/registry/push-access.ts';
import { createCiBackend } from '../../../src/ci/index.ts';
import { ServiceError } from '../../../src/errors.ts';
import { validateManifest } from '../../../src/manifest/parse.ts';
import type { Application } from '../../../src/manifest/schema.ts';

const error = (status: number | undefined, headers: Record<string, string> = {}) =>
  gitlabError(new GitLabHttpError(status, headers, 'x'), 'doing');

describe('GitLab errors', () => {
  it('maps 400/401/403/404/422 to permanent kinds and 409, 429, 5xx and no answer to retried ones', () => {
    const kinds = Object.fromEntries(
      [400, 401, 403, 404, 409, 422, 429, 500, 502, 503, undefined].map((s) => [String(s), error(s).kind]),
    );
    assert.deepEqual(kinds, {
      400: 'invalid',
      401: 'unauthorized',
      403: 'unauthorized',
      404: 'not-found',
      409: 'conflict',
      422: 'invalid',
      429: 'rate-limited',
      500: 'unavailable',
      502: 'unavailable',
      503: 'unavailable',
      undefined: 'unavailable',
    });
    for (const s of [400, 401, 403, 404, 422]) assert.equal(error(s).retryable, false, String(s));
    for (const s of [409, 429, 500, 503, undefined]) assert.equal(error(s).retryable, true, String(s));
  });

  it('honours Retry-After, then RateLimit-Reset, and waits a minute on a 429 that says neither', () => {
    const now = Date.UTC(2026, 0, 1);
    assert.equal(retryAfterSeconds({ 'retry-after': '17' }, now), 17);
    assert.equal(retryAfterSeconds({ 'retry-after': new Date(now + 5000).toUTCString() }, now), 5);
    assert.equal(retryAfterSeconds({ 'ratelimit-reset': String(now / 1000 + 42) }, now), 42);
    assert.equal(retryAfterSeconds({}, now), undefined);
    assert.equal(error(429, { 'retry-after': '3' }).retryAfterSeconds, 3);
    assert.equal(error(429).retryAfterSeconds, DEFAULT_RATE_LIMIT_WAIT_SECONDS);
    assert.equal(error(503).retryAfterSeconds, undefined);
    assert.equal(error(503, { 'retry-after': '9' }).retryAfterSeconds, 9);
    assert.equal(error(404, { 'retry-after': '9' }).retryAfterSeconds, undefined);
  });

  it('says what to check for a refused token', () => {
    assert.match(error(401).message, /GITLAB_TOKEN/);
    assert.match(error(403).message, /`api` scope/);
  });
});

describe('GitLab pipelines', () => {
  const p = (status: string) => ({
    id: 1,
    status,
    ref: 'main',
    sha: 'abc',
    web_url: 'https://gitlab.example.com/g/p/-/pipelines/1',
    created_at: '2026-01-01T00:00:00Z',
  });

  it('reads every GitLab pipeline status', () => {
    const read = (s: string) => {
      const r = toRunState(p(s));
      return r.state === 'completed' ? r.result.conclusion : r.state;
    };
    assert.deepEqual(
      Object.fromEntries(
        [
          'created',
          'waiting_for_resource',
          'preparing',
          'pending',
          'running',
          'success',
          'failed',
          'canceling',
          'canceled',
          'skipped',
          'manual',
          'scheduled',
        ].map((s) => [s, read(s)]),
      ),
      {
        created: 'queued',
        waiting_for_resource: 'queued',
        preparing: 'queued',
        pending: 'queued',
        running: 'in_progress',
        success: 'success',
        failed: 'failure',
        canceling: 'cancelled',
        canceled: 'cancelled',
        skipped: 'skipped',
        manual: 'queued',
        scheduled: 'queued',
      },
    );
  });

  it('polls less the older the pipeline, and far less with a webhook', () => {
    assert.equal(pollAfterSeconds(0, false), 10);
    assert.equal(pollAfterSeconds(119, false), 10);
    assert.equal(pollAfterSeconds(300, false), 30);
    assert.equal(pollAfterSeconds(3600, false), 60);
    assert.equal(pollAfterSeconds(0, true), 30);
    assert.equal(pollAfterSeconds(600, true), 150);
    assert.equal(pollAfterSeconds(7200, true), 300);
  });
});

describe('GitLab webhook token', () => {
  it('matches only the exact token, whatever the lengths', () => {
    assert.equal(tokenMatches('s3cret', 's3cret'), true);
    for (const wrong of ['s3cre', 's3cret ', 'S3cret', '', undefined])
      assert.equal(tokenMatches('s3cret', wrong), false);
    assert.equal(tokenMatches('', ''), false);
  });
});

describe('GitLab configuration', () => {
  it('reads FLUI_CI=gitlab with its variables, and pushes to the instance registry with the job token', () => {
    const config = loadConfig({
      FLUI_CI: 'gitlab',
      GITLAB_URL: 'https://gitlab.example.com/api/v4/',
      GITLAB_TOKEN: 'glpat-x',
      GITLAB_WEBHOOK_SECRET: 'hook',
      GITLAB_REGISTRY_HOST: 'registry.gitlab.example.com',
    });
    assert.equal(config.ci.backend, 'gitlab');
    assert.equal(config.gitlab.url, 'https://gitlab.example.com');
    assert.equal(config.gitlab.token, 'glpat-x');
    assert.deepEqual(pushAccessFor(config.registry.push, 'registry.gitlab.example.com/g/p/web'), {
      method: 'ci-job-token',
      registry: 'registry.gitlab.example.com',
    });
    assert.equal(loadConfig({ FLUI_CI: 'gitlab' }).gitlab.registryHost, 'registry.gitlab.com', 'gitlab.com default');
  });

  it('FLUI_CI=gitlab chooses the GitLab backend, which fails only when a build needs the missing token', async () => {
    const ci = createCiBackend(loadConfig({ FLUI_CI: 'gitlab' }));
    assert.equal(ci.name, 'gitlab');
    const app = validateManifest({
      apiVersion: 'flui.dev/v1',
      kind: 'Application',
      metadata: { name: 'hello' },
      spec: { source: { repository: 'acme/sub/hello' }, image: { repository: 'registry.gitlab.com/acme/sub/hello' } },
    }) as Application;
    await assert.rejects(
      ci.ensurePipeline(app, { push: { method: 'ci-job-token', registry: 'registry.gitlab.com' } }),
      (err: unknown) => err instanceof ServiceError && err.kind === 'misconfigured' && /GITLAB_TOKEN/.test(err.message),
    );
  });

  it('names each bad GitLab variable, never echoing a secret', () => {
    assert.throws(
      () =>
        loadConfig({
          GITLAB_URL: 'gitlab',
          FLUI_GITLAB_BUILDER_IMAGE: 'quay.io/buildah/stable:latest',
          GITLAB_TOKEN: 'a b',
        }),
      (err: Error) =>
        /GITLAB_URL must be/.test(err.message) &&
        /FLUI_GITLAB_BUILDER_IMAGE must be an image pinned by digest/.test(err.message) &&
        /GITLAB_TOKEN must be/.test(err.message) &&
        !err.message.includes('a b'),
    );
  });
});
