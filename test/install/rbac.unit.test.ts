/**
 * Least privilege, checked against the code: every call Flui's source makes to the Kubernetes API (found by reading
 * src/, the way a reviewer would grep it) must be granted by the Role the install applies in each namespace deploys
 * may go to (deploy/kubernetes/lane/rbac.yaml), and the Role must grant nothing else. A new call without a rule, or a
 * rule no call needs, fails here. Cluster-scoped calls are never granted: each is listed below with the reason the
 * worker does without it. test/install/install.test.ts proves the same on a real API server.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { find, INSTALL_DIR, LANE_RBAC, readObjects, workerObjects, type K8sObject } from './manifests.ts';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

/** The API classes Flui builds (`kc.makeApiClient(X)`), by the field of KubeClients (src/kube/rollout.ts) holding them. */
const API_CLASSES: Record<string, { field: string; group: string }> = {
  CoreV1Api: { field: 'core', group: '' },
  AppsV1Api: { field: 'apps', group: 'apps' },
};

/** What src/ may import from the client library: the two API classes above, configuration, and types. */
const ALLOWED_IMPORTS = new Set([...Object.keys(API_CLASSES), 'KubeConfig', 'PatchStrategy', 'setHeaderOptions']);

/** Cluster-scoped calls the worker makes without being granted them, and why that is safe. */
const NOT_GRANTED: Record<string, string> = {
  '/namespaces:get':
    'ensureNamespace (src/kube/rollout.ts) takes a 403 as "the namespace exists"; the install creates each namespace',
  '/namespaces:create': 'only reached after a 404 from the read, which a worker without the right never gets',
};

const VERBS: Record<string, string> = {
  read: 'get',
  list: 'list',
  create: 'create',
  replace: 'update',
  patch: 'patch',
  delete: 'delete',
  deleteCollection: 'deletecollection',
};

function plural(kind: string): string {
  const k = kind.toLowerCase();
  if (k === 'endpoints') return k;
  if (k.endsWith('s')) return `${k}es`;
  if (k.endsWith('y')) return `${k.slice(0, -1)}ies`;
  return `${k}s`;
}

export interface ApiCall {
  /** `group/resource[/subresource]:verb`, as RBAC sees it. */
  permission: string;
  namespaced: boolean;
  where: string;
}

/** The text between the parentheses of the call opening at `open` (the index of its `(`). */
function argumentsAt(text: string, open: number): string {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    if (text[i] === '(') depth++;
    else if (text[i] === ')' && --depth === 0) return text.slice(open + 1, i);
  }
  return text.slice(open + 1);
}

/**
 * Names that make a patch a server-side apply in src/ (`setHeaderOptions('Content-Type',
 * PatchStrategy.ServerSideApply)`). An apply that finds no object creates it, and the API server checks `create` for
 * that (measured in install.test.ts: 403 "cannot create resource" with patch alone).
 */
const APPLY_MARKERS = /\bAPPLY\b|PatchStrategy\.ServerSideApply/;

/** The Kubernetes calls in one source text: `<apps|core>.<method>(`, across line breaks. */
export function callsIn(text: string, where: string): ApiCall[] {
  const fields = new Map(Object.values(API_CLASSES).map((a) => [a.field, a.group]));
  const calls: ApiCall[] = [];
  for (const m of text.matchAll(/\b(\w+)\s*\.\s*([a-z][A-Za-z]*)\s*\(/g)) {
    const group = fields.get(m[1]!);
    if (group === undefined) continue;
    const method = m[2]!;
    const parsed =
      /^(read|list|create|replace|patch|deleteCollection|delete)(Namespaced)?([A-Z][A-Za-z]*?)(Status|Scale)?(ForAllNamespaces)?$/.exec(
        method,
      );
    assert.ok(parsed, `${where}: ${m[1]}.${method}() is not a Kubernetes API call this test can read: teach it`);
    const [, verb, namespaced, kind, sub, all] = parsed;
    const resource = plural(kind!) + (sub ? `/${sub.toLowerCase()}` : '');
    const verbs = [VERBS[verb!]!];
    if (verb === 'patch' && APPLY_MARKERS.test(argumentsAt(text, m.index + m[0].length - 1))) verbs.push('create');
    for (const v of verbs)
      calls.push({ permission: `${group}/${resource}:${v}`, namespaced: !!namespaced && !all, where });
  }
  return calls;
}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

function codeCalls(): ApiCall[] {
  const calls: ApiCall[] = [];
  for (const file of sources(SRC)) {
    const text = readFileSync(file, 'utf8');
    const where = relative(SRC, file);
    for (const m of text.matchAll(/import\s*(?:type\s*)?\{([^}]*)\}\s*from\s*'@kubernetes\/client-node'/g)) {
      for (const name of m[1]!.split(',').map((n) => n.trim().replace(/^type\s+/, ''))) {
        if (!name) continue;
        assert.ok(
          ALLOWED_IMPORTS.has(name) || /^V1[A-Z]/.test(name),
          `${where} imports ${name} from @kubernetes/client-node: another way to call the API; map it in this test`,
        );
      }
    }
    assert.doesNotMatch(text, /from\s*'@kubernetes\/client-node\/[^']*'/, `${where}: deep import of the client`);
    for (const m of text.matchAll(/makeApiClient\(\s*(\w+)\s*\)/g)) {
      assert.ok(m[1]! in API_CLASSES, `${where} builds ${m[1]}: map its calls in this test`);
    }
    calls.push(...callsIn(text, where));
  }
  return calls;
}

function granted(role: K8sObject): string[] {
  const rules = role.rules as { apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] }[];
  return rules.flatMap((r) =>
    r.apiGroups.flatMap((g) => r.resources.flatMap((res) => r.verbs.map((v) => `${g}/${res}:${v}`))),
  );
}

const sorted = (xs: Iterable<string>) => [...new Set(xs)].sort();

describe('RBAC of the install (deploy/kubernetes/lane/rbac.yaml) against the code', () => {
  const lane = readObjects(LANE_RBAC);
  const role = find(lane, 'Role', 'flui-deployer');
  const calls = codeCalls();

  it('reads calls across line breaks, with their verbs and resources', () => {
    const text = `await k.core\n      .createNamespace({ body });\n k.apps.readNamespacedDeployment({});
      apps.patchNamespacedDeploymentScale(x); k.core.listPodForAllNamespaces(); other.readNamespacedPod();
      k.core.patchNamespacedService({ name: f(x) }, APPLY); k.core.patchNamespacedService(x, MERGE);`;
    assert.deepEqual(
      callsIn(text, 'sample').map((c) => `${c.permission} ${c.namespaced ? 'ns' : 'cluster'}`),
      [
        '/namespaces:create cluster',
        'apps/deployments:get ns',
        'apps/deployments/scale:patch ns',
        '/pods:list cluster',
        '/services:patch ns',
        '/services:create ns',
        '/services:patch ns',
      ],
    );
    assert.throws(() => callsIn('k.core.connectGetNamespacedPodExec()', 'sample'), /teach it/);
  });

  it('finds the calls the rollout code is known to make', () => {
    const found = sorted(calls.map((c) => c.permission));
    for (const p of ['apps/deployments:patch', 'apps/deployments:create', '/configmaps:update', '/services:patch']) {
      assert.ok(found.includes(p), `expected ${p} among ${found.join(', ')}`);
    }
  });

  it('grants exactly the namespaced calls of src/, nothing more', () => {
    const needed = sorted(calls.filter((c) => c.namespaced).map((c) => c.permission));
    assert.deepEqual(sorted(granted(role)), needed);
    assert.equal(new Set(granted(role)).size, granted(role).length, 'no rule repeats another');
    for (const rule of role.rules as { verbs: string[]; resources: string[] }[]) {
      assert.ok(!rule.verbs.includes('*') && !rule.resources.includes('*'), 'no wildcards');
    }
  });

  it('grants no cluster-scoped call; each one the code makes has a reason to do without', () => {
    const cluster = calls.filter((c) => !c.namespaced);
    assert.deepEqual(sorted(cluster.map((c) => c.permission)), sorted(Object.keys(NOT_GRANTED)));
    const all = [...lane, ...workerObjects()];
    assert.deepEqual(
      all.filter((o) => /^Cluster/.test(o.kind)).map((o) => `${o.kind}/${o.metadata.name}`),
      [],
      'no ClusterRole or ClusterRoleBinding',
    );
  });

  it('binds the Role to the worker’s ServiceAccount in the worker’s namespace, and the Role only', () => {
    const binding = find(lane, 'RoleBinding', 'flui-deployer') as K8sObject & {
      roleRef: { kind: string; name: string };
      subjects: { kind: string; name: string; namespace: string }[];
    };
    assert.deepEqual(binding.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'flui-deployer' });
    const kustomization = readObjects(join(INSTALL_DIR, 'kustomization.yaml'))[0] as unknown as { namespace: string };
    const sa = find(workerObjects(), 'ServiceAccount');
    assert.deepEqual(binding.subjects, [
      { kind: 'ServiceAccount', name: sa.metadata.name, namespace: kustomization.namespace },
    ]);
    for (const o of lane) assert.equal(o.metadata.namespace, undefined, 'lane objects take the namespace of -n');
  });
});
