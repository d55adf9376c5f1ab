/**
 * The GitHub emulator never loses what it acknowledged: with a data dir, a run or secret is on disk before the
 * answer leaves, and a restarted emulator has it, resumes unfinished runs, and still accepts the old tokens.
 */
import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createAppAuth } from '@octokit/auth-app';
import { Octokit } from '@octokit/rest';
import { startGitHubEmulator, type GitHubEmulator } from '../src/index.ts';
import { makeTempDir } from '../../../dev/process.ts';
import { assertContract } from '../../../test/helpers/github-emulator.ts';
import { eventually, fluiWorkflow, octokitFor, storeCredential } from './support.ts';

describe('GitHub emulator: durability across restarts', () => {
  const started: GitHubEmulator[] = [];
  const dirs: string[] = [];
  after(async () => {
    for (const g of started) await g.stop();
    for (const g of started) assertContract(g);
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });
  async function start(dataDir: string, runner = { queuedMs: 20, buildMs: 50 }) {
    const github = await startGitHubEmulator({ dataDir, runner });
    started.push(github);
    return github;
  }
  async function dir() {
    const d = await makeTempDir('github-emulator');
    dirs.push(d);
    return d;
  }

  it('has every acknowledged run and secret on disk before answering', async () => {
    const dataDir = await dir();
    const github = await start(dataDir);
    await github.createRepo({
      owner: 'acme',
      name: 'web',
      files: { Dockerfile: 'FROM scratch\n', '.github/workflows/flui.yml': fluiWorkflow('127.0.0.1:1') },
    });
    const gh = octokitFor(github, github.createToken());
    github.faults.keepQueued(true);
    await storeCredential(gh, 'acme', 'web', { username: 'u', password: 'p' });
    const res = await gh.request('POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches', {
      owner: 'acme',
      repo: 'web',
      workflow_id: 'flui.yml',
      ref: 'main',
      inputs: { deploy_id: 'durable' },
      return_run_details: true,
    } as never);
    const runId = (res.data as { workflow_run_id: number }).workflow_run_id;
    // Read the file as a crash right now would leave it.
    const state = JSON.parse(await readFile(join(dataDir, 'github-emulator.json'), 'utf8')) as {
      repos: Record<string, { runs: { id: number }[]; secrets: Record<string, unknown> }>;
    };
    assert.ok(state.repos['acme/web']!.runs.some((r) => r.id === runId));
    assert.deepEqual(Object.keys(state.repos['acme/web']!.secrets).sort(), [
      'FLUI_REGISTRY_PASSWORD',
      'FLUI_REGISTRY_USERNAME',
    ]);
    github.faults.reset();
  });

  it('restarts with its repositories, tokens, apps, secrets and runs, and finishes runs it had not finished', async () => {
    const dataDir = await dir();
    const first = await start(dataDir, { queuedMs: 20, buildMs: 60_000 });
    await first.createRepo({
      owner: 'acme',
      name: 'web',
      files: { Dockerfile: 'FROM scratch\n', '.github/workflows/flui.yml': fluiWorkflow('127.0.0.1:1') },
    });
    const token = first.createToken();
    const app = first.createApp();
    const gh = octokitFor(first, token);
    await storeCredential(gh, 'acme', 'web', { username: 'u', password: 'p' });
    const secretBefore = await gh.rest.actions.getRepoSecret({
      owner: 'acme',
      repo: 'web',
      secret_name: 'FLUI_REGISTRY_PASSWORD',
    });
    const dispatch = (deployId: string) =>
      gh.rest.actions.createWorkflowDispatch({
        owner: 'acme',
        repo: 'web',
        workflow_id: 'flui.yml',
        ref: 'main',
        inputs: { deploy_id: deployId },
      });
    first.faults.keepQueued(true);
    await dispatch('queued-at-stop');
    first.faults.keepQueued(false);
    await dispatch('running-at-stop');
    const running = first.runs('acme/web')[1]!;
    await eventually(() => (running.status === 'in_progress' ? true : undefined), 'the second run to start');
    first.faults.keepQueued(true); // the first stays queued
    await first.stop();

    const second = await start(dataDir);
    const gh2 = octokitFor(second, token);
    const secretAfter = await gh2.rest.actions.getRepoSecret({
      owner: 'acme',
      repo: 'web',
      secret_name: 'FLUI_REGISTRY_PASSWORD',
    });
    assert.deepEqual(secretAfter.data, secretBefore.data);
    assert.equal(second.secretValue('acme/web', 'FLUI_REGISTRY_PASSWORD'), 'p');
    const runs = await eventually(async () => {
      const { data } = await gh2.rest.actions.listWorkflowRunsForRepo({ owner: 'acme', repo: 'web' });
      return data.workflow_runs.every((r) => r.status === 'completed') ? data.workflow_runs : undefined;
    }, 'both runs to complete after the restart');
    assert.deepEqual(
      runs.map((r) => r.display_title),
      ['flui running-at-stop', 'flui queued-at-stop'],
    );
    assert.ok(
      runs.every((r) => r.conclusion === 'failure'),
      'both ran (and failed at the login: no registry here)',
    );
    assert.match(second.runs('acme/web')[1]!.log.join('\n'), /The runner was lost; the job is queued again/);
    // The App's key still works after the restart.
    const auth = createAppAuth({
      appId: app.appId,
      privateKey: app.privateKey,
      installationId: app.installationId,
      request: new Octokit({ baseUrl: second.url }).request,
    });
    assert.match((await auth({ type: 'installation' })).token, /^ghs_/);
  });

  it('refuses to start over a state file it cannot read, rather than replacing it', async () => {
    const dataDir = await dir();
    await writeFile(join(dataDir, 'github-emulator.json'), '{ truncated');
    await assert.rejects(startGitHubEmulator({ dataDir }), /cannot read its state .*github-emulator\.json/);
  });
});
