/**
 * rolloutImage and the image history against a real control plane (kwok: etcd, kube-apiserver, the deployment
 * controller, fake nodes), one cluster for the file. The tests build on each other's history: the order matters.
 * Timings are printed (not asserted): cluster start, rollout, failed rollout with automatic rollback.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ApplicationFailure, CancelledFailure } from '@temporalio/activity';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger, Worker } from '@temporalio/worker';
import { withActivityFailures } from '../../src/activities/failures.ts';
import { createKubernetesActivities } from '../../src/activities/kubernetes.ts';
import type { RolloutImageInput } from '../../src/activities/types.ts';
import { rollback } from '../../src/client/index.ts';
import { listImages } from '../../src/kube/history.ts';
import { applyTarget, kubeClients, type KubeClients } from '../../src/kube/rollout.ts';
import { freePort } from '../../dev/process.ts';
import { validateManifest } from '../../src/manifest/parse.ts';
import type { CatalogApp } from '../../src/manifest/schema.ts';
import type { DeployOutcome } from '../../src/workflows/contract.ts';
import { useCluster } from '../helpers/kubernetes.ts';
import { useTemporal, workflowBundle } from '../helpers/temporal.ts';

const digest = (n: number) => `sha256:${createHash('sha256').update(`image ${n}`).digest('hex')}`;
const image = (n: number, repo = 'acme/web') => `127.0.0.1:5001/${repo}@${digest(n)}`;
const secs = (since: number) => `${((performance.now() - since) / 1000).toFixed(1)}s`;

function manifest(app: string, extra: Record<string, unknown> = {}): CatalogApp {
  return validateManifest({
    apiVersion: 'flui.dev/v1',
    kind: 'CatalogApp',
    metadata: { name: app, namespace: 'shop' },
    spec: {
      image: '127.0.0.1:5001/acme/web:1',
      replicas: 2,
      port: 8080,
      env: { GREETING: 'hello', MODE: 'production' },
      resources: { requests: { cpu: '100m', memory: '64Mi' }, limits: { memory: '128Mi' } },
      healthCheck: { path: '/healthz' },
      deploy: { progressDeadlineSeconds: 10 },
      ...extra,
    },
  }) as CatalogApp;
}

function input(m: CatalogApp, deployId: string, img: string, commit?: string): RolloutImageInput {
  return { request: { deployId, kind: 'CatalogApp', manifest: m, policy: 'supersede' }, image: img, commit };
}

function rollbackInput(deployId: string, app: string, to?: string): RolloutImageInput {
  return { request: { deployId, kind: 'Rollback', namespace: 'shop', app, digest: to, policy: 'supersede' } };
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

/** A real activity Context (heartbeats, cancellation) without a server; the SDK's failure logs kept quiet. */
function activityEnvironment(): MockActivityEnvironment {
  return new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') });
}

async function replicaSets(k: KubeClients, app: string) {
  const list = await k.apps.listNamespacedReplicaSet({
    namespace: 'shop',
    labelSelector: `app.kubernetes.io/name=${app}`,
  });
  return list.items.map((rs) => ({
    name: rs.metadata?.name,
    revision: rs.metadata?.annotations?.['deployment.kubernetes.io/revision'],
    image: rs.spec?.template?.spec?.containers[0]?.image,
    replicas: rs.spec?.replicas,
  }));
}

describe('rolloutImage against a kwok cluster', () => {
  let clusterStart = 0;
  const cluster = useCluster({
    log: (line) => {
      if (!clusterStart) clusterStart = performance.now();
      if (line.includes('nodes ready')) console.log(`# kwok ${line}`);
    },
  });
  // As the worker registers them: what the activity throws reaches Temporal through the one translation.
  const rolloutImage = (kubeconfig = cluster().kubeconfigPath) =>
    withActivityFailures(createKubernetesActivities({ kubeconfig })).rolloutImage;
  const k = () => kubeClients(cluster().kubeconfigPath);
  const generation = async (app = 'web', namespace = 'shop') =>
    (await k().apps.readNamespacedDeployment({ name: app, namespace })).metadata?.generation;

  it('first rollout: Deployment and Service from the manifest, pinned by digest; kubectl rollout status agrees', async () => {
    const t0 = performance.now();
    const first = await rolloutImage()(input(manifest('web'), 'shop.web.aaaa1', image(1), 'c0ffee1'));
    console.log(`# first rollout (2 replicas) in ${secs(t0)}`);
    assert.deepEqual(first, {
      namespace: 'shop',
      app: 'web',
      image: image(1),
      digest: digest(1),
      revision: '1',
      unchanged: false,
    });

    const d = await k().apps.readNamespacedDeployment({ name: 'web', namespace: 'shop' });
    assert.deepEqual(d.metadata?.labels, { 'app.kubernetes.io/name': 'web', 'app.kubernetes.io/managed-by': 'flui' });
    assert.equal(d.metadata?.annotations?.['flui.dev/deploy-id'], 'shop.web.aaaa1');
    assert.equal(d.metadata?.annotations?.['flui.dev/commit'], 'c0ffee1');
    assert.equal(d.metadata?.managedFields?.find((f) => f.operation === 'Apply')?.manager, 'flui');
    assert.equal(d.spec?.replicas, 2);
    assert.equal(d.spec?.progressDeadlineSeconds, 10);
    const c = d.spec?.template.spec?.containers[0];
    assert.equal(c?.image, image(1));
    const plain = (x: unknown) => JSON.parse(JSON.stringify(x)) as unknown;
    assert.deepEqual(plain(c?.ports), [{ name: 'http', containerPort: 8080, protocol: 'TCP' }]);
    assert.deepEqual(plain(c?.env), [
      { name: 'GREETING', value: 'hello' },
      { name: 'MODE', value: 'production' },
    ]);
    assert.deepEqual(plain(c?.resources), { requests: { cpu: '100m', memory: '64Mi' }, limits: { memory: '128Mi' } });
    assert.equal(c?.readinessProbe?.httpGet?.path, '/healthz');
    assert.equal(c?.readinessProbe?.httpGet?.port, 8080);
    assert.equal(c?.livenessProbe?.httpGet?.path, '/healthz');
    const svc = await k().core.readNamespacedService({ name: 'web', namespace: 'shop' });
    assert.deepEqual(svc.spec?.selector, { 'app.kubernetes.io/name': 'web' });
    assert.equal(svc.spec?.ports?.[0]?.targetPort, 8080);
    const ns = await k().core.readNamespace({ name: 'shop' });
    assert.equal(ns.metadata?.labels?.['app.kubernetes.io/managed-by'], 'flui');

    // The built kubectl reads the same verdict and revision.
    const status = await cluster().kubectl('rollout', 'status', 'deployment/web', '-n', 'shop', '--timeout=5s');
    assert.match(status, /deployment "web" successfully rolled out/);
    const revision = await cluster().kubectl(
      'get',
      'deployment/web',
      '-n',
      'shop',
      '-o',
      'jsonpath={.metadata.annotations.deployment\\.kubernetes\\.io/revision} {.status.readyReplicas}',
    );
    assert.equal(revision, `${first.revision} 2`);
  });

  it('updates to a new digest; after a crash between apply and the end of the wait, the retry changes nothing', async () => {
    const m = manifest('web');
    const second = await rolloutImage()(input(m, 'shop.web.aaaa2', image(2), 'c0ffee2'));
    assert.equal(second.revision, '2');
    assert.equal(second.unchanged, false);
    assert.match(
      await cluster().kubectl('rollout', 'status', 'deployment/web', '-n', 'shop', '--timeout=5s'),
      /successfully rolled out/,
    );

    // The activity applied deploy aaaa3 and its worker died; Temporal retries it with the same input.
    await applyTarget(k(), {
      namespace: 'shop',
      app: 'web',
      workload: m.spec,
      image: image(3),
      deployId: 'shop.web.aaaa3',
      commit: 'c0ffee3',
    });
    const gen = await generation();
    const sets = await replicaSets(k(), 'web');
    const retried = await rolloutImage()(input(m, 'shop.web.aaaa3', image(3), 'c0ffee3'));
    assert.equal(retried.unchanged, true);
    assert.equal(retried.revision, '3');
    assert.equal(await generation(), gen);
    assert.deepEqual(
      (await replicaSets(k(), 'web')).map((rs) => rs.name),
      sets.map((rs) => rs.name),
    );

    // A new deploy of the same digest and settings starts no pod either (only Flui's annotations move).
    const same = await rolloutImage()(input(m, 'shop.web.aaaa4', image(3), 'c0ffee3'));
    assert.equal(same.unchanged, true);
    assert.equal(same.revision, '3');
    assert.deepEqual(
      (await replicaSets(k(), 'web')).map((rs) => rs.name),
      sets.map((rs) => rs.name),
    );

    const images = await listImages({ kubeconfig: cluster().kubeconfigPath, namespace: 'shop', app: 'web' });
    assert.deepEqual(
      images.map((i) => [i.deployId, i.digest, i.commit, i.outcome, i.current]),
      [
        ['shop.web.aaaa4', digest(3), 'c0ffee3', 'succeeded', true],
        ['shop.web.aaaa3', digest(3), 'c0ffee3', 'succeeded', false],
        ['shop.web.aaaa2', digest(2), 'c0ffee2', 'succeeded', false],
        ['shop.web.aaaa1', digest(1), 'c0ffee1', 'succeeded', false],
      ],
    );
    assert.ok(images.every((i) => !('workload' in i)));
  });

  it('a rollout whose pods never become ready hits the progress deadline and rolls back to the last good digest', async () => {
    const m = manifest('web');
    const heartbeats: unknown[] = [];
    const env = activityEnvironment();
    env.on('heartbeat', (d: unknown) => heartbeats.push(d));
    const t0 = performance.now();
    const failure = await failureOf(
      env.run(rolloutImage(), input(m, 'shop.web.bbbb1', image(4, 'acme/fail-web'), 'badc0de')),
    );
    console.log(`# failed rollout (10 s progress deadline) and automatic rollback in ${secs(t0)}`);
    assert.equal(failure.type, 'RolloutFailed');
    assert.equal(failure.nonRetryable, true);
    assert.match(
      failure.message,
      /failed: ProgressDeadlineExceeded: ReplicaSet "web-[a-z0-9]+" has timed out progressing\.; restored sha256:/,
    );
    assert.ok(failure.message.includes(`restored ${digest(3)} (deploy shop.web.aaaa4)`), failure.message);
    assert.deepEqual(failure.details?.[0], {
      reason: 'ProgressDeadlineExceeded',
      message: failure.message.split('failed: ')[1]?.split('; restored')[0],
      restored: digest(3),
    });

    // Heartbeats carried progress, and nothing from the spec (env values).
    assert.ok(heartbeats.some((h) => (h as { phase: string }).phase === 'rollout'));
    assert.ok(heartbeats.some((h) => (h as { phase: string }).phase === 'rollback'));
    assert.ok(!JSON.stringify(heartbeats).includes('production'));

    // kubectl sees the restored image rolled out; the controller brought the old ReplicaSet back (rollout undo).
    assert.match(
      await cluster().kubectl('rollout', 'status', 'deployment/web', '-n', 'shop', '--timeout=5s'),
      /successfully rolled out/,
    );
    const sets = await replicaSets(k(), 'web');
    assert.equal(sets.length, 4);
    assert.deepEqual(
      sets.filter((rs) => rs.replicas! > 0).map((rs) => [rs.image, rs.revision]),
      [[image(3), '5']],
    );

    // A retry of the failed deploy (its worker died after recording the failure) does not start the image again.
    const gen = await generation();
    const again = await failureOf(rolloutImage()(input(m, 'shop.web.bbbb1', image(4, 'acme/fail-web'), 'badc0de')));
    assert.equal(again.type, 'RolloutFailed');
    assert.match(again.message, /ProgressDeadlineExceeded: ReplicaSet "web-[a-z0-9]+" has timed out/);
    assert.equal(await generation(), gen);

    const images = await listImages(k(), 'shop', 'web');
    assert.equal(images[0]?.deployId, 'shop.web.bbbb1');
    assert.equal(images[0]?.outcome, 'failed');
    assert.match(images[0]?.reason ?? '', /^ProgressDeadlineExceeded: /);
    assert.equal(images.find((i) => i.current)?.deployId, 'shop.web.aaaa4');
  });

  it('a failed first rollout says there was nothing to restore', async () => {
    const failure = await failureOf(
      rolloutImage()(input(manifest('solo', { replicas: 1 }), 'shop.solo.ffff1', image(5, 'acme/fail-solo'))),
    );
    assert.equal(failure.type, 'RolloutFailed');
    assert.match(failure.message, /ProgressDeadlineExceeded.*no earlier good image to restore/);
  });

  it('rolls back on request: the previous image, a retried rollback, a digest prefix; unknown digests are listed', async () => {
    const back = await rolloutImage()(rollbackInput('shop.web.cccc1', 'web'));
    assert.equal(back.digest, digest(2));
    assert.equal(back.unchanged, false);
    const d = await k().apps.readNamespacedDeployment({ name: 'web', namespace: 'shop' });
    assert.equal(d.metadata?.annotations?.['flui.dev/commit'], 'c0ffee2');
    assert.equal(d.metadata?.annotations?.['flui.dev/deploy-id'], 'shop.web.cccc1');
    assert.equal(d.spec?.template.spec?.containers[0]?.env?.[0]?.value, 'hello');

    // The same rollback retried after a crash keeps its target (not "the image before the current one" again).
    const retried = await rolloutImage()(rollbackInput('shop.web.cccc1', 'web'));
    assert.equal(retried.digest, digest(2));
    assert.equal(retried.unchanged, true);

    const named = await rolloutImage()(
      rollbackInput('shop.web.cccc2', 'web', digest(1).slice(0, 'sha256:'.length + 10)),
    );
    assert.equal(named.digest, digest(1));
    assert.match(
      await cluster().kubectl('rollout', 'status', 'deployment/web', '-n', 'shop', '--timeout=5s'),
      /successfully rolled out/,
    );
    const images = await listImages(k(), 'shop', 'web');
    assert.deepEqual(
      images.slice(0, 2).map((i) => [i.deployId, i.digest, i.restoredFrom, i.current]),
      [
        ['shop.web.cccc2', digest(1), 'shop.web.aaaa1', true],
        ['shop.web.cccc1', digest(2), 'shop.web.aaaa2', false],
      ],
    );

    const unknown = await failureOf(rolloutImage()(rollbackInput('shop.web.cccc3', 'web', digest(9))));
    assert.equal(unknown.type, 'NotFound');
    assert.equal(unknown.nonRetryable, true);
    for (const n of [1, 2, 3]) assert.ok(unknown.message.includes(digest(n)), unknown.message);
    assert.ok(!unknown.message.includes(digest(4)), 'the failed image is no rollback target');
    const none = await failureOf(rolloutImage()(rollbackInput('shop.none.cccc4', 'none')));
    assert.equal(none.type, 'NotFound');
    assert.match(none.message, /shop\/none has no earlier good image to roll back to; images that ran: none/);
  });

  it('stops waiting when the activity is cancelled', async () => {
    const env = activityEnvironment();
    env.once('heartbeat', () => env.cancel());
    await assert.rejects(
      env.run(rolloutImage(), input(manifest('web'), 'shop.web.gggg1', image(6, 'acme/fail-web'))),
      (err: unknown) => err instanceof CancelledFailure,
    );
    // Put the good image back for the tests that follow (the deployment controller is mid-rollout).
    await rolloutImage()(rollbackInput('shop.web.gggg2', 'web', digest(1)));
  });

  it('refuses an image that is not pinned by digest', async () => {
    const failure = await failureOf(
      rolloutImage()(input(manifest('web'), 'shop.web.hhhh1', '127.0.0.1:5001/acme/web:latest')),
    );
    assert.equal(failure.type, 'Invalid');
    assert.match(failure.message, /pinned by digest/);
  });

  it('reports objects the API server rejects (422) as non-retryable with its message', async () => {
    const m = manifest('bad', { resources: { requests: { cpu: '2' }, limits: { cpu: '1' } } });
    const failure = await failureOf(rolloutImage()(input(m, 'shop.bad.dddd1', image(1))));
    assert.equal(failure.type, 'Invalid');
    assert.equal(failure.nonRetryable, true);
    assert.match(failure.message, /\(422\).*must be less than or equal to cpu limit/);
  });

  it('reports RBAC refusals (403), a missing kubeconfig and an unreachable cluster clearly; a namespaced credential deploys', async () => {
    await cluster().kubectl('create', 'serviceaccount', 'nobody', '-n', 'default');
    const token = (await cluster().kubectl('create', 'token', 'nobody', '-n', 'default')).trim();
    const caFile = k().kc.getCurrentCluster()?.caFile;
    const kubeconfig = async (file: string, server: string, user: object) => {
      const path = join(cluster().workDir, file);
      await writeFile(
        path,
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'Config',
          clusters: [{ name: 'c', cluster: { server, 'certificate-authority': caFile } }],
          users: [{ name: 'u', user }],
          contexts: [{ name: 'c', context: { cluster: 'c', user: 'u' } }],
          'current-context': 'c',
        }),
      );
      return path;
    };
    const m = manifest('web');

    const denied = await failureOf(
      rolloutImage(await kubeconfig('nobody.kubeconfig', cluster().server, { token }))(
        input(m, 'shop.web.eeee1', image(1)),
      ),
    );
    assert.equal(denied.type, 'Unauthorized');
    assert.equal(denied.nonRetryable, true);
    assert.match(denied.message, /\(403\).*"system:serviceaccount:default:nobody" cannot/);
    assert.ok(!denied.message.includes(token), 'no token in the message');

    const missing = await failureOf(rolloutImage('/nonexistent/kubeconfig')(input(m, 'shop.web.eeee2', image(1))));
    assert.equal(missing.type, 'Misconfigured');
    assert.equal(missing.nonRetryable, true);
    assert.match(missing.message, /cannot read kubeconfig \/nonexistent\/kubeconfig/);

    // A credential confined to its namespace (no cluster-wide namespace reads) still deploys there.
    const kubectl = (...args: string[]) => cluster().kubectl(...args);
    await kubectl('create', 'serviceaccount', 'deployer', '-n', 'shop');
    await kubectl(
      'create',
      'role',
      'deployer',
      '-n',
      'shop',
      '--verb=get,list,watch,create,update,patch',
      '--resource=deployments.apps,services,configmaps',
    );
    await kubectl(
      'create',
      'rolebinding',
      'deployer',
      '-n',
      'shop',
      '--role=deployer',
      '--serviceaccount=shop:deployer',
    );
    const scoped = (await kubectl('create', 'token', 'deployer', '-n', 'shop')).trim();
    const result = await rolloutImage(await kubeconfig('deployer.kubeconfig', cluster().server, { token: scoped }))(
      input(manifest('scoped', { replicas: 1 }), 'shop.scoped.eeee4', image(1)),
    );
    assert.equal(result.revision, '1');

    const closed = `https://127.0.0.1:${await freePort()}`;
    const unreachable = await failureOf(
      rolloutImage(await kubeconfig('closed.kubeconfig', closed, { token }))(input(m, 'shop.web.eeee3', image(1))),
    );
    assert.equal(unreachable.type, 'ClusterUnavailable');
    assert.equal(unreachable.nonRetryable, false);
    assert.ok(unreachable.message.startsWith(`cannot reach the Kubernetes API at ${closed}`), unreachable.message);
    assert.match(unreachable.message, /ECONNREFUSED/);
  });

  it('env vars from a Secret: the Deployment carries the reference, and neither it nor the image history the value', async () => {
    const value = 'sup3r-s3cret-t0ken-value';
    await k().core.createNamespacedSecret({
      namespace: 'shop',
      body: { metadata: { name: 'vault-api' }, stringData: { token: value } },
    });
    const m = manifest('vault', {
      replicas: 1,
      env: { API_TOKEN: { secretKeyRef: { name: 'vault-api', key: 'token' } }, MODE: 'production' },
    });
    const heartbeats: unknown[] = [];
    const env = activityEnvironment();
    env.on('heartbeat', (d: unknown) => heartbeats.push(d));
    const result = (await env.run(rolloutImage(), input(m, 'shop.vault.ssss1', image(1)))) as { revision: string };
    assert.equal(result.revision, '1');

    const d = await k().apps.readNamespacedDeployment({ name: 'vault', namespace: 'shop' });
    assert.deepEqual(JSON.parse(JSON.stringify(d.spec?.template.spec?.containers[0]?.env)), [
      { name: 'API_TOKEN', valueFrom: { secretKeyRef: { name: 'vault-api', key: 'token' } } },
      { name: 'MODE', value: 'production' },
    ]);
    assert.ok(!JSON.stringify(d).includes(value), 'no secret value on the Deployment');
    const history = await k().core.readNamespacedConfigMap({ name: 'flui-history-vault', namespace: 'shop' });
    const recorded = history.data?.['history.json'] ?? '';
    assert.ok(recorded.includes('"secretKeyRef":{"name":"vault-api","key":"token"}'), recorded);
    assert.ok(!JSON.stringify(history).includes(value), 'no secret value in the image history');
    assert.ok(!JSON.stringify(heartbeats).includes(value));

    // A rollback re-applies the recorded spec: the reference again, still no value.
    await rolloutImage()(input(manifest('vault', { replicas: 1 }), 'shop.vault.ssss2', image(2)));
    const back = await rolloutImage()(rollbackInput('shop.vault.ssss3', 'vault'));
    assert.equal(back.digest, digest(1));
    const restored = await k().apps.readNamespacedDeployment({ name: 'vault', namespace: 'shop' });
    assert.deepEqual(JSON.parse(JSON.stringify(restored.spec?.template.spec?.containers[0]?.env?.[0])), {
      name: 'API_TOKEN',
      valueFrom: { secretKeyRef: { name: 'vault-api', key: 'token' } },
    });
  });

  it('`flui retry` after a rollout that failed for a passing reason (a pod quota) applies again and succeeds', async () => {
    const ns = 'quota';
    const m = validateManifest({
      ...manifest('api'),
      metadata: { name: 'api', namespace: ns },
    }) as CatalogApp;
    const attempt = (deployId: string, img: string, n: number): RolloutImageInput => ({
      ...input(m, deployId, img),
      attempt: n,
    });
    const first = await rolloutImage()(attempt('quota.api.qqqq1', image(1), 1));
    assert.equal(first.revision, '1');

    // No room for the surge pod of the next rollout: the deployment controller cannot make progress.
    await k().core.createNamespacedResourceQuota({
      namespace: ns,
      body: { metadata: { name: 'pods' }, spec: { hard: { pods: '2' } } },
    });
    const failed = await failureOf(rolloutImage()(attempt('quota.api.qqqq2', image(2), 1)));
    assert.equal(failed.type, 'RolloutFailed');
    assert.ok(failed.message.includes(`restored ${digest(1)}`), failed.message);
    // A crash-retry of that same attempt still does not start the image again.
    const gen = await generation('api', ns);
    const crashRetry = await failureOf(rolloutImage()(attempt('quota.api.qqqq2', image(2), 1)));
    assert.equal(crashRetry.type, 'RolloutFailed');
    assert.equal(await generation('api', ns), gen);

    // The cause passes (the quota is raised); `flui retry` is the deploy's next attempt.
    await k().core.deleteNamespacedResourceQuota({ name: 'pods', namespace: ns });
    const retried = await rolloutImage()(attempt('quota.api.qqqq2', image(2), 2));
    assert.equal(retried.digest, digest(2));
    assert.equal(retried.unchanged, false);
    const d = await k().apps.readNamespacedDeployment({ name: 'api', namespace: ns });
    assert.equal(d.spec?.template.spec?.containers[0]?.image, image(2));
    assert.equal(d.status?.readyReplicas, 2);
    const [newest] = await listImages(k(), ns, 'api');
    assert.deepEqual(
      [newest?.deployId, newest?.digest, newest?.outcome, newest?.attempt, newest?.current],
      ['quota.api.qqqq2', digest(2), 'succeeded', 2, true],
    );
  });

  it('`flui retry` of a failed first rollout (nothing to restore, the same spec) starts the rollout over', async () => {
    const ns = 'quota-first';
    const m = validateManifest({
      ...manifest('fresh', { replicas: 1 }),
      metadata: { name: 'fresh', namespace: ns },
    }) as CatalogApp;
    const attempt = (n: number): RolloutImageInput => ({
      ...input(m, 'quota-first.fresh.ffff1', image(1)),
      attempt: n,
    });
    await k().core.createNamespace({ body: { metadata: { name: ns } } });
    await k().core.createNamespacedResourceQuota({
      namespace: ns,
      body: { metadata: { name: 'pods' }, spec: { hard: { pods: '0' } } },
    });
    const failed = await failureOf(rolloutImage()(attempt(1)));
    assert.equal(failed.type, 'RolloutFailed');
    assert.match(failed.message, /no earlier good image to restore/);

    // The quota goes; the Deployment still says its progress deadline passed, and would for a long while.
    await k().core.deleteNamespacedResourceQuota({ name: 'pods', namespace: ns });
    const retried = await rolloutImage()(attempt(2));
    assert.equal(retried.digest, digest(1));
    const d = await k().apps.readNamespacedDeployment({ name: 'fresh', namespace: ns });
    assert.equal(d.status?.readyReplicas, 1);
    assert.ok(d.spec?.template.metadata?.annotations?.['flui.dev/restarted-at'], 'restarted as kubectl would');
    assert.equal((await listImages(k(), ns, 'fresh'))[0]?.outcome, 'succeeded');
  });

  describe('inside a Temporal worker', () => {
    const temporal = useTemporal();

    it('runs `flui rollback` through the deploy workflow to the previous image', async () => {
      const { client, nativeConnection } = temporal();
      const taskQueue = 'kubernetes-rollout';
      const worker = await Worker.create({
        connection: nativeConnection,
        taskQueue,
        workflowBundle: await workflowBundle('src/workflows/index.ts'),
        activities: withActivityFailures(createKubernetesActivities({ kubeconfig: cluster().kubeconfigPath })),
      });
      const outcome = await worker.runUntil(async () => {
        const started = await rollback(client, 'shop', 'web', { taskQueue });
        return (await client.workflow.getHandle(started.workflowId).result()) as DeployOutcome;
      });
      assert.equal(outcome.phase, 'succeeded');
      assert.equal(outcome.digest, digest(2)); // the cluster ran digest(1); the previous good image is digest(2)
      const d = await k().apps.readNamespacedDeployment({ name: 'web', namespace: 'shop' });
      assert.equal(d.spec?.template.spec?.containers[0]?.image, image(2));
      assert.equal(d.metadata?.annotations?.['flui.dev/deploy-id'], outcome.deployId);
      const [newest] = await listImages(k(), 'shop', 'web');
      assert.equal(newest?.deployId, outcome.deployId);
      assert.equal(newest?.current, true);
    });
  });
});
