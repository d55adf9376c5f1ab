/**
 * The GitHub Actions backend's `readLogs` against the GitHub emulator (every response checked against GitHub's
 * OpenAPI description), through the Octokit client production uses: jobs listed, each finished job's log fetched from
 * the link GitHub redirects to, without the token.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import type { PipelineSettings } from '../../src/ci/backend.ts';
import { GitHubActionsBackend } from '../../src/ci/github/actions.ts';
import { loadConfig } from '../../src/config.ts';
import { ServiceError } from '../../src/errors.ts';
import { validateManifest } from '../../src/manifest/parse.ts';
import type { Application } from '../../src/manifest/schema.ts';
import { useGitHubEmulator } from '../helpers/github-emulator.ts';
import { eventually } from '../helpers/stack.ts';

const PUSH: PipelineSettings = { push: { method: 'static', registry: '127.0.0.1:5999' } };

describe('GitHub Actions readLogs against the emulator', () => {
  const github = useGitHubEmulator({ runner: { queuedMs: 50, buildMs: 100 } });
  const backend = (token = github().createToken()) =>
    new GitHubActionsBackend(loadConfig({ GITHUB_API_URL: github().url, GITHUB_TOKEN: token }).github);

  async function repo(): Promise<Application> {
    const name = `logs-${randomBytes(3).toString('hex')}`;
    await github().createRepo({ owner: 'acme', name });
    return validateManifest({
      apiVersion: 'flui.dev/v1',
      kind: 'Application',
      metadata: { name },
      spec: { source: { repository: `acme/${name}` }, image: { repository: `127.0.0.1:5999/acme/${name}` } },
    }) as Application;
  }

  it('while queued: the run page once, not done; once completed: the whole job log, once, done', async () => {
    const a = await repo();
    const ci = backend();
    await ci.ensurePipeline(a, PUSH);
    github().faults.keepQueued(true);
    const downloads: { url: string; authorization: string | null }[] = [];
    const realFetch = globalThis.fetch;
    globalThis.fetch = (input, init) => {
      const url = String(input instanceof Request ? input.url : input);
      if (url.includes('/_emulator/logs/')) {
        downloads.push({ url, authorization: new Headers(init?.headers).get('authorization') });
      }
      return realFetch(input, init);
    };
    try {
      const run = await ci.trigger(a, 'default.logs.k1');
      const first = await ci.readLogs(a, run);
      assert.equal(first.done, false);
      assert.match(first.text, new RegExp(`^\\(the run is still going: .*live output: ${run.htmlUrl}\\)\\n$`));
      const second = await ci.readLogs(a, run, first.cursor);
      assert.deepEqual([second.text, second.done], ['', false], 'the notice is given once');

      github().faults.keepQueued(false);
      const emulated = await eventually(
        () =>
          github()
            .runs(a.spec.source.repository)
            .find((r) => r.status === 'completed'),
        10_000,
        'run completion',
      );
      const last = await ci.readLogs(a, run, second.cursor);
      assert.equal(last.done, true);
      assert.equal(last.text, `=== job build (${emulated.conclusion}) ===\n${emulated.log.join('\n')}\n`);
      assert.match(last.text, /Job build completed: \w+\n$/);

      const before = github().records.notModified;
      const again = await ci.readLogs(a, run, last.cursor);
      assert.deepEqual([again.text, again.done], ['', true], 'nothing twice');
      assert.equal(github().records.notModified, before + 2, 'the unchanged run and job list cost two 304s');
      assert.equal(downloads.length, 1, 'one download of the log');
      assert.match(downloads[0]!.url, /\/_emulator\/logs\/[0-9a-f]+\.txt$/);
      assert.equal(downloads[0]!.authorization, null, 'the signed link is sent no credential');
    } finally {
      globalThis.fetch = realFetch;
      github().faults.reset();
    }
  });

  it('refuses a cursor it did not hand out, and a run the token cannot see, as permanent errors', async () => {
    const a = await repo();
    const ci = backend();
    await ci.ensurePipeline(a, PUSH);
    const run = await ci.trigger(a, 'default.logs.k2');
    await assert.rejects(
      ci.readLogs(a, run, 'end'),
      (e: unknown) => e instanceof ServiceError && e.kind === 'invalid' && !e.retryable,
    );
    const other = backend(github().createToken({ repos: ['acme/someone-else'] }));
    await assert.rejects(other.readLogs(a, run), (e: unknown) => e instanceof ServiceError && e.kind === 'not-found');
  });

  it('an outage is a transient error (the activity retries it)', async () => {
    const a = await repo();
    const ci = backend();
    await ci.ensurePipeline(a, PUSH);
    const run = await ci.trigger(a, 'default.logs.k3');
    github().faults.outage({ forMs: 10_000 });
    try {
      await assert.rejects(
        ci.readLogs(a, run),
        (e: unknown) => e instanceof ServiceError && e.kind === 'unavailable' && e.retryable,
      );
    } finally {
      github().faults.reset();
    }
  });
});
