/**
 * Driving the GitHub emulator from outside: the control API under /_emulator/ (for the sandbox's people and for
 * processes that did not start it), the pages behind `html_url`s, and the CLI that starts one from a shell.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { useGitHubEmulator } from '../../../test/helpers/github-emulator.ts';
import { eventually, fluiWorkflow, octokitFor, statusOf } from './support.ts';

describe('GitHub emulator: control API', () => {
  const github = useGitHubEmulator();
  const control = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${github().url}/_emulator${path}`, {
      method,
      headers: { 'content-type': 'application/json' },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> & unknown[] };
  };

  it('creates repositories, commits, tokens and apps, and reads runs, pulls and records', async () => {
    const created = await control('POST', '/repos', {
      owner: 'ops',
      name: 'site',
      files: { Dockerfile: 'FROM scratch\n', '.github/workflows/flui.yml': fluiWorkflow('127.0.0.1:1') },
    });
    assert.equal(created.status, 201);
    assert.deepEqual(created.body, { fullName: 'ops/site' });
    const { body: tokenBody } = await control('POST', '/tokens', { repos: ['ops/site'] });
    const gh = octokitFor(github(), String(tokenBody.token));
    assert.equal((await gh.rest.repos.get({ owner: 'ops', repo: 'site' })).status, 200);
    const readOnly = await control('POST', '/tokens', { repos: ['ops/site'], permissions: { contents: 'read' } });
    const reader = octokitFor(github(), String(readOnly.body.token));
    assert.equal(
      await statusOf(
        reader.rest.repos.createOrUpdateFileContents({
          owner: 'ops',
          repo: 'site',
          path: 'r',
          message: 'm',
          content: 'cg==',
        }),
      ),
      403,
      'a token with the permissions asked for',
    );

    const commit = await control('POST', '/repos/ops/site/commits', { branch: 'topic', files: { 'a.txt': 'a' } });
    assert.equal(commit.status, 201);
    assert.match(String(commit.body.sha), /^[a-f0-9]{40}$/);
    const pr = await gh.rest.pulls.create({ owner: 'ops', repo: 'site', head: 'topic', base: 'main', title: 'T' });
    assert.equal((await control('GET', '/repos/ops/site/pulls')).body.length, 1);
    assert.equal((await control('POST', '/repos/ops/site/protection', { branch: 'main' })).status, 200);
    assert.equal(
      await statusOf(
        gh.rest.repos.createOrUpdateFileContents({
          owner: 'ops',
          repo: 'site',
          path: 'b',
          message: 'm',
          content: 'Yg==',
        }),
      ),
      409,
    );

    const app = await control('POST', '/apps', { repos: ['ops/site'] });
    assert.equal(app.status, 201);
    assert.match(String(app.body.privateKey), /BEGIN PRIVATE KEY/);
    const tenants = await control('POST', '/apps', { installations: [{ account: 'ops' }] });
    assert.deepEqual(tenants.body.installations, [{ id: tenants.body.installationId, account: 'ops' }]);
    const added = await control('POST', `/apps/${String(tenants.body.appId)}/installations`, {
      account: 'other',
      repos: ['other/x'],
    });
    assert.equal(added.status, 201);
    assert.equal(typeof added.body.installationId, 'number');
    const uninstall = `/apps/${String(tenants.body.appId)}/installations/${String(added.body.installationId)}`;
    assert.equal((await control('DELETE', uninstall)).status, 200);
    assert.equal((await control('DELETE', uninstall)).status, 404, 'already uninstalled');

    await gh.rest.actions.createWorkflowDispatch({
      owner: 'ops',
      repo: 'site',
      workflow_id: 'flui.yml',
      ref: 'main',
      inputs: { deploy_id: 'ctl' },
    });
    const runs = await eventually(async () => {
      const r = await control('GET', '/repos/ops/site/runs');
      return (r.body as { status: string }[])[0]?.status === 'completed' ? (r.body as { id: number }[]) : undefined;
    }, 'the run');
    const records = await control('GET', '/records');
    assert.equal((records.body.records as { dispatches: Record<string, number> }).dispatches['ops/site'], 1);
    assert.ok((records.body.contract as { responses: number }).responses > 0);

    // The pages behind html_urls.
    const run = await gh.rest.actions.getWorkflowRun({ owner: 'ops', repo: 'site', run_id: runs[0]!.id });
    const page = await fetch(run.data.html_url);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /flui ctl.*failure/s);
    const prPage = await fetch(pr.data.html_url);
    assert.match(await prPage.text(), /topic → main/);
    assert.equal((await fetch(`${github().url}/_html/ops/site/pull/99`)).status, 404);
  });

  it('sets and resets every fault', async () => {
    await control('POST', '/repos', { owner: 'ops', name: 'faulty' });
    const { body } = await control('POST', '/tokens', {});
    const gh = octokitFor(github(), String(body.token));
    const get = () => statusOf(gh.rest.repos.get({ owner: 'ops', repo: 'faulty' }));
    const set = async (name: string, args: unknown = {}) =>
      assert.equal((await control('POST', `/faults/${name}`, args)).status, 200);

    await set('outage', { requests: 1 });
    assert.equal(await get(), 503);
    assert.equal(await get(), 200);
    await set('secondary-limit', { count: 1, retryAfterSeconds: 2, status: 429 });
    assert.equal(await get(), 429);
    await set('secondary-limit', { count: 1 });
    assert.equal(await get(), 403);
    await set('exhaust-rate-limit', { forMs: 60_000 });
    assert.equal(await get(), 403);
    await set('reset');
    assert.equal(await get(), 200);
    await set('latency', { ms: 1 });
    await set('keep-queued', { on: true });
    await set('fail-builds', { count: 1 });
    await set('webhooks', { drop: 1, duplicate: 1 });
    await set('reset');
    assert.equal(await get(), 200);
  });

  it('answers mistakes with GitHub-shaped errors', async () => {
    const cases: [string, string, unknown, number][] = [
      ['POST', '/repos', '{oops', 400],
      ['POST', '/repos', { owner: 'x' }, 422],
      ['POST', '/faults/outage', { mode: 'meltdown' }, 422],
      ['POST', '/faults/latency', { ms: -5 }, 422],
      ['POST', '/faults/keep-queued', {}, 422],
      ['POST', '/faults/exhaust-rate-limit', { forMs: 1, status: 500 }, 422],
      ['POST', '/tokens', { permissions: { everything: 'write' } }, 422],
      ['POST', '/tokens', { permissions: { contents: 'admin' } }, 422],
      ['POST', '/apps', { installations: [{ repos: ['a/b'] }] }, 422],
      ['POST', '/apps/404/installations', { account: 'x' }, 404],
      ['POST', '/repos/none/such/commits', { branch: 'b', files: {} }, 404],
      ['GET', '/nothing', undefined, 404],
      ['GET', '/logs/deadbeef.zip', undefined, 404],
    ];
    for (const [method, path, body, status] of cases) {
      const res = await control(method, path, body);
      assert.equal(res.status, status, `${method} ${path}`);
      assert.ok(res.body.message && res.body.documentation_url, `${method} ${path} has GitHub's error shape`);
    }
    assert.equal((await control('POST', '/repos', { owner: 'x' })).body.message, '"name" must be a non-empty string');
    assert.equal((await control('POST', '/faults/latency', { ms: -5 })).body.message, '"ms" must be a number ≥ 0');
    assert.equal((await control('GET', '/')).status, 200);
  });
});

describe('GitHub emulator: command line', () => {
  const cli = (args: string[]) =>
    spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('../src/main.ts', import.meta.url)), ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });

  it('starts, prints its URL and a token that works, and stops on SIGTERM', async () => {
    const child = cli(['--repo', 'acme/cli', '--queued-ms', '10', '--build-ms', '10']);
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    try {
      const [url, token] = await eventually(
        () => {
          const u = /GITHUB_API_URL=(\S+)/.exec(out)?.[1];
          const t = /GITHUB_TOKEN=(\S+)/.exec(out)?.[1];
          return u && t ? [u, t] : undefined;
        },
        `the CLI to start (stderr: ${err})`,
        30_000,
      );
      const { Octokit } = await import('@octokit/rest');
      const gh = new Octokit({ auth: token, baseUrl: url });
      assert.equal((await gh.rest.repos.get({ owner: 'acme', repo: 'cli' })).data.full_name, 'acme/cli');
      child.kill('SIGTERM');
      const [code] = (await once(child, 'exit')) as [number | null];
      assert.equal(code, 0, err);
      assert.match(out, /stopping; contract: \d+ responses of \d+ operations checked, 0 violations/);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  it('explains its options, and refuses unknown ones with exit code 2', async () => {
    const help = cli(['--help']);
    let out = '';
    help.stdout.on('data', (d: Buffer) => (out += d.toString()));
    assert.equal(((await once(help, 'exit')) as [number])[0], 0);
    assert.match(out, /--data-dir DIR/);
    const bad = cli(['--frobnicate']);
    let err = '';
    bad.stderr.on('data', (d: Buffer) => (err += d.toString()));
    assert.equal(((await once(bad, 'exit')) as [number])[0], 2);
    assert.match(err, /frobnicate/);
  });
});
