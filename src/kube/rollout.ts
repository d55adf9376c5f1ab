/**
 * Rolling an image out the way `kubectl apply --server-side` + `kubectl rollout status` + `kubectl rollout undo`
 * would, against any Kubernetes API: server-side apply (field manager `flui`) of the app's Deployment and Service,
 * pinned by digest; a wait on the deployment controller's own verdict (observedGeneration, updated/available
 * replicas, the Progressing condition); and a return to the last good image when the rollout fails.
 */
import {
  AppsV1Api,
  CoreV1Api,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type V1Deployment,
  type V1Service,
} from '@kubernetes/client-node';
import { setTimeout as sleep } from 'node:timers/promises';
import { ServiceError } from '../errors.ts';
import type { Workload } from '../manifest/schema.ts';
import { pullSecretFor, pullSecretName, type PullCredential } from './pull-secret.ts';

export const FIELD_MANAGER = 'flui';
export const MANAGED_BY = { 'app.kubernetes.io/managed-by': 'flui' };
/**
 * On the Deployment's own metadata, not the pod template: the template holds only what the pods run, so a new deploy
 * of the same digest and settings changes no pod (same generation, no new ReplicaSet), and re-applying an earlier
 * spec brings its ReplicaSet back, as `kubectl rollout undo` does.
 */
export const ANNOTATION = {
  deployId: 'flui.dev/deploy-id',
  commit: 'flui.dev/commit',
  /** On the pod template, set only by {@link restartRollout}, as `kubectl rollout restart` sets its own. */
  restartedAt: 'flui.dev/restarted-at',
};

export interface KubeClients {
  kc: KubeConfig;
  apps: AppsV1Api;
  core: CoreV1Api;
}

/** No usable kubeconfig: a setting of the worker to fix, not a cluster problem. */
function kubeConfigMissing(message: string, cause?: unknown): ServiceError {
  return new ServiceError({ service: 'Cluster', kind: 'misconfigured', message, cause });
}

export function kubeClients(kubeconfig?: string): KubeClients {
  const kc = new KubeConfig();
  try {
    if (kubeconfig) kc.loadFromFile(kubeconfig);
    else kc.loadFromDefault();
  } catch (err) {
    throw kubeConfigMissing(`cannot read kubeconfig ${kubeconfig ?? '(default)'}: ${(err as Error).message}`, err);
  }
  // With no kubeconfig at all, the client library falls back to http://localhost:8080: never talk to that by accident.
  const fallback = !kubeconfig && !process.env.KUBECONFIG && kc.getCurrentCluster()?.server === 'http://localhost:8080';
  if (!kc.getCurrentCluster() || fallback) {
    throw kubeConfigMissing(
      `no Kubernetes cluster configured (${kubeconfig ? `kubeconfig ${kubeconfig}` : 'set KUBECONFIG or ~/.kube/config'})`,
    );
  }
  return { kc, apps: kc.makeApiClient(AppsV1Api), core: kc.makeApiClient(CoreV1Api) };
}

/** What the cluster runs for an app: the workload settings and the pinned image. */
export interface RolloutTarget {
  namespace: string;
  app: string;
  workload: Workload;
  image: string;
  deployId: string;
  commit?: string;
  /** The Secret the pods pull the image with (src/kube/pull-secret.ts), when the registry needs one. */
  pullSecret?: string;
}

export function labels(app: string): Record<string, string> {
  return { 'app.kubernetes.io/name': app, ...MANAGED_BY };
}

export function deploymentFor(t: RolloutTarget): V1Deployment {
  const { workload: w } = t;
  const probe = w.healthCheck
    ? {
        ...(w.healthCheck.path
          ? { httpGet: { path: w.healthCheck.path, port: w.healthCheck.port ?? w.port } }
          : { tcpSocket: { port: w.healthCheck.port ?? w.port } }),
        initialDelaySeconds: w.healthCheck.initialDelaySeconds,
        periodSeconds: w.healthCheck.periodSeconds,
        failureThreshold: w.healthCheck.failureThreshold,
      }
    : undefined;
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: t.app,
      namespace: t.namespace,
      labels: labels(t.app),
      annotations: { [ANNOTATION.deployId]: t.deployId, ...(t.commit ? { [ANNOTATION.commit]: t.commit } : {}) },
    },
    spec: {
      replicas: w.replicas,
      progressDeadlineSeconds: w.deploy.progressDeadlineSeconds,
      revisionHistoryLimit: 10,
      selector: { matchLabels: { 'app.kubernetes.io/name': t.app } },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: '25%' } },
      template: {
        metadata: { labels: labels(t.app) },
        spec: {
          ...(t.pullSecret ? { imagePullSecrets: [{ name: t.pullSecret }] } : {}),
          containers: [
            {
              name: t.app,
              image: t.image,
              ports: [{ name: 'http', containerPort: w.port }],
              env: Object.entries(w.env)
                .sort(([a], [b]) => a.localeCompare(b))
                // A Secret is referenced, never read: the cluster resolves it when it starts the pod.
                .map(([name, value]) =>
                  typeof value === 'string'
                    ? { name, value }
                    : {
                        name,
                        valueFrom: { secretKeyRef: { name: value.secretKeyRef.name, key: value.secretKeyRef.key } },
                      },
                ),
              ...(Object.keys(w.resources).length ? { resources: w.resources } : {}),
              ...(probe
                ? {
                    readinessProbe: probe,
                    livenessProbe: { ...probe, initialDelaySeconds: Math.max(probe.initialDelaySeconds, 10) },
                  }
                : {}),
            },
          ],
        },
      },
    },
  };
}

export function serviceFor(t: RolloutTarget): V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: t.app, namespace: t.namespace, labels: labels(t.app) },
    spec: {
      selector: { 'app.kubernetes.io/name': t.app },
      ports: [{ name: 'http', port: 80, targetPort: t.workload.port }],
    },
  };
}

const APPLY = setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply);

/**
 * Creates the namespace when it is missing. A credential confined to its namespace may not read namespaces at all
 * (403): then the namespace is taken to exist, and the apply that follows says so if it does not.
 */
export async function ensureNamespace(k: KubeClients, namespace: string): Promise<void> {
  try {
    await k.core.readNamespace({ name: namespace });
  } catch (err) {
    if (statusOf(err) === 403) return;
    if (statusOf(err) !== 404) throw err;
    await k.core
      .createNamespace({ body: { metadata: { name: namespace, labels: MANAGED_BY } } })
      .catch((e: unknown) => {
        if (statusOf(e) !== 409) throw e;
      });
  }
}

/**
 * Server-side apply of the Service and Deployment; returns the Deployment as the server now has it. With `pull`, the
 * image's registry credential is applied first as the namespace's pull secret for that registry, and the pods use it.
 */
export async function applyTarget(k: KubeClients, t: RolloutTarget, pull?: PullCredential): Promise<V1Deployment> {
  if (pull) {
    const name = pullSecretName(pull.registry);
    await k.core.patchNamespacedSecret(
      {
        name,
        namespace: t.namespace,
        body: pullSecretFor(t.namespace, pull, MANAGED_BY),
        fieldManager: FIELD_MANAGER,
        force: true,
      },
      APPLY,
    );
    t = { ...t, pullSecret: name };
  }
  await k.core.patchNamespacedService(
    { name: t.app, namespace: t.namespace, body: serviceFor(t), fieldManager: FIELD_MANAGER, force: true },
    APPLY,
  );
  return k.apps.patchNamespacedDeployment(
    { name: t.app, namespace: t.namespace, body: deploymentFor(t), fieldManager: FIELD_MANAGER, force: true },
    APPLY,
  );
}

/**
 * Starts the rollout of the spec the Deployment already has over again, as `kubectl rollout restart` does: a new pod
 * template annotation makes a new ReplicaSet and gives it a fresh progress deadline. For a retry of a rollout that
 * failed with nothing to change: the deployment controller never looks at a spec that ran out of time again on its
 * own. Its own field manager, so later applies (which do not name the annotation) leave it as it is.
 */
export async function restartRollout(k: KubeClients, namespace: string, app: string): Promise<V1Deployment> {
  return k.apps.patchNamespacedDeployment(
    {
      name: app,
      namespace,
      body: {
        spec: { template: { metadata: { annotations: { [ANNOTATION.restartedAt]: new Date().toISOString() } } } },
      },
      fieldManager: `${FIELD_MANAGER}-restart`,
    },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
}

export async function readDeployment(
  k: KubeClients,
  namespace: string,
  app: string,
): Promise<V1Deployment | undefined> {
  try {
    return await k.apps.readNamespacedDeployment({ name: app, namespace });
  } catch (err) {
    if (statusOf(err) === 404) return undefined;
    throw err;
  }
}

export type RolloutState =
  | { done: true; revision: string }
  | { done: false; failed: false; message: string; revision: string; observed: boolean }
  | { done: false; failed: true; reason: string; message: string; revision: string };

/** `kubectl rollout status` for one Deployment object. */
export function rolloutState(d: V1Deployment): RolloutState {
  const spec = d.spec;
  const st = d.status ?? {};
  const revision = d.metadata?.annotations?.['deployment.kubernetes.io/revision'] ?? '';
  const waiting = (message: string, observed = true) => ({
    done: false as const,
    failed: false as const,
    message,
    revision,
    observed,
  });
  if ((d.metadata?.generation ?? 0) > (st.observedGeneration ?? 0)) {
    return waiting('waiting for the deployment spec update to be observed', false);
  }
  const progressing = st.conditions?.find((c) => c.type === 'Progressing');
  if (progressing?.reason === 'ProgressDeadlineExceeded') {
    return {
      done: false,
      failed: true,
      reason: 'ProgressDeadlineExceeded',
      message: progressing.message ?? 'progress deadline exceeded',
      revision,
    };
  }
  const want = spec?.replicas ?? 1;
  const updated = st.updatedReplicas ?? 0;
  if (updated < want) return waiting(`${updated} out of ${want} new replicas have been updated`);
  if ((st.replicas ?? 0) > updated) {
    return waiting(`${(st.replicas ?? 0) - updated} old replicas are pending termination`);
  }
  if ((st.availableReplicas ?? 0) < updated) {
    return waiting(`${st.availableReplicas ?? 0} of ${updated} updated replicas are available`);
  }
  return { done: true, revision };
}

export interface WaitOptions {
  /** Give up after this long without a verdict from the deployment controller. */
  timeoutSeconds: number;
  /** Called after every poll (use it to heartbeat). */
  onPoll?: (state: RolloutState) => void;
  /** Stops the wait: it rejects with `signal.reason`. */
  signal?: AbortSignal;
  intervalMs?: number;
}

/** The wait ended without a verdict: the controller never observed the spec, or never reached a verdict. */
export class RolloutTimeout extends Error {
  constructor(
    readonly state: Extract<RolloutState, { failed: false }>,
    timeoutSeconds: number,
  ) {
    super(
      state.observed
        ? `no verdict from the deployment controller within ${timeoutSeconds}s: ${state.message}`
        : `the deployment controller did not observe the new spec within ${timeoutSeconds}s (is kube-controller-manager running?)`,
    );
    this.name = 'RolloutTimeout';
  }
}

/**
 * Polls the Deployment, as `kubectl rollout status` does, until the controller reports it rolled out (resolves) or
 * failed (resolves with the reason); throws {@link RolloutTimeout} when no verdict comes in time.
 */
export async function waitForRollout(
  k: KubeClients,
  namespace: string,
  app: string,
  opts: WaitOptions,
): Promise<RolloutState> {
  const deadline = Date.now() + opts.timeoutSeconds * 1000;
  for (;;) {
    opts.signal?.throwIfAborted();
    const state = rolloutState(await k.apps.readNamespacedDeployment({ name: app, namespace }));
    opts.onPoll?.(state);
    if (state.done || state.failed) return state;
    if (Date.now() > deadline) throw new RolloutTimeout(state, opts.timeoutSeconds);
    await sleep(opts.intervalMs ?? 1000, undefined, { signal: opts.signal }).catch(() => undefined);
  }
}

/** HTTP status of a Kubernetes API error, if it is one. */
export function statusOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'number' ? code : undefined;
}

/** The API server's own message (Status.message) from an error. */
export function apiMessage(err: unknown): string {
  const body = (err as { body?: unknown })?.body;
  if (typeof body === 'string') {
    try {
      return (JSON.parse(body) as { message?: string }).message ?? body;
    } catch {
      return body;
    }
  }
  if (body && typeof body === 'object' && 'message' in body) return String((body as { message: unknown }).message);
  return (err as Error)?.message ?? String(err);
}
