/**
 * Who may call the GitHub emulator: fine-grained tokens (with `token` or `Bearer`), limited to repositories and
 * permissions; GitHub App installation tokens through @octokit/auth-app's JWT flow; GitHub's 401 and 404 for the
 * rest. And bad requests get GitHub's error shape, never a crash.
 */
import assert from 'node:assert/strict';
import { createSign } from 'node:crypto';
import { connect } from 'node:net';
import { describe, it } from 'node:test';
import { createAppAuth } from '@octokit/auth-app';
import { Octokit } from '@octokit/rest';
import { useGitHubEmulator } from '../../../test/helpers/github-emulator.ts';
import { errorOf, octokitFor, statusOf } from './support.ts';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
/** An installation's account is a user or an organization (which GitHub's schema calls an enterprise here). */
const login = (account: object | null | undefined) => (account && 'login' in account ? account.login : undefined);

describe('GitHub emulator: authentication, visibility and permissions', () => {
  const github = useGitHubEmulator();
  let n = 0;
  async function repo() {
    const name = `auth${++n}`;
    await github().createRepo({ owner: 'acme', name });
    return name;
  }

  it('answers 401 without a token or with a bad or expired one, in GitHub’s shape', async () => {
    const name = await repo();
    const call = (authorization?: string) =>
      fetch(`${github().url}/repos/acme/${name}`, { headers: authorization ? { authorization } : {} });
    const none = await call();
    assert.equal(none.status, 401);
    assert.deepEqual(await none.json(), {
      message: 'Requires authentication',
      documentation_url: 'https://docs.github.com/rest',
      status: '401',
    });
    const bad = await errorOf(octokitFor(github(), 'github_pat_nope').rest.repos.get({ owner: 'acme', repo: name }));
    assert.equal(bad.status, 401);
    assert.equal(bad.message, 'Bad credentials');
    assert.ok(bad.body.documentation_url);
    const expired = github().createToken({ expiresInMs: -1000 });
    assert.equal(await statusOf(octokitFor(github(), expired).rest.repos.get({ owner: 'acme', repo: name })), 401);

    const token = github().createToken();
    assert.equal((await call(`token ${token}`)).status, 200);
    assert.equal((await call(`Bearer ${token}`)).status, 200);
  });

  it('answers 404 for repositories a token cannot see, and for ones that do not exist', async () => {
    const [mine, other] = [await repo(), await repo()];
    const gh = octokitFor(github(), github().createToken({ repos: [`acme/${mine}`] }));
    assert.equal((await gh.rest.repos.get({ owner: 'acme', repo: mine })).status, 200);
    assert.equal(
      (await gh.rest.repos.get({ owner: 'ACME', repo: mine.toUpperCase() })).status,
      200,
      'names ignore case',
    );
    const hidden = await errorOf(gh.rest.actions.getRepoPublicKey({ owner: 'acme', repo: other }));
    assert.equal(hidden.status, 404);
    assert.equal(hidden.message, 'Not Found');
    assert.equal(await statusOf(gh.rest.repos.get({ owner: 'acme', repo: 'never-created' })), 404);
  });

  it('answers 403 when a token lacks the permission an operation needs', async () => {
    const name = await repo();
    const gh = octokitFor(github(), github().createToken({ permissions: { contents: 'read', secrets: 'none' } }));
    assert.equal((await gh.rest.repos.getContent({ owner: 'acme', repo: name, path: 'README.md' })).status, 200);
    const write = await errorOf(
      gh.rest.repos.createOrUpdateFileContents({ owner: 'acme', repo: name, path: 'x', message: 'm', content: 'eA==' }),
    );
    assert.equal(write.status, 403);
    assert.equal(write.message, 'Resource not accessible by personal access token');
    assert.equal(await statusOf(gh.rest.actions.getRepoPublicKey({ owner: 'acme', repo: name })), 403);
  });

  it('issues installation tokens for a GitHub App JWT (RS256), limited to the installation’s repositories', async () => {
    const [covered, outside] = [await repo(), await repo()];
    const app = github().createApp({ repos: [`acme/${covered}`] });
    const gh = new Octokit({
      authStrategy: createAppAuth,
      auth: { appId: app.appId, privateKey: app.privateKey, installationId: app.installationId },
      baseUrl: github().url,
      log: quiet,
    });
    assert.equal((await gh.rest.actions.getRepoPublicKey({ owner: 'acme', repo: covered })).status, 200);
    assert.equal(await statusOf(gh.rest.repos.get({ owner: 'acme', repo: outside })), 404);

    const auth = createAppAuth({ appId: app.appId, privateKey: app.privateKey, request: gh.request });
    const { token: jwt } = await auth({ type: 'app' });
    const installation = await gh.request('GET /repos/{owner}/{repo}/installation', {
      owner: 'acme',
      repo: covered,
      headers: { authorization: `Bearer ${jwt}` },
    });
    assert.equal(installation.data.id, app.installationId);
    const readOnly = await gh.request('POST /app/installations/{installation_id}/access_tokens', {
      installation_id: app.installationId,
      permissions: { contents: 'read' },
      headers: { authorization: `Bearer ${jwt}` },
    });
    assert.match(readOnly.data.token, /^ghs_/);
    const limited = octokitFor(github(), readOnly.data.token);
    const denied = await errorOf(
      limited.rest.repos.createOrUpdateFileContents({
        owner: 'acme',
        repo: covered,
        path: 'x',
        message: 'm',
        content: 'eA==',
      }),
    );
    assert.equal(denied.status, 403);
    assert.equal(denied.message, 'Resource not accessible by integration');
    assert.equal(
      await statusOf(
        gh.request('POST /app/installations/{installation_id}/access_tokens', {
          installation_id: app.installationId,
          repositories: [outside],
          headers: { authorization: `Bearer ${jwt}` },
        }),
      ),
      422,
      'a repository outside the installation',
    );
  });

  it('serves an app installed on several accounts: each repository names its installation, each token stays in its own', async () => {
    for (const name of ['shop', 'blog']) await github().createRepo({ owner: 'tenant-a', name });
    await github().createRepo({ owner: 'tenant-b', name: 'shop' });
    const app = github().createApp({
      installations: [{ account: 'tenant-a' }, { account: 'tenant-b', repos: ['tenant-b/shop'] }],
    });
    const [a, b] = app.installations.map((i) => i.id) as [number, number];
    assert.equal(app.installationId, a);
    assert.notEqual(a, b);
    const gh = new Octokit({ baseUrl: github().url, log: quiet });
    const auth = createAppAuth({ appId: app.appId, privateKey: app.privateKey, request: gh.request });
    const jwt = { authorization: `Bearer ${(await auth({ type: 'app' })).token}` };
    const installationOf = (owner: string, repo: string) =>
      gh.request('GET /repos/{owner}/{repo}/installation', { owner, repo, headers: jwt });
    const ofA = await installationOf('tenant-a', 'blog');
    assert.deepEqual([ofA.data.id, login(ofA.data.account), ofA.data.repository_selection], [a, 'tenant-a', 'all']);
    const ofB = await installationOf('tenant-b', 'shop');
    assert.deepEqual(
      [ofB.data.id, login(ofB.data.account), ofB.data.repository_selection],
      [b, 'tenant-b', 'selected'],
    );
    assert.notEqual(ofA.data.account?.id, ofB.data.account?.id);
    assert.equal(await statusOf(installationOf('tenant-c', 'shop')), 404, 'an account the app is not installed on');

    const tokenOf = async (installation_id: number, body: Record<string, unknown> = {}) =>
      (
        await gh.request('POST /app/installations/{installation_id}/access_tokens', {
          installation_id,
          ...body,
          headers: jwt,
        })
      ).data;
    // A token of tenant-a's installation, for all its repositories: the same name under tenant-b stays out of reach.
    const whole = octokitFor(github(), (await tokenOf(a)).token);
    assert.equal((await whole.rest.repos.get({ owner: 'tenant-a', repo: 'shop' })).status, 200);
    assert.equal(await statusOf(whole.rest.repos.get({ owner: 'tenant-b', repo: 'shop' })), 404);

    // Narrowed to one repository and two permissions: refused everywhere else, and for anything else.
    const narrowed = await tokenOf(a, { repositories: ['shop'], permissions: { contents: 'write', actions: 'read' } });
    assert.deepEqual(narrowed.permissions, { metadata: 'read', contents: 'write', actions: 'read' });
    assert.equal(narrowed.repository_selection, 'selected');
    const one = octokitFor(github(), narrowed.token);
    assert.equal((await one.rest.repos.getContent({ owner: 'tenant-a', repo: 'shop', path: 'README.md' })).status, 200);
    assert.equal(await statusOf(one.rest.repos.get({ owner: 'tenant-a', repo: 'blog' })), 404, 'another repository');
    assert.equal(await statusOf(one.rest.repos.get({ owner: 'tenant-b', repo: 'shop' })), 404, 'another tenant');
    const secrets = await errorOf(one.rest.actions.getRepoPublicKey({ owner: 'tenant-a', repo: 'shop' }));
    assert.deepEqual([secrets.status, secrets.message], [403, 'Resource not accessible by integration']);
    assert.equal(
      await statusOf(
        one.rest.actions.createWorkflowDispatch({ owner: 'tenant-a', repo: 'shop', workflow_id: 'x.yml', ref: 'main' }),
      ),
      403,
      'actions: read only',
    );

    // What an installation does not cover, or was not granted, is refused when the token is asked for.
    const refused = (installation: number, body: Record<string, unknown>) =>
      errorOf(tokenOf(installation, body)).then((e) => [e.status, e.message]);
    assert.deepEqual(await refused(b, { repositories: ['blog'] }), [
      422,
      'There is at least one repository that does not exist or is not accessible to the parent installation.',
    ]);
    const readOnly = github().addInstallation(app.appId, { account: 'tenant-c', permissions: { secrets: 'read' } });
    assert.deepEqual(await refused(readOnly.installationId, { permissions: { secrets: 'write' } }), [
      422,
      'The permissions requested are not granted to this installation.',
    ]);
    assert.equal(
      (await tokenOf(readOnly.installationId, { permissions: { secrets: 'read' } })).permissions?.secrets,
      'read',
    );
    assert.equal(await statusOf(tokenOf(999_999)), 404, 'not an installation of this app');

    // Uninstalled: the installation is gone, and its tokens stop working at once.
    github().removeInstallation(app.appId, a);
    assert.equal(await statusOf(whole.rest.repos.get({ owner: 'tenant-a', repo: 'shop' })), 401);
    assert.equal(await statusOf(installationOf('tenant-a', 'shop')), 404);
    assert.equal(await statusOf(tokenOf(a)), 404);
  });

  it('keeps one primary rate limit per installation, shared by its tokens', async () => {
    await github().createRepo({ owner: 'budget-a', name: 'app' });
    await github().createRepo({ owner: 'budget-b', name: 'app' });
    const app = github().createApp({ installations: [{ account: 'budget-a' }, { account: 'budget-b' }] });
    const [a, b] = app.installations.map((i) => i.id) as [number, number];
    const client = (installationId: number) =>
      new Octokit({
        authStrategy: createAppAuth,
        auth: { appId: app.appId, privateKey: app.privateKey, installationId },
        baseUrl: github().url,
        log: quiet,
      });
    const [ofA, ofB] = [client(a), client(b)];
    const get = (gh: Octokit, owner: string) => gh.rest.repos.get({ owner, repo: 'app' });
    const first = await get(ofA, 'budget-a');
    const second = await get(client(a), 'budget-a'); // another client: another token of the same installation
    assert.equal(Number(second.headers['x-ratelimit-used']), Number(first.headers['x-ratelimit-used']) + 1);
    assert.equal((await get(ofB, 'budget-b')).headers['x-ratelimit-used'], '1', 'installation b starts fresh');
    assert.equal(github().records.rateLimitedByInstallation[String(a)], 2);
    assert.equal(github().records.rateLimitedByInstallation[String(b)], 1);

    github().faults.exhaustRateLimit({ forMs: 60_000, installationId: a });
    try {
      const limited = await errorOf(get(ofA, 'budget-a'));
      assert.deepEqual([limited.status, limited.headers['x-ratelimit-remaining']], [403, '0']);
      assert.equal((await get(ofB, 'budget-b')).status, 200, 'the other installation is unaffected');
    } finally {
      github().faults.reset();
    }
  });

  it('refuses JWTs that are forged, expired, or for another installation', async () => {
    const app = github().createApp();
    const stranger = github().createApp();
    const tokenFor = (installationId: number, privateKey = app.privateKey) =>
      new Octokit({
        authStrategy: createAppAuth,
        auth: { appId: app.appId, privateKey, installationId },
        baseUrl: github().url,
        log: quiet,
      }).rest.rateLimit.get();
    const forged = await errorOf(tokenFor(app.installationId, stranger.privateKey));
    assert.equal(forged.status, 401);
    assert.match(forged.message, /could not be decoded/);
    assert.equal(await statusOf(tokenFor(stranger.installationId)), 404);

    const jwt = (claims: Record<string, unknown>) => {
      const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
      const unsigned = `${part({ alg: 'RS256', typ: 'JWT' })}.${part(claims)}`;
      return `${unsigned}.${createSign('RSA-SHA256').update(unsigned).sign(app.privateKey).toString('base64url')}`;
    };
    const exchange = (token: string) =>
      fetch(`${github().url}/app/installations/${app.installationId}/access_tokens`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
      });
    const now = Math.floor(Date.now() / 1000);
    assert.equal((await exchange(jwt({ iss: app.appId, iat: now - 30, exp: now + 540 }))).status, 201);
    const expired = await exchange(jwt({ iss: app.appId, iat: now - 1200, exp: now - 600 }));
    assert.equal(expired.status, 401);
    assert.match(((await expired.json()) as { message: string }).message, /'Expiration time' claim/);
    const tooLong = await exchange(jwt({ iss: app.appId, iat: now, exp: now + 3600 }));
    assert.equal(tooLong.status, 401);
    assert.equal((await exchange(jwt({ iss: '999999', iat: now, exp: now + 60 }))).status, 401, 'unknown app');
    assert.equal((await exchange('not.a.jwt')).status, 401);
  });

  it('reports the rate limit without spending it', async () => {
    const token = github().createToken();
    const gh = octokitFor(github(), token);
    const first = await gh.rest.rateLimit.get();
    const second = await gh.rest.rateLimit.get();
    assert.equal(first.data.resources.core.limit, 5000);
    assert.equal(second.data.resources.core.remaining, first.data.resources.core.remaining);
  });

  it('answers bad requests like GitHub and keeps serving', async () => {
    const name = await repo();
    const authorization = `token ${github().createToken()}`;
    const post = (path: string, body: string) =>
      fetch(`${github().url}${path}`, { method: 'POST', headers: { authorization }, body });
    const badJson = await post(`/repos/acme/${name}/actions/variables`, '{not json');
    assert.equal(badJson.status, 400);
    assert.equal(((await badJson.json()) as { message: string }).message, 'Problems parsing JSON');
    assert.equal((await post(`/repos/acme/${name}/actions/variables`, '[1,2]')).status, 400);
    const noRef = await post(`/repos/acme/${name}/actions/workflows/x.yml/dispatches`, '{}');
    assert.equal(noRef.status, 422);
    for (const [method, path] of [
      ['GET', '/nothing/here'],
      ['DELETE', `/repos/acme/${name}`],
      ['GET', `/repos/acme/${name}/contents/%E0%A4%A`],
    ] as const) {
      const res = await fetch(`${github().url}${path}`, { method, headers: { authorization } });
      assert.ok([400, 404].includes(res.status), `${method} ${path}: ${res.status}`);
      const body = (await res.json()) as { message: string; documentation_url: string };
      assert.ok(body.message && body.documentation_url, `${method} ${path} has GitHub's error shape`);
    }
    // Not even HTTP: the server answers 400 and stays up.
    const garbage = await new Promise<string>((resolve) => {
      const socket = connect(Number(new URL(github().url).port), '127.0.0.1', () => socket.write('NOT HTTP\r\n\r\n'));
      let text = '';
      socket.on('data', (d) => (text += d.toString()));
      socket.on('close', () => resolve(text));
    });
    assert.match(garbage, /^HTTP\/1\.1 400/);
    assert.equal((await fetch(`${github().url}/repos/acme/${name}`, { headers: { authorization } })).status, 200);
  });
});
