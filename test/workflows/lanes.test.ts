/**
 * Lanes on the real pipeline: the worker (with FLUI_ALLOWED_* set), Temporal, the GitHub emulator, the registry and a
 * kwok cluster. A manifest outside the lanes fails at once and for good, with words a person can act on, before any
 * request reaches GitHub, the registry or the cluster; one inside them deploys as before.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import { pushImage } from '@flui/github-emulator/registry-push';
import { pipelinePath } from '../../src/ci/github/pipeline-file.ts';
import { rollback, startDeploy, status } from '../../src/client/index.ts';
import { historyName } from '../../src/kube/history.ts';
import { kubeClients, statusOf } from '../../src/kube/rollout.ts';
import type { Application } from '../../src/manifest/schema.ts';
import type { DeployOutcome } from '../../src/workflows/contract.ts';
import { assertContract } from '../helpers/github-emulator.ts';
import { catalogApp, createApplication, useStack } from '../helpers/stack.ts';

describe('lanes on the real worker', () => {
  const stack = useStack({
    env: {
      FLUI_ALLOWED_NAMESPACES: 'default,team-*,kube-system-tools',
      FLUI_ALLOWED_REPOSITORY_OWNERS: 'acme',
      // The stack's registry listens on 127.0.0.1 with a port of the OS's choosing.
      FLUI_ALLOWED_REGISTRIES: '127.0.0.1:*',
      FLUI_WORKER_NAMESPACE: 'flui',
    },
  });
  after(() => assertContract(stack().github!));

  /** Starts the deploy and returns the failure it ends with, and its history. */
  async function refusedDeploy(start: () => Promise<{ workflowId: string }>) {
    const s = stack();
    const { workflowId } = await start();
    const handle = s.client.workflow.getHandle(workflowId);
    const started = Date.now();
    let message = '';
    // A deploy that was not refused would wait for a retry or retry for hours: give up on it well before.
    const late = new Promise<never>((_, reject) => {
      setTimeout(() => reject(new Error('the deploy did not fail within 60 s')), 60_000).unref();
    });
    await assert.rejects(Promise.race([handle.result(), late]), (err: unknown) => {
      assert.ok(err instanceof WorkflowFailedError);
      message = String(err.cause?.message);
      return true;
    });
    assert.ok(Date.now() - started < 30_000, 'at once: no retries');
    const events = (await handle.fetchHistory()).events ?? [];
    const failures = events.flatMap((e) => {
      const f = e.activityTaskFailedEventAttributes?.failure;
      return f ? [{ type: f.applicationFailureInfo?.type, nonRetryable: f.applicationFailureInfo?.nonRetryable }] : [];
    });
    const attempts = events.flatMap((e) => e.activityTaskStartedEventAttributes?.attempt ?? []);
    assert.ok(failures.length >= 1, 'an activity was refused');
    assert.ok(
      failures.every((f) => f.type === 'Refused' && f.nonRetryable),
      JSON.stringify(failures),
    );
    assert.deepEqual(
      attempts.filter((a) => a !== 1),
      [],
      'a refusal is never retried',
    );
    assert.ok(!events.some((e) => e.activityTaskCompletedEventAttributes), 'no activity completed');
    return message;
  }

  async function assertClusterUntouched(namespace: string, app: string) {
    const k = kubeClients(stack().env.KUBECONFIG);
    for (const read of [
      () => k.apps.readNamespacedDeployment({ name: app, namespace }),
      () => k.core.readNamespacedService({ name: app, namespace }),
      () => k.core.readNamespacedConfigMap({ name: historyName(app), namespace }),
    ]) {
      await assert.rejects(read(), (e: unknown) => statusOf(e) === 404);
    }
  }

  it('an Application for kube-system fails at once: no request reaches GitHub, nothing reaches the cluster', async () => {
    const s = stack();
    const app = await createApplication(s, { deploy: { retryWindowMinutes: 0 } });
    const system: Application = { ...app, metadata: { ...app.metadata, namespace: 'kube-system' } };
    const before = s.github!.records.requests;
    const message = await refusedDeploy(() =>
      startDeploy(s.client, system, { taskQueue: s.config.temporal.taskQueue }),
    );
    assert.match(
      message,
      /failed while preparing: namespace kube-system is not open to deploys on this Flui \(allowed: default, team-\*, kube-system-tools; never kube-system, kube-public, kube-node-lease, flui unless named exactly\); ask your platform team/,
    );
    // The pipeline file and the credential are prepared in parallel: both refused before a single request.
    assert.equal(s.github!.records.requests, before, 'no request to GitHub');
    assert.equal(s.github!.records.commits[`${app.spec.source.repository}:${pipelinePath(system)}`], undefined);
    assert.equal(s.github!.records.secretWrites[app.spec.source.repository], undefined);
    assert.equal(s.github!.records.dispatches[app.spec.source.repository], undefined);
    await assertClusterUntouched('kube-system', app.metadata.name);

    // The worker's own namespace likewise, and one outside the list.
    for (const namespace of ['flui', 'other']) {
      const elsewhere: Application = { ...app, metadata: { ...app.metadata, namespace } };
      const said = await refusedDeploy(() =>
        startDeploy(s.client, elsewhere, { taskQueue: s.config.temporal.taskQueue }),
      );
      assert.match(said, new RegExp(`namespace ${namespace} is not open to deploys on this Flui`));
      await assertClusterUntouched(namespace, app.metadata.name);
    }
    assert.equal(s.github!.records.requests, before, 'still no request to GitHub');
  });

  it('a repository of another owner fails at once, retry window or not, with the refusal as its error; nothing was written', async () => {
    const s = stack();
    const app = await createApplication(s);
    assert.ok(app.spec.deploy.retryWindowMinutes > 0, 'the manifest keeps a retry window');
    const foreign: Application = {
      ...app,
      spec: { ...app.spec, source: { ...app.spec.source, repository: `evil/${app.metadata.name}` } },
    };
    const before = s.github!.records.requests;
    const { workflowId } = await startDeploy(s.client, foreign, { taskQueue: s.config.temporal.taskQueue });
    await assert.rejects(s.client.workflow.getHandle(workflowId).result());
    const ended = await status(s.client, 'default', app.metadata.name);
    assert.equal(ended.phase, 'failed', 'a refusal cannot pass on a retry: the deploy does not wait for one');
    assert.equal(ended.failedPhase, 'preparing');
    assert.equal(
      ended.error,
      'repository owner evil is not open to deploys on this Flui (allowed: acme); ask your platform team ' +
        '(worker setting FLUI_ALLOWED_REPOSITORY_OWNERS)',
    );
    assert.equal(s.github!.records.requests, before, 'no request to GitHub');
    await assertClusterUntouched('default', app.metadata.name);
  });

  it('a CatalogApp from another registry is refused before the registry is asked; a rollback into kube-system too', async () => {
    const s = stack();
    // Nothing listens there: were it asked, the resolve would be retried for hours instead of refused at once.
    const listed = catalogApp('localhost:1/library/redis:7.4');
    const app = { ...listed, spec: { ...listed.spec, deploy: { ...listed.spec.deploy, retryWindowMinutes: 0 } } };
    const message = await refusedDeploy(() => startDeploy(s.client, app, { taskQueue: s.config.temporal.taskQueue }));
    assert.match(
      message,
      /failed while resolving: registry localhost:1 is not open to deploys on this Flui \(allowed: 127\.0\.0\.1:\*\)/,
    );
    await assertClusterUntouched('default', app.metadata.name);

    const back = await refusedDeploy(() =>
      rollback(s.client, 'kube-system', 'coredns', { taskQueue: s.config.temporal.taskQueue }),
    );
    assert.match(back, /failed while rolling-out: namespace kube-system is not open to deploys on this Flui/);
  });

  it('inside the lanes, deploys go on as before (a pattern opens team-*)', async () => {
    const s = stack();
    const image = `${s.registryHost}/library/redis:7.4`;
    const pushed = await pushImage(image, {
      files: { README: 'stand-in' },
      credentials: { username: s.env.REGISTRY_USERNAME!, password: s.env.REGISTRY_PASSWORD! },
    });
    const app = catalogApp(image);
    const inTeam = { ...app, metadata: { ...app.metadata, namespace: 'team-a' } };
    const { workflowId } = await startDeploy(s.client, inTeam, { taskQueue: s.config.temporal.taskQueue });
    const outcome = (await s.client.workflow.getHandle(workflowId).result()) as DeployOutcome;
    assert.equal(outcome.phase, 'succeeded');
    assert.equal(outcome.digest, pushed.digest);
    assert.equal(outcome.namespace, 'team-a');
  });
});
