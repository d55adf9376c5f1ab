/**
 * `flui retry` after a failed rollout, through the deploy workflow on real servers (Temporal, registry, kwok cluster,
 * worker): a rollout can fail for a reason that passes (here a pod quota), and the retry, the deploy's next attempt,
 * must roll the image out again rather than replay the recorded failure.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { pushImage } from '@flui/github-emulator/registry-push';
import { retry, startDeploy, status } from '../../src/client/index.ts';
import { listImages } from '../../src/kube/history.ts';
import { kubeClients } from '../../src/kube/rollout.ts';
import type { CatalogApp } from '../../src/manifest/schema.ts';
import type { DeployOutcome } from '../../src/workflows/contract.ts';
import { catalogApp, eventually, useStack } from '../helpers/stack.ts';

describe('flui retry after a failed rollout', () => {
  const stack = useStack();

  it('rolls the image out again once the cause has passed, and succeeds', async () => {
    const s = stack();
    const image = `${s.registryHost}/library/web:1`;
    const pushed = await pushImage(image, {
      files: { README: 'stand-in' },
      credentials: { username: s.env.REGISTRY_USERNAME!, password: s.env.REGISTRY_PASSWORD! },
    });
    const namespace = `retry-${randomBytes(3).toString('hex')}`;
    const base = catalogApp(image);
    const app: CatalogApp = {
      ...base,
      metadata: { ...base.metadata, namespace },
      spec: { ...base.spec, deploy: { ...base.spec.deploy, progressDeadlineSeconds: 10 } },
    };
    const k = kubeClients(s.env.KUBECONFIG);
    await k.core.createNamespace({ body: { metadata: { name: namespace } } });
    await k.core.createNamespacedResourceQuota({
      namespace,
      body: { metadata: { name: 'pods' }, spec: { hard: { pods: '0' } } },
    });

    const { workflowId } = await startDeploy(s.client, app, { taskQueue: s.config.temporal.taskQueue });
    /** The deploy's status once it is `succeeded` or waits for a retry (again), attempt `attempt` on. */
    const settled = (attempt: number) =>
      eventually(
        async () => {
          const st = await status(s.client, namespace, app.metadata.name).catch(() => undefined);
          return st && st.attempt >= attempt && ['awaiting-retry', 'succeeded'].includes(st.phase) ? st : undefined;
        },
        120_000,
        `attempt ${attempt} to settle`,
      );
    const failed = await settled(1);
    assert.equal(failed.phase, 'awaiting-retry');
    assert.equal(failed.failedPhase, 'rolling-out');
    assert.match(failed.error ?? '', /ProgressDeadlineExceeded/);

    await k.core.deleteNamespacedResourceQuota({ name: 'pods', namespace });
    await retry(s.client, namespace, app.metadata.name);
    const second = await settled(2);
    assert.equal(second.phase, 'succeeded', second.error);
    const outcome = (await s.client.workflow.getHandle(workflowId).result()) as DeployOutcome;
    assert.equal(outcome.phase, 'succeeded');
    assert.equal(outcome.digest, pushed.digest);
    const d = await k.apps.readNamespacedDeployment({ name: app.metadata.name, namespace });
    assert.equal(d.status?.readyReplicas, 1);
    const [entry] = await listImages(k, namespace, app.metadata.name);
    assert.deepEqual([entry?.outcome, entry?.attempt, entry?.current], ['succeeded', 2, true]);
  });
});
