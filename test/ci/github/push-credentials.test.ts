/**
 * How an app's CI gets the right to push, end to end: the deploy's CI activities (ensureWorkflowFile,
 * ensureRegistryCredential, triggerRun) against the GitHub emulator, whose runner executes the generated file and pushes
 * to real registries: one with a password (htpasswd, opted in as `static`) and one in token mode trusting Flui's
 * certificate (`minted-token`). Two apps of one repository push to the two registries without touching each other's
 * secrets; with a GitHub Environment configured, the secrets live in it and the job runs in it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { pushImage } from '@flui/github-emulator/registry-push';
import { makeTempDir } from '../../../dev/process.ts';
import { createCiActivities } from '../../../src/activities/ci.ts';
import { withActivityFailures } from '../../../src/activities/failures.ts';
import { GitHubActionsBackend } from '../../../src/ci/github/actions.ts';
import { pipelinePath, pushSecretNames } from '../../../src/ci/github/pipeline-file.ts';
import { loadConfig } from '../../../src/config.ts';
import { validateManifest } from '../../../src/manifest/parse.ts';
import type { Application } from '../../../src/manifest/schema.ts';
import { headManifest } from '../../../src/registry/oci.ts';
import { ciImageTag, type CiRunRef } from '../../../src/workflows/contract.ts';
import { useGitHubEmulator } from '../../helpers/github-emulator.ts';
import { REGISTRY_PASSWORD, REGISTRY_USER, useRegistry } from '../../helpers/registry.ts';
import { eventually } from '../../helpers/stack.ts';
import { makeSigningFiles, useTokenRegistry } from '../../helpers/token-registry.ts';

const dir = await makeTempDir('push-credentials');
const flui = await makeSigningFiles(dir, 'flui-push', 'rsa');
const credentials = { username: REGISTRY_USER, password: REGISTRY_PASSWORD };

function app(name: string, repository: string, image: string): Application {
  return validateManifest({
    apiVersion: 'flui.dev/v1',
    kind: 'Application',
    metadata: { name },
    spec: { source: { repository }, image: { repository: image }, deploy: { buildTimeoutMinutes: 20 } },
  }) as Application;
}

describe('push credentials, from the worker to a real registry through the emulated CI', () => {
  const passwordRegistry = useRegistry({ auth: true });
  const tokenRegistry = useTokenRegistry(
    { username: 'nobody', password: 'unused' },
    { trust: () => [flui.certificateFile] },
  );
  const github = useGitHubEmulator();
  let n = 0;

  function setup(extra: Record<string, string> = {}) {
    const config = loadConfig({
      GITHUB_API_URL: github().url,
      GITHUB_TOKEN: github().createToken(),
      GITHUB_WRITE_INTERVAL_MS: '0',
      REGISTRY_USERNAME: credentials.username,
      REGISTRY_PASSWORD: credentials.password,
      REGISTRY_HOST: passwordRegistry().host,
      FLUI_REGISTRY_PUSH: JSON.stringify({
        [passwordRegistry().host]: { method: 'static' },
        [tokenRegistry().host]: {
          method: 'minted-token',
          issuer: tokenRegistry().issuer,
          service: tokenRegistry().service,
          ...flui,
          maxTokenMinutes: 15,
        },
      }),
      ...extra,
    });
    const ci = new GitHubActionsBackend(config.github);
    const activities = withActivityFailures(createCiActivities(ci, config));
    const env = new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') });
    /** One deploy's CI part, as the workflow runs it; the run's result once it completed. */
    const deploy = async (a: Application, runKey: string) => {
      const prepare = () =>
        Promise.all([activities.ensureWorkflowFile({ app: a }), activities.ensureRegistryCredential({ app: a })]);
      const [file, credential] = (await env.run(prepare)) as Awaited<ReturnType<typeof prepare>>;
      const run = (await env.run(() => activities.triggerRun({ runKey, app: a }))) as CiRunRef;
      const done = await eventually(
        async () => {
          const s = await ci.status(a, run);
          return s.status?.state === 'completed' ? s.status.result : undefined;
        },
        30_000,
        `run ${run.id} to complete`,
      );
      return { file, credential, run, done };
    };
    return { config, deploy };
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
    assert.match(token, /^ey[\w-]+\.[\w-]+\.[\w-]+$/);
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as {
      exp: number;
      iat: number;
      sub: string;
      access: { name: string; actions: string[] }[];
    };
    assert.deepEqual(claims.access, [
      { type: 'repository', name: `acme/${worker.metadata.name}`, actions: ['push', 'pull'] },
    ]);
    assert.equal(claims.sub, `flui:default.${worker.metadata.name}`);
    assert.equal(claims.exp - claims.iat, 15 * 60, 'build + queue timeouts (50 min), capped at maxTokenMinutes');

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
    await assert.rejects(
      pushImage(`${worker.spec.image.repository}:replaced`, { files: { a: 'b' }, bearerToken: otherToken }),
      /refused the token/,
    );
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
