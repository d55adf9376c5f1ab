import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Octokit } from '@octokit/rest';
import { createAppAuth } from '@octokit/auth-app';
import sodium from 'libsodium-wrappers';
import { headManifest } from '../../src/registry/oci.ts';
import { useGitHubEmulator } from '../helpers/github-emulator.ts';
import { REGISTRY_PASSWORD, REGISTRY_USER, useRegistry } from '../helpers/registry.ts';
import { eventually } from '../helpers/stack.ts';

const WORKFLOW = (registry: string) => `name: build
run-name: flui \${{ inputs.deploy_id }}
on:
  workflow_dispatch:
    inputs:
      deploy_id: { required: true, type: string }
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: docker/login-action@v3
        with:
          registry: ${registry}
          username: \${{ secrets.FLUI_REGISTRY_USERNAME }}
          password: \${{ secrets.FLUI_REGISTRY_PASSWORD }}
      - uses: docker/build-push-action@v6
        with:
          context: .
          push: true
          tags: ${registry}/acme/web:\${{ github.sha }}
`;

async function seal(publicKey: string, value: string): Promise<string> {
  await sodium.ready;
  return sodium.to_base64(
    sodium.crypto_box_seal(sodium.from_string(value), sodium.from_base64(publicKey, sodium.base64_variants.ORIGINAL)),
    sodium.base64_variants.ORIGINAL,
  );
}

describe('GitHub emulator through @octokit/rest', () => {
  const registry = useRegistry({ auth: true });
  const github = useGitHubEmulator();
  const octokit = (token: string) =>
    new Octokit({ auth: token, baseUrl: github().url, log: { debug() {}, info() {}, warn() {}, error() {} } });

  async function repoWithWorkflow(name: string) {
    await github().createRepo({
      owner: 'acme',
      name,
      files: {
        Dockerfile: 'FROM scratch\n',
        'app.txt': 'v1\n',
        '.github/workflows/build.yml': WORKFLOW(registry().host),
      },
    });
    return octokit(github().createToken({ repos: [`acme/${name}`] }));
  }

  async function storeCredential(gh: Octokit, repo: string, password: string) {
    const { data: key } = await gh.rest.actions.getRepoPublicKey({ owner: 'acme', repo });
    for (const [name, value] of [
      ['FLUI_REGISTRY_USERNAME', REGISTRY_USER],
      ['FLUI_REGISTRY_PASSWORD', password],
    ]) {
      await gh.rest.actions.createOrUpdateRepoSecret({
        owner: 'acme',
        repo,
        secret_name: name!,
        encrypted_value: await seal(key.key, value!),
        key_id: key.key_id,
      });
    }
  }

  it('serves contents with blob SHAs and ETags, and updates them with optimistic concurrency', async () => {
    const gh = await repoWithWorkflow('files');
    const { data, headers } = await gh.rest.repos.getContent({ owner: 'acme', repo: 'files', path: 'app.txt' });
    assert.ok(!Array.isArray(data) && data.type === 'file');
    assert.equal(Buffer.from(data.content!, 'base64').toString(), 'v1\n');
    const before = github().records.rateLimited;
    const used = Object.values(before).reduce((a, b) => a + b, 0);
    await assert.rejects(
      gh.rest.repos.getContent({
        owner: 'acme',
        repo: 'files',
        path: 'app.txt',
        headers: { 'if-none-match': headers.etag! },
      }),
      { status: 304 },
    );
    assert.equal(
      Object.values(github().records.rateLimited).reduce((a, b) => a + b, 0),
      used,
      '304 costs no rate limit',
    );

    const content = Buffer.from('v2\n').toString('base64');
    await assert.rejects(
      gh.rest.repos.createOrUpdateFileContents({
        owner: 'acme',
        repo: 'files',
        path: 'app.txt',
        message: 'm',
        content,
      }),
      { status: 422 },
    );
    await assert.rejects(
      gh.rest.repos.createOrUpdateFileContents({
        owner: 'acme',
        repo: 'files',
        path: 'app.txt',
        message: 'm',
        content,
        sha: '0'.repeat(40),
      }),
      { status: 409 },
    );
    const put = await gh.rest.repos.createOrUpdateFileContents({
      owner: 'acme',
      repo: 'files',
      path: 'app.txt',
      message: 'm',
      content,
      sha: data.sha,
    });
    assert.equal(put.status, 200);
    assert.equal(github().records.commits['acme/files:app.txt'], 1);
    const ref = await gh.rest.git.getRef({ owner: 'acme', repo: 'files', ref: 'heads/main' });
    assert.equal(ref.data.object.sha, put.data.commit.sha);
    await gh.rest.git.createRef({ owner: 'acme', repo: 'files', ref: 'refs/heads/topic', sha: ref.data.object.sha });
    await assert.rejects(
      gh.rest.git.createRef({ owner: 'acme', repo: 'files', ref: 'refs/heads/topic', sha: ref.data.object.sha }),
      { status: 422 },
    );
  });

  it('keeps secrets sealed, answers 404 for absent ones, and rejects a foreign key', async () => {
    const gh = await repoWithWorkflow('secrets');
    await assert.rejects(
      gh.rest.actions.getRepoSecret({ owner: 'acme', repo: 'secrets', secret_name: 'FLUI_REGISTRY_PASSWORD' }),
      { status: 404 },
    );
    await storeCredential(gh, 'secrets', REGISTRY_PASSWORD);
    const { data } = await gh.rest.actions.getRepoSecret({
      owner: 'acme',
      repo: 'secrets',
      secret_name: 'FLUI_REGISTRY_PASSWORD',
    });
    assert.equal(data.name, 'FLUI_REGISTRY_PASSWORD');
    await assert.rejects(
      gh.rest.actions.createOrUpdateRepoSecret({
        owner: 'acme',
        repo: 'secrets',
        secret_name: 'X',
        encrypted_value: 'AAAA',
        key_id: 'nope',
      }),
      { status: 422 },
    );
    assert.equal(github().records.secretWrites['acme/secrets'], 2);
  });

  it('dispatches with run details, runs the build and pushes a real image with the sealed credential', async () => {
    const gh = await repoWithWorkflow('web');
    await storeCredential(gh, 'web', REGISTRY_PASSWORD);
    const res = await gh.request('POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches', {
      owner: 'acme',
      repo: 'web',
      workflow_id: 'build.yml',
      ref: 'main',
      inputs: { deploy_id: 'default.web.abcd1' },
      return_run_details: true,
    } as never);
    assert.equal(res.status, 200);
    const runId = (res.data as { workflow_run_id: number }).workflow_run_id;
    const run = await eventually(
      async () => {
        const { data } = await gh.rest.actions.getWorkflowRun({ owner: 'acme', repo: 'web', run_id: runId });
        return data.status === 'completed' ? data : undefined;
      },
      20_000,
      'run completion',
    );
    assert.equal(run.conclusion, 'success', github().runs('acme/web')[0]?.log.join('\n'));
    assert.equal(run.display_title, 'flui default.web.abcd1');
    const { digest } = await headManifest(`${registry().host}/acme/web:${run.head_sha}`, {
      credentials: { username: REGISTRY_USER, password: REGISTRY_PASSWORD },
    });
    assert.equal(digest, github().runs('acme/web')[0]?.digest);

    const listed = await gh.rest.actions.listWorkflowRuns({
      owner: 'acme',
      repo: 'web',
      workflow_id: 'build.yml',
      event: 'workflow_dispatch',
      branch: 'main',
    });
    assert.equal(listed.data.workflow_runs[0]?.id, runId);
    const jobs = await gh.rest.actions.listJobsForWorkflowRun({ owner: 'acme', repo: 'web', run_id: runId });
    assert.equal(jobs.data.jobs[0]?.conclusion, 'success');
    const logs = await gh.rest.actions.downloadWorkflowRunLogs({ owner: 'acme', repo: 'web', run_id: runId });
    assert.ok(
      Buffer.from(logs.data as ArrayBuffer).includes(Buffer.from(`Pushed ${registry().host}/acme/web:${run.head_sha}`)),
    );
    await assert.rejects(gh.rest.actions.cancelWorkflowRun({ owner: 'acme', repo: 'web', run_id: runId }), {
      status: 409,
    });
    const rerun = await gh.rest.actions.reRunWorkflow({ owner: 'acme', repo: 'web', run_id: runId });
    assert.equal(rerun.status, 201);

    const plain = await gh.rest.actions.createWorkflowDispatch({
      owner: 'acme',
      repo: 'web',
      workflow_id: 'build.yml',
      ref: 'main',
      inputs: { deploy_id: 'x' },
    });
    assert.equal(plain.status, 204);
    await assert.rejects(
      gh.rest.actions.createWorkflowDispatch({
        owner: 'acme',
        repo: 'web',
        workflow_id: 'build.yml',
        ref: 'main',
        inputs: {},
      }),
      { status: 422 },
    );
    await assert.rejects(
      gh.rest.actions.createWorkflowDispatch({
        owner: 'acme',
        repo: 'web',
        workflow_id: 'build.yml',
        ref: 'main',
        inputs: { deploy_id: 'x', other: 'y' },
      }),
      { status: 422 },
    );
  });

  it('fails the run with the registry 401 when the credential is wrong, and cancels running builds', async () => {
    const gh = await repoWithWorkflow('wrong');
    await storeCredential(gh, 'wrong', 'not-the-password');
    await gh.rest.actions.createWorkflowDispatch({
      owner: 'acme',
      repo: 'wrong',
      workflow_id: 'build.yml',
      ref: 'main',
      inputs: { deploy_id: 'a' },
    });
    const run = await eventually(
      () =>
        github()
          .runs('acme/wrong')
          .find((r) => r.status === 'completed'),
      20_000,
      'failed run',
    );
    assert.equal(run.conclusion, 'failure');
    assert.match(run.log.join('\n'), /refused the credentials \(401 unauthorized\)/);

    github().faults.keepQueued(true);
    await gh.rest.actions.createWorkflowDispatch({
      owner: 'acme',
      repo: 'wrong',
      workflow_id: 'build.yml',
      ref: 'main',
      inputs: { deploy_id: 'b' },
    });
    const queued = github().runs('acme/wrong').at(-1)!;
    await sleep(300);
    assert.equal(queued.status, 'queued');
    const cancelled = await gh.rest.actions.cancelWorkflowRun({ owner: 'acme', repo: 'wrong', run_id: queued.id });
    assert.equal(cancelled.status, 202);
    assert.equal(queued.conclusion, 'cancelled');
    github().faults.reset();
  });

  it('answers 401 for bad tokens, 404 for repositories the token cannot see, and GitHub-shaped errors', async () => {
    await repoWithWorkflow('hidden');
    await assert.rejects(
      octokit('nope').rest.actions.getRepoPublicKey({ owner: 'acme', repo: 'hidden' }),
      (err: { status: number; response: { data: { message: string; documentation_url: string } } }) => {
        assert.equal(err.status, 401);
        assert.equal(err.response.data.message, 'Bad credentials');
        assert.ok(err.response.data.documentation_url);
        return true;
      },
    );
    const other = octokit(github().createToken({ repos: ['acme/elsewhere'] }));
    await assert.rejects(other.rest.actions.getRepoPublicKey({ owner: 'acme', repo: 'hidden' }), { status: 404 });
    const bad = await fetch(`${github().url}/repos/acme/hidden/actions/variables`, {
      method: 'POST',
      headers: { authorization: `token ${github().createToken()}` },
      body: '{not json',
    });
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as { message: string }).message, 'Problems parsing JSON');
  });

  it('accepts GitHub App installation tokens obtained with a signed JWT', async () => {
    await repoWithWorkflow('app');
    const app = github().createApp();
    const gh = new Octokit({
      authStrategy: createAppAuth,
      auth: { appId: app.appId, privateKey: app.privateKey, installationId: app.installationId },
      baseUrl: github().url,
    });
    const { data } = await gh.rest.actions.getRepoPublicKey({ owner: 'acme', repo: 'app' });
    assert.ok(data.key_id);
  });

  it('injects outages, resets, rate limits and secondary limits', async () => {
    const gh = await repoWithWorkflow('faults');
    const get = () => gh.rest.actions.getRepoPublicKey({ owner: 'acme', repo: 'faults' });
    github().faults.outage({ forMs: 60_000 });
    await assert.rejects(get(), { status: 503 });
    github().faults.outage({ forMs: 60_000, mode: 'reset' });
    await assert.rejects(
      get(),
      (err: { status?: number; message: string }) =>
        err.status === 500 || /fetch failed|socket|ECONNRESET/i.test(err.message),
    );
    github().faults.reset();
    github().faults.exhaustRateLimit({ forMs: 60_000 });
    await assert.rejects(get(), (err: { status: number; response: { headers: Record<string, string> } }) => {
      assert.equal(err.status, 403);
      assert.equal(err.response.headers['x-ratelimit-remaining'], '0');
      assert.ok(Number(err.response.headers['x-ratelimit-reset']) > Date.now() / 1000);
      return true;
    });
    github().faults.reset();
    github().faults.secondaryLimit({ count: 1, retryAfterSeconds: 7 });
    await assert.rejects(
      get(),
      (err: { status: number; response: { headers: Record<string, string> } }) =>
        err.status === 403 && err.response.headers['retry-after'] === '7',
    );
    const ok = await get();
    assert.equal(ok.status, 200);
    assert.ok(Number(ok.headers['x-ratelimit-remaining']) < 5000);
  });

  it("records a contract violation for a response that does not match GitHub's description", async () => {
    const gh = await repoWithWorkflow('contract');
    const before = github().contract.violations.length;
    github().faults.corruptNextResponse('/repos/{owner}/{repo}/actions/secrets/public-key', (body) => ({
      ...body,
      key_id: 42,
    }));
    await gh.rest.actions.getRepoPublicKey({ owner: 'acme', repo: 'contract' });
    const added = github().contract.violations.splice(before);
    assert.equal(added.length, 1);
    assert.match(
      added[0]!,
      /GET \/repos\/\{owner\}\/\{repo\}\/actions\/secrets\/public-key -> 200: body\/key_id must be string/,
    );
  });
});
