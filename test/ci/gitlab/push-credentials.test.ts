/**
 * How a GitLab pipeline gets the right to push, end to end: the deploy's CI activities against the GitLab emulator,
 * whose runner executes the generated job and pushes to real registries: one with a password (htpasswd, opted in as
 * `static`) and one in token mode trusting Flui's certificate (`minted-token`, pushed with skopeo's Bearer token).
 * Two apps of one project push to the two registries without touching each other's variables; the token is written
 * right before each pipeline, masked and hidden, and a retry creates no second pipeline. The same checks as GitHub's
 * (test/ci/github/push-credentials.test.ts), through the shared helpers.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { createCiActivities } from '../../../src/activities/ci.ts';
import { withActivityFailures } from '../../../src/activities/failures.ts';
import { createCiBackend } from '../../../src/ci/index.ts';
import { jobFilePath, pushVariableNames } from '../../../src/ci/gitlab/pipeline-file.ts';
import { loadConfig } from '../../../src/config.ts';
import type { Application } from '../../../src/manifest/schema.ts';
import { headManifest } from '../../../src/registry/oci.ts';
import { ciImageTag, ciRunName, type CiRunRef } from '../../../src/workflows/contract.ts';
import { useGitLabEmulator } from '../../helpers/gitlab-emulator.ts';
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

describe('push credentials through GitLab CI, from the worker to a real registry', () => {
  const registries = usePushRegistries(flui);
  const gitlab = useGitLabEmulator();
  let n = 0;

  function setup() {
    const gl = gitlab();
    const config = loadConfig({
      FLUI_CI: 'gitlab',
      GITLAB_URL: gl.url,
      GITLAB_TOKEN: gl.createToken(),
      ...pushSettingsEnv({ password: registries.password(), token: registries.token() }, flui),
    });
    const ci = createCiBackend(config);
    return { config, ci, deploy: ciDeployer(ci, config) };
  }

  /** A project in a nested group with two apps: `api` pushes with the password, `worker` with minted tokens. */
  async function monorepo(): Promise<{ full: string; api: Application; worker: Application }> {
    const name = `mono${++n}`;
    const full = `acme/apps/${name}`;
    await gitlab().createProject({ path: full, files: { Dockerfile: 'FROM scratch\nCOPY . /\n', 'main.go': 'x\n' } });
    return {
      full,
      api: app(`api${n}`, full, `${registries.password().host}/acme/api${n}`),
      worker: app(`worker${n}`, full, `${registries.token().host}/acme/worker${n}`),
    };
  }

  const traces = (full: string) =>
    gitlab()
      .pipelines(full)
      .flatMap((p) => p.jobs.map((j) => gitlab().trace(full, j.id) ?? ''));

  it('two apps of one project push to two registries, each with its own variables; a token per pipeline', async () => {
    const gl = gitlab();
    const { full, api, worker } = await monorepo();
    const { deploy } = setup();
    const [a, b] = await Promise.all([deploy(api, 'default.api.k1'), deploy(worker, 'default.worker.k1')]);
    assert.equal(a.done.conclusion, 'success', traces(full).join('\n'));
    assert.equal(b.done.conclusion, 'success', traces(full).join('\n'));
    assert.notEqual(jobFilePath(api), jobFilePath(worker));

    // The worker's pipeline pushed with a token for its own repository only, the deploy's tag first.
    const workerImage = `${worker.spec.image.repository}:${ciImageTag('default.worker.k1')}`;
    const pipeline = gl.pipelines(full).find((p) => p.name === ciRunName('default.worker.k1'))!;
    assert.equal(pipeline.image, workerImage);
    assert.match(
      (await headManifest(`${api.spec.image.repository}:${ciImageTag('default.api.k1')}`, { credentials })).digest,
      /^sha256:/,
    );

    const [na, nb] = [pushVariableNames(api), pushVariableNames(worker)];
    const variables = gl.variables(full);
    assert.deepEqual(variables.map((v) => v.key).sort(), [na.fingerprint, na.password, na.username, nb.token].sort());
    const stored = variables.find((v) => v.key === nb.token)!;
    assert.ok(stored.masked && stored.hidden && stored.raw && !stored.protected, JSON.stringify(stored));
    const token = gl.variableValue(full, nb.token)!;
    assertMintedClaims(token, worker, 15 * 60);

    // Nothing secret in what the activities return (it goes into the workflow's history), nor in the job logs.
    const results = JSON.stringify([a.credential, a.file, a.run, b.credential, b.file, b.run]);
    assert.doesNotMatch(results, new RegExp(`${credentials.password}|${token.slice(-20)}`));
    assert.deepEqual(b.credential, { method: 'minted-token', changed: false }, 'the token is stored at dispatch');
    for (const trace of traces(full)) assert.ok(!trace.includes(token.slice(-20)), trace);
    assert.ok(traces(full).some((t) => /skopeo copy --dest-registry-token "\$FLUI_REGISTRY_TOKEN_/.test(t)));

    // The next deploy of the worker gets a new token, in one write; the api's unchanged password is not rewritten.
    const writes = gl.records.variableWrites[full]!;
    const [a2, b2] = await Promise.all([deploy(api, 'default.api.k2'), deploy(worker, 'default.worker.k2')]);
    assert.equal(a2.done.conclusion, 'success');
    assert.equal(b2.done.conclusion, 'success');
    assert.equal(gl.records.variableWrites[full], writes + 1, 'one write: the new token');
    assert.notEqual(gl.variableValue(full, nb.token), token);
    assert.equal(gl.records.pipelinesCreated[full], 4, 'one pipeline per deploy');
  });

  it("the token one app's pipeline holds cannot push another app's image", async () => {
    const gl = gitlab();
    const { full, worker } = await monorepo();
    const other = app(`other${n}`, full, `${registries.token().host}/acme/other${n}`);
    const { deploy } = setup();
    assert.equal((await deploy(worker, 'default.worker.k1')).done.conclusion, 'success');
    assert.equal((await deploy(other, 'default.other.k1')).done.conclusion, 'success');
    const [workerToken, otherToken] = [worker, other].map((x) => gl.variableValue(full, pushVariableNames(x).token)!);
    assert.notEqual(workerToken, otherToken, "each app has its own variable: neither overwrote the other's");
    assertMintedClaims(workerToken!, worker, 15 * 60);
    await assertTokenRefused(otherToken!, worker.spec.image.repository);
  });

  it('a retry after the pipeline was created (its answer lost) finds it: no second pipeline, no second token', async () => {
    const gl = gitlab();
    const { full, worker } = await monorepo();
    const { ci, config, deploy } = setup();
    assert.equal((await deploy(worker, 'default.worker.k1')).done.conclusion, 'success');
    const activities = withActivityFailures(createCiActivities(ci, config));
    /** Attempt `k` of the deploy `runKey`'s triggerRun. */
    const attempt = (runKey: string, k: number) =>
      new MockActivityEnvironment({ attempt: k }, { logger: new DefaultLogger('ERROR') }).run(() =>
        activities.triggerRun({ runKey, app: worker }),
      );
    const before = { writes: gl.records.variableWrites[full]!, pipelines: gl.records.pipelinesCreated[full]! };
    let lost = 0;
    gl.hooks.after = (info) => {
      if (info.method === 'POST' && info.operation === '/projects/:id/pipeline' && !lost++) {
        throw new Error('the worker lost the answer');
      }
    };
    try {
      await assert.rejects(attempt('default.worker.k2', 1));
    } finally {
      gl.hooks.after = undefined;
    }
    const token = gl.variableValue(full, pushVariableNames(worker).token);
    const run = (await attempt('default.worker.k2', 2)) as CiRunRef;
    assert.equal(run.id, String(gl.pipelines(full).at(-1)!.id), 'the pipeline the lost answer named');
    assert.equal(gl.records.pipelinesCreated[full], before.pipelines + 1, 'exactly one pipeline for the attempt');
    assert.equal(gl.records.variableWrites[full], before.writes + 1, 'the token was written once, before it');
    assert.equal(gl.variableValue(full, pushVariableNames(worker).token), token);

    // Refused before the pipeline existed: the retry writes a fresh token and creates the one pipeline.
    let refused = 0;
    gl.hooks.before = (info) => {
      if (info.method === 'POST' && info.operation === '/projects/:id/pipeline' && !refused++) {
        throw new Error('connection reset');
      }
    };
    try {
      await assert.rejects(attempt('default.worker.k3', 1));
    } finally {
      gl.hooks.before = undefined;
    }
    await attempt('default.worker.k3', 2);
    assert.equal(gl.records.pipelinesCreated[full], before.pipelines + 2);
    assert.equal(gl.records.variableWrites[full], before.writes + 3, 'a fresh token for each attempt');
    assert.notEqual(gl.variableValue(full, pushVariableNames(worker).token), token);
  });
});
