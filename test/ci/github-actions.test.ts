import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { ApplicationFailure } from '@temporalio/activity';
import { GitHubActionsBackend } from '../../src/ci/github/actions.ts';
import { pipelinePath, renderPipelineFile } from '../../src/ci/github/pipeline-file.ts';
import { startWebhookReceiver, verifySignature } from '../../src/ci/github/webhook.ts';
import { loadConfig } from '../../src/config.ts';
import { findTool } from '../../src/local/tools.ts';
import { validateManifest } from '../../src/manifest/parse.ts';
import type { Application } from '../../src/manifest/schema.ts';
import { useGitHubEmulator } from '../helpers/github-emulator.ts';
import { eventually } from '../helpers/stack.ts';

const run = promisify(execFile);

function app(name: string, extra: Record<string, unknown> = {}): Application {
  return validateManifest({
    apiVersion: 'flui.dev/v1',
    kind: 'Application',
    metadata: { name },
    spec: { source: { repository: `acme/${name}`, ...extra }, image: { repository: `127.0.0.1:5999/acme/${name}` } },
  }) as Application;
}

const credential = { registry: '127.0.0.1:5999', username: 'u', password: 'p4ssw0rd' };

async function failure(p: Promise<unknown>): Promise<ApplicationFailure> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ApplicationFailure, String(err));
    return err;
  }
  assert.fail('expected a failure');
}

describe('the generated pipeline file', () => {
  it('passes actionlint for several manifests and renders byte-identically', async () => {
    const actionlint = findTool('actionlint', 'FLUI_ACTIONLINT');
    const dir = await mkdtemp(join(tmpdir(), 'flui-actionlint-'));
    const manifests = [
      app('plain'),
      app('monorepo', {
        context: 'services/api',
        dockerfile: 'build/Dockerfile',
        buildArgs: { NODE_ENV: 'production', A: '1' },
      }),
      app('branchy', { branch: 'release/v2' }),
    ];
    const files: string[] = [];
    for (const m of manifests) {
      const file = join(dir, pipelinePath(m).split('/').pop()!);
      await writeFile(file, renderPipelineFile(m));
      files.push(file);
      assert.equal(renderPipelineFile(m), renderPipelineFile(structuredClone(m)));
    }
    const { stdout } = await run(actionlint, ['-no-color', ...files]).catch((e: { stdout: string }) => e);
    assert.equal(stdout, '', `actionlint findings:\n${stdout}`);
    assert.match(renderPipelineFile(manifests[1]!), /file: services\/api\/build\/Dockerfile/);
    assert.match(renderPipelineFile(manifests[0]!), /run-name: flui \$\{\{ inputs.deploy_id \}\}/);
  });
});

describe('GitHub Actions backend against the emulator', () => {
  const github = useGitHubEmulator({ runner: { queuedMs: 50, buildMs: 100 } });
  const backend = (token = github().createToken()) =>
    new GitHubActionsBackend(loadConfig({ GITHUB_API_URL: github().url, GITHUB_TOKEN: token }).github);

  it('commits the pipeline once and never again while it is current', async () => {
    const a = app('once');
    await github().createRepo({ owner: 'acme', name: 'once' });
    const ci = backend();
    const first = await ci.ensurePipeline(a);
    assert.equal(first.changed, true);
    assert.match(first.commitSha ?? '', /^[a-f0-9]{40}$/);
    assert.equal(github().file('acme/once', pipelinePath(a)), renderPipelineFile(a));
    for (let i = 0; i < 3; i++) assert.equal((await ci.ensurePipeline(a)).changed, false);
    assert.equal(github().records.commits[`acme/once:${pipelinePath(a)}`], 1);
    // Someone edits the file: Flui restores it, with the current sha (no conflict lost).
    github().push('acme/once', 'main', { [pipelinePath(a)]: 'name: edited\n' });
    assert.equal((await backend().ensurePipeline(a)).changed, true);
    assert.equal(github().records.commits[`acme/once:${pipelinePath(a)}`], 2);
  });

  it('writes the credential once, then skips it until it changes', async () => {
    const a = app('cred');
    await github().createRepo({ owner: 'acme', name: 'cred' });
    const ci = backend();
    assert.equal((await ci.ensureCredential(a, credential)).changed, true);
    assert.deepEqual(github().secretNames('acme/cred').sort(), ['FLUI_REGISTRY_PASSWORD', 'FLUI_REGISTRY_USERNAME']);
    const second = await ci.ensureCredential(a, credential);
    assert.equal(second.changed, false);
    assert.doesNotMatch(JSON.stringify(second), /p4ssw0rd/);
    assert.equal(github().records.secretWrites['acme/cred'], 2);
    assert.equal((await ci.ensureCredential(a, { ...credential, password: 'rotated' })).changed, true);
    assert.equal(github().records.secretWrites['acme/cred'], 4);
  });

  it('finds its own run by name instead of dispatching twice, and reads status with conditional requests', async () => {
    const a = app('runs');
    await github().createRepo({ owner: 'acme', name: 'runs' });
    const ci = backend();
    await ci.ensurePipeline(a);
    assert.equal(await ci.findRun(a, 'default.runs.zzzz1'), undefined);
    const run = await ci.trigger(a, 'default.runs.zzzz1');
    assert.deepEqual(await ci.findRun(a, 'default.runs.zzzz1'), run);
    assert.equal(github().records.dispatches['acme/runs'], 1);

    const first = await ci.status(a, run);
    assert.ok(first.etag);
    const done = await eventually(
      async () => {
        const s = await ci.status(a, run);
        return s.status?.state === 'completed' ? s : undefined;
      },
      10_000,
      'run completion',
    );
    const before = github().records.notModified;
    const again = await ci.status(a, run, done.etag);
    assert.equal(again.status, undefined, '304 carries no body');
    assert.equal(github().records.notModified, before + 1);
    await ci.cancel(a, run); // finished: 409 is success
  });

  it('cancels a queued run', async () => {
    const a = app('cancel');
    await github().createRepo({ owner: 'acme', name: 'cancel' });
    const ci = backend();
    await ci.ensurePipeline(a);
    github().faults.keepQueued(true);
    const run = await ci.trigger(a, 'default.cancel.zzzz2');
    await ci.cancel(a, run);
    github().faults.keepQueued(false);
    const s = await ci.status(a, run);
    assert.deepEqual(s.status?.state === 'completed' && s.status.result.conclusion, 'cancelled');
  });

  it('maps permanent refusals to non-retryable failures and rate limits to a retry delay', async () => {
    const a = app('denied');
    await github().createRepo({ owner: 'acme', name: 'denied' });
    const bad = await failure(backend('github_pat_wrong').ensurePipeline(a));
    assert.equal(bad.type, 'Unauthorized');
    assert.equal(bad.nonRetryable, true);
    assert.match(bad.message, /401 Bad credentials.*GITHUB_TOKEN/);
    assert.doesNotMatch(bad.message, /github_pat_wrong/);
    const hidden = await failure(backend(github().createToken({ repos: ['acme/other'] })).ensurePipeline(a));
    assert.equal(hidden.type, 'NotFound');
    const missingWorkflow = await failure(backend().trigger(a, 'default.denied.zzzz3'));
    assert.equal(missingWorkflow.type, 'NotFound');

    github().faults.exhaustRateLimit({ forMs: 120_000 });
    const limited = await failure(backend().ensurePipeline(a));
    github().faults.reset();
    assert.equal(limited.type, 'GitHubRateLimited');
    assert.equal(limited.nonRetryable, false);
    assert.ok(Number(limited.nextRetryDelay) >= 100_000 || String(limited.nextRetryDelay).includes('seconds'));

    github().faults.outage({ forMs: 60_000 });
    const down = await failure(backend().ensurePipeline(a));
    github().faults.reset();
    assert.equal(down.nonRetryable, false);
    assert.match(down.message, /503/);
  });
});

describe('webhook receiver', () => {
  it('verifies signatures, ignores other events and redeliveries', async () => {
    const got: string[] = [];
    const receiver = await startWebhookReceiver({
      host: '127.0.0.1',
      port: 0,
      secret: 's3cret',
      onRunCompleted: async (e) => void got.push(e.runName),
    });
    try {
      const body = JSON.stringify({
        action: 'completed',
        workflow_run: {
          id: 1,
          name: 'build',
          display_title: 'flui a.b.cccc',
          conclusion: 'success',
          html_url: 'h',
          head_sha: 'x',
        },
      });
      const { createHmac } = await import('node:crypto');
      const sig = `sha256=${createHmac('sha256', 's3cret').update(body).digest('hex')}`;
      const post = (headers: Record<string, string>, b = body) =>
        fetch(receiver.url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: b });
      assert.equal((await post({ 'x-github-event': 'workflow_run', 'x-github-delivery': 'd1' })).status, 401);
      assert.equal(
        (
          await post({
            'x-github-event': 'workflow_run',
            'x-github-delivery': 'd1',
            'x-hub-signature-256': sig.replace(/.$/, '0'),
          })
        ).status,
        401,
      );
      assert.equal(
        (await post({ 'x-github-event': 'workflow_run', 'x-github-delivery': 'd1', 'x-hub-signature-256': sig }))
          .status,
        202,
      );
      assert.equal(
        (await post({ 'x-github-event': 'workflow_run', 'x-github-delivery': 'd1', 'x-hub-signature-256': sig }))
          .status,
        202,
      );
      assert.equal(
        (await post({ 'x-github-event': 'push', 'x-github-delivery': 'd2', 'x-hub-signature-256': sig })).status,
        202,
      );
      assert.deepEqual(got, ['flui a.b.cccc']);
      assert.equal(verifySignature('s3cret', Buffer.from(body), sig), true);
    } finally {
      await receiver.stop();
    }
  });
});
