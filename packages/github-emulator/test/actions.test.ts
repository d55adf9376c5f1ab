/**
 * Actions operations of the GitHub emulator through @octokit/rest: sealed secrets, variables, workflows, dispatch
 * (with and without run details, and GitHub's 422s), the runs list and its filters, cancel, re-runs, jobs and logs
 * (a run's archive, a job's text).
 * The workflow here points at a registry nobody listens on, so builds fail at the login step; the full path to a
 * real registry is in runner.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import sodium from 'libsodium-wrappers';
import { unzipSync } from 'fflate';
import { useGitHubEmulator } from '../../../test/helpers/github-emulator.ts';
import { errorOf, eventually, fluiWorkflow, octokitFor, seal, statusOf } from './support.ts';

const NOWHERE = '127.0.0.1:1';

describe('GitHub emulator: Actions secrets, variables, workflows and runs', () => {
  const github = useGitHubEmulator();
  let n = 0;
  async function repo(files: Record<string, string> = {}) {
    const name = `actions${++n}`;
    await github().createRepo({
      owner: 'acme',
      name,
      files: { Dockerfile: 'FROM scratch\n', '.github/workflows/flui.yml': fluiWorkflow(NOWHERE), ...files },
    });
    const gh = octokitFor(github(), github().createToken({ repos: [`acme/${name}`] }));
    return { gh, owner: 'acme', repo: name, full: `acme/${name}` };
  }
  const dispatch = (gh: ReturnType<typeof octokitFor>, repo: string, inputs: Record<string, unknown>, extra = {}) =>
    gh.request('POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches', {
      owner: 'acme',
      repo,
      workflow_id: 'flui.yml',
      ref: 'main',
      inputs,
      ...extra,
    } as never);

  it('hands out a curve25519 public key per repository and keeps secrets sealed with it', async () => {
    const { gh, owner, repo: name, full } = await repo();
    await sodium.ready;
    const { data: key } = await gh.rest.actions.getRepoPublicKey({ owner, repo: name });
    assert.equal(sodium.from_base64(key.key, sodium.base64_variants.ORIGINAL).length, 32);
    const other = await repo();
    const otherKey = await other.gh.rest.actions.getRepoPublicKey({ owner, repo: other.repo });
    assert.notEqual(otherKey.data.key, key.key, 'each repository has its own key pair');

    const secret = (value: string, keyId = key.key_id, secret_name = 'FLUI_REGISTRY_PASSWORD') =>
      seal(key.key, value).then((encrypted_value) =>
        gh.rest.actions.createOrUpdateRepoSecret({ owner, repo: name, secret_name, encrypted_value, key_id: keyId }),
      );
    assert.equal(
      await statusOf(gh.rest.actions.getRepoSecret({ owner, repo: name, secret_name: 'FLUI_REGISTRY_PASSWORD' })),
      404,
    );
    assert.equal((await secret('first')).status, 201);
    const created = await gh.rest.actions.getRepoSecret({ owner, repo: name, secret_name: 'FLUI_REGISTRY_PASSWORD' });
    assert.equal((await secret('second')).status, 204, 'an update is 204');
    const updated = await gh.rest.actions.getRepoSecret({ owner, repo: name, secret_name: 'FLUI_REGISTRY_PASSWORD' });
    assert.equal(updated.data.created_at, created.data.created_at);
    assert.ok(updated.data.updated_at >= created.data.updated_at);
    assert.equal(github().secretValue(full, 'FLUI_REGISTRY_PASSWORD'), 'second', 'the runner opens what was sealed');
    assert.deepEqual(
      (await gh.rest.actions.listRepoSecrets({ owner, repo: name })).data.secrets.map((s) => s.name),
      ['FLUI_REGISTRY_PASSWORD'],
    );
    assert.equal(github().records.secretWrites[full], 2);

    assert.equal(await statusOf(secret('x', 'not-the-key-id')), 422, 'a foreign key id');
    const sealedForOther = await seal(otherKey.data.key, 'x');
    assert.equal(
      await statusOf(
        gh.rest.actions.createOrUpdateRepoSecret({
          owner,
          repo: name,
          secret_name: 'X',
          encrypted_value: sealedForOther,
          key_id: key.key_id,
        }),
      ),
      422,
      'sealed with another repository key',
    );
    assert.equal(await statusOf(secret('x', key.key_id, 'GITHUB_TOKEN')), 422, 'reserved name');
    assert.equal(
      (await gh.rest.actions.deleteRepoSecret({ owner, repo: name, secret_name: 'FLUI_REGISTRY_PASSWORD' })).status,
      204,
    );
    assert.equal(
      await statusOf(gh.rest.actions.getRepoSecret({ owner, repo: name, secret_name: 'FLUI_REGISTRY_PASSWORD' })),
      404,
    );
  });

  it('creates, reads and updates variables', async () => {
    const { gh, owner, repo: name } = await repo();
    assert.equal(await statusOf(gh.rest.actions.getRepoVariable({ owner, repo: name, name: 'FLUI_FP' })), 404);
    assert.equal(
      (await gh.rest.actions.createRepoVariable({ owner, repo: name, name: 'FLUI_FP', value: 'a' })).status,
      201,
    );
    assert.equal(
      await statusOf(gh.rest.actions.createRepoVariable({ owner, repo: name, name: 'FLUI_FP', value: 'b' })),
      409,
    );
    assert.equal(
      (await gh.rest.actions.updateRepoVariable({ owner, repo: name, name: 'FLUI_FP', value: 'b' })).status,
      204,
    );
    assert.equal((await gh.rest.actions.getRepoVariable({ owner, repo: name, name: 'FLUI_FP' })).data.value, 'b');
  });

  it('lists workflows and finds them by file name or id', async () => {
    const {
      gh,
      owner,
      repo: name,
    } = await repo({ '.github/workflows/other.yaml': 'name: other\non: push\njobs: {}\n' });
    const { data } = await gh.rest.actions.listRepoWorkflows({ owner, repo: name });
    assert.deepEqual(
      data.workflows.map((w) => [w.name, w.path]),
      [
        ['flui build', '.github/workflows/flui.yml'],
        ['other', '.github/workflows/other.yaml'],
      ],
    );
    const byFile = await gh.rest.actions.getWorkflow({ owner, repo: name, workflow_id: 'flui.yml' });
    const byId = await gh.rest.actions.getWorkflow({ owner, repo: name, workflow_id: byFile.data.id });
    assert.equal(byId.data.path, '.github/workflows/flui.yml');
    assert.equal(await statusOf(gh.rest.actions.getWorkflow({ owner, repo: name, workflow_id: 'nope.yml' })), 404);
  });

  it('dispatches with run details (200) or without (204), naming the run from run-name at the head commit', async () => {
    const { gh, repo: name, full } = await repo();
    const head = (await gh.rest.git.getRef({ owner: 'acme', repo: name, ref: 'heads/main' })).data.object.sha;
    const res = await dispatch(gh, name, { deploy_id: 'default.web.1' }, { return_run_details: true });
    assert.equal(res.status, 200);
    const details = res.data as { workflow_run_id: number; run_url: string; html_url: string };
    assert.equal(details.run_url, `${github().url}/repos/${full}/actions/runs/${details.workflow_run_id}`);
    assert.match(details.html_url, new RegExp(`/${full}/actions/runs/${details.workflow_run_id}$`));
    github().push(full, 'main', { 'late.txt': 'after the dispatch' });
    const { data: run } = await gh.rest.actions.getWorkflowRun({
      owner: 'acme',
      repo: name,
      run_id: details.workflow_run_id,
    });
    assert.equal(run.display_title, 'flui default.web.1');
    assert.equal(run.name, 'flui build');
    assert.equal(run.head_sha, head, 'the ref head at dispatch time');
    assert.equal(run.event, 'workflow_dispatch');
    assert.equal(run.head_branch, 'main');

    assert.equal((await dispatch(gh, name, { deploy_id: 'default.web.2' })).status, 204);
    assert.equal(github().records.dispatches[full], 2);
  });

  it('refuses dispatches GitHub refuses: no trigger, missing or unexpected inputs, unknown refs and workflows', async () => {
    const { gh, repo: name } = await repo({
      '.github/workflows/push.yml': 'name: push only\non: push\njobs: {}\n',
      '.github/workflows/typed.yml':
        'on:\n  workflow_dispatch:\n    inputs:\n      env: { type: choice, options: [dev, prod], required: true }\n      dry: { type: boolean, default: false }\njobs: {}\n',
    });
    const to = (workflow_id: string, inputs: Record<string, unknown>, ref = 'main') =>
      errorOf(
        gh.rest.actions.createWorkflowDispatch({
          owner: 'acme',
          repo: name,
          workflow_id,
          ref,
          inputs: inputs as never,
        }),
      );
    const noTrigger = await to('push.yml', {});
    assert.equal(noTrigger.status, 422);
    assert.match(noTrigger.message, /does not have 'workflow_dispatch' trigger/);
    assert.match((await to('flui.yml', {})).message, /Required input 'deploy_id' not provided/);
    assert.match((await to('flui.yml', { deploy_id: 'a', other: 'b' })).message, /Unexpected inputs provided/);
    assert.match((await to('typed.yml', { env: 'staging' })).message, /not in the list of allowed values/);
    assert.match((await to('typed.yml', { env: 'dev', dry: 'maybe' })).message, /not in the list of allowed values/);
    assert.match(
      (await to('flui.yml', { deploy_id: 'a' }, 'no-such-branch')).message,
      /No ref found for: no-such-branch/,
    );
    assert.equal((await to('missing.yml', { deploy_id: 'a' })).status, 404);
    assert.equal(
      (await to('flui.yml', 'not an object' as never)).message,
      'Invalid request.\n\nFor \'properties/inputs\', "not an object" is not an object.',
    );
    assert.equal((await to('flui.yml', { deploy_id: 'a' }, '')).message, 'Invalid request.\n\n"ref" wasn\'t supplied.');
    const ok = await gh.rest.actions.createWorkflowDispatch({
      owner: 'acme',
      repo: name,
      workflow_id: 'typed.yml',
      ref: 'main',
      inputs: { env: 'prod' },
    });
    assert.equal(ok.status, 204);
    assert.deepEqual(github().runs(`acme/${name}`).at(-1)?.inputs, { env: 'prod', dry: 'false' });
  });

  it('lists runs with the filters GitHub takes, newest first, in pages', async () => {
    const { gh, owner, repo: name, full } = await repo();
    github().faults.keepQueued(true);
    try {
      for (let i = 0; i < 3; i++) await dispatch(gh, name, { deploy_id: `d${i}` });
      github().push(full, 'release', { 'x.txt': 'x' });
      await gh.rest.actions.createWorkflowDispatch({
        owner,
        repo: name,
        workflow_id: 'flui.yml',
        ref: 'release',
        inputs: { deploy_id: 'r' },
      });
      const list = (q: Record<string, unknown> = {}) =>
        gh.rest.actions.listWorkflowRunsForRepo({ owner, repo: name, ...q }).then((r) => r.data);
      const titles = async (q: Record<string, unknown> = {}) =>
        (await list(q)).workflow_runs.map((r) => r.display_title);
      assert.deepEqual(await titles(), ['flui r', 'flui d2', 'flui d1', 'flui d0']);
      assert.deepEqual(await titles({ branch: 'release' }), ['flui r']);
      assert.deepEqual(await titles({ event: 'push' }), []);
      assert.equal((await list({ status: 'queued' })).total_count, 4);
      assert.equal((await list({ status: 'completed' })).total_count, 0);
      const releaseHead = github().runs(full).at(-1)!.headSha;
      assert.deepEqual(await titles({ head_sha: releaseHead }), ['flui r']);
      const today = new Date().toISOString().slice(0, 10);
      assert.equal((await list({ created: today })).total_count, 4);
      assert.equal((await list({ created: `>=${today}` })).total_count, 4);
      assert.equal((await list({ created: '<2000-01-01' })).total_count, 0);
      assert.equal((await list({ created: '2000-01-01..*' })).total_count, 4);
      assert.equal(await statusOf(list({ created: 'yesterday-ish' })), 422);
      const page2 = await gh.rest.actions.listWorkflowRunsForRepo({ owner, repo: name, per_page: 3, page: 2 });
      assert.deepEqual(
        page2.data.workflow_runs.map((r) => r.display_title),
        ['flui d0'],
      );
      assert.match(page2.headers.link ?? '', /rel="first"/);
      const wf = await gh.rest.actions.getWorkflow({ owner, repo: name, workflow_id: 'flui.yml' });
      const byId = await gh.rest.actions.listWorkflowRuns({
        owner,
        repo: name,
        workflow_id: wf.data.id,
        branch: 'main',
      });
      assert.equal(byId.data.total_count, 3);
      assert.equal(
        await statusOf(gh.rest.actions.listWorkflowRuns({ owner, repo: name, workflow_id: 'nope.yml' })),
        404,
      );
    } finally {
      github().faults.reset();
    }
  });

  it('cancels queued runs (202) but not completed ones (409), re-runs completed ones, lists jobs and serves logs', async () => {
    const { gh, owner, repo: name, full } = await repo();
    github().faults.keepQueued(true);
    let runId: number;
    try {
      const res = await dispatch(gh, name, { deploy_id: 'c' }, { return_run_details: true });
      runId = (res.data as { workflow_run_id: number }).workflow_run_id;
      assert.equal((await gh.rest.actions.getWorkflowRun({ owner, repo: name, run_id: runId })).data.status, 'queued');
      assert.equal(await statusOf(gh.rest.actions.reRunWorkflow({ owner, repo: name, run_id: runId })), 403);
      assert.equal((await gh.rest.actions.cancelWorkflowRun({ owner, repo: name, run_id: runId })).status, 202);
    } finally {
      github().faults.reset();
    }
    const cancelled = (await gh.rest.actions.getWorkflowRun({ owner, repo: name, run_id: runId })).data;
    assert.equal(cancelled.status, 'completed');
    assert.equal(cancelled.conclusion, 'cancelled');
    assert.equal(await statusOf(gh.rest.actions.cancelWorkflowRun({ owner, repo: name, run_id: runId })), 409);
    assert.equal(github().records.cancels, 1);
    assert.equal(await statusOf(gh.rest.actions.cancelWorkflowRun({ owner, repo: name, run_id: 1 })), 404);

    // Re-run: the same run, a new attempt, which fails at the login (no credential stored).
    assert.equal((await gh.rest.actions.reRunWorkflowFailedJobs({ owner, repo: name, run_id: runId })).status, 201);
    const again = await eventually(async () => {
      const { data } = await gh.rest.actions.getWorkflowRun({ owner, repo: name, run_id: runId });
      return data.status === 'completed' ? data : undefined;
    }, 'the re-run');
    assert.equal(again.run_attempt, 2);
    assert.equal(again.conclusion, 'failure');
    assert.match(again.previous_attempt_url ?? '', /attempts\/1$/);
    assert.ok(again.run_started_at! >= again.created_at && again.updated_at >= again.run_started_at!);

    const { data: jobs } = await gh.rest.actions.listJobsForWorkflowRun({ owner, repo: name, run_id: runId });
    const steps = jobs.jobs[0]!.steps!;
    assert.deepEqual(
      steps.map((s) => [s.name, s.conclusion]),
      [
        ['Set up job', 'success'],
        ['Run actions/checkout@v6', 'success'],
        ['Run docker/setup-buildx-action@v4', 'success'],
        ['Log in to the registry', 'failure'],
        ['Build and push', 'skipped'],
        ['Report the digest', 'skipped'],
        ['Complete job', 'success'],
      ],
    );
    assert.equal(jobs.jobs[0]!.run_attempt, 2);

    const redirect = await fetch(`${github().url}/repos/${full}/actions/runs/${runId}/logs`, {
      headers: { authorization: `token ${github().createToken()}` },
      redirect: 'manual',
    });
    assert.equal(redirect.status, 302);
    const location = redirect.headers.get('location')!;
    const anonymous = await fetch(location);
    assert.equal(anonymous.status, 200, 'the archive link needs no token, like a signed storage URL');
    assert.equal(anonymous.headers.get('content-type'), 'application/zip');
    const logs = await gh.rest.actions.downloadWorkflowRunLogs({ owner, repo: name, run_id: runId });
    const zip = Buffer.from(logs.data as ArrayBuffer);
    assert.equal(zip.readUInt32LE(0), 0x04034b50, 'a zip archive');
    for (const text of ['0_build.txt', 'build/4_Log in to the registry.txt', 'Username and password required']) {
      assert.ok(zip.includes(Buffer.from(text)), `the archive holds ${text}`);
    }
    const entries = unzipSync(zip);
    assert.ok(Object.keys(entries).includes('0_build.txt'), 'an archive a zip reader can open');
    assert.match(
      Buffer.from(entries['build/4_Log in to the registry.txt']!).toString(),
      /Username and password required/,
    );
    assert.equal(await statusOf(gh.rest.actions.reRunWorkflowFailedJobs({ owner, repo: name, run_id: 1 })), 404);
  });

  it("serves a finished job's log as plain text from a link that needs no token; an unfinished job's is not found", async () => {
    const { gh, owner, repo: name } = await repo();
    github().faults.keepQueued(true);
    let runId: number;
    let jobId: number;
    try {
      const res = await dispatch(gh, name, { deploy_id: 'j' }, { return_run_details: true });
      runId = (res.data as { workflow_run_id: number }).workflow_run_id;
      const { data: jobs } = await gh.rest.actions.listJobsForWorkflowRun({ owner, repo: name, run_id: runId });
      assert.deepEqual(
        jobs.jobs.map((j) => [j.status, j.conclusion]),
        [['queued', null]],
      );
      jobId = jobs.jobs[0]!.id;
      const job = { owner, repo: name, job_id: jobId };
      assert.equal(await statusOf(gh.rest.actions.downloadJobLogsForWorkflowRun(job)), 404);
    } finally {
      github().faults.reset();
    }
    await eventually(async () => {
      const { data } = await gh.rest.actions.getJobForWorkflowRun({ owner, repo: name, job_id: jobId });
      return data.status === 'completed' ? data : undefined;
    }, 'the job');
    const redirect = await gh.request('GET /repos/{owner}/{repo}/actions/jobs/{job_id}/logs', {
      owner,
      repo: name,
      job_id: jobId,
      request: { redirect: 'manual' },
    });
    assert.equal(redirect.status, 302);
    const anonymous = await fetch(String(redirect.headers.location));
    assert.equal(anonymous.status, 200, 'the log link needs no token, like a signed URL');
    assert.match(anonymous.headers.get('content-type') ?? '', /^text\/plain/);
    const text = await anonymous.text();
    const run = github()
      .runs(`${owner}/${name}`)
      .find((r) => r.id === runId)!;
    assert.equal(text, `${run.log.join('\n')}\n`);
    assert.match(text, /Username and password required[\s\S]*Job build completed: failure\n$/);
    assert.equal(
      await statusOf(gh.rest.actions.downloadJobLogsForWorkflowRun({ owner, repo: name, job_id: 999_999_991 })),
      404,
    );
  });
});
