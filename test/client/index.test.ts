/**
 * The client library at its edge, against a real Temporal dev server (no worker): what it refuses, with which field
 * named and which kind of error, before anything is started; and that a configuration works wherever a client does.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WorkflowNotFoundError } from '@temporalio/client';
import {
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
import { deployWorkflowId } from '../../src/workflows/api.ts';
import { useTemporal } from '../helpers/temporal.ts';

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
});
