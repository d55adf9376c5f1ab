/**
 * The GitHub Actions backend against the GitHub emulator (a real HTTP server checked against GitHub's OpenAPI
 * description), through the same Octokit client production uses.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ApplicationFailure } from '@temporalio/activity';
import sodium from 'libsodium-wrappers';
import { createCiActivities } from '../../../src/activities/ci.ts';
import { toActivityFailure, withActivityFailures } from '../../../src/activities/failures.ts';
import type { PipelineSettings } from '../../../src/ci/backend.ts';
import { credentialFingerprint, gitBlobSha, GitHubActionsBackend } from '../../../src/ci/github/actions.ts';
import { createGitHubClient } from '../../../src/ci/github/octokit.ts';
import { pipelinePath, pushSecretNames, renderPipelineFile } from '../../../src/ci/github/pipeline-file.ts';
import { loadConfig } from '../../../src/config.ts';
import { ServiceError } from '../../../src/errors.ts';
import { validateManifest } from '../../../src/manifest/parse.ts';
import type { Application } from '../../../src/manifest/schema.ts';
import type { CiRunRef } from '../../../src/workflows/contract.ts';
import { useGitHubEmulator } from '../../helpers/github-emulator.ts';
import { eventually } from '../../helpers/stack.ts';

const CONTENTS = '/repos/{owner}/{repo}/contents/{path}';
const DISPATCH = 'POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches';
const RUN = 'GET /repos/{owner}/{repo}/actions/runs/{run_id}';

function app(name: string, source: Record<string, unknown> = {}): Application {
  return validateManifest({
    apiVersion: 'flui.dev/v1',
    kind: 'Application',
    metadata: { name },
    spec: { source: { repository: `acme/${name}`, ...source }, image: { repository: `127.0.0.1:5999/acme/${name}` } },
  }) as Application;
}

const credential = { registry: '127.0.0.1:5999', username: 'pusher', password: 'p4ssw0rd-not-in-results' };
/** The pipeline of a registry opted in to a static credential (the push method these tests store secrets for). */
const STATIC: PipelineSettings = { push: { method: 'static', registry: credential.registry } };

/** What a backend call threw (a service error), as the activities hand it to Temporal. */
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

/** What an activity threw: already the Temporal failure. */
async function activityFailure(p: Promise<unknown>): Promise<ApplicationFailure> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ApplicationFailure, `expected an ApplicationFailure, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a failure');
}

function seconds(delay: unknown): number {
  const m = /^(\d+) seconds$/.exec(String(delay));
  assert.ok(m, `nextRetryDelay should be "<n> seconds", got ${String(delay)}`);
  return Number(m[1]);
}

describe('GitHub Actions backend against the emulator', () => {
  const github = useGitHubEmulator({ runner: { queuedMs: 50, buildMs: 100 } });
  const env = (extra: Record<string, string> = {}) => loadConfig({ GITHUB_API_URL: github().url, ...extra }).github;
  const backend = (token = github().createToken(), extra: Record<string, string> = {}) =>
    new GitHubActionsBackend(env({ GITHUB_TOKEN: token, ...extra }));
  /** A repository of its own per test, so tests do not see each other's commits, secrets or runs. */
  async function repo(name: string, source: Record<string, unknown> = {}): Promise<Application> {
    const a = app(`${name}-${randomBytes(2).toString('hex')}`, source);
    await github().createRepo({ owner: 'acme', name: a.metadata.name });
    return a;
  }
  const used = (token: string) => github().records.rateLimited[token] ?? 0;
  /**
   * A backend whose client notes every request it sends with the answer's status, `METHOD /route status`: what
   * counts against the rate limit is everything but the 304s.
   */
  const logged = (token = github().createToken()) => {
    const config = env({ GITHUB_TOKEN: token });
    const client = createGitHubClient(config);
    const log: string[] = [];
    client.hook.wrap('request', async (request, options) => {
      const name = `${options.method} ${options.url}`;
      try {
        const res = await request(options);
        log.push(`${name} ${res.status}`);
        return res;
      } catch (err) {
        log.push(`${name} ${(err as { status?: number }).status ?? 'no answer'}`);
        throw err;
      }
    });
    const charged = () => log.filter((l) => !l.endsWith(' 304')).sort();
    return { ci: new GitHubActionsBackend(config, { client }), log, charged, token };
  };
  /** Polls like awaitRun (conditionally, on the last ETag) until the run completes; returns the polls made. */
  async function pollToCompletion(ci: GitHubActionsBackend, a: Application, run: CiRunRef, etag?: string) {
    for (let polls = 1; ; polls++) {
      const s = await ci.status(a, run, etag);
      etag = s.etag ?? etag;
      if (s.status?.state === 'completed') return polls;
      assert.ok(polls < 500, 'the run completes');
      await sleep(20);
    }
  }
  /** A person (or another tool) with their own token, changing the repository behind Flui's back. */
  const person = () => createGitHubClient(env({ GITHUB_TOKEN: github().createToken() }));
  const clearFaults = (t: TestContext) =>
    t.after(() => {
      github().faults.reset();
      github().hooks.before = undefined;
    });

  describe('ensurePipeline', () => {
    it('commits the file once, never again while it is current, and restores it after an edit', async () => {
      const a = await repo('once');
      const full = a.spec.source.repository;
      const token = github().createToken();
      const ci = backend(token);
      const first = await ci.ensurePipeline(a, STATIC);
      assert.equal(first.changed, true);
      assert.equal(first.path, pipelinePath(a));
      assert.match(first.commitSha ?? '', /^[a-f0-9]{40}$/);
      assert.equal(github().file(full, pipelinePath(a)), renderPipelineFile(a, STATIC));

      const before = used(token); // the write was read back: from here on the worker holds the file's ETag
      assert.deepEqual(await ci.ensurePipeline(a, STATIC), { path: pipelinePath(a), changed: false });
      for (let i = 0; i < 3; i++) assert.equal((await ci.ensurePipeline(a, STATIC)).changed, false);
      assert.equal(github().records.commits[`${full}:${pipelinePath(a)}`], 1, 'no second commit');
      assert.equal(used(token), before, 'an unchanged file is checked with free conditional requests');
      // A restarted worker has no ETags yet, and still commits nothing.
      assert.equal((await backend().ensurePipeline(a, STATIC)).changed, false);

      github().push(full, 'main', { [pipelinePath(a)]: 'name: edited by hand\n' });
      assert.equal((await ci.ensurePipeline(a, STATIC)).changed, true);
      assert.equal(github().file(full, pipelinePath(a)), renderPipelineFile(a, STATIC));
      assert.equal(github().records.commits[`${full}:${pipelinePath(a)}`], 2);
    });

    it('re-reads and retries when someone else writes the file between its read and its write', async (t) => {
      clearFaults(t);
      for (const existing of [true, false]) {
        const a = await repo(existing ? 'race-update' : 'race-create');
        const full = a.spec.source.repository;
        if (existing) github().push(full, 'main', { [pipelinePath(a)]: 'name: old\n' });
        let puts = 0;
        github().hooks.before = (info) => {
          if (info.method === 'PUT' && info.operation === CONTENTS && info.repo === full && ++puts === 1) {
            github().push(full, 'main', { [pipelinePath(a)]: 'name: written concurrently\n' });
          }
        };
        const result = await backend().ensurePipeline(a, STATIC);
        assert.equal(result.changed, true);
        assert.equal(puts, 2, 'the stale write (409, or 422 without sha) was retried once');
        assert.equal(github().file(full, pipelinePath(a)), renderPipelineFile(a, STATIC));
      }
    });

    it('writes to the branch the manifest names', async () => {
      const a = await repo('branchy', { branch: 'release/v2' });
      const full = a.spec.source.repository;
      github().push(full, 'release/v2', { 'README.md': 'release\n' });
      await backend().ensurePipeline(a, STATIC);
      assert.equal(github().file(full, pipelinePath(a), 'release/v2'), renderPipelineFile(a, STATIC));
      assert.equal(github().file(full, pipelinePath(a), 'main'), undefined);
    });

    it('in pull-request mode never writes the branch: proposes the file and fails the deploy until it is merged', async (t) => {
      const a = await repo('pr');
      const full = a.spec.source.repository;
      const token = github().createToken();
      const ci = backend(token, { FLUI_PIPELINE_UPDATE_MODE: 'pull-request' });
      // The deploy's activity: the backend proposes, the activity stops the deploy until the proposal is merged.
      const { ensureWorkflowFile } = withActivityFailures(
        createCiActivities(
          ci,
          loadConfig({
            FLUI_REGISTRY_PUSH: JSON.stringify({ [credential.registry]: { method: 'static' } }),
            REGISTRY_USERNAME: credential.username,
            REGISTRY_PASSWORD: credential.password,
            REGISTRY_HOST: credential.registry,
          }),
        ),
      );
      const proposal = `flui/pipeline-default.${a.metadata.name}-${gitBlobSha(renderPipelineFile(a, STATIC)).slice(0, 7)}`;
      const servesPulls = (
        await fetch(`${github().url}/repos/${full}/pulls`, { headers: { authorization: `token ${token}` } })
      ).ok;

      const first = await activityFailure(ensureWorkflowFile({ app: a }));
      assert.equal(first.nonRetryable, true);
      assert.equal(github().file(full, pipelinePath(a)), undefined, 'the app branch is untouched');
      assert.equal(github().file(full, pipelinePath(a), proposal), renderPipelineFile(a, STATIC));
      if (!servesPulls) {
        t.todo('the GitHub emulator serves no pulls API yet: the pull request itself is not checked');
        return;
      }
      assert.equal(first.type, 'Invalid');
      assert.match(first.message, /merge it, then run `flui retry/);
      const url = /(http\S+\/pull\/\d+)/.exec(first.message)?.[1];
      assert.ok(url, first.message);
      assert.deepEqual(first.details, [{ pullRequestUrl: url }], 'the pull request, for a caller to act on');
      assert.equal((await ci.ensurePipeline(a, STATIC)).pullRequestUrl, url, 'the backend reports the proposal');
      const second = await activityFailure(ensureWorkflowFile({ app: a }));
      assert.ok(second.message.includes(url), 'the same pull request is reused');
      assert.equal(github().records.commits[`${full}:${pipelinePath(a)}`], 1);

      github().push(full, 'main', { [pipelinePath(a)]: renderPipelineFile(a, STATIC) }, 'Merge the Flui pipeline');
      assert.equal((await ci.ensurePipeline(a, STATIC)).changed, false, 'merged: the deploy goes on');
    });
  });

  describe('ensureCredential', () => {
    it('writes both secrets once, then skips them for free until the credential changes', async () => {
      const a = await repo('cred');
      const full = a.spec.source.repository;
      const token = github().createToken();
      const ci = backend(token);
      const first = await ci.ensureCredential(a, credential);
      assert.equal(first.changed, true);
      const names = pushSecretNames(a);
      assert.deepEqual(github().secretNames(full).sort(), [names.password, names.username]);
      assert.match(names.password, /^FLUI_REGISTRY_PASSWORD_DEFAULT_CRED_[0-9A-F]{4}_[0-9A-F]{8}$/);
      assert.equal(github().records.secretWrites[full], 2);
      assert.doesNotMatch(JSON.stringify(first), /p4ssw0rd/);
      const variable = (await (
        await fetch(`${github().url}/repos/${full}/actions/variables/${pushSecretNames(a).fingerprint}`, {
          headers: { authorization: `token ${token}` },
        })
      ).json()) as { value: string };
      assert.match(
        variable.value,
        /^scrypt:[a-f0-9]{32};FLUI_REGISTRY_USERNAME_\w+=\S+Z;FLUI_REGISTRY_PASSWORD_\w+=\S+Z$/,
      );
      assert.equal(variable.value.split(';')[0], first.fingerprint);
      assert.doesNotMatch(variable.value, /p4ssw0rd/);

      const before = used(token); // the writes were read back: the worker holds the variable's and list's ETags
      const second = await ci.ensureCredential(a, credential);
      assert.deepEqual(second, { ...first, changed: false });
      assert.equal((await ci.ensureCredential(a, credential)).changed, false);
      assert.equal(used(token), before, 'variable and secrets checked with free conditional requests');
      assert.equal((await backend().ensureCredential(a, credential)).changed, false, 'a restarted worker skips too');
      assert.equal(github().records.secretWrites[full], 2);

      const rotated = await ci.ensureCredential(a, { ...credential, password: 'rotated' });
      assert.equal(rotated.changed, true);
      assert.notEqual(rotated.fingerprint, first.fingerprint);
      assert.equal(github().records.secretWrites[full], 4);
      assert.equal((await ci.ensureCredential(a, { ...credential, password: 'rotated' })).changed, false);
    });

    it("rewrites a secret deleted behind Flui's back on the next deploy, while the worker holds ETags and after a restart", async () => {
      const a = await repo('deleted');
      const full = a.spec.source.repository;
      const [owner, name] = full.split('/') as [string, string];
      const token = github().createToken();
      const ci = backend(token);
      assert.equal((await ci.ensureCredential(a, credential)).changed, true);
      const warm = used(token);
      assert.equal((await ci.ensureCredential(a, credential)).changed, false);
      assert.equal(used(token), warm, 'the worker holds the ETags of the variable and of the list of secrets');
      const writes = github().records.secretWrites[full]!;

      const someone = person();
      const remove = (secret_name: string) =>
        someone.request('DELETE /repos/{owner}/{repo}/actions/secrets/{secret_name}', {
          owner,
          repo: name,
          secret_name,
        });
      await remove(pushSecretNames(a).password);
      assert.equal(github().secretValue(full, pushSecretNames(a).password), undefined);
      assert.equal((await ci.ensureCredential(a, credential)).changed, true, 'the list changed: no 304, a rewrite');
      assert.equal(github().secretValue(full, pushSecretNames(a).password), credential.password);
      assert.equal(github().secretValue(full, pushSecretNames(a).username), credential.username);
      assert.equal(github().records.secretWrites[full], writes + 2);
      const before = used(token);
      assert.equal((await ci.ensureCredential(a, credential)).changed, false);
      assert.equal(used(token), before, 'after the rewrite the check is free again');

      await remove(pushSecretNames(a).username);
      assert.equal((await backend().ensureCredential(a, credential)).changed, true, 'a restarted worker notices too');
      assert.equal(github().secretValue(full, pushSecretNames(a).username), credential.username);
      assert.equal((await ci.ensureCredential(a, credential)).changed, false, 'and the first worker sees it current');
      assert.equal(github().records.secretWrites[full], writes + 4);
    });

    it('rewrites a secret someone else overwrote (its updated_at moved), and once more after the fingerprint-only format', async () => {
      const a = await repo('overwritten');
      const full = a.spec.source.repository;
      const [owner, name] = full.split('/') as [string, string];
      const token = github().createToken();
      const ci = backend(token);
      assert.equal((await ci.ensureCredential(a, credential)).changed, true);
      assert.equal((await ci.ensureCredential(a, credential)).changed, false);

      // GitHub's timestamps have whole seconds: an overwrite within the second of Flui's write would look the same.
      await sleep(1100);
      const someone = person();
      const key = (await someone.request('GET /repos/{owner}/{repo}/actions/secrets/public-key', { owner, repo: name }))
        .data;
      await sodium.ready;
      const sealed = sodium.to_base64(
        sodium.crypto_box_seal(
          sodium.from_string('someone-else'),
          sodium.from_base64(key.key, sodium.base64_variants.ORIGINAL),
        ),
        sodium.base64_variants.ORIGINAL,
      );
      await someone.request('PUT /repos/{owner}/{repo}/actions/secrets/{secret_name}', {
        owner,
        repo: name,
        secret_name: pushSecretNames(a).username,
        encrypted_value: sealed,
        key_id: key.key_id,
      });
      assert.equal(github().secretValue(full, pushSecretNames(a).username), 'someone-else');
      assert.equal((await ci.ensureCredential(a, credential)).changed, true);
      assert.equal(github().secretValue(full, pushSecretNames(a).username), credential.username);
      assert.equal((await ci.ensureCredential(a, credential)).changed, false);

      // What Flui wrote before the variable recorded timestamps: the fingerprint alone. Written once more, then current.
      const fingerprint = await credentialFingerprint(credential);
      await someone.request('PATCH /repos/{owner}/{repo}/actions/variables/{name}', {
        owner,
        repo: name,
        name: pushSecretNames(a).fingerprint,
        value: fingerprint,
      });
      const writes = github().records.secretWrites[full]!;
      assert.equal((await backend().ensureCredential(a, credential)).changed, true);
      assert.equal(github().records.secretWrites[full], writes + 2);
      assert.equal((await backend().ensureCredential(a, credential)).changed, false);
    });

    it('finds its secrets by name when the repository has more secrets than one page of the list', async () => {
      const a = await repo('many');
      const full = a.spec.source.repository;
      const token = github().createToken();
      const key = (await (
        await fetch(`${github().url}/repos/${full}/actions/secrets/public-key`, {
          headers: { authorization: `token ${token}` },
        })
      ).json()) as { key_id: string; key: string };
      await sodium.ready;
      const encrypted_value = sodium.to_base64(
        sodium.crypto_box_seal(sodium.from_string('x'), sodium.from_base64(key.key, sodium.base64_variants.ORIGINAL)),
        sodium.base64_variants.ORIGINAL,
      );
      // 100 secrets that sort before Flui's, so Flui's are not on the first page of 100.
      for (let i = 0; i < 100; i++) {
        const res = await fetch(
          `${github().url}/repos/${full}/actions/secrets/A_SECRET_${String(i).padStart(3, '0')}`,
          {
            method: 'PUT',
            headers: { authorization: `token ${token}`, 'content-type': 'application/json' },
            body: JSON.stringify({ encrypted_value, key_id: key.key_id }),
          },
        );
        assert.equal(res.status, 201);
      }
      const ci = backend(token);
      assert.equal((await ci.ensureCredential(a, credential)).changed, true);
      assert.equal((await backend().ensureCredential(a, credential)).changed, false, 'found on the second page');
      const before = used(token);
      assert.equal((await ci.ensureCredential(a, credential)).changed, false);
      assert.equal(used(token), before, 'by-name reads are conditional too');
      await person().request('DELETE /repos/{owner}/{repo}/actions/secrets/{secret_name}', {
        owner: 'acme',
        repo: a.metadata.name,
        secret_name: pushSecretNames(a).password,
      });
      assert.equal((await ci.ensureCredential(a, credential)).changed, true);
      assert.equal(github().secretValue(full, pushSecretNames(a).password), credential.password);
    });

    it("removes the shared password an older Flui stored, and this app's password once it pushes another way", async () => {
      const a = await repo('legacy');
      const full = a.spec.source.repository;
      const [owner, name] = full.split('/') as [string, string];
      const someone = person();
      const key = (await someone.request('GET /repos/{owner}/{repo}/actions/secrets/public-key', { owner, repo: name }))
        .data;
      await sodium.ready;
      const seal = (value: string) =>
        sodium.to_base64(
          sodium.crypto_box_seal(
            sodium.from_string(value),
            sodium.from_base64(key.key, sodium.base64_variants.ORIGINAL),
          ),
          sodium.base64_variants.ORIGINAL,
        );
      const storeLegacy = async () => {
        for (const secret_name of ['FLUI_REGISTRY_USERNAME', 'FLUI_REGISTRY_PASSWORD']) {
          await someone.request('PUT /repos/{owner}/{repo}/actions/secrets/{secret_name}', {
            owner,
            repo: name,
            secret_name,
            encrypted_value: seal('old-shared-password'),
            key_id: key.key_id,
          });
        }
      };
      const names = pushSecretNames(a);
      await storeLegacy();
      const ci = backend();
      assert.equal((await ci.ensureCredential(a, credential)).changed, true);
      assert.deepEqual(github().secretNames(full).sort(), [names.password, names.username].sort(), 'legacy gone');

      // The registry moves to a minted token (or OIDC): nothing is stored in prepare, and the password goes.
      await storeLegacy();
      const none = { registry: credential.registry, none: true as const };
      assert.deepEqual(await ci.ensureCredential(a, none), { changed: true });
      assert.deepEqual(github().secretNames(full), []);
      const token = github().createToken();
      const steady = backend(token);
      assert.deepEqual(await steady.ensureCredential(a, none), { changed: false });
      const before = used(token);
      await storeLegacy();
      assert.deepEqual(await steady.ensureCredential(a, none), { changed: false }, 'checked once per worker');
      assert.equal(used(token), before, 'and then no more requests');
      assert.deepEqual(await backend().ensureCredential(a, none), { changed: true }, 'a restarted worker removes it');
      assert.deepEqual(github().secretNames(full), []);
    });

    it('fingerprints deterministically, per registry and username, without showing the password', async () => {
      const fp = await credentialFingerprint(credential);
      assert.match(fp, /^scrypt:[a-f0-9]{32}$/);
      assert.equal(await credentialFingerprint({ ...credential }), fp);
      for (const change of [{ registry: 'ghcr.io' }, { username: 'other' }, { password: 'other' }]) {
        assert.notEqual(await credentialFingerprint({ ...credential, ...change }), fp);
      }
    });
  });

  describe('requests per deploy', () => {
    it('a steady-state deploy spends one rate-limited request (the dispatch) plus one per run state, even right after the first', async (t) => {
      clearFaults(t);
      const a = await repo('steady');
      const full = a.spec.source.repository;
      const { ci, log, charged, token } = logged();
      const prepare = () => Promise.all([ci.ensurePipeline(a, STATIC), ci.ensureCredential(a, credential)]);

      // The first deploy writes everything, each written resource read back once to learn its ETag.
      await prepare();
      assert.deepEqual(charged(), [
        'GET /repos/{owner}/{repo}/actions/secrets 200',
        'GET /repos/{owner}/{repo}/actions/secrets 200',
        'GET /repos/{owner}/{repo}/actions/secrets/public-key 200',
        'GET /repos/{owner}/{repo}/actions/variables/{name} 200',
        'GET /repos/{owner}/{repo}/actions/variables/{name} 404',
        `GET ${CONTENTS} 200`,
        `GET ${CONTENTS} 404`,
        'POST /repos/{owner}/{repo}/actions/variables 201',
        'PUT /repos/{owner}/{repo}/actions/secrets/{secret_name} 201',
        'PUT /repos/{owner}/{repo}/actions/secrets/{secret_name} 201',
        `PUT ${CONTENTS} 201`,
      ]);
      await pollToCompletion(ci, a, await ci.trigger(a, 'default.steady.k1'));

      // The second: file and credential checked with free 304s; only the dispatch counts before the polls.
      const commits = github().records.commits[`${full}:${pipelinePath(a)}`];
      const secretWrites = github().records.secretWrites[full];
      log.length = 0;
      const before = used(token);
      await prepare();
      assert.deepEqual(charged(), [], 'the checks of file, variable and secrets are all free');
      assert.deepEqual(log.sort(), [
        'GET /repos/{owner}/{repo}/actions/secrets 304',
        'GET /repos/{owner}/{repo}/actions/variables/{name} 304',
        `GET ${CONTENTS} 304`,
      ]);
      github().faults.keepQueued(true); // a run that waits long for a runner: polls of an unchanged run are free
      const run = await ci.trigger(a, 'default.steady.k2');
      assert.deepEqual(charged(), [`${DISPATCH} 200`]);
      const queued = await ci.status(a, run); // awaitRun's first poll has no ETag yet
      assert.equal(queued.status?.state, 'queued');
      for (let i = 0; i < 10; i++) assert.deepEqual(await ci.status(a, run, queued.etag), { etag: queued.etag });
      github().faults.keepQueued(false);
      await pollToCompletion(ci, a, run, queued.etag);
      const stateReads = charged().filter((l) => l.startsWith(`${RUN} `)).length;
      // queued, then completed, and in progress when a poll happens to see it: one full read per state seen.
      assert.ok(stateReads >= 2 && stateReads <= 3, `${stateReads} full reads of the run`);
      assert.equal(charged().length, 1 + stateReads, 'nothing but the dispatch and the run states');
      const perDeploy = used(token) - before;
      assert.equal(perDeploy, 1 + stateReads);
      assert.ok(perDeploy <= 4, `${perDeploy} rate-limited requests for a steady-state deploy (target ≤ 6)`);
      assert.equal(github().records.commits[`${full}:${pipelinePath(a)}`], commits, 'no commit');
      assert.equal(github().records.secretWrites[full], secretWrites, 'no secret written');

      // A restarted worker holds no ETags: one full read per resource, still no write.
      const cold = logged(token);
      await Promise.all([cold.ci.ensurePipeline(a, STATIC), cold.ci.ensureCredential(a, credential)]);
      await cold.ci.trigger(a, 'default.steady.k3');
      assert.deepEqual(cold.charged(), [
        'GET /repos/{owner}/{repo}/actions/secrets 200',
        'GET /repos/{owner}/{repo}/actions/variables/{name} 200',
        `GET ${CONTENTS} 200`,
        `${DISPATCH} 200`,
      ]);
      assert.equal(github().records.secretWrites[full], secretWrites);
    });
  });

  describe('requests per deploy with a minted token', () => {
    it('a steady-state deploy spends the token write, the dispatch and one request per run state (at most 6)', async (t) => {
      clearFaults(t);
      const a = await repo('minted');
      const { ci, log, charged, token } = logged();
      const settings: PipelineSettings = { push: { method: 'minted-token', registry: credential.registry } };
      const none = { registry: credential.registry, none: true as const };
      /** What the deploy's activities do: prepare, then store this deploy's token right before the dispatch. */
      const deploy = async (runKey: string) => {
        await Promise.all([ci.ensurePipeline(a, settings), ci.ensureCredential(a, none)]);
        await ci.ensureCredential(a, { registry: credential.registry, token: `token-for-${runKey}`, expiresAt: '' });
        return ci.trigger(a, runKey);
      };
      await pollToCompletion(ci, a, await deploy('default.minted.k1'));
      assert.equal(
        github().secretValue(a.spec.source.repository, pushSecretNames(a).token),
        'token-for-default.minted.k1',
      );

      log.length = 0;
      const before = used(token);
      const run = await deploy('default.minted.k2');
      assert.deepEqual(charged(), [`${DISPATCH} 200`, 'PUT /repos/{owner}/{repo}/actions/secrets/{secret_name} 204']);
      const polls = await pollToCompletion(ci, a, run);
      assert.ok(polls >= 1);
      const perDeploy = used(token) - before;
      const stateReads = charged().filter((l) => l.startsWith(`${RUN} `)).length;
      assert.equal(perDeploy, 2 + stateReads);
      assert.ok(perDeploy <= 6, `${perDeploy} rate-limited requests for a steady-state deploy (target ≤ 6)`);
      assert.equal(
        github().secretValue(a.spec.source.repository, pushSecretNames(a).token),
        'token-for-default.minted.k2',
      );
    });
  });

  describe('runs', () => {
    it('finds a dispatched run by its name after a crash instead of dispatching twice', async () => {
      const a = await repo('runs');
      const full = a.spec.source.repository;
      const ci = backend();
      assert.equal(await ci.findRun(a, 'default.x.k1'), undefined, 'no pipeline on the branch yet: nothing to find');
      await ci.ensurePipeline(a, STATIC);
      assert.equal(await ci.findRun(a, 'default.x.k1'), undefined);
      const run = await ci.trigger(a, 'default.x.k1');
      assert.match(run.htmlUrl, /\/actions\/runs\/\d+$/);
      // The worker dies before the workflow records `run`; the retried activity, on a new worker, looks first.
      assert.deepEqual(await backend().findRun(a, 'default.x.k1'), run);
      const retried = await ci.trigger(a, 'default.x.k1/2'); // a `flui retry` is another run key
      assert.notEqual(retried.id, run.id);
      assert.deepEqual(await ci.findRun(a, 'default.x.k1'), run);
      assert.deepEqual(await ci.findRun(a, 'default.x.k1/2'), retried);
      assert.equal(github().records.dispatches[full], 2);
      assert.deepEqual(
        github()
          .runs(full)
          .map((r) => r.displayTitle),
        ['flui default.x.k1', 'flui default.x.k1/2'],
      );
    });

    it('finds the run by name when the server answers a dispatch with 204 (no run details)', async () => {
      const a = await repo('nodetails');
      const full = a.spec.source.repository;
      const config = env({ GITHUB_TOKEN: github().createToken() });
      const client = createGitHubClient(config);
      // What an older server (GHES) does: it knows no return_run_details, so the emulator answers 204.
      client.hook.before('request', (options) => {
        delete (options as Record<string, unknown>).return_run_details;
      });
      const ci = new GitHubActionsBackend(config, { client });
      await ci.ensurePipeline(a, STATIC);
      const run = await ci.trigger(a, 'default.nodetails.k2');
      const [only] = github().runs(full);
      assert.equal(run.id, String(only!.id));
      assert.equal(github().records.dispatches[full], 1);
    });

    it('reads status with conditional requests that cost no rate limit, and maps it', async () => {
      const a = await repo('status');
      const token = github().createToken();
      const ci = backend(token);
      await ci.ensurePipeline(a, STATIC);
      const run = await ci.trigger(a, 'default.status.k3');
      const first = await ci.status(a, run);
      assert.ok(first.etag);
      assert.ok(first.status);
      const done = await eventually(
        async () => {
          const s = await ci.status(a, run);
          return s.status?.state === 'completed' ? s : undefined;
        },
        10_000,
        'run completion',
      );
      assert.equal(done.status?.state, 'completed');
      if (done.status?.state === 'completed') {
        assert.equal(done.status.result.headSha, github().runs(a.spec.source.repository)[0]!.headSha);
        assert.equal(done.status.result.htmlUrl, run.htmlUrl);
      }
      const [before, free] = [used(token), github().records.notModified];
      assert.deepEqual(await ci.status(a, run, done.etag), { etag: done.etag }, '304: nothing new');
      assert.equal(github().records.notModified, free + 1);
      assert.equal(used(token), before);
      assert.equal(await ci.logsUrl(a, run), run.htmlUrl);
    });

    it('cancels a queued run, and cancelling a finished run is a no-op', async (t) => {
      clearFaults(t);
      const a = await repo('cancel');
      const ci = backend();
      await ci.ensurePipeline(a, STATIC);
      github().faults.keepQueued(true);
      const run = await ci.trigger(a, 'default.cancel.k4');
      assert.equal((await ci.status(a, run)).status?.state, 'queued');
      await ci.cancel(a, run);
      const s = await ci.status(a, run);
      assert.equal(s.status?.state === 'completed' && s.status.result.conclusion, 'cancelled');
      await ci.cancel(a, run); // 409 from GitHub: already completed
      assert.equal(github().records.cancels, 1);
    });
  });

  describe('failures', () => {
    it('maps refusals to non-retryable failures that say what to fix and never show the token', async () => {
      const a = await repo('denied');
      const bad = await failure(backend('github_pat_wrong0123456789').ensurePipeline(a, STATIC));
      assert.equal(bad.type, 'Unauthorized');
      assert.equal(bad.nonRetryable, true);
      assert.match(bad.message, /acme\/denied-\w+.*\(401 Bad credentials\): check GITHUB_TOKEN/);
      assert.doesNotMatch(bad.message, /github_pat_wrong/);

      const hidden = await failure(backend(github().createToken({ repos: ['acme/other'] })).ensurePipeline(a, STATIC));
      assert.equal(hidden.type, 'NotFound');
      assert.equal(hidden.nonRetryable, true);
      assert.match(hidden.message, /404.*check the repository name/);

      const noWorkflow = await failure(backend().trigger(a, 'default.denied.k5'));
      assert.equal(noWorkflow.type, 'NotFound');

      const b = await repo('nobranch', { branch: 'does-not-exist' });
      await backend().ensurePipeline(app(b.metadata.name), STATIC); // the file is on main, the manifest names another branch
      const invalid = await failure(backend().trigger(b, 'default.nobranch.k6'));
      assert.equal(invalid.type, 'Invalid');
      assert.equal(invalid.nonRetryable, true);
      assert.match(invalid.message, /422 No ref found for: does-not-exist/);
    });

    it('works with GitHub App credentials, and names the app settings when they are wrong', async () => {
      const a = await repo('app');
      const { appId, privateKey, installationId } = github().createApp();
      const appEnv = { GITHUB_APP_ID: appId, GITHUB_APP_PRIVATE_KEY: privateKey };
      const ci = new GitHubActionsBackend(env({ ...appEnv, GITHUB_APP_INSTALLATION_ID: String(installationId) }));
      assert.equal((await ci.ensurePipeline(a, STATIC)).changed, true);
      assert.equal((await ci.ensureCredential(a, credential)).changed, true);

      const other = github().createApp();
      const wrongKey = new GitHubActionsBackend(
        env({
          ...appEnv,
          GITHUB_APP_PRIVATE_KEY: other.privateKey,
          GITHUB_APP_INSTALLATION_ID: String(installationId),
        }),
      );
      const refused = await failure(wrongKey.ensurePipeline(a, STATIC));
      assert.equal(refused.nonRetryable, true);
      assert.match(refused.message, /GITHUB_APP_ID/);
      assert.doesNotMatch(refused.message, /PRIVATE KEY-----/);

      const notInstalled = await failure(
        new GitHubActionsBackend(env({ ...appEnv, GITHUB_APP_INSTALLATION_ID: '999999' })).ensurePipeline(a, STATIC),
      );
      assert.equal(notInstalled.type, 'Unauthorized');
      assert.match(notInstalled.message, /installation token .*\(404 .*GITHUB_APP_INSTALLATION_ID/);
    });

    it('waits out short rate limits in place and hands long ones back to Temporal with the wait', async (t) => {
      clearFaults(t);
      const a = await repo('limited');
      const ci = backend();

      github().faults.secondaryLimit({ count: 1, retryAfterSeconds: 1 });
      assert.equal((await ci.ensurePipeline(a, STATIC)).changed, true, 'a 1 s secondary limit is slept in place');

      github().faults.secondaryLimit({ count: 10, retryAfterSeconds: 90 });
      const secondary = await failure(ci.ensurePipeline(a, STATIC));
      github().faults.reset();
      assert.equal(secondary.type, 'GitHubRateLimited');
      assert.equal(secondary.nonRetryable, false);
      assert.equal(seconds(secondary.nextRetryDelay), 90);

      const overLimit = () => github().records.requestsOverLimit;
      const sentOverLimit = overLimit();
      github().faults.exhaustRateLimit({ forMs: 120_000 });
      const primary = await failure(ci.ensureCredential(a, credential));
      github().faults.reset();
      assert.equal(primary.type, 'GitHubRateLimited');
      const wait = seconds(primary.nextRetryDelay);
      assert.ok(wait >= 100 && wait <= 121, `waits until the reset, ~120 s: ${wait}`);
      assert.doesNotMatch(primary.message, /p4ssw0rd/);
      // ensureCredential reads the variable and the secrets at once: both find the limit, neither retries into it.
      assert.equal(overLimit(), sentOverLimit + 2, 'only the requests that found the limit, no retries into it');

      github().faults.exhaustRateLimit({ forMs: 1_500 });
      assert.equal((await ci.ensureCredential(a, credential)).changed, true, 'a limit resetting in 2 s is slept');
      assert.equal(overLimit(), sentOverLimit + 4, 'the retries waited for the reset');
    });

    it('makes outages and connection resets retryable', async (t) => {
      clearFaults(t);
      const a = await repo('outage');
      github().faults.outage({ forMs: 60_000 });
      const down = await failure(backend().ensurePipeline(a, STATIC));
      assert.equal(down.nonRetryable, false);
      assert.match(down.message, /503/);
      github().faults.outage({ mode: 'reset', forMs: 60_000 });
      const reset = await failure(backend().status(a, { id: '1', htmlUrl: '' }));
      assert.equal(reset.nonRetryable, false);
      github().faults.reset();
      assert.equal((await backend().ensurePipeline(a, STATIC)).changed, true);
    });
  });
});
