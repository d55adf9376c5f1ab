/**
 * The GitLab backend against the GitLab emulator (responses checked against GitLab's documented schemas) and the
 * real registry, without Temporal: the requests a steady-state deploy spends, merge-request mode, finding a pipeline
 * by name, live job logs from a byte offset, and a token without the `api` scope refused for good.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GitLabBackend } from '../../../src/ci/gitlab/backend.ts';
import { createGitLabClient } from '../../../src/ci/gitlab/client.ts';
import { jobFilePath, pushVariableNames } from '../../../src/ci/gitlab/pipeline-file.ts';
import { ServiceError } from '../../../src/errors.ts';
import { validateManifest } from '../../../src/manifest/parse.ts';
import type { Application } from '../../../src/manifest/schema.ts';
import { useGitLabEmulator } from '../../helpers/gitlab-emulator.ts';
import { REGISTRY_PASSWORD, REGISTRY_USER, useRegistry } from '../../helpers/registry.ts';
import { eventually } from '../../helpers/stack.ts';
import { useMeter } from '../../../src/observability/meter.ts';
import { createPrometheusMeter } from '../../../src/observability/prometheus.ts';
import { parseSamples, sampleSum } from '../../operations/prometheus-text.ts';

const BUILDER = `quay.io/buildah/stable@sha256:${'2'.repeat(64)}`;

describe('GitLab backend against the emulator', () => {
  const registry = useRegistry({ auth: true });
  const gitlab = useGitLabEmulator();

  async function setup(path: string, mode: 'commit' | 'pull-request' = 'commit', scopes = ['api']) {
    const gl = gitlab();
    await gl.createProject({ path, files: { Dockerfile: 'FROM scratch\nCOPY app.txt /\n', 'app.txt': path } });
    const requests: string[] = [];
    const client = createGitLabClient(
      { url: gl.url, token: gl.createToken({ scopes }) },
      { onRequest: (r) => requests.push(`${r.method} ${r.path}`) },
    );
    const settings = { url: gl.url, builderImage: BUILDER };
    const backend = new GitLabBackend(settings, { updateMode: mode, webhook: false, client });
    const app = validateManifest({
      apiVersion: 'flui.dev/v1',
      kind: 'Application',
      metadata: { name: path.split('/').at(-1)! },
      spec: { source: { repository: path }, image: { repository: `${registry().host}/${path}` } },
    }) as Application;
    const push = { method: 'static' as const, registry: registry().host };
    const credential = { registry: registry().host, username: REGISTRY_USER, password: REGISTRY_PASSWORD };
    return { gl, backend, app, push, credential, requests };
  }

  it("counts every GitLab request and the rate-limit budget in the worker's metrics, under a hash of the token", async () => {
    const prom = createPrometheusMeter();
    const restore = useMeter(prom);
    let token: string;
    try {
      const gl = gitlab();
      await gl.createProject({ path: 'acme/metered/svc' });
      token = gl.createToken({ scopes: ['api'] });
      const client = createGitLabClient({ url: gl.url, token });
      await client.request('GET', 'projects/acme%2Fmetered%2Fsvc');
      await assert.rejects(client.request('GET', 'projects/acme%2Fmetered%2Fnone'));
    } finally {
      restore();
    }
    const text = await prom.registry.metrics();
    assert.ok(!text.includes(token), 'the token itself is never a label');
    const samples = parseSamples(text);
    assert.equal(sampleSum(samples, 'flui_ci_requests_total', { backend: 'gitlab', status: '200' }), 1);
    assert.equal(sampleSum(samples, 'flui_ci_requests_total', { backend: 'gitlab', status: '404' }), 1);
    assert.match(text, /flui_ci_rate_limit_remaining\{backend="gitlab",client="token-[0-9a-f]{16}"\} \d+/);
  });

  it('a steady-state deploy reads the branch and the variables once each, writes nothing, and the build logs stream', async () => {
    const { gl, backend, app, push, credential, requests } = await setup('acme/team/svc');
    const first = await backend.ensurePipeline(app, { push });
    assert.equal(first.changed, true);
    assert.ok(first.changes?.some((c) => c.includes('created .gitlab-ci.yml')));
    assert.equal((await backend.ensureCredential(app, credential)).changed, true);
    requests.length = 0;
    assert.equal((await backend.ensurePipeline(app, { push })).changed, false);
    assert.equal((await backend.ensureCredential(app, credential)).changed, false);
    assert.deepEqual(
      requests.map((r) => r.split(' ')[1]!.replace(/acme%2Fteam%2Fsvc/, ':id')),
      ['/api/v4/projects/:id/repository/branches/main', '/api/v4/projects/:id/variables'],
    );

    const run = await backend.trigger(app, 'default.svc.abc123');
    assert.deepEqual(await backend.findRun(app, 'default.svc.abc123'), run);
    assert.equal(await backend.findRun(app, 'default.svc.other1'), undefined);
    let cursor: string | undefined;
    let log = '';
    let chunks = 0;
    await eventually(
      async () => {
        const chunk = await backend.readLogs(app, run, cursor);
        log += chunk.text;
        cursor = chunk.cursor;
        chunks++;
        return chunk.done ? true : undefined;
      },
      60_000,
      'the log to end',
    );
    assert.match(log, /Pushed .* as sha256:[a-f0-9]{64}/);
    assert.equal(log.match(/ as sha256:[a-f0-9]{64}/g)?.length, 1, 'each byte once across chunks');
    const status = await backend.status(app, run);
    assert.equal(status.status?.state, 'completed');
    assert.equal(status.pollAfterSeconds?.(600), 60);
    assert.ok(chunks >= 1);
    assert.equal(gl.records.pipelinesCreated['acme/team/svc'], 1);
  });

  it('a steady-state deploy with a minted token: the branch read and one write of the token, then the pipeline', async () => {
    const { gl, backend, app, requests } = await setup('acme/team/minted');
    const push = { method: 'minted-token' as const, registry: registry().host };
    const token = (n: number) => ({ registry: push.registry, token: `eyJ0.eyJ${n}.c2ln`, expiresAt: '' });
    // The first deploy creates the variable (an update finds none: 404, then a creation).
    await backend.ensurePipeline(app, { push });
    await backend.ensureCredential(app, { registry: push.registry, none: true });
    await backend.ensureCredential(app, token(1));
    await backend.trigger(app, 'default.minted.k1');
    requests.length = 0;
    await backend.ensurePipeline(app, { push });
    await backend.ensureCredential(app, { registry: push.registry, none: true });
    assert.deepEqual(await backend.ensureCredential(app, token(2)), {
      method: 'minted-token',
      secretName: pushVariableNames(app).token,
      changed: true,
    });
    await backend.trigger(app, 'default.minted.k2');
    assert.deepEqual(
      requests.map((r) => r.replace(/acme%2Fteam%2Fminted/, ':id')),
      [
        'GET /api/v4/projects/:id/repository/branches/main',
        `PUT /api/v4/projects/:id/variables/${pushVariableNames(app).token}`,
        'POST /api/v4/projects/:id/pipeline',
      ],
    );
    assert.equal(gl.variableValue('acme/team/minted', pushVariableNames(app).token), token(2).token);
  });

  it("a user's push between Flui's read and its commit is kept: the commit is refused and planned again", async () => {
    const { gl, backend, app, push } = await setup('acme/team/race');
    gl.push('acme/team/race', 'main', { '.gitlab-ci.yml': 'unit:\n  script: [echo one]\n' });
    let raced = false;
    gl.hooks.before = (info) => {
      if (info.method === 'POST' && info.operation === '/projects/:id/repository/commits' && !raced) {
        raced = true;
        gl.push('acme/team/race', 'main', { '.gitlab-ci.yml': 'unit:\n  script: [echo two]\n' });
      }
    };
    try {
      const result = await backend.ensurePipeline(app, { push });
      assert.equal(result.changed, true);
    } finally {
      gl.hooks.before = undefined;
    }
    assert.ok(raced);
    const entry = gl.file('acme/team/race', '.gitlab-ci.yml')!;
    assert.match(entry, /echo two/, "the user's change is kept");
    assert.match(entry, /\.flui\//, "and Flui's include added");
  });

  it('merge-request mode proposes the files once and leaves the branch alone', async () => {
    const { gl, backend, app, push } = await setup('acme/team/mr', 'pull-request');
    const proposed = await backend.ensurePipeline(app, { push });
    assert.ok(proposed.pullRequestUrl);
    assert.equal(gl.file('acme/team/mr', jobFilePath(app)), undefined, 'the branch is untouched');
    const again = await backend.ensurePipeline(app, { push });
    assert.equal(again.pullRequestUrl, proposed.pullRequestUrl);
    assert.equal(again.changed, false);
    assert.equal(gl.mergeRequests('acme/team/mr').length, 1);
  });

  it('a token without the api scope is refused for good, saying what to fix', async () => {
    const { backend, app, push } = await setup('acme/team/ro', 'commit', ['read_api']);
    await assert.rejects(
      backend.ensurePipeline(app, { push }),
      (err: unknown) => err instanceof ServiceError && !err.retryable && /`api` scope/.test(err.message),
    );
  });
});
