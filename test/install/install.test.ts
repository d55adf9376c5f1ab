/**
 * The install manifests on a real API server (kwok: etcd, kube-apiserver with its admission plugins, the deployment
 * controller, the scheduler, fake nodes), in the order README's "Install on a cluster" gives:
 * - every manifest passes a server-side dry run with strict field validation (the API server's own OpenAPI schema:
 *   an unknown or duplicated field is an error) before it is applied, and a broken one is refused, so the check bites;
 * - applied, the worker's Deployment rolls out two pods, admitted under the `restricted` Pod Security Standard and
 *   spread over two nodes;
 * - with a token of the worker's ServiceAccount (TokenRequest API), Flui's own rollout code deploys an app in a
 *   namespace that has the lane Role and is refused in one that has not, and the API server's rules review shows
 *   nothing beyond the Role anywhere.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { AuthorizationV1Api, KubeConfig, type V1ResourceRule } from '@kubernetes/client-node';
import { parseAllDocuments, stringify } from 'yaml';
import { createKubernetesActivities } from '../../src/activities/kubernetes.ts';
import { ServiceError } from '../../src/errors.ts';
import { validateManifest } from '../../src/manifest/parse.ts';
import type { CatalogApp } from '../../src/manifest/schema.ts';
import { makeTempDir } from '../../dev/process.ts';
import { useCluster } from '../helpers/kubernetes.ts';
import { INSTALL_DIR, LANE_RBAC, readObjects, type K8sObject } from './manifests.ts';

const WORKER_NS = 'flui-system';
const secs = (since: number) => `${((performance.now() - since) / 1000).toFixed(1)}s`;

/** Rules every authenticated identity has (system:basic-user and friends): discovery of its own rights. */
function isSelfReview(rule: V1ResourceRule): boolean {
  return (
    (rule.apiGroups ?? []).every((g) => g === 'authorization.k8s.io' || g === 'authentication.k8s.io') &&
    (rule.resources ?? []).every((r) => /^selfsubject/.test(r)) &&
    JSON.stringify(rule.verbs) === '["create"]'
  );
}

function flatten(rules: { apiGroups?: string[]; resources?: string[]; verbs: string[] }[]): string[] {
  return [
    ...new Set(
      rules.flatMap((r) =>
        (r.apiGroups ?? []).flatMap((g) =>
          (r.resources ?? []).flatMap((res) => r.verbs.map((v) => `${g}/${res}:${v}`)),
        ),
      ),
    ),
  ].sort();
}

function app(name: string, namespace: string): CatalogApp {
  return validateManifest({
    apiVersion: 'flui.dev/v1',
    kind: 'CatalogApp',
    metadata: { name, namespace },
    spec: { image: '127.0.0.1:5001/acme/web:1', replicas: 2, port: 8080, deploy: { progressDeadlineSeconds: 30 } },
  }) as CatalogApp;
}
const image = `127.0.0.1:5001/acme/web@sha256:${createHash('sha256').update('install test').digest('hex')}`;

describe('installing Flui on a cluster (deploy/kubernetes/)', () => {
  const cluster = useCluster({ nodes: 3 });
  let dir = '';
  let saKubeconfig = '';
  const kubectl = (...args: string[]) => cluster().kubectl(...args);
  /** kubectl's error text, for refusals. */
  const refusal = (p: Promise<unknown>) =>
    p.then(
      () => assert.fail('expected kubectl to refuse'),
      (err: { stderr?: string }) => err.stderr ?? String(err),
    );

  it('dry-runs every manifest on the server with strict validation, then applies it', async () => {
    const t0 = performance.now();
    dir = await makeTempDir('flui-install');
    // What `kubectl apply -k deploy/kubernetes` sends, rendered by kubectl's own kustomize.
    const rendered = parseAllDocuments(await kubectl('kustomize', INSTALL_DIR)).map((d) => d.toJS() as K8sObject);
    const namespaces = rendered.filter((o) => o.kind === 'Namespace');
    const rest = rendered.filter((o) => o.kind !== 'Namespace');
    assert.deepEqual(
      rest.map((o) => `${o.kind}/${o.metadata.namespace}`).sort(),
      ['ConfigMap', 'Deployment', 'PodDisruptionBudget', 'Service', 'ServiceAccount'].map((k) => `${k}/${WORKER_NS}`),
    );
    const write = async (name: string, objects: K8sObject[]) => {
      const file = join(dir, name);
      await writeFile(file, objects.map((o) => stringify(o)).join('---\n'));
      return file;
    };
    const nsFile = await write('namespaces.yaml', namespaces);
    const restFile = await write('worker.yaml', rest);
    const strict = ['--server-side', '--field-manager=flui-install', '--validate=strict'];

    // The namespace first: a namespaced object's dry run needs its namespace to exist.
    assert.match(
      await kubectl('apply', ...strict, '--dry-run=server', '-f', nsFile),
      /flui-system serverside-applied \(server dry run\)/,
    );
    await refusal(kubectl('get', 'namespace', WORKER_NS));
    await kubectl('apply', ...strict, '-f', nsFile);
    // The lane namespaces the ConfigMap names, and one it does not; the installer creates them (README).
    await kubectl('create', 'namespace', 'apps');
    await kubectl('create', 'namespace', 'elsewhere');
    // The Secret as README creates it (placeholder values: nothing here talks to GitHub).
    await kubectl(
      'create',
      'secret',
      'generic',
      'flui-worker',
      '-n',
      WORKER_NS,
      '--from-literal=GITHUB_TOKEN=github_pat_placeholder',
      '--from-literal=GITHUB_WEBHOOK_SECRET=placeholder-secret',
    );

    const dry = await kubectl('apply', ...strict, '--dry-run=server', '-f', restFile);
    for (const o of rest) {
      assert.match(
        dry,
        new RegExp(`${o.kind.toLowerCase()}[^ ]*/${o.metadata.name} serverside-applied \\(server dry run\\)`),
      );
    }
    const laneDry = await kubectl('apply', ...strict, '--dry-run=server', '-n', 'apps', '-f', LANE_RBAC);
    assert.match(laneDry, /role\.rbac\.authorization\.k8s\.io\/flui-deployer serverside-applied \(server dry run\)/);
    assert.match(
      laneDry,
      /rolebinding\.rbac\.authorization\.k8s\.io\/flui-deployer serverside-applied \(server dry run\)/,
    );
    await refusal(kubectl('get', 'deployment/flui-worker', '-n', WORKER_NS)); // a dry run leaves nothing behind

    await kubectl('apply', ...strict, '-f', restFile);
    await kubectl('apply', ...strict, '-n', 'apps', '-f', LANE_RBAC);
    console.log(`# dry runs and applies in ${secs(t0)}`);
  });

  it('refuses a manifest with a field the schema does not have: the strict check bites', async () => {
    const [deployment] = readObjects(join(INSTALL_DIR, 'deployment.yaml')) as [
      K8sObject & { spec: Record<string, unknown> },
    ];
    const typo = {
      ...deployment,
      metadata: { ...deployment.metadata, namespace: WORKER_NS },
      spec: { ...deployment.spec, replica: 2 },
    };
    const file = join(dir, 'typo.yaml');
    await writeFile(file, stringify(typo));
    const said = await refusal(kubectl('apply', '--server-side', '--validate=strict', '--dry-run=server', '-f', file));
    assert.match(said, /unknown field "spec\.replica"|\.spec\.replica: field not declared in schema/);
    const wrongType = { ...typo, spec: { ...deployment.spec, replicas: 'two' } };
    await writeFile(file, stringify(wrongType));
    assert.match(
      await refusal(kubectl('apply', '--server-side', '--validate=strict', '--dry-run=server', '-f', file)),
      /replicas/,
    );
  });

  it('rolls the worker out: two pods admitted as `restricted`, on two nodes', async () => {
    const t0 = performance.now();
    const status = await kubectl('rollout', 'status', 'deployment/flui-worker', '-n', WORKER_NS, '--timeout=120s');
    assert.match(status, /successfully rolled out/);
    const pods = JSON.parse(
      await kubectl('get', 'pods', '-n', WORKER_NS, '-l', 'app.kubernetes.io/name=flui-worker', '-o', 'json'),
    ) as { items: { spec: { nodeName: string; serviceAccountName: string } }[] };
    assert.equal(pods.items.length, 2);
    assert.equal(new Set(pods.items.map((p) => p.spec.nodeName)).size, 2, 'the anti-affinity spreads them');
    assert.ok(pods.items.every((p) => p.spec.serviceAccountName === 'flui-worker'));
    const endpoints = await kubectl(
      'get',
      'endpointslices',
      '-n',
      WORKER_NS,
      '-l',
      'kubernetes.io/service-name=flui-worker',
      '-o',
      'jsonpath={.items[*].ports[*].name}',
    );
    assert.deepEqual(endpoints.split(' ').sort(), ['metrics', 'webhook']);
    // The namespace enforces `restricted`: a pod without the locked-down context would have been refused.
    const loose = join(dir, 'loose-pod.yaml');
    await writeFile(
      loose,
      stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'loose', namespace: WORKER_NS },
        spec: { containers: [{ name: 'c', image: 'busybox' }] },
      }),
    );
    assert.match(await refusal(kubectl('apply', '--dry-run=server', '-f', loose)), /violates PodSecurity "restricted/);
    console.log(`# worker Deployment rolled out (2 pods) in ${secs(t0)}`);
  });

  it('lets a drain evict one worker at a time (PodDisruptionBudget)', async () => {
    await kubectl(
      'wait',
      '--for=jsonpath={.status.disruptionsAllowed}=1',
      'pdb/flui-worker',
      '-n',
      WORKER_NS,
      '--timeout=60s',
    );
    const names = (
      await kubectl(
        'get',
        'pods',
        '-n',
        WORKER_NS,
        '-l',
        'app.kubernetes.io/name=flui-worker',
        '-o',
        'jsonpath={.items[*].metadata.name}',
      )
    ).split(' ');
    const evict = async (pod: string) => {
      const file = join(dir, `evict-${pod}.json`);
      await writeFile(
        file,
        JSON.stringify({ apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: pod, namespace: WORKER_NS } }),
      );
      return kubectl('create', '--raw', `/api/v1/namespaces/${WORKER_NS}/pods/${pod}/eviction`, '-f', file);
    };
    // A drain cordons the nodes first: the evicted worker's replacement has nowhere to go until they come back.
    const nodes = (await kubectl('get', 'nodes', '-o', 'jsonpath={.items[*].metadata.name}')).split(' ');
    await kubectl('cordon', ...nodes);
    try {
      await evict(names[0]!);
      assert.match(await refusal(evict(names[1]!)), /disruption budget/);
    } finally {
      await kubectl('uncordon', ...nodes);
    }
    await kubectl('rollout', 'status', 'deployment/flui-worker', '-n', WORKER_NS, '--timeout=60s');
  });

  it('with the ServiceAccount’s token, Flui’s rollout code deploys where the lane Role is and is refused elsewhere', async () => {
    const t0 = performance.now();
    // TokenRequest API: a short-lived token, as the kubelet mounts one into the worker's pod.
    const token = (await kubectl('create', 'token', 'flui-worker', '-n', WORKER_NS, '--duration=10m')).trim();
    const admin = new KubeConfig();
    admin.loadFromFile(cluster().kubeconfigPath);
    const c = admin.getCurrentCluster()!;
    const sa = new KubeConfig();
    sa.loadFromOptions({
      clusters: [
        { name: 'kwok', server: c.server, caData: c.caData, caFile: c.caFile, skipTLSVerify: c.skipTLSVerify },
      ],
      users: [{ name: 'flui-worker', token }],
      contexts: [{ name: 'flui-worker', cluster: 'kwok', user: 'flui-worker' }],
      currentContext: 'flui-worker',
    });
    saKubeconfig = join(dir, 'flui-worker.kubeconfig');
    await writeFile(saKubeconfig, sa.exportConfig(), { mode: 0o600 });

    const kube = createKubernetesActivities({ kubeconfig: saKubeconfig });
    const request = (ns: string) => ({
      request: {
        deployId: `${ns}.web.aaaa1`,
        kind: 'CatalogApp' as const,
        manifest: app('web', ns),
        policy: 'supersede' as const,
      },
      image,
    });
    const done = await kube.rolloutImage(request('apps'));
    assert.equal(done.revision, '1');
    assert.match(
      await kubectl('rollout', 'status', 'deployment/web', '-n', 'apps', '--timeout=5s'),
      /successfully rolled out/,
    );
    const history = await kubectl(
      'get',
      'configmap',
      'flui-history-web',
      '-n',
      'apps',
      '-o',
      'jsonpath={.data.history\\.json}',
    );
    assert.equal((JSON.parse(history) as { deployId: string }[])[0]?.deployId, 'apps.web.aaaa1');
    // A cancelled first rollout removes the app: the delete verbs.
    assert.deepEqual(await kube.abortRollout({ deployId: 'apps.web.aaaa1', namespace: 'apps', app: 'web' }), {
      action: 'removed',
    });
    await refusal(kubectl('get', 'deployment/web', '-n', 'apps'));

    await assert.rejects(kube.rolloutImage(request('elsewhere')), (err: unknown) => {
      assert.ok(err instanceof ServiceError, String(err));
      assert.equal(err.kind, 'unauthorized');
      assert.equal(err.status, 403);
      assert.match(err.message, /forbidden.*system:serviceaccount:flui-system:flui-worker/);
      return true;
    });
    await refusal(kubectl('get', 'deployment/web', '-n', 'elsewhere'));
    console.log(`# rollout as the ServiceAccount, undo, and a refusal in ${secs(t0)}`);
  });

  it('can do nothing beyond the Role: the API server’s rules review, per namespace', async () => {
    const authz = (() => {
      const kc = new KubeConfig();
      kc.loadFromFile(saKubeconfig);
      return kc.makeApiClient(AuthorizationV1Api);
    })();
    const rules = async (namespace: string) => {
      const review = await authz.createSelfSubjectRulesReview({
        body: { apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectRulesReview', spec: { namespace } },
      });
      assert.equal(review.status?.incomplete, false);
      return flatten(review.status!.resourceRules.filter((r) => !isSelfReview(r)));
    };
    const role = readObjects(LANE_RBAC).find((o) => o.kind === 'Role')! as K8sObject & { rules: V1ResourceRule[] };
    assert.deepEqual(await rules('apps'), flatten(role.rules));
    for (const ns of ['elsewhere', WORKER_NS, 'kube-system', 'default']) assert.deepEqual(await rules(ns), [], ns);
    // kubectl auth can-i agrees, for what a deploy platform is most often over-granted.
    const can = (...args: string[]) =>
      kubectl('auth', 'can-i', ...args, `--as=system:serviceaccount:${WORKER_NS}:flui-worker`).then(
        (out) => out.trim(),
        (err: { stdout?: string }) => (err.stdout ?? '').trim(),
      );
    assert.equal(await can('patch', 'deployments', '-n', 'apps'), 'yes');
    assert.equal(await can('get', 'secrets', '-n', 'apps'), 'no');
    assert.equal(await can('create', 'namespaces'), 'no');
    assert.equal(await can('list', 'pods', '-n', 'apps'), 'no');
    assert.equal(await can('get', 'secrets', '-n', WORKER_NS), 'no');
  });
});
