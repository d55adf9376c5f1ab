/**
 * The client library at its edge, against a real Temporal dev server (no worker): what it refuses, with which field
 * named and which kind of error, before anything is started; and that a configuration works wherever a client does.
 * Then what it reads back from deploys that ended, run by the real workflow with activities held in place.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Context } from '@temporalio/activity';
import { WorkflowFailedError, WorkflowNotFoundError } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import type { DeployActivities } from '../../src/activities/types.ts';
import {
  cancel,
  FluiError,
  follow,
  listBuilds,
  newDeployId,
  rollback,
  startDeploy,
  status,
  webUiBase,
  webUiUrl,
} from '../../src/client/index.ts';
import { loadClientConfig } from '../../src/config.ts';
import { ManifestError } from '../../src/manifest/parse.ts';
import type { Manifest } from '../../src/manifest/schema.ts';
import { cancelSignal, deployWorkflowId, type Cancellation } from '../../src/workflows/contract.ts';
import { pollUntil } from '../helpers/eventually.ts';
import { useTemporal, workflowBundle } from '../helpers/temporal.ts';

const valid = {
  apiVersion: 'flui.dev/v1',
  kind: 'CatalogApp',
  metadata: { name: 'cache' },
  spec: { image: 'registry.example.com/library/redis:7.4' },
} as unknown as Manifest;

function fluiError(kind: FluiError['kind'], message: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof FluiError, String(err));
    assert.equal(err.kind, kind);
    assert.match(err.message, message);
    return true;
  };
}

describe('client library', () => {
  const temporal = useTemporal();
  const config = () =>
    loadClientConfig({
      TEMPORAL_ADDRESS: temporal().address,
      TEMPORAL_NAMESPACE: temporal().namespace,
      FLUI_TASK_QUEUE: 'nobody',
    });

  async function nothingStarted(app: string) {
    await assert.rejects(
      temporal().client.workflow.getHandle(deployWorkflowId('default', app)).describe(),
      WorkflowNotFoundError,
    );
  }

  it('refuses an invalid manifest object naming the field, and starts nothing', async () => {
    const bad = {
      ...valid,
      metadata: { name: 'bad-cache' },
      spec: { image: 'registry.example.com/library/redis:7.4', replicas: -1 },
    };
    await assert.rejects(startDeploy(temporal().client, bad as unknown as Manifest), (err: unknown) => {
      assert.ok(err instanceof ManifestError);
      assert.deepEqual(
        err.problems.map((p) => p.field),
        ['spec.replicas'],
      );
      return true;
    });
    await assert.rejects(
      startDeploy(temporal().client, { ...valid, metadata: { name: 'bad-cache' } } as Manifest, {
        policy: 'yolo' as 'queue',
      }),
      fluiError('invalid', /^options\.policy /),
    );
    await assert.rejects(
      startDeploy(temporal().client, { ...valid, metadata: { name: 'bad-cache' } } as Manifest, {
        webUi: 'not a url',
      }),
      fluiError('invalid', /^options\.webUi /),
    );
    await nothingStarted('bad-cache');
  });

  it('refuses bad names, digests and deploy ids as invalid input', async () => {
    const client = temporal().client;
    await assert.rejects(status(client, 'default', 'Not_A_Name'), fluiError('invalid', /^app must be a lowercase/));
    await assert.rejects(status(client, 'a.b', 'web'), fluiError('invalid', /^namespace must be/));
    await assert.rejects(
      rollback(client, 'default', 'web', { digest: 'sha256:short' }),
      fluiError('invalid', /^digest must be "sha256:"/),
    );
    await assert.rejects(listBuilds(client, 'default', 'web', 0), fluiError('invalid', /^limit /));
    await assert.rejects(follow(client, 'web').next(), fluiError('invalid', /"web" is not a deploy id/));
    await nothingStarted('web');
  });

  it('takes configuration instead of a client, and connects for the one call', async () => {
    await assert.rejects(status(config(), 'default', 'ghost'), fluiError('not-found', /no deploy of default\/ghost/));
    const started = await startDeploy(config(), valid, { webUi: 'http://ui.test', follow: true });
    assert.match(started.deployId, /^default\.cache\.[a-z0-9]+$/);
    assert.equal(
      started.webUiUrl,
      `http://ui.test/namespaces/default/workflows/deploy-default.cache/${started.runId}/history`,
    );
    // No worker: the first status is the one recorded at start.
    const first = await started.progress.next();
    assert.equal(first.value?.deployId, started.deployId);
    assert.equal(first.value?.phase, 'queued');
    await started.progress.return(undefined);
    await temporal().client.workflow.getHandle(started.workflowId).terminate('test over');
  });

  it('makes time-ordered, unique deploy ids and Web UI links', () => {
    const ids = Array.from({ length: 50 }, () => newDeployId('default', 'web'));
    assert.equal(new Set(ids).size, 50);
    for (const id of ids) assert.match(id, /^default\.web\.[a-z0-9]{14}$/);
    const base = { address: '127.0.0.1:7233', uiPort: 8233 };
    assert.equal(webUiBase({ ...base }), 'http://127.0.0.1:8233');
    assert.equal(webUiBase({ ...base, address: 'localhost:7000' }), 'http://localhost:8233');
    assert.equal(webUiBase({ ...base, address: 'acme.a1b2c.tmprl.cloud:7233' }), 'https://cloud.temporal.io');
    assert.equal(webUiBase({ ...base, address: 'temporal.internal:7233' }), undefined);
    assert.equal(
      webUiBase({ ...base, address: 'temporal.internal:7233', uiUrl: 'https://ui.internal' }),
      'https://ui.internal',
    );
    assert.equal(
      webUiUrl('http://x', 'ns 1', 'deploy-a.b', 'r'),
      'http://x/namespaces/ns%201/workflows/deploy-a.b/r/history',
    );
  });

  describe('reading back how a deploy ended', () => {
    /** Holds every deploy in `resolving` until it is cancelled (heartbeats carry the cancellation to it). */
    const held: Pick<DeployActivities, 'resolveImage'> = {
      async resolveImage() {
        const ctx = Context.current();
        for (;;) {
          ctx.heartbeat();
          await ctx.sleep(200);
        }
      },
    };

    /** Deploys `app`, waits until it is held, ends it with `end`, and waits until the run has closed. */
    async function deployAndEnd(app: string, taskQueue: string, end: (workflowId: string) => Promise<unknown>) {
      const client = temporal().client;
      const { workflowId } = await startDeploy(client, { ...valid, metadata: { name: app } } as Manifest, {
        taskQueue,
      });
      await pollUntil(async () => ((await status(client, 'default', app)).phase === 'resolving' ? true : undefined), {
        what: `${app} resolving`,
        timeoutMs: 30_000,
        intervalMs: 200,
      });
      await end(workflowId);
      await assert.rejects(client.workflow.getHandle(workflowId).result(), WorkflowFailedError);
    }

    it('shows a deploy cancelled through the signal, through Temporal or by termination as cancelled, by whom and why', async () => {
      const { client, nativeConnection } = temporal();
      const taskQueue = 'client-cancelled';
      const worker = await Worker.create({
        connection: nativeConnection,
        taskQueue,
        workflowBundle: await workflowBundle('src/workflows/index.ts'),
        activities: held,
      });
      const cases: [string, (workflowId: string) => Promise<unknown>, Cancellation][] = [
        // What `temporal workflow signal --name cancel` and Web UI's signal send: the run ends Failed.
        [
          'by-signal',
          (id) => client.workflow.getHandle(id).signal(cancelSignal, { reason: 'wrong image' }),
          { by: 'signal', reason: 'wrong image' },
        ],
        ['by-temporal', () => cancel(client, 'default', 'by-temporal'), { by: 'temporal' }],
        ['by-termination', (id) => client.workflow.getHandle(id).terminate('stuck'), { by: 'terminated' }],
      ];
      await worker.runUntil(async () => {
        for (const [app, end, cancelled] of cases) {
          await deployAndEnd(app, taskQueue, end);
          const s = await status(client, 'default', app);
          assert.equal(s.source, 'recorded', app);
          assert.equal(s.phase, 'cancelled', app);
          assert.deepEqual(s.cancelled, cancelled, app);
          const [build, ...older] = await listBuilds(client, 'default', app);
          assert.deepEqual(older, [], app);
          assert.equal(build?.phase, 'cancelled', app);
          assert.deepEqual(build?.cancelled, cancelled, app);
          assert.equal(build?.deployId, s.deployId, app);
        }
      });
    });
  });
});
