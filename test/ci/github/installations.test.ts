/**
 * One GitHub App installed by many accounts (tenants), served by one worker configured without an installation id:
 * the GitHub Actions backend, through the production clients, against the emulator's several installations. Each
 * repository's installation is looked up once; each request carries a token of that installation narrowed to the
 * one repository and the backend's permissions; tokens are remembered until shortly before they expire; and each
 * installation's rate limit is its own.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ApplicationFailure } from '@temporalio/activity';
import type { RequestInfo } from '@flui/github-emulator';
import { Octokit } from '@octokit/rest';
import { toActivityFailure } from '../../../src/activities/failures.ts';
import { GitHubActionsBackend } from '../../../src/ci/github/actions.ts';
import { pipelinePath, pushSecretNames } from '../../../src/ci/github/pipeline-file.ts';
import { loadConfig } from '../../../src/config.ts';
import { ServiceError } from '../../../src/errors.ts';
import { validateManifest } from '../../../src/manifest/parse.ts';
import type { Application } from '../../../src/manifest/schema.ts';
import type { CiRunRef } from '../../../src/workflows/contract.ts';
import { useGitHubEmulator } from '../../helpers/github-emulator.ts';
import type { PipelineSettings } from '../../../src/ci/backend.ts';

const LOOKUP = 'GET /repos/{owner}/{repo}/installation';
const TOKEN = 'POST /app/installations/{installation_id}/access_tokens';
const credential = { registry: '127.0.0.1:5999', username: 'pusher', password: 'p4ssw0rd-not-in-results' };
/** The pipeline pushes with a stored password (the credential above). */
const STATIC: PipelineSettings = { push: { method: 'static', registry: credential.registry } };
/** What the backend's tokens carry in commit mode: exactly these, on one repository. */
const BACKEND_PERMISSIONS = {
  contents: 'write',
  actions: 'write',
  secrets: 'write',
  variables: 'write',
  pull_requests: 'none',
  metadata: 'read',
};

/** What a backend call threw, as the activities hand it to Temporal. */
async function failure(p: Promise<unknown>): Promise<ApplicationFailure> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ServiceError, `expected a ServiceError, got ${String(err)}`);
    const f = toActivityFailure(err);
    assert.ok(f instanceof ApplicationFailure);
    return f;
  }
  assert.fail('expected a failure');
}

describe('one GitHub App, many installations', () => {
  const github = useGitHubEmulator({ runner: { queuedMs: 50, buildMs: 100 } });
  const suffix = () => randomBytes(2).toString('hex');

  /** Two tenants with an installation each of a new app, and a repository each (acme-corp has a second one). */
  async function tenants(spec: { tokenExpiresInMs?: number } = {}) {
    const [acme, globex] = [`acme-corp-${suffix()}`, `globex-${suffix()}`];
    const repos = { shop: `${acme}/shop`, blog: `${acme}/blog`, theirs: `${globex}/shop` };
    for (const full of Object.values(repos)) {
      const [owner, name] = full.split('/') as [string, string];
      await github().createRepo({ owner, name });
    }
    const app = github().createApp({ installations: [{ account: acme }, { account: globex }], ...spec });
    const [acmeInstallation, globexInstallation] = app.installations.map((i) => i.id) as [number, number];
    const config = (extra: Record<string, string> = {}) =>
      loadConfig({
        GITHUB_API_URL: github().url,
        GITHUB_APP_ID: app.appId,
        GITHUB_APP_PRIVATE_KEY: app.privateKey,
        ...extra,
      }).github;
    return { app, repos, acmeInstallation, globexInstallation, config };
  }

  function application(repository: string): Application {
    return validateManifest({
      apiVersion: 'flui.dev/v1',
      kind: 'Application',
      metadata: { name: repository.split('/')[1]! },
      spec: { source: { repository }, image: { repository: `127.0.0.1:5999/${repository}` } },
    }) as Application;
  }

  /** Every request that reached a handler, with the credential it carried (the emulator's view) and when. */
  function watch(t: TestContext): (RequestInfo & { at: number })[] {
    const seen: (RequestInfo & { at: number })[] = [];
    github().hooks.before = (info) => void seen.push({ ...info, at: performance.now() });
    t.after(() => {
      github().hooks.before = undefined;
      github().faults.reset();
    });
    return seen;
  }

  const count = (operation: string) => github().records.operations[operation] ?? 0;
  const charged = (installation: number) => github().records.rateLimitedByInstallation[String(installation)] ?? 0;

  async function pollToCompletion(ci: GitHubActionsBackend, a: Application, run: CiRunRef) {
    let etag: string | undefined;
    for (let polls = 1; ; polls++) {
      const s = await ci.status(a, run, etag);
      etag = s.etag ?? etag;
      if (s.status?.state === 'completed') return;
      assert.ok(polls < 500, 'the run completes');
      await sleep(20);
    }
  }

  /** A deploy's GitHub part: the file, the credential, the dispatch, polls until the run completes. */
  async function deploy(ci: GitHubActionsBackend, a: Application, key: string) {
    await Promise.all([ci.ensurePipeline(a, STATIC), ci.ensureCredential(a, credential)]);
    await pollToCompletion(ci, a, await ci.trigger(a, key));
  }

  it('deploys two tenants through one worker config with no installation id, each with its own narrowed tokens', async (t) => {
    const { repos, acmeInstallation, globexInstallation, config } = await tenants();
    const seen = watch(t);
    const ci = new GitHubActionsBackend(config());
    const [mine, theirs] = [application(repos.shop), application(repos.theirs)];
    await Promise.all([deploy(ci, mine, 'default.shop.k1'), deploy(ci, theirs, 'default.shop.k2')]);

    for (const [a, installation] of [
      [mine, acmeInstallation],
      [theirs, globexInstallation],
    ] as const) {
      const full = a.spec.source.repository;
      assert.ok(github().file(full, pipelinePath(a)), `${full} has its pipeline`);
      const names = pushSecretNames(a);
      assert.deepEqual(github().secretNames(full).sort(), [names.password, names.username]);
      assert.equal(github().runs(full).length, 1);
      const requests = seen.filter((r) => r.repo === full);
      assert.ok(requests.length >= 8, `${requests.length} requests for ${full}`);
      for (const { credential: c } of requests) {
        assert.equal(c?.kind, 'installation');
        assert.equal(c.installationId, installation, `${full} is served by its own tenant's installation`);
        assert.deepEqual(c.repos, [full], 'each token reaches that one repository');
        assert.deepEqual(c.permissions, BACKEND_PERMISSIONS, 'and does only what the backend needs');
      }
      assert.ok(charged(installation) > 0, "the requests count against the tenant's own installation");
    }
    assert.equal(count(LOOKUP) >= 2, true);
    assert.equal(github().contract.violations.length, 0);
  });

  it('asks for pull-request permission only in pull-request mode', async (t) => {
    const { repos, config } = await tenants();
    const seen = watch(t);
    const proposing = new GitHubActionsBackend(config({ FLUI_PIPELINE_UPDATE_MODE: 'pull-request' }));
    const result = await proposing.ensurePipeline(application(repos.shop), STATIC);
    assert.ok(result.pullRequestUrl, 'the file is proposed');
    assert.ok(seen.some((r) => r.operation === '/repos/{owner}/{repo}/pulls' && r.method === 'POST'));
    for (const { credential: c } of seen) {
      assert.deepEqual(c?.permissions, { ...BACKEND_PERMISSIONS, pull_requests: 'write' });
    }
  });

  it("keeps one tenant's token off another tenant's repository", async (t) => {
    const { repos, acmeInstallation, config } = await tenants();
    const seen = watch(t);
    const mine = application(repos.shop);
    await new GitHubActionsBackend(config()).ensurePipeline(mine, STATIC);
    const token = seen.find((r) => r.repo === repos.shop)?.credential?.token;
    assert.ok(token, 'the backend sent a token');

    // The token the product used for acme-corp/shop, tried elsewhere as a thief (or a bug) would.
    const thief = new Octokit({
      auth: token,
      baseUrl: github().url,
      log: { debug() {}, info() {}, warn() {}, error() {} },
    });
    const [theirOwner, theirName] = repos.theirs.split('/') as [string, string];
    const [mineOwner] = repos.shop.split('/') as [string, string];
    const status = (p: Promise<unknown>) =>
      p.then(
        () => 200,
        (err: { status?: number }) => err.status,
      );
    const put = (owner: string, repo: string) =>
      status(
        thief.rest.repos.createOrUpdateFileContents({ owner, repo, path: 'pwned.txt', message: 'x', content: 'eA==' }),
      );
    assert.equal(await put(theirOwner, theirName), 404, "another tenant's repository (even one named alike)");
    assert.equal(await status(thief.rest.repos.get({ owner: theirOwner, repo: theirName })), 404);
    assert.equal(await put(mineOwner, 'blog'), 404, "another repository of the same tenant's installation");
    assert.equal(
      await status(thief.rest.pulls.list({ owner: mineOwner, repo: 'shop' })),
      403,
      'no permission the backend does not need (pull requests, in commit mode)',
    );

    // The product client pinned to acme-corp's installation, asked to deploy globex's repository, writes nothing.
    const pinned = new GitHubActionsBackend(config({ GITHUB_APP_INSTALLATION_ID: String(acmeInstallation) }));
    const refused = await failure(pinned.ensurePipeline(application(repos.theirs), STATIC));
    assert.equal(refused.nonRetryable, true);
    assert.equal(github().file(repos.theirs, pipelinePath(application(repos.theirs))), undefined);
    assert.equal(github().file(repos.theirs, 'pwned.txt'), undefined);
    assert.equal(github().file(repos.blog, 'pwned.txt'), undefined);
    const foreign = await failure(pinned.ensurePipeline(application(`${theirOwner}/only-${suffix()}`), STATIC));
    assert.equal(foreign.nonRetryable, true);
  });

  it('looks each repository up once, and asks for its token once until shortly before it expires', async (t) => {
    // Tokens that live 5 minutes and 5 seconds: renewed 5 minutes before they expire, so after 4 to 5 seconds
    // (GitHub's expiry has whole seconds). Writes unpaced, so that the calls before take well under that.
    const { repos, config } = await tenants({ tokenExpiresInMs: 5 * 60_000 + 5_000 });
    const seen = watch(t);
    const ci = new GitHubActionsBackend(config({ GITHUB_WRITE_INTERVAL_MS: '0' }));
    const [lookups, tokens] = [count(LOOKUP), count(TOKEN)];
    const [mine, theirs] = [application(repos.shop), application(repos.theirs)];
    for (const a of [mine, theirs]) {
      const run = await ci.trigger(a, 'default.x.k1').catch(() => undefined); // no pipeline yet: refused
      assert.equal(run, undefined);
      await ci.ensurePipeline(a, STATIC);
      await ci.ensureCredential(a, credential);
      const dispatched = await ci.trigger(a, 'default.x.k2');
      for (let i = 0; i < 3; i++) await ci.status(a, dispatched);
      assert.deepEqual(await ci.findRun(a, 'default.x.k2'), dispatched);
    }
    assert.equal(count(LOOKUP) - lookups, 2, 'one installation lookup per repository');
    assert.equal(count(TOKEN) - tokens, 2, 'one token per repository, for some twenty requests');
    const tokenOf = (full: string) => [...seen].reverse().find((r) => r.repo === full)?.credential?.token;
    const first = tokenOf(repos.shop);

    await sleep(5_500);
    await ci.ensurePipeline(mine, STATIC);
    assert.equal(count(TOKEN) - tokens, 3, 'a token five minutes from its expiry is renewed');
    assert.equal(count(LOOKUP) - lookups, 2, 'the installation is still known');
    assert.notEqual(tokenOf(repos.shop), first);
    await ci.ensurePipeline(mine, STATIC);
    assert.equal(count(TOKEN) - tokens, 3, 'and the new one remembered');
  });

  it("keeps each installation's rate limit its own: one tenant out of requests does not stop another", async (t) => {
    const { repos, acmeInstallation, globexInstallation, config } = await tenants();
    watch(t);
    const ci = new GitHubActionsBackend(config());
    const [mine, theirs] = [application(repos.shop), application(repos.theirs)];
    github().faults.exhaustRateLimit({ forMs: 120_000, installationId: acmeInstallation });
    const limited = await failure(ci.ensurePipeline(mine, STATIC));
    assert.equal(limited.type, 'GitHubRateLimited');
    const wait = Number(/^(\d+) seconds$/.exec(String(limited.nextRetryDelay))?.[1]);
    assert.ok(wait >= 100 && wait <= 121, `acme-corp waits for its own reset, ~120 s: ${wait}`);

    const before = charged(globexInstallation);
    const started = performance.now();
    assert.equal((await ci.ensurePipeline(theirs, STATIC)).changed, true, 'globex deploys meanwhile');
    assert.ok(performance.now() - started < 5_000, 'without waiting behind acme-corp');
    assert.ok(charged(globexInstallation) > before);
    assert.equal(charged(acmeInstallation), 0, 'acme-corp spent nothing while out of requests');
  });

  it("paces each installation's writes on their own: one tenant's commit never waits for another's", async (t) => {
    const { repos, config } = await tenants();
    const seen = watch(t);
    const ci = new GitHubActionsBackend(config({ GITHUB_WRITE_INTERVAL_MS: '2000' }));
    const [mine, theirs] = [application(repos.shop), application(repos.theirs)];
    const results = await Promise.all([ci.ensurePipeline(mine, STATIC), ci.ensurePipeline(theirs, STATIC)]);
    assert.deepEqual(
      results.map((r) => r.changed),
      [true, true],
    );
    const commits = seen.filter((r) => r.method === 'PUT').map((r) => r.at);
    assert.equal(commits.length, 2);
    // Sharing one queue, the second commit would start two seconds after the first.
    const gap = Math.abs(commits[1]! - commits[0]!);
    assert.ok(gap < 1_000, `the two tenants' commits arrived ${Math.round(gap)} ms apart`);
  });

  it('finds a reinstalled app without a restart, and says when the app is not installed', async (t) => {
    const { app, repos, acmeInstallation, config } = await tenants();
    const seen = watch(t);
    const ci = new GitHubActionsBackend(config());
    const mine = application(repos.shop);
    await ci.ensurePipeline(mine, STATIC);
    const lookups = count(LOOKUP);

    // Reinstalled: the old installation and its tokens are gone; the remembered token gets a 401.
    const [account] = repos.shop.split('/') as [string, string];
    github().removeInstallation(app.appId, acmeInstallation);
    const { installationId } = github().addInstallation(app.appId, { account });
    await ci.ensureCredential(mine, credential);
    assert.equal(count(LOOKUP) - lookups, 1, 'looked up again after the 401');
    assert.equal(seen.at(-1)?.credential?.installationId, installationId);

    github().removeInstallation(app.appId, installationId);
    const gone = await failure(ci.ensurePipeline(application(repos.blog), STATIC));
    assert.equal(gone.type, 'NotFound');
    assert.match(gone.message, /GitHub App is not installed on acme-corp-\w+\/blog.*install the app/);
  });

  it('looks the installation up again when GitHub refuses a token for the one it remembers', async (t) => {
    // Tokens renewed after a second at most: the next call asks for a token of the remembered installation.
    const { app, repos, acmeInstallation, config } = await tenants({ tokenExpiresInMs: 5 * 60_000 + 1_000 });
    const seen = watch(t);
    const ci = new GitHubActionsBackend(config());
    const mine = application(repos.shop);
    await ci.ensurePipeline(mine, STATIC);
    const [lookups, tokens] = [count(LOOKUP), count(TOKEN)];
    const [account] = repos.shop.split('/') as [string, string];
    github().removeInstallation(app.appId, acmeInstallation);
    const { installationId } = github().addInstallation(app.appId, { account });
    await sleep(1_100);
    assert.equal((await ci.ensurePipeline(mine, STATIC)).changed, false);
    assert.equal(count(TOKEN) - tokens, 2, 'refused (404) for the old installation, then given for the new one');
    assert.equal(count(LOOKUP) - lookups, 1);
    assert.equal(seen.at(-1)?.credential?.installationId, installationId);
  });

  it('spends no more rate-limited requests per steady-state deploy than a token does (≤ 6)', async (t) => {
    const { repos, acmeInstallation, config } = await tenants();
    watch(t);
    const ci = new GitHubActionsBackend(config());
    const mine = application(repos.shop);
    await deploy(ci, mine, 'default.shop.k1');
    const [before, lookups, tokens] = [charged(acmeInstallation), count(LOOKUP), count(TOKEN)];
    await deploy(ci, mine, 'default.shop.k2');
    const perDeploy = charged(acmeInstallation) - before;
    process.stdout.write(
      `# steady-state deploy with GitHub App credentials: ${perDeploy} rate-limited requests, ` +
        `${count(LOOKUP) - lookups} installation lookups, ${count(TOKEN) - tokens} token requests\n`,
    );
    assert.ok(perDeploy >= 3 && perDeploy <= 4, `the dispatch and one read per run state: ${perDeploy}`);
    assert.equal(count(LOOKUP) - lookups, 0, 'the installation is remembered');
    assert.equal(count(TOKEN) - tokens, 0, 'the token is remembered');
  });
});
