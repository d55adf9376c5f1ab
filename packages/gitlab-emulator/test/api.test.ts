/**
 * The emulator's REST API as the production client (`@gitbeaker/rest`) sees it, raw fetch where gitbeaker cannot
 * say it: nested-group projects by path and id, auth answers, files and commits (a change vs no change, stale
 * `last_commit_id`), merge requests, CI/CD variables (masking rules, `masked_and_hidden`, version gates), pipeline
 * creation (inputs checked against `spec:inputs`, pipeline variables per role), rate-limit headers, and a response
 * broken on purpose caught by the contract check.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { assertContract } from '../src/contract.ts';
import { startGitLabEmulator, type RequestInfo } from '../src/index.ts';
import { useGitLabEmulator } from '../../../test/helpers/gitlab-emulator.ts';
import { api, eventually, gitbeakerFor } from './support.ts';

const CI = `spec:
  inputs:
    deploy_id: {}
    replicas: { type: number, default: 1 }
    mode: { default: fast, options: [fast, slow] }
---
workflow:
  name: 'flui $[[ inputs.deploy_id ]]'
build:
  stage: build
  script:
    - echo "deploy $[[ inputs.deploy_id ]] x$[[ inputs.replicas ]] $[[ inputs.mode ]]"
`;

const enc = encodeURIComponent;

describe('GitLab emulator API', () => {
  const gitlab = useGitLabEmulator({ runner: { pendingMs: 20, buildMs: 20 } });

  it('finds a project in nested groups by URL-encoded path and by id; answers auth failures as GitLab does', async () => {
    const gl = gitlab();
    const { id } = await gl.createProject({ path: 'acme/platform/team/web', files: { 'README.md': 'hi\n' } });
    const token = gl.createToken({ projects: ['acme/platform/team/web'] });
    const client = gitbeakerFor(gl, token);
    const byPath = await client.Projects.show('acme/platform/team/web');
    assert.equal(byPath.id, id);
    assert.equal(byPath.path_with_namespace, 'acme/platform/team/web');
    assert.equal(byPath.namespace.full_path, 'acme/platform/team');
    assert.equal((await client.Projects.show(id)).path, 'web');

    const noToken = await fetch(`${gl.url}/api/v4/projects/${id}`);
    assert.equal(noToken.status, 401);
    assert.deepEqual(await noToken.json(), { message: '401 Unauthorized' });
    const bearer = await fetch(`${gl.url}/api/v4/projects/${id}`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(bearer.status, 200);
    await bearer.body?.cancel();

    await gl.createProject({ path: 'other/secret' });
    const invisible = await api(gl, token, 'GET', `/projects/${enc('other/secret')}`);
    assert.equal(invisible.status, 404);
    assert.deepEqual(invisible.body, { message: '404 Project Not Found' });

    const expired = gl.createToken({ expiresInMs: -1 });
    const old = await api(gl, expired, 'GET', `/projects/${id}`);
    assert.equal(old.status, 401);
    assert.equal((old.body as { error: string }).error, 'invalid_token');

    const reader = gl.createToken({ scopes: ['read_api'] });
    assert.equal((await api(gl, reader, 'GET', `/projects/${id}`)).status, 200);
    const write = await api(gl, reader, 'POST', `/projects/${id}/variables`, { key: 'A', value: 'b' });
    assert.equal(write.status, 403);
    assert.equal((write.body as { error: string }).error, 'insufficient_scope');

    const developer = gl.createToken({ role: 'developer' });
    const forbidden = await api(gl, developer, 'GET', `/projects/${id}/variables`);
    assert.equal(forbidden.status, 403);
    assert.deepEqual(forbidden.body, { message: '403 Forbidden' });
  });

  it('writes files and commits: one commit per change, none when the client finds the file current', async () => {
    const gl = gitlab();
    const path = 'acme/files';
    await gl.createProject({ path, files: { 'README.md': 'hi\n' } });
    const client = gitbeakerFor(gl, gl.createToken());
    await assert.rejects(client.RepositoryFiles.show(path, '.gitlab-ci.yml', 'main'), /404 File Not Found|Not Found/);

    await client.RepositoryFiles.create(path, '.gitlab-ci.yml', 'main', 'a: 1\n', 'add CI');
    assert.equal(gl.records.commits[path], 1);
    const file = await client.RepositoryFiles.show(path, '.gitlab-ci.yml', 'main');
    assert.equal(Buffer.from(file.content, 'base64').toString(), 'a: 1\n');
    const head = await fetch(
      `${gl.url}/api/v4/projects/${enc(path)}/repository/files/${enc('.gitlab-ci.yml')}?ref=main`,
      {
        method: 'HEAD',
        headers: { 'private-token': gl.createToken() },
      },
    );
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('x-gitlab-blob-id'), file.blob_id);
    assert.equal(head.headers.get('x-gitlab-last-commit-id'), file.last_commit_id);
    assert.equal(await client.RepositoryFiles.showRaw(path, '.gitlab-ci.yml', 'main'), 'a: 1\n');
    assert.equal((await client.RepositoryFiles.show(path, '.gitlab-ci.yml', 'HEAD')).blob_id, file.blob_id);
    const same = await api(
      gl,
      gl.createToken(),
      'PUT',
      `/projects/${enc(path)}/repository/files/${enc('.gitlab-ci.yml')}`,
      {
        branch: 'main',
        content: 'a: 1\n',
        commit_message: 'no change',
      },
    );
    assert.equal(same.status, 400, 'the files API refuses an empty commit');
    assert.equal(gl.records.commits[path], 1);

    const again = await api(
      gl,
      gl.createToken(),
      'POST',
      `/projects/${enc(path)}/repository/files/${enc('.gitlab-ci.yml')}`,
      {
        branch: 'main',
        content: 'a: 1\n',
        commit_message: 'again',
      },
    );
    assert.equal(again.status, 400);
    assert.deepEqual(again.body, { message: 'A file with this name already exists' });

    // An update carrying a stale last_commit_id is refused: someone changed the file meanwhile.
    const stale = file.last_commit_id;
    gl.push(path, 'main', { '.gitlab-ci.yml': 'a: 2\n' }, 'a person edits');
    const conflict = await api(
      gl,
      gl.createToken(),
      'PUT',
      `/projects/${enc(path)}/repository/files/${enc('.gitlab-ci.yml')}`,
      {
        branch: 'main',
        content: 'a: 3\n',
        commit_message: 'flui',
        last_commit_id: stale,
      },
    );
    assert.equal(conflict.status, 400);
    assert.match(String((conflict.body as { message: string }).message), /changed since you started editing it/);

    // Commits API with actions: a create and an update in one commit.
    const before = gl.records.commits[path];
    const commit = await client.Commits.create(path, 'main', 'flui: pipeline', [
      { action: 'update', filePath: '.gitlab-ci.yml', content: 'a: 4\n' },
      { action: 'create', filePath: '.flui/app.yml', content: 'job: {}\n' },
    ]);
    assert.match(commit.id, /^[0-9a-f]{40}$/);
    assert.equal(gl.records.commits[path], before! + 1);
    assert.equal(gl.file(path, '.flui/app.yml'), 'job: {}\n');
    const branch = await client.Branches.show(path, 'main');
    assert.equal(branch.commit.id, commit.id);

    const badAction = await api(gl, gl.createToken(), 'POST', `/projects/${enc(path)}/repository/commits`, {
      branch: 'main',
      commit_message: 'x',
      actions: [{ action: 'create', file_path: '.flui/app.yml', content: 'again' }],
    });
    assert.equal(badAction.status, 400);
    assert.equal(gl.records.commits[path], before! + 1, 'a refused commit changes nothing');

    // The no-op: a client that reads the file first and finds it current commits nothing.
    const current = await client.RepositoryFiles.show(path, '.flui/app.yml', 'main');
    if (Buffer.from(current.content, 'base64').toString() !== 'job: {}\n') {
      await client.Commits.create(path, 'main', 'flui', [
        { action: 'update', filePath: '.flui/app.yml', content: 'job: {}\n' },
      ]);
    }
    assert.equal(gl.records.commits[path], before! + 1);

    // Merge request mode: a branch and one merge request; a second for the same branches is GitLab's 409.
    await client.Commits.create(
      path,
      'flui/update',
      'flui on a branch',
      [{ action: 'update', filePath: '.flui/app.yml', content: 'job: { x: 1 }\n' }],
      { startBranch: 'main' },
    );
    const mr = await client.MergeRequests.create(path, 'flui/update', 'main', 'Flui: pipeline');
    assert.equal(mr.state, 'opened');
    const dup = await api(gl, gl.createToken(), 'POST', `/projects/${enc(path)}/merge_requests`, {
      source_branch: 'flui/update',
      target_branch: 'main',
      title: 'again',
    });
    assert.equal(dup.status, 409);
    const open = await client.MergeRequests.all({ projectId: path, sourceBranch: 'flui/update', state: 'opened' });
    assert.deepEqual(
      open.map((m) => m.iid),
      [mr.iid],
    );
    assert.equal(gl.mergeRequests(path).length, 1);
  });

  it('keeps CI/CD variables with GitLab masking rules; masked_and_hidden values are never returned', async () => {
    const gl = gitlab();
    const path = 'acme/vars';
    await gl.createProject({ path });
    const token = gl.createToken();
    const client = gitbeakerFor(gl, token);
    const vars = `/projects/${enc(path)}/variables`;

    for (const value of ['short', 'has a space in it', 'multi\nline-value', 'quote"character']) {
      const res = await api(gl, token, 'POST', vars, { key: 'BAD', value, masked: true });
      assert.equal(res.status, 400, value);
      assert.deepEqual(res.body, { message: { value: ['is invalid'] } });
    }
    // A raw masked value may use any non-whitespace character; an expanded one only the Base64 alphabet and @:.~-_.
    const raw = await api(gl, token, 'POST', vars, { key: 'RAW', value: 'p@ss"w0rd!', masked: true, raw: true });
    assert.equal(raw.status, 201, raw.text);
    const expanded = await api(gl, token, 'POST', vars, { key: 'EXP', value: 'p@ss"w0rd!', masked: true });
    assert.equal(expanded.status, 400);
    await client.ProjectVariables.remove(path, 'RAW');
    const badKey = await api(gl, token, 'POST', vars, { key: 'bad-key', value: 'x' });
    assert.equal(badKey.status, 400);

    const hidden = await api(gl, token, 'POST', vars, {
      key: 'PASSWORD',
      value: 'cmVnaXN0cnk=',
      masked_and_hidden: true,
    });
    assert.equal(hidden.status, 201);
    assert.deepEqual(
      {
        value: (hidden.body as { value: unknown }).value,
        masked: (hidden.body as { masked: boolean }).masked,
        hidden: (hidden.body as { hidden: boolean }).hidden,
      },
      { value: null, masked: true, hidden: true },
    );
    const listed = await client.ProjectVariables.all(path);
    assert.equal(listed.find((v) => v.key === 'PASSWORD')!.value, null);
    assert.equal(gl.variableValue(path, 'PASSWORD'), 'cmVnaXN0cnk=');
    const dup = await api(gl, token, 'POST', vars, { key: 'PASSWORD', value: 'x' });
    assert.deepEqual(dup.body, { message: { key: ['(PASSWORD) has already been taken'] } });

    const unmask = await api(gl, token, 'PUT', `${vars}/PASSWORD`, { value: 'bmV3LXZhbHVl', masked: false });
    assert.equal(unmask.status, 400);
    const rotated = await client.ProjectVariables.edit(path, 'PASSWORD', 'bmV3LXZhbHVl');
    assert.equal(rotated.value, null);
    assert.equal(gl.variableValue(path, 'PASSWORD'), 'bmV3LXZhbHVl');

    await client.ProjectVariables.create(path, 'USER', 'flui-ci');
    assert.equal((await client.ProjectVariables.show(path, 'USER')).value, 'flui-ci');
    await client.ProjectVariables.remove(path, 'USER');
    const gone = await api(gl, token, 'GET', `${vars}/USER`);
    assert.deepEqual(gone.body, { message: '404 Variable Not Found' });
    assert.deepEqual(
      gl.variables(path).map((v) => [v.key, v.masked, v.hidden]),
      [['PASSWORD', true, true]],
    );
  });

  it('checks pipeline inputs against spec:inputs and pipeline variables against the project role setting', async () => {
    const gl = gitlab();
    const path = 'acme/pipelines';
    await gl.createProject({ path, files: { '.gitlab-ci.yml': CI }, pipelineVariablesRole: 'no_one_allowed' });
    const token = gl.createToken({ role: 'owner' });
    const create = (body: unknown) => api(gl, token, 'POST', `/projects/${enc(path)}/pipeline`, body);
    const errors = async (body: unknown) => {
      const res = await create(body);
      assert.equal(res.status, 400, res.text);
      return res.body;
    };
    assert.deepEqual(await errors({ ref: 'main', inputs: { deploy_id: 'd', extra: 1 } }), {
      message: { base: ['unknown input arguments: extra'] },
    });
    assert.deepEqual(await errors({ ref: 'main', inputs: { deploy_id: 'd', replicas: 'two' } }), {
      message: { base: ['`replicas` input: provided value is not a number'] },
    });
    assert.deepEqual(await errors({ ref: 'main', inputs: { deploy_id: 'd', mode: 'turbo' } }), {
      message: { base: ['`mode` input: `turbo` cannot be used because it is not in the list of the allowed options'] },
    });
    assert.deepEqual(await errors({ ref: 'nope', inputs: { deploy_id: 'd' } }), {
      message: { base: ['Reference not found'] },
    });
    assert.deepEqual(await errors({ inputs: { deploy_id: 'd' } }), { error: 'ref is missing' });
    assert.deepEqual(await errors({ ref: 'main', inputs: { deploy_id: 'd' }, variables: [{ key: 'X', value: '1' }] }), {
      message: { base: ['Insufficient permissions to set pipeline variables'] },
    });
    assert.equal(gl.records.pipelinesCreated[path], undefined, 'no refused request created a pipeline');

    const ok = await create({ ref: 'main', inputs: { deploy_id: 'd-9', replicas: 3 } });
    assert.equal(ok.status, 201, ok.text);
    assert.equal((ok.body as { name: string }).name, 'flui d-9');
    assert.deepEqual(gl.pipelines(path)[0]!.jobs[0]!.script, ['echo "deploy d-9 x3 fast"']);

    const client = gitbeakerFor(gl, token);
    const listed = await client.Pipelines.all(path, { name: 'flui d-9', source: 'api', orderBy: 'id', sort: 'desc' });
    assert.equal(listed.length, 1);
    const bad = await api(gl, token, 'GET', `/projects/${enc(path)}/pipelines?order_by=name`);
    assert.deepEqual(bad.body, { error: 'order_by does not have a valid value' });
  });

  it('ignores what an older GitLab does not know: inputs before 17.10, masked_and_hidden before 17.4, name before 16.9', async () => {
    const old = await startGitLabEmulator({ version: '17.3.0', runner: { pendingMs: 10, buildMs: 10 } });
    try {
      const path = 'acme/old';
      await old.createProject({ path, files: { '.gitlab-ci.yml': CI } });
      const token = old.createToken();
      const res = await api(old, token, 'POST', `/projects/${enc(path)}/pipeline`, {
        ref: 'main',
        inputs: { deploy_id: 'd' },
      });
      assert.deepEqual(res.body, { message: { base: ['`deploy_id` input: required value has not been provided'] } });
      const v = await api(old, token, 'POST', `/projects/${enc(path)}/variables`, {
        key: 'P',
        value: 'cGFzc3dvcmQ=',
        masked_and_hidden: true,
      });
      assert.equal(v.status, 201);
      assert.equal((v.body as { value: string }).value, 'cGFzc3dvcmQ=', 'a 17.3 server stores a visible variable');
      assert.ok(!('hidden' in (v.body as object)));
      assert.ok(assertContract(old.contract).responses >= 2);
    } finally {
      await old.stop();
    }
  });

  it('sends rate-limit headers on every response and no ETag, so every poll is charged', async () => {
    const gl = gitlab();
    await gl.createProject({ path: 'acme/limits' });
    const token = gl.createToken();
    const first = await api(gl, token, 'GET', `/projects/${enc('acme/limits')}`);
    const second = await api(gl, token, 'GET', `/projects/${enc('acme/limits')}`);
    assert.equal(first.headers.get('ratelimit-limit'), '2000');
    assert.equal(
      Number(first.headers.get('ratelimit-remaining')) - 1,
      Number(second.headers.get('ratelimit-remaining')),
    );
    assert.match(String(second.headers.get('ratelimit-reset')), /^\d{10}$/);
    assert.ok(second.headers.get('ratelimit-resettime'));
    assert.equal(first.headers.get('etag'), null);
    assert.equal(gl.records.rateLimited[token], 2);
  });

  it('catches a response broken on purpose (the contract check can fail)', async () => {
    const gl = gitlab();
    await gl.createProject({ path: 'acme/contract' });
    const token = gl.createToken();
    const seen = gl.contract.violations.length;
    gl.faults.corruptNextResponse('/projects/:id', (body) => ({ ...(body as object), id: 'not-a-number' }));
    await api(gl, token, 'GET', `/projects/${enc('acme/contract')}`);
    gl.faults.corruptNextResponse('/projects/:id/pipelines', () => [{ id: 1 }]);
    await api(gl, token, 'GET', `/projects/${enc('acme/contract')}/pipelines`);
    const caught = gl.contract.violations.splice(seen);
    assert.equal(caught.length, 2, caught.join('\n'));
    assert.match(caught[0]!, /GET \/projects\/:id -> 200: body\/id must be integer/);
    assert.match(caught[1]!, /GET \/projects\/:id\/pipelines -> 200: body\/0 must have required property/);
  });

  it('gives protected variables only to pipelines of the protected default branch, and masks masked values in traces', async () => {
    const gl = gitlab();
    const path = 'acme/protected';
    const ci = `show:\n  script:\n    - echo "p=$PROTECTED m=$MASKED"\n`;
    await gl.createProject({ path, files: { '.gitlab-ci.yml': ci } });
    gl.push(path, 'feature', { 'x.txt': 'x' });
    const token = gl.createToken();
    const client = gitbeakerFor(gl, token);
    await client.ProjectVariables.create(path, 'PROTECTED', 'only-on-main', { protected: true } as never);
    await client.ProjectVariables.create(path, 'MASKED', 'bWFza2VkLXZhbHVl', { masked: true } as never);
    const traceOf = async (ref: string) => {
      const created = await client.Pipelines.create(path, ref);
      const p = await eventually(() => {
        const x = gl.pipelines(path).find((q) => q.id === created.id)!;
        return x.status === 'success' ? x : undefined;
      }, `the pipeline on ${ref}`);
      return client.Jobs.showLog(path, p.jobs[0]!.id);
    };
    assert.match(await traceOf('main'), /p=only-on-main m=\[MASKED\]/);
    assert.match(await traceOf('feature'), /p= m=\[MASKED\]/);
  });

  it('calls hooks before and after a handler with what the request carried', async () => {
    const gl = gitlab();
    const path = 'acme/hooks';
    await gl.createProject({ path, files: { '.gitlab-ci.yml': 'j:\n  script: [x]\n' } });
    const token = gl.createToken({ projects: [path], role: 'developer' });
    const seen: RequestInfo[] = [];
    gl.hooks.before = (info) => void seen.push({ ...info });
    gl.hooks.after = (info) => void seen.push({ ...info });
    try {
      await api(gl, token, 'POST', `/projects/${enc(path)}/pipeline`, { ref: 'main' });
    } finally {
      gl.hooks.before = undefined;
      gl.hooks.after = undefined;
    }
    assert.deepEqual(
      seen.map((i) => [i.method, i.operation, i.project, i.status, i.credential?.role]),
      [
        ['POST', '/projects/:id/pipeline', path, undefined, 'developer'],
        ['POST', '/projects/:id/pipeline', path, 201, 'developer'],
      ],
    );
  });

  it('property: any nested project path and file path round-trips through URL encoding', async () => {
    const gl = gitlab();
    const token = gl.createToken();
    const client = gitbeakerFor(gl, token);
    const segment = fc.stringMatching(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,20}[a-zA-Z0-9]$/).filter((x) => !x.includes('..'));
    const filePath = fc
      .array(
        fc.string({ minLength: 1, maxLength: 12 }).filter((x) => !x.includes('/') && x !== '.' && x !== '..'),
        {
          minLength: 1,
          maxLength: 3,
        },
      )
      .map((parts) => parts.join('/'));
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(segment, { minLength: 2, maxLength: 5 }), filePath, async (segments, file) => {
        const path = `${segments.join('/')}-${n++}`;
        const { id } = await gl.createProject({ path });
        assert.equal((await client.Projects.show(path)).id, id);
        await client.RepositoryFiles.create(path, file, 'main', `content of ${file}`, 'add');
        const got = await client.RepositoryFiles.show(path, file, 'main');
        assert.equal(got.file_path, file);
        assert.equal(Buffer.from(got.content, 'base64').toString(), `content of ${file}`);
      }),
      { numRuns: Number(process.env.FLUI_FUZZ_RUNS ?? 60) },
    );
  });
});
