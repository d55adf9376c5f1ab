/**
 * `flui rollback` checks the app's image history in the cluster before it starts anything: with no earlier good image
 * (or a --to digest that never ran well) it says so and exits 1 instead of starting a deploy that would fail a moment
 * later. Real kwok cluster and Temporal dev server; no worker, so a rollback that passes the check stays queued.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { before, describe, it } from 'node:test';
import { WorkflowNotFoundError } from '@temporalio/client';
import { EXIT } from '../../src/cli/exit.ts';
import { recordHistory, type HistoryEntry } from '../../src/kube/history.ts';
import { applyTarget, ensureNamespace, kubeClients } from '../../src/kube/rollout.ts';
import { validateManifest } from '../../src/manifest/parse.ts';
import { deployWorkflowId } from '../../src/workflows/contract.ts';
import { useCluster } from '../helpers/kubernetes.ts';
import { useTemporal } from '../helpers/temporal.ts';
import { flui, json } from './flui.ts';

const digest = (n: number) => `sha256:${String(n).repeat(64).slice(0, 64)}`;
const image = (n: number) => `registry.example/acme/web@${digest(n)}`;
const workload = validateManifest({
  apiVersion: 'flui.dev/v1',
  kind: 'CatalogApp',
  metadata: { name: 'web' },
  spec: { image: 'registry.example/acme/web:1', port: 8080, replicas: 1 },
}).spec;

describe('flui rollback checks the image history first', () => {
  const cluster = useCluster();
  const temporal = useTemporal();
  let env: Record<string, string>;

  before(() => {
    env = {
      TEMPORAL_ADDRESS: temporal().address,
      TEMPORAL_NAMESPACE: temporal().namespace,
      FLUI_TASK_QUEUE: `nobody-${randomBytes(3).toString('hex')}`,
      KUBECONFIG: cluster().kubeconfigPath,
    };
  });

  /** Records `entries` (newest first) for `app` in `shop` and runs the newest succeeded one, as rollouts leave it. */
  async function seed(app: string, entries: { n: number; outcome: HistoryEntry['outcome'] }[]): Promise<void> {
    const k = kubeClients(cluster().kubeconfigPath);
    await ensureNamespace(k, 'shop');
    for (const [i, e] of [...entries].reverse().entries()) {
      await recordHistory(k, 'shop', app, {
        deployId: `shop.${app}.aaaa${i}`,
        digest: digest(e.n),
        image: image(e.n),
        rolledOutAt: new Date(Date.UTC(2026, 0, 1, 0, i)).toISOString(),
        outcome: e.outcome,
        workload,
      });
    }
    const running = entries.find((e) => e.outcome === 'succeeded');
    if (running) {
      await applyTarget(k, { namespace: 'shop', app, workload, image: image(running.n), deployId: `shop.${app}.x` });
    }
  }

  async function nothingStarted(app: string): Promise<void> {
    await assert.rejects(
      temporal().client.workflow.getHandle(deployWorkflowId('shop', app)).describe(),
      WorkflowNotFoundError,
      `no deploy workflow for ${app}`,
    );
  }

  it('an app never rolled out: exit 1, nothing started', async () => {
    const run = await flui(['rollback', 'never', '-n', 'shop', '--json'], env);
    assert.equal(run.code, EXIT.failed, run.transcript);
    assert.equal(run.stdout, '');
    assert.equal(
      run.stderr,
      'flui rollback: shop/never has no earlier good image to roll back to (no image of it ran successfully yet): ' +
        'nothing was started. See `flui images never -n shop`.\n',
    );
    await nothingStarted('never');
  });

  it('only the running image was good (the one before failed): exit 1, nothing started', async () => {
    await seed('solo', [
      { n: 2, outcome: 'succeeded' },
      { n: 1, outcome: 'failed' },
    ]);
    const run = await flui(['rollback', 'solo', '-n', 'shop'], env);
    assert.equal(run.code, EXIT.failed, run.transcript);
    assert.match(
      run.stderr,
      /^flui rollback: shop\/solo has no earlier good image to roll back to \(images that ran successfully: sha256:2{12}…\): nothing was started/,
    );
    const to = await flui(['rollback', 'solo', '-n', 'shop', '--to', digest(1)], env);
    assert.equal(to.code, EXIT.failed, to.transcript);
    assert.match(to.stderr, new RegExp(`shop/solo never ran ${digest(1)} successfully`));
    await nothingStarted('solo');
  });

  it('with an earlier good image the rollback starts, to it or to the digest asked for', async () => {
    await seed('pair', [
      { n: 4, outcome: 'succeeded' },
      { n: 3, outcome: 'succeeded' },
    ]);
    const run = await flui(['rollback', 'pair', '-n', 'shop', '--json'], env);
    assert.equal(run.code, EXIT.ok, run.transcript);
    const started = json<{ deployId: string; workflowId: string }>(run);
    assert.equal(started.workflowId, deployWorkflowId('shop', 'pair'));
    assert.equal((await temporal().client.workflow.getHandle(started.workflowId).describe()).status.name, 'RUNNING');
    const to = await flui(['rollback', 'pair', '-n', 'shop', '--to', digest(3)], env);
    assert.equal(to.code, EXIT.ok, to.transcript);
    await temporal().client.workflow.getHandle(started.workflowId).terminate('test over');
  });

  it('when this machine cannot read the cluster, it says so and leaves the check to the worker', async () => {
    const run = await flui(['rollback', 'elsewhere', '--json'], { ...env, KUBECONFIG: '/nonexistent/kubeconfig' });
    assert.equal(run.code, EXIT.ok, run.transcript);
    assert.match(run.stderr, /^flui rollback: could not check the image history \(cannot read the image history/);
    assert.match(run.stderr, /going ahead, the worker checks it\n$/);
    assert.equal(json<{ workflowId: string }>(run).workflowId, deployWorkflowId('default', 'elsewhere'));
    await temporal().client.workflow.getHandle(deployWorkflowId('default', 'elsewhere')).terminate('test over');
  });
});
