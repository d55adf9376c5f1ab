/**
 * The pipeline end to end on real servers: Temporal dev server, registry, kwok cluster, the GitHub emulator (whose
 * runner pushes real images) and the worker with its webhook receiver.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import { follow, startDeploy } from '../../src/client/index.ts';
import { listImages } from '../../src/kube/history.ts';
import { kubeClients } from '../../src/kube/rollout.ts';
import { pipelinePath } from '../../src/ci/github/pipeline-file.ts';
import { pushImage } from '@flui/github-emulator/registry-push';
import { retrySignal, type DeployOutcome } from '../../src/workflows/contract.ts';
import { assertContract } from '../helpers/github-emulator.ts';
import { catalogApp, createApplication, eventually, useStack, phaseOf } from '../helpers/stack.ts';

describe('deploy pipeline end to end', () => {
  const stack = useStack();
  after(() => assertContract(stack().github!));

  it('builds an Application with the CI and lands its digest on the cluster; an unchanged pipeline is not recommitted', async () => {
    const s = stack();
    const app = await createApplication(s);
    const { workflowId } = await startDeploy(s.client, app, { taskQueue: s.config.temporal.taskQueue });
    const outcome = (await s.client.workflow.getHandle(workflowId).result()) as DeployOutcome;
    assert.equal(outcome.phase, 'succeeded');
    const repo = app.spec.source.repository;
    const run = s.github!.runs(repo)[0]!;
    assert.equal(outcome.digest, run.digest);
    assert.equal(outcome.commit, run.headSha);
    assert.equal(outcome.image, `${app.spec.image.repository}@${run.digest}`);
    const k = kubeClients(s.env.KUBECONFIG);
    const d = await k.apps.readNamespacedDeployment({ name: app.metadata.name, namespace: 'default' });
    assert.equal(d.spec?.template.spec?.containers[0]?.image, outcome.image);
    assert.equal(d.status?.readyReplicas, 2);
    assert.equal(s.github!.records.commits[`${repo}:${pipelinePath(app)}`], 1);
    assert.equal(s.github!.records.dispatches[repo], 1);

    const again = await startDeploy(s.client, app, { taskQueue: s.config.temporal.taskQueue });
    await s.client.workflow.getHandle(again.workflowId).result();
    assert.equal(s.github!.records.commits[`${repo}:${pipelinePath(app)}`], 1, 'no second commit');
    assert.equal(s.github!.records.secretWrites[repo], 2, 'credential written once (two secrets)');
    assert.equal(s.github!.records.dispatches[repo], 2);
    const images = await listImages(k, 'default', app.metadata.name);
    assert.equal(images.length, 2);
    assert.ok(images[0]?.current);
  });

  it('deploys a CatalogApp without a build', async () => {
    const s = stack();
    const image = `${s.registryHost}/library/redis:7.4`;
    const pushed = await pushImage(image, {
      files: { README: 'stand-in' },
      credentials: { username: s.env.REGISTRY_USERNAME!, password: s.env.REGISTRY_PASSWORD! },
    });
    const app = catalogApp(image);
    const dispatches = Object.values(s.github!.records.dispatches).reduce((a, b) => a + b, 0);
    const { workflowId } = await startDeploy(s.client, app, { taskQueue: s.config.temporal.taskQueue });
    const outcome = (await s.client.workflow.getHandle(workflowId).result()) as DeployOutcome;
    assert.equal(outcome.digest, pushed.digest);
    assert.equal(outcome.ciRun, undefined);
    assert.equal(
      Object.values(s.github!.records.dispatches).reduce((a, b) => a + b, 0),
      dispatches,
    );
    assert.deepEqual(
      outcome.timings.map((t) => t.phase),
      ['resolving', 'rolling-out'],
    );
  });

  it('cancels during the build: the CI run is cancelled and nothing is rolled out', async () => {
    const s = stack();
    const app = await createApplication(s);
    s.github!.faults.keepQueued(true);
    try {
      const { workflowId } = await startDeploy(s.client, app, { taskQueue: s.config.temporal.taskQueue });
      await phaseOf(s.client, 'default', app.metadata.name, 'building');
      const run = await eventually(() => s.github!.runs(app.spec.source.repository)[0], 30_000, 'dispatch');
      await s.client.workflow.getHandle(workflowId).cancel();
      await assert.rejects(
        s.client.workflow.getHandle(workflowId).result(),
        (err: unknown) => err instanceof WorkflowFailedError && err.cause?.name === 'CancelledFailure',
      );
      assert.equal(run.conclusion, 'cancelled');
      const k = kubeClients(s.env.KUBECONFIG);
      await assert.rejects(
        k.apps.readNamespacedDeployment({ name: app.metadata.name, namespace: 'default' }),
        (e: { code?: number }) => e.code === 404,
      );
      assert.equal((await s.client.workflow.getHandle(workflowId).describe()).status.name, 'CANCELLED');
    } finally {
      s.github!.faults.keepQueued(false);
    }
  });

  it('retries a failed build from the failed phase in the same workflow', async () => {
    const s = stack();
    const app = await createApplication(s);
    s.github!.faults.failBuilds(1);
    const { workflowId, runId } = await startDeploy(s.client, app, { taskQueue: s.config.temporal.taskQueue });
    const failed = await phaseOf(s.client, 'default', app.metadata.name, 'awaiting-retry');
    assert.equal(failed.failedPhase, 'building');
    assert.match(failed.error ?? '', /concluded "failure"/);
    await s.client.workflow.getHandle(workflowId).signal(retrySignal);
    const outcome = (await s.client.workflow.getHandle(workflowId).result()) as DeployOutcome;
    assert.equal(outcome.phase, 'succeeded');
    const runs = s.github!.runs(app.spec.source.repository);
    assert.deepEqual(
      runs.map((r) => [r.displayTitle.endsWith('/2'), r.conclusion]),
      [
        [false, 'failure'],
        [true, 'success'],
      ],
    );
    const description = await s.client.workflow.getHandle(workflowId).describe();
    assert.equal(description.runId, runId, 'the same workflow run kept the history');
    assert.equal(s.github!.records.commits[`${app.spec.source.repository}:${pipelinePath(app)}`], 1);
  });

  it('a newer deploy of the same app supersedes the older one and wins', async () => {
    const s = stack();
    const app = await createApplication(s);
    s.github!.faults.keepQueued(true);
    const first = await startDeploy(s.client, app, { taskQueue: s.config.temporal.taskQueue });
    await phaseOf(s.client, 'default', app.metadata.name, 'building');
    const firstRun = await eventually(() => s.github!.runs(app.spec.source.repository)[0], 30_000, 'first dispatch');
    const newer = { ...app, spec: { ...app.spec, env: { VERSION: '2' } } };
    const second = await startDeploy(s.client, newer, { taskQueue: s.config.temporal.taskQueue });
    await eventually(() => (firstRun.conclusion === 'cancelled' ? true : undefined), 30_000, 'first run cancelled');
    s.github!.faults.keepQueued(false);
    const outcome = (await s.client.workflow.getHandle(second.workflowId).result()) as DeployOutcome;
    assert.equal(outcome.deployId, second.deployId);
    assert.equal(outcome.phase, 'succeeded');
    const seen: string[] = [];
    for await (const st of follow(s.client, 'default', app.metadata.name, first.deployId)) seen.push(st.phase);
    assert.equal(seen.at(-1), 'superseded');
    const d = await kubeClients(s.env.KUBECONFIG).apps.readNamespacedDeployment({
      name: app.metadata.name,
      namespace: 'default',
    });
    assert.deepEqual(JSON.parse(JSON.stringify(d.spec?.template.spec?.containers[0]?.env)), [
      { name: 'VERSION', value: '2' },
    ]);
  });

  it('fails fast and clearly when GitHub refuses the token for the repository', async () => {
    const s = stack();
    const app = await createApplication(s, { deploy: { retryWindowMinutes: 0 } });
    const hidden = { ...app, spec: { ...app.spec, source: { ...app.spec.source, repository: 'acme/not-visible' } } };
    const { workflowId } = await startDeploy(s.client, hidden, { taskQueue: s.config.temporal.taskQueue });
    const started = Date.now();
    await assert.rejects(s.client.workflow.getHandle(workflowId).result(), (err: unknown) => {
      assert.ok(err instanceof WorkflowFailedError);
      assert.match(
        String(err.cause?.message),
        /failed while preparing: not found on GitHub .*check the repository name/,
      );
      return true;
    });
    assert.ok(Date.now() - started < 30_000, 'no retry storm');
    const history = await s.client.workflow.getHandle(workflowId).fetchHistory();
    const attempts = history.events
      ?.filter((e) => e.activityTaskStartedEventAttributes)
      .map((e) => e.activityTaskStartedEventAttributes!.attempt);
    // The pipeline file and the credential are checked concurrently, so both may have started: once each.
    assert.ok(attempts && attempts.length >= 1, 'an activity ran');
    assert.deepEqual(
      attempts.filter((a) => a !== 1),
      [],
      'a permanent error is not retried',
    );
  });
});
