/**
 * Repository operations of the GitHub emulator through @octokit/rest: repository get, contents (blob SHAs, ETags,
 * optimistic concurrency), git refs, and pull requests as the pull-request update mode uses them.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { useGitHubEmulator } from '../../../test/helpers/github-emulator.ts';
import { errorOf, octokitFor, statusOf } from './support.ts';

const gitBlobSha = (text: string) =>
  createHash('sha1')
    .update(`blob ${Buffer.byteLength(text)}\0${text}`)
    .digest('hex');
const b64 = (text: string) => Buffer.from(text).toString('base64');

describe('GitHub emulator: repositories, contents, refs and pull requests', () => {
  const github = useGitHubEmulator();
  let n = 0;
  async function repo(files: Record<string, string> = { 'README.md': '# hi\n', 'app/server.js': 'v1\n' }) {
    const name = `repo${++n}`;
    await github().createRepo({ owner: 'acme', name, files });
    return { owner: 'acme', repo: name, gh: octokitFor(github(), github().createToken({ repos: [`acme/${name}`] })) };
  }

  it('gets the repository with its default branch', async () => {
    const { gh, owner, repo: name } = await repo();
    const { data } = await gh.rest.repos.get({ owner, repo: name });
    assert.equal(data.full_name, `acme/${name}`);
    assert.equal(data.default_branch, 'main');
    assert.equal(await statusOf(gh.rest.repos.get({ owner, repo: 'nope' })), 404);
  });

  it('serves files with git blob SHAs, directories as lists, and raw content on request', async () => {
    const { gh, owner, repo: name } = await repo();
    const { data } = await gh.rest.repos.getContent({ owner, repo: name, path: 'app/server.js' });
    assert.ok(!Array.isArray(data) && data.type === 'file');
    assert.equal(Buffer.from(data.content!, 'base64').toString(), 'v1\n');
    assert.equal(data.sha, gitBlobSha('v1\n'));

    const dir = await gh.rest.repos.getContent({ owner, repo: name, path: 'app' });
    assert.ok(Array.isArray(dir.data));
    assert.deepEqual(
      dir.data.map((e) => [e.type, e.path]),
      [['file', 'app/server.js']],
    );
    const raw = await gh.rest.repos.getContent({
      owner,
      repo: name,
      path: 'README.md',
      mediaType: { format: 'raw' },
    });
    assert.equal(String(raw.data), '# hi\n');

    assert.equal(await statusOf(gh.rest.repos.getContent({ owner, repo: name, path: 'missing.txt' })), 404);
    const badRef = await errorOf(gh.rest.repos.getContent({ owner, repo: name, path: 'README.md', ref: 'nope' }));
    assert.equal(badRef.status, 404);
    assert.match(badRef.message, /No commit found for the ref nope/);
  });

  it('answers a matching If-None-Match with 304, which costs no rate limit', async () => {
    const { gh, owner, repo: name } = await repo();
    const first = await gh.rest.repos.getContent({ owner, repo: name, path: 'README.md' });
    const remaining = Number(first.headers['x-ratelimit-remaining']);
    for (let i = 0; i < 3; i++) {
      const e = await errorOf(
        gh.rest.repos.getContent({
          owner,
          repo: name,
          path: 'README.md',
          headers: { 'if-none-match': first.headers.etag! },
        }),
      );
      assert.equal(e.status, 304);
      assert.equal(Number(e.headers['x-ratelimit-remaining']), remaining, 'a 304 does not count');
    }
    const other = await gh.rest.repos.getContent({
      owner,
      repo: name,
      path: 'README.md',
      headers: { 'if-none-match': 'W/"stale"' },
    });
    assert.equal(other.status, 200);
    assert.equal(Number(other.headers['x-ratelimit-remaining']), remaining - 1, 'a 200 does');
    assert.ok(github().records.notModified >= 3);
  });

  it('creates and updates files with the current sha only: 422 without it, 409 with a stale one', async () => {
    const { gh, owner, repo: name } = await repo();
    const path = '.github/workflows/flui.yml';
    const created = await gh.rest.repos.createOrUpdateFileContents({
      owner,
      repo: name,
      path,
      message: 'add',
      content: b64('one\n'),
    });
    assert.equal(created.status, 201);
    assert.equal(created.data.content?.sha, gitBlobSha('one\n'));
    const put = (sha?: string, content = 'two\n') =>
      gh.rest.repos.createOrUpdateFileContents({ owner, repo: name, path, message: 'm', content: b64(content), sha });
    assert.equal(await statusOf(put()), 422, 'an existing file needs its sha');
    assert.equal(await statusOf(put('0'.repeat(40))), 409, 'a stale sha is a conflict');
    const updated = await put(gitBlobSha('one\n'));
    assert.equal(updated.status, 200);
    assert.deepEqual(
      updated.data.commit.parents?.map((p) => p.sha),
      [created.data.commit.sha],
    );
    assert.equal(github().file(`acme/${name}`, path), 'two\n');
    assert.equal(github().records.commits[`acme/${name}:${path}`], 2);
    const invalid = await errorOf(
      gh.rest.repos.createOrUpdateFileContents({ owner, repo: name, path: 'x', message: 'm', content: '%%%' }),
    );
    assert.equal(invalid.status, 422);
    const noBranch = gh.rest.repos.createOrUpdateFileContents({
      owner,
      repo: name,
      path: 'y',
      message: 'm',
      content: b64('y'),
      branch: 'no-such-branch',
    });
    assert.equal(await statusOf(noBranch), 404);
  });

  it("refuses bodies the operation's schema refuses with GitHub's 422: its words, or a field's code", async () => {
    const { gh, owner, repo: name } = await repo();
    const put = (body: Record<string, unknown>) =>
      errorOf(
        gh.request('PUT /repos/{owner}/{repo}/contents/{path}', { owner, repo: name, path: 'f', ...body } as never),
      );
    const noMessage = await put({ content: b64('f') });
    assert.equal(noMessage.status, 422);
    assert.equal(noMessage.message, 'Invalid request.\n\n"message" and "content" are required.');
    assert.equal((await put({ message: 'm', content: '%%%' })).message, 'content is not valid Base64');
    assert.equal(
      (await put({ message: 'm', content: b64('f'), branch: 5 })).message,
      "Invalid request.\n\nFor 'properties/branch', 5 is not a string.",
    );
    const pull = await errorOf(gh.request('POST /repos/{owner}/{repo}/pulls', { owner, repo: name, head: 7 } as never));
    assert.equal(pull.status, 422);
    assert.equal(pull.message, 'Validation Failed');
    assert.deepEqual(pull.body.errors, [
      { resource: 'PullRequest', field: 'title', code: 'missing_field' },
      { resource: 'PullRequest', field: 'head', code: 'invalid' },
      { resource: 'PullRequest', field: 'base', code: 'invalid' },
    ]);
    const ref = await errorOf(
      gh.request('POST /repos/{owner}/{repo}/git/refs', { owner, repo: name, ref: 'refs/heads/x' } as never),
    );
    assert.equal(ref.message, 'Invalid request.\n\n"ref" and "sha" are required.');
    assert.equal(github().records.commits[`acme/${name}:f`], undefined, 'nothing written');
  });

  it('refuses direct writes to a protected branch with a rule violation (409)', async () => {
    const { gh, owner, repo: name } = await repo();
    github().protectBranch(`acme/${name}`, 'main');
    const e = await errorOf(
      gh.rest.repos.createOrUpdateFileContents({ owner, repo: name, path: 'f', message: 'm', content: b64('f') }),
    );
    assert.equal(e.status, 409);
    assert.match(e.message, /Repository rule violations found/);
    assert.equal(github().file(`acme/${name}`, 'f'), undefined);
  });

  it('reads and creates branch refs', async () => {
    const { gh, owner, repo: name } = await repo();
    const main = await gh.rest.git.getRef({ owner, repo: name, ref: 'heads/main' });
    assert.match(main.data.object.sha, /^[a-f0-9]{40}$/);
    const created = await gh.rest.git.createRef({
      owner,
      repo: name,
      ref: 'refs/heads/flui/pipeline-x',
      sha: main.data.object.sha,
    });
    assert.equal(created.status, 201);
    const got = await gh.rest.git.getRef({ owner, repo: name, ref: 'heads/flui/pipeline-x' });
    assert.equal(got.data.object.sha, main.data.object.sha);
    const again = await errorOf(
      gh.rest.git.createRef({ owner, repo: name, ref: 'refs/heads/flui/pipeline-x', sha: main.data.object.sha }),
    );
    assert.equal(again.status, 422);
    assert.match(again.message, /Reference already exists/);
    assert.equal(
      await statusOf(gh.rest.git.createRef({ owner, repo: name, ref: 'refs/heads/y', sha: 'f'.repeat(40) })),
      422,
    );
    assert.equal(await statusOf(gh.rest.git.getRef({ owner, repo: name, ref: 'heads/none' })), 404);
  });

  it('opens, lists by head, reuses, and merges pull requests into a protected branch', async () => {
    const { gh, owner, repo: name } = await repo();
    const full = `acme/${name}`;
    github().protectBranch(full, 'main');
    const main = await gh.rest.git.getRef({ owner, repo: name, ref: 'heads/main' });
    await gh.rest.git.createRef({ owner, repo: name, ref: 'refs/heads/proposal', sha: main.data.object.sha });
    assert.equal(
      await statusOf(gh.rest.pulls.create({ owner, repo: name, head: 'proposal', base: 'main', title: 'empty' })),
      422,
      'no commits between the branches',
    );
    await gh.rest.repos.createOrUpdateFileContents({
      owner,
      repo: name,
      path: 'pipeline.yml',
      message: 'propose',
      content: b64('p\n'),
      branch: 'proposal',
    });
    const pr = await gh.rest.pulls.create({
      owner,
      repo: name,
      head: 'proposal',
      base: 'main',
      title: 'Flui pipeline',
    });
    assert.equal(pr.status, 201);
    assert.match(pr.data.html_url, new RegExp(`/${name}/pull/1$`));
    const dup = await errorOf(gh.rest.pulls.create({ owner, repo: name, head: 'proposal', base: 'main', title: 't' }));
    assert.equal(dup.status, 422);
    assert.match(JSON.stringify(dup.body), /A pull request already exists/);

    const listed = await gh.rest.pulls.list({
      owner,
      repo: name,
      head: `${owner}:proposal`,
      base: 'main',
      state: 'open',
    });
    assert.deepEqual(
      listed.data.map((p) => p.number),
      [1],
    );
    assert.deepEqual((await gh.rest.pulls.list({ owner, repo: name, head: `${owner}:other` })).data, []);
    assert.equal((await gh.rest.pulls.get({ owner, repo: name, pull_number: 1 })).data.mergeable_state, 'clean');

    // Meanwhile someone changes another file on main: the merge keeps both.
    github().push(full, 'main', { 'README.md': 'changed on main\n' });
    const merged = await gh.rest.pulls.merge({ owner, repo: name, pull_number: 1 });
    assert.equal(merged.data.merged, true);
    assert.equal(github().file(full, 'pipeline.yml'), 'p\n');
    assert.equal(github().file(full, 'README.md'), 'changed on main\n');
    assert.equal((await gh.rest.pulls.get({ owner, repo: name, pull_number: 1 })).data.merged, true);
    assert.deepEqual((await gh.rest.pulls.list({ owner, repo: name, state: 'open' })).data, []);
    assert.equal((await gh.rest.pulls.list({ owner, repo: name, state: 'closed' })).data.length, 1);
    assert.equal(await statusOf(gh.rest.pulls.merge({ owner, repo: name, pull_number: 1 })), 405);
    assert.equal(await statusOf(gh.rest.pulls.get({ owner, repo: name, pull_number: 9 })), 404);
  });

  it('refuses to merge conflicting changes and closes pull requests on request', async () => {
    const { gh, owner, repo: name } = await repo();
    const full = `acme/${name}`;
    github().push(full, 'topic', { 'README.md': 'topic\n' });
    github().push(full, 'main', { 'README.md': 'main\n' });
    const pr = await gh.rest.pulls.create({ owner, repo: name, head: 'topic', base: 'main', title: 'conflict' });
    assert.equal(await statusOf(gh.rest.pulls.merge({ owner, repo: name, pull_number: pr.data.number })), 405);
    const stale = await errorOf(
      gh.rest.pulls.merge({ owner, repo: name, pull_number: pr.data.number, sha: 'a'.repeat(40) }),
    );
    assert.equal(stale.status, 409);
    const closed = await gh.rest.pulls.update({ owner, repo: name, pull_number: pr.data.number, state: 'closed' });
    assert.equal(closed.data.state, 'closed');
    assert.equal(closed.data.merged, false);
  });

  it('paginates lists with Link headers that Octokit follows', async () => {
    const { gh, owner, repo: name } = await repo();
    const full = `acme/${name}`;
    for (let i = 0; i < 5; i++) {
      github().push(full, `b${i}`, { [`f${i}`]: String(i) });
      await gh.rest.pulls.create({ owner, repo: name, head: `b${i}`, base: 'main', title: `pr ${i}` });
    }
    const page = await gh.rest.pulls.list({ owner, repo: name, per_page: 2 });
    assert.equal(page.data.length, 2);
    assert.match(page.headers.link ?? '', /rel="next".*rel="last"/);
    const all = await gh.paginate(gh.rest.pulls.list, { owner, repo: name, per_page: 2 });
    assert.deepEqual(
      all.map((p) => p.number),
      [5, 4, 3, 2, 1],
    );
  });
});
