import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/activity';
import { createKubernetesActivities } from '../../src/activities/kubernetes.ts';
import { listImages } from '../../src/kube/history.ts';
import { kubeClients } from '../../src/kube/rollout.ts';
import { validateManifest } from '../../src/manifest/parse.ts';
import type { CatalogApp } from '../../src/manifest/schema.ts';
import type { DeployRequest } from '../../src/workflows/api.ts';
import { useCluster } from '../helpers/kubernetes.ts';

const digest = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;
const image = (n: number, repo = 'acme/web') => `127.0.0.1:5001/${repo}@${digest(n)}`;

function manifest(app: string, extra: Record<string, unknown> = {}): CatalogApp {
  return validateManifest({
    apiVersion: 'flui.dev/v1',
    kind: 'CatalogApp',
    metadata: { name: app, namespace: 'shop' },
    spec: {
      image: '127.0.0.1:5001/acme/web:1',
      replicas: 2,
      port: 8080,
      deploy: { progressDeadlineSeconds: 10 },
      ...extra,
    },
  }) as CatalogApp;
}

function request(m: CatalogApp, deployId: string): DeployRequest {
  return { deployId, kind: 'CatalogApp', manifest: m, policy: 'supersede' };
}

async function failureOf(p: Promise<unknown>): Promise<ApplicationFailure> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ApplicationFailure, `expected ApplicationFailure, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a failure');
}

describe('rolloutImage against a kwok cluster', () => {
  const cluster = useCluster();
  const rollout = () => createKubernetesActivities({ kubeconfig: cluster().kubeconfigPath }).rolloutImage;

  it('rolls out, updates by digest, and a re-apply after a crash changes nothing', async () => {
    const m = manifest('web');
    const first = await rollout()({
      deployId: 'shop.web.aaaa1',
      request: request(m, 'shop.web.aaaa1'),
      image: image(1),
      commit: 'c1',
    });
    assert.equal(first.digest, digest(1));
    assert.equal(first.unchanged, false);
    const status = await cluster().kubectl('rollout', 'status', 'deployment/web', '-n', 'shop', '--timeout=5s');
    assert.match(status, /successfully rolled out/);

    const second = await rollout()({
      deployId: 'shop.web.aaaa2',
      request: request(m, 'shop.web.aaaa2'),
      image: image(2),
      commit: 'c2',
    });
    assert.notEqual(second.revision, first.revision);
    const again = await rollout()({
      deployId: 'shop.web.aaaa2',
      request: request(m, 'shop.web.aaaa2'),
      image: image(2),
      commit: 'c2',
    });
    assert.equal(again.unchanged, true);
    assert.equal(again.revision, second.revision);

    const k = kubeClients(cluster().kubeconfigPath);
    const d = await k.apps.readNamespacedDeployment({ name: 'web', namespace: 'shop' });
    assert.equal(d.spec?.template.spec?.containers[0]?.image, image(2));
    assert.equal(d.metadata?.labels?.['app.kubernetes.io/managed-by'], 'flui');
    assert.equal(d.metadata?.managedFields?.find((f) => f.operation === 'Apply')?.manager, 'flui');
    const images = await listImages(k, 'shop', 'web');
    assert.deepEqual(
      images.map((i) => [i.digest, i.current, i.deployId]),
      [
        [digest(2), true, 'shop.web.aaaa2'],
        [digest(1), false, 'shop.web.aaaa1'],
      ],
    );
  });

  it('rolls back to the last good digest when pods never become ready', async () => {
    const m = manifest('web');
    const failure = await failureOf(
      rollout()({
        deployId: 'shop.web.bbbb1',
        request: request(m, 'shop.web.bbbb1'),
        image: image(3, 'acme/fail-web'),
      }),
    );
    assert.equal(failure.type, 'RolloutFailed');
    assert.equal(failure.nonRetryable, true);
    assert.match(failure.message, /ProgressDeadlineExceeded: ReplicaSet "web-[a-z0-9]+" has timed out progressing/);
    assert.match(failure.message, new RegExp(`restored ${digest(2)}`));
    const status = await cluster().kubectl('rollout', 'status', 'deployment/web', '-n', 'shop', '--timeout=5s');
    assert.match(status, /successfully rolled out/);
    const k = kubeClients(cluster().kubeconfigPath);
    const images = await listImages(k, 'shop', 'web');
    assert.equal(images.find((i) => i.current)?.digest, digest(2));
    assert.equal(images[0]?.outcome, 'failed');
  });

  it('rolls back on request, to the previous image or a named digest, and refuses unknown digests', async () => {
    const back = await rollout()({
      deployId: 'shop.web.cccc1',
      request: { deployId: 'shop.web.cccc1', kind: 'Rollback', namespace: 'shop', app: 'web', policy: 'supersede' },
      image: '',
    });
    assert.equal(back.digest, digest(1));
    const named = await rollout()({
      deployId: 'shop.web.cccc2',
      request: {
        deployId: 'shop.web.cccc2',
        kind: 'Rollback',
        namespace: 'shop',
        app: 'web',
        digest: digest(2),
        policy: 'supersede',
      },
      image: '',
    });
    assert.equal(named.digest, digest(2));
    const unknown = await failureOf(
      rollout()({
        deployId: 'shop.web.cccc3',
        request: {
          deployId: 'shop.web.cccc3',
          kind: 'Rollback',
          namespace: 'shop',
          app: 'web',
          digest: digest(9),
          policy: 'supersede',
        },
        image: '',
      }),
    );
    assert.equal(unknown.type, 'NotFound');
    assert.match(unknown.message, new RegExp(`known good digests: .*${digest(1)}`));
  });

  it('reports objects the API server rejects (422) as non-retryable with its message', async () => {
    const m = manifest('bad', { resources: { requests: { cpu: '2' }, limits: { cpu: '1' } } });
    const failure = await failureOf(
      rollout()({ deployId: 'shop.bad.dddd1', request: request(m, 'shop.bad.dddd1'), image: image(1) }),
    );
    assert.equal(failure.type, 'Invalid');
    assert.equal(failure.nonRetryable, true);
    assert.match(failure.message, /\(422\).*must be less than or equal to cpu limit/);
  });

  it('reports RBAC refusals (403) and a missing kubeconfig clearly', async () => {
    await cluster().kubectl('create', 'serviceaccount', 'nobody', '-n', 'default');
    const token = (await cluster().kubectl('create', 'token', 'nobody', '-n', 'default')).trim();
    const kc = kubeClients(cluster().kubeconfigPath).kc;
    const path = join(cluster().workDir, 'nobody.kubeconfig');
    await writeFile(
      path,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [
          { name: 'c', cluster: { server: cluster().server, 'certificate-authority': kc.getCurrentCluster()?.caFile } },
        ],
        users: [{ name: 'nobody', user: { token } }],
        contexts: [{ name: 'c', context: { cluster: 'c', user: 'nobody' } }],
        'current-context': 'c',
      }),
    );
    const m = manifest('web');
    const denied = await failureOf(
      createKubernetesActivities({ kubeconfig: path }).rolloutImage({
        deployId: 'shop.web.eeee1',
        request: request(m, 'shop.web.eeee1'),
        image: image(1),
      }),
    );
    assert.equal(denied.type, 'Unauthorized');
    assert.match(denied.message, /\(403\).*forbidden/);
    const missing = await failureOf(
      createKubernetesActivities({ kubeconfig: '/nonexistent/kubeconfig' }).rolloutImage({
        deployId: 'shop.web.eeee2',
        request: request(m, 'shop.web.eeee2'),
        image: image(1),
      }),
    );
    assert.equal(missing.type, 'Misconfigured');
    assert.match(missing.message, /cannot read kubeconfig \/nonexistent\/kubeconfig/);
  });
});
