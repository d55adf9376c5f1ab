/**
 * How an app's CI gets the right to push, end to end: the deploy's CI activities (ensureWorkflowFile,
 * ensureRegistryCredential, triggerRun) against the GitHub emulator, whose runner executes the generated file and pushes
 * to real registries: one with a password (htpasswd, opted in as `static`) and one in token mode trusting Flui's
 * certificate (`minted-token`). Two apps of one repository push to the two registries without touching each other's
 * secrets; with a GitHub Environment configured, the secrets live in it and the job runs in it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GitHubActionsBackend } from '../../../src/ci/github/actions.ts';
import { pipelinePath, pushSecretNames } from '../../../src/ci/github/pipeline-file.ts';
import { loadConfig } from '../../../src/config.ts';
import type { Application } from '../../../src/manifest/schema.ts';
import { headManifest } from '../../../src/registry/oci.ts';
import { ciImageTag } from '../../../src/workflows/contract.ts';
import { useGitHubEmulator } from '../../helpers/github-emulator.ts';
import {
  assertMintedClaims,
  assertTokenRefused,
  ciDeployer,
  fluiSigningFiles,
  PUSH_CREDENTIALS as credentials,
  pushApp as app,
  pushSettingsEnv,
  usePushRegistries,
} from '../../helpers/push-credentials.ts';

const flui = await fluiSigningFiles();

describe('push credentials, from the worker to a real registry through the emulated CI', () => {
  const registries = usePushRegistries(flui);
  const [passwordRegistry, tokenRegistry] = [registries.password, registries.token];
  const github = useGitHubEmulator();
  let n = 0;

  function setup(extra: Record<string, string> = {}) {
    const config = loadConfig({
      GITHUB_API_URL: github().url,
      GITHUB_TOKEN: github().createToken(),
      GITHUB_WRITE_INTERVAL_MS: '0',
      ...pushSettingsEnv({ password: passwordRegistry(), token: tokenRegistry() }, flui),
      ...extra,
    });
    const ci = new GitHubActionsBackend(config.github);
    return { config, deploy: ciDeployer(ci, config) };
  }

  async function monorepo(): Promise<{ full: string; api: Application; worker: Application }> {
    const name = `mono${++n}`;
    const full = `acme/${name}`;
    await github().createRepo({
      owner: 'acme',
      name,
      files: { Dockerfile: 'FROM scratch\nCOPY . /\n', 'main.go': 'package main\n' },
    });
    return {
      full,
      api: app(`api${n}`, full, `${passwordRegistry().host}/acme/api${n}`),
      worker: app(`worker${n}`, full, `${tokenRegistry().host}/acme/worker${n}`),
    };
  }

  it('two apps of one repository push to two registries, each with its own secrets, and deploy what their run pushed', async () => {
    const { full, api, worker } = await monorepo();
    const { deploy } = setup();
    const [a, b] = await Promise.all([deploy(api, 'default.api.k1'), deploy(worker, 'default.worker.k1')]);
    for (const [r, what] of [
      [a, 'api'],
      [b, 'worker'],
    ] as const) {
      const log = github()
        .runs(full)
        .find((x) => x.id === Number(r.run.id))
        ?.log.join('\n');
      assert.equal(r.done.conclusion, 'success', `${what}: ${log}`);
    }
    assert.notEqual(pipelinePath(api), pipelinePath(worker));

    // The api's run pushed with the password, the worker's with a token for its own repository only.
    const apiImage = `${api.spec.image.repository}:${ciImageTag('default.api.k1')}`;
    const workerImage = `${worker.spec.image.repository}:${ciImageTag('default.worker.k1')}`;
    assert.match((await headManifest(apiImage, { credentials })).digest, /^sha256:/);
    const apiRun = github()
      .runs(full)
      .find((x) => x.id === Number(a.run.id))!;
    const workerRun = github()
      .runs(full)
      .find((x) => x.id === Number(b.run.id))!;
    assert.equal(apiRun.image, apiImage, 'the last tag the run pushed is the deploy tag');
    assert.equal(workerRun.image, workerImage);

    const [na, nb] = [pushSecretNames(api), pushSecretNames(worker)];
    assert.deepEqual(github().secretNames(full).sort(), [na.password, na.username, nb.token].sort());
    assert.equal(github().secretValue(full, na.password), credentials.password);
    const token = github().secretValue(full, nb.token)!;
    assertMintedClaims(token, worker, 15 * 60); // build + queue timeouts (50 min), capped at maxTokenMinutes

    // Nothing secret in what the activities return (it goes into the workflow's history).
    const results = JSON.stringify([a.credential, a.file, a.run, b.credential, b.file, b.run]);
    assert.doesNotMatch(results, new RegExp(`${credentials.password}|${token.slice(-20)}`));
    assert.deepEqual(b.credential, { method: 'minted-token', changed: false }, 'the token is stored at dispatch');

    // The next deploy of the worker gets a new token; the api's unchanged password is not rewritten.
    const writes = github().records.secretWrites[full]!;
    const [a2, b2] = await Promise.all([deploy(api, 'default.api.k2'), deploy(worker, 'default.worker.k2')]);
    assert.equal(a2.done.conclusion, 'success');
    assert.equal(b2.done.conclusion, 'success');
    assert.equal(github().records.secretWrites[full], writes + 1, 'one write: the new token');
    assert.notEqual(github().secretValue(full, nb.token), token);
  });

  it("the token one app's CI holds cannot push another app's image", async () => {
    const { full, worker } = await monorepo();
    const other = app(`other${n}`, full, `${tokenRegistry().host}/acme/other${n}`);
    const { deploy } = setup();
    assert.equal((await deploy(worker, 'default.worker.k1')).done.conclusion, 'success');
    assert.equal((await deploy(other, 'default.other.k1')).done.conclusion, 'success');
    // What the other app's CI can read (its secret) is refused for the worker's repository.
    const otherToken = github().secretValue(full, pushSecretNames(other).token)!;
    await assertTokenRefused(otherToken, worker.spec.image.repository);
  });

  it('with a GitHub Environment, stores the secrets in it and the job runs in it', async () => {
    const { full, api, worker } = await monorepo();
    const [owner, repo] = full.split('/') as [string, string];
    const { deploy, config } = setup({ FLUI_GITHUB_ENVIRONMENT: 'registry-push' });
    // The environment must exist (a person creates it, with its protection rules): without it, a clear refusal.
    const missing = await deploy(api, 'default.api.k0').catch((err: Error) => err);
    assert.ok(missing instanceof Error);
    assert.match(missing.message, /GitHub Environment "registry-push" does not exist in .*FLUI_GITHUB_ENVIRONMENT/);
    const put = await fetch(`${github().url}/repos/${owner}/${repo}/environments/registry-push`, {
      method: 'PUT',
      headers: { authorization: `token ${github().createToken()}`, 'content-type': 'application/json' },
      body: '{}',
    });
    assert.equal(put.status, 200);
    assert.equal(config.github.environment, 'registry-push');

    const [a, b] = await Promise.all([deploy(api, 'default.api.k1'), deploy(worker, 'default.worker.k1')]);
    assert.equal(a.done.conclusion, 'success');
    assert.equal(b.done.conclusion, 'success');
    assert.deepEqual(github().secretNames(full), [], 'no repository secrets');
    const [na, nb] = [pushSecretNames(api), pushSecretNames(worker)];
    assert.deepEqual(github().secretNames(full, 'registry-push').sort(), [na.password, na.username, nb.token].sort());
    assert.match(github().file(full, pipelinePath(api)) ?? '', /\n {4}environment: registry-push\n/);
  });
});
