/**
 * Deploys through the self-hosted backend (FLUI_CI=self-hosted), end to end with real parts only: the Temporal
 * server, the build workflow on the Flui worker, a builder running real buildah, the real registry (bundled, htpasswd
 * auth on), the GitHub emulator as the source host (tarball at the exact commit) and the kwok cluster.
 *
 * - a deploy builds the app's Dockerfile, pushes the attempt's own tag and the commit's, and the cluster runs that
 *   digest; the run is the build workflow `build-<deploy id>`, its log readable through the backend; a rebuild of the
 *   same commit reuses the builder's layers;
 * - a bad Dockerfile fails the deploy at once (one attempt, non-retryable) with the build's log tail in its error.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import { createCiBackend } from '../../src/ci/index.ts';
import { startDeploy } from '../../src/client/index.ts';
import { buildWorkflowId, type BuildOutcome } from '../../src/workflows/build-contract.ts';
import { ciImageTag, type DeployOutcome } from '../../src/workflows/contract.ts';
import { createApplication, useStack } from '../helpers/stack.ts';
import { registryDigest, runningImage } from './base.ts';

describe('self-hosted builds: deploy', () => {
  const stack = useStack({ ci: 'self-hosted' });

  it('builds with buildah, pushes the attempt tag and the commit, rolls out that digest; a rebuild uses the cache', async () => {
    const s = stack();
    const app = await createApplication(s, {
      deploy: { retryWindowMinutes: 0 },
      files: {
        Dockerfile: 'FROM scratch\nARG GREETING=hi\nCOPY server.js /\nCOPY greeting.txt /\n',
        'server.js': 'console.log("hello")\n',
        'greeting.txt': 'hello\n',
      },
    });
    const started = await startDeploy(s.client, app, { taskQueue: s.config.temporal.taskQueue });
    const outcome = (await s.client.workflow.getHandle(started.workflowId).result()) as DeployOutcome;
    assert.equal(outcome.phase, 'succeeded');
    const buildId = buildWorkflowId(started.deployId);
    assert.equal(outcome.ciRun?.id, buildId);

    const build = (await s.client.workflow.getHandle(buildId).result()) as BuildOutcome;
    assert.equal(build.conclusion, 'success');
    assert.equal(build.headSha, outcome.commit);
    assert.match(build.digest ?? '', /^sha256:[0-9a-f]{64}$/);
    // The registry holds the build under both tags, and the cluster runs exactly that digest.
    assert.equal(await registryDigest(s, app, ciImageTag(started.deployId)), build.digest);
    assert.equal(await registryDigest(s, app, outcome.commit!), build.digest);
    assert.equal(outcome.digest, build.digest);
    assert.equal(await runningImage(s, app), `${app.spec.image.repository}@${build.digest}`);

    // The build's own output, through the backend, as `flui logs` reads it (from the worker, not the builder).
    const backend = createCiBackend(s.config);
    const logs = await backend.readLogs(app, outcome.ciRun!);
    assert.equal(logs.done, true);
    assert.match(logs.text, /COPY server\.js/);
    assert.match(logs.text, new RegExp(`pushed .*${build.digest}`));
    const rest = await backend.readLogs(app, outcome.ciRun!, logs.cursor);
    assert.deepEqual(rest, { text: '', cursor: logs.cursor, done: true });

    // Same commit again: a new build (new deploy id), whose layers come from the builder's cache.
    const again = await startDeploy(s.client, app, { taskQueue: s.config.temporal.taskQueue });
    assert.equal(((await s.client.workflow.getHandle(again.workflowId).result()) as DeployOutcome).phase, 'succeeded');
    const rebuild = (await s.client.workflow.getHandle(buildWorkflowId(again.deployId)).result()) as BuildOutcome;
    assert.ok((rebuild.cachedSteps ?? 0) > 0, `cached steps: ${rebuild.cachedSteps}`);
    assert.equal(rebuild.digest, build.digest, 'the same commit rebuilt from cache is the same image');
  });

  it('a bad Dockerfile fails the deploy at once, non-retryable, with the log tail in the error', async () => {
    const s = stack();
    const app = await createApplication(s, {
      files: { Dockerfile: 'FROM scratch\nCOPY does-not-exist.txt /\n', 'server.js': '' },
      deploy: { retryWindowMinutes: 0 },
    });
    const started = await startDeploy(s.client, app, { taskQueue: s.config.temporal.taskQueue });
    const error = await s.client.workflow
      .getHandle(started.workflowId)
      .result()
      .then(
        () => assert.fail('the deploy succeeded'),
        (err: unknown) => {
          assert.ok(err instanceof WorkflowFailedError);
          return String(err.cause?.message);
        },
      );
    assert.match(error, /build build-.* failed/);
    assert.match(error, /does-not-exist\.txt/, 'the log tail names what went wrong');
    const history = await s.client.workflow.getHandle(buildWorkflowId(started.deployId)).fetchHistory();
    const attempts = history.events
      ?.filter((e) => e.activityTaskStartedEventAttributes)
      .map((e) => e.activityTaskStartedEventAttributes!.attempt);
    assert.deepEqual(attempts, [1], 'not retried');
  });
});
