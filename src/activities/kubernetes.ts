/**
 * The Kubernetes activity: roll a pinned image out to the app's Deployment, wait for health, and return to the last
 * good image when the rollout fails. Idempotency key: the digest — re-applying the same object is a no-op for the
 * API server (same generation, no new ReplicaSet), so a retry after a crash only waits again.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { listImages, readHistory, recordHistory, type HistoryEntry } from '../kube/history.ts';
import {
  apiMessage,
  applyTarget,
  ensureNamespace,
  kubeClients,
  KubeConfigMissing,
  readDeployment,
  statusOf,
  waitForRollout,
  type KubeClients,
  type RolloutTarget,
} from '../kube/rollout.ts';
import { FailureType, type DeployActivities, type RolloutImageInput, type RolloutImageResult } from './types.ts';

function digestOf(image: string): string {
  const at = image.indexOf('@');
  return at >= 0 ? image.slice(at + 1) : '';
}

/** Heartbeats when running as an activity; a no-op when called directly (tests, tools). */
function heartbeat(details: unknown): void {
  try {
    Context.current().heartbeat(details);
  } catch {
    // not inside an activity
  }
}

function kubeFailure(err: unknown, doing: string): Error {
  if (err instanceof ApplicationFailure) return err;
  if (err instanceof KubeConfigMissing) return ApplicationFailure.nonRetryable(err.message, FailureType.Misconfigured);
  const status = statusOf(err);
  const message = apiMessage(err);
  if (status === 401 || status === 403) {
    return ApplicationFailure.nonRetryable(
      `the cluster refused ${doing} (${status}): ${message}`,
      FailureType.Unauthorized,
    );
  }
  if (status === 404)
    return ApplicationFailure.nonRetryable(`not found while ${doing}: ${message}`, FailureType.NotFound);
  if (status === 400 || status === 422) {
    return ApplicationFailure.nonRetryable(
      `the cluster rejected ${doing} (${status}): ${message}`,
      FailureType.Invalid,
    );
  }
  return ApplicationFailure.retryable(`cluster unavailable while ${doing}: ${message}`, 'ClusterUnavailable');
}

/** Resolves what to run: the request's manifest and image, or for a rollback the recorded entry it names. */
async function targetOf(k: KubeClients, input: RolloutImageInput): Promise<RolloutTarget> {
  const { request } = input;
  if (request.kind !== 'Rollback') {
    const { metadata, spec } = request.manifest;
    return {
      namespace: metadata.namespace,
      app: metadata.name,
      workload: spec,
      image: input.image,
      deployId: request.deployId,
      commit: input.commit,
    };
  }
  const history = await readHistory(k, request.namespace, request.app);
  const good = history.filter((e) => e.outcome === 'succeeded');
  const current = (await readDeployment(k, request.namespace, request.app))?.spec?.template.spec?.containers[0]?.image;
  const entry = request.digest ? good.find((e) => e.digest === request.digest) : good.find((e) => e.image !== current);
  if (!entry) {
    const known = [...new Set(good.map((e) => e.digest))];
    throw ApplicationFailure.nonRetryable(
      request.digest
        ? `${request.namespace}/${request.app} never ran ${request.digest} successfully; known good digests: ${known.join(', ') || 'none'}`
        : `${request.namespace}/${request.app} has no earlier good image to roll back to`,
      FailureType.NotFound,
    );
  }
  return {
    namespace: request.namespace,
    app: request.app,
    workload: entry.workload,
    image: entry.image,
    deployId: request.deployId,
    commit: entry.commit,
  };
}

export function createKubernetesActivities(deps: { kubeconfig?: string }): Pick<DeployActivities, 'rolloutImage'> {
  return {
    async rolloutImage(input: RolloutImageInput): Promise<RolloutImageResult> {
      let doing = 'reading the cluster';
      try {
        const k = kubeClients(deps.kubeconfig);
        const t = await targetOf(k, input);
        doing = `rolling out ${t.image} to ${t.namespace}/${t.app}`;
        await ensureNamespace(k, t.namespace);
        const before = await readDeployment(k, t.namespace, t.app);
        const previousImage = before?.spec?.template.spec?.containers[0]?.image;
        const applied = await applyTarget(k, t);
        const unchanged = before?.metadata?.generation === applied.metadata?.generation;
        const timeoutSeconds = t.workload.deploy.progressDeadlineSeconds + 120;
        const state = await waitForRollout(k, t.namespace, t.app, {
          timeoutSeconds,
          onProgress: (message) => heartbeat({ image: t.image, message }),
        });
        const entry: HistoryEntry = {
          deployId: t.deployId,
          digest: digestOf(t.image),
          image: t.image,
          commit: t.commit,
          rolledOutAt: new Date().toISOString(),
          outcome: state.done ? 'succeeded' : 'failed',
          workload: t.workload,
        };
        if (state.done) {
          await recordHistory(k, t.namespace, t.app, entry);
          return {
            namespace: t.namespace,
            app: t.app,
            image: t.image,
            digest: entry.digest,
            revision: state.revision,
            unchanged,
          };
        }
        if (!state.failed) throw new Error('unreachable');

        // Failed: go back to the last image that ran well (kubectl rollout undo, with the exact recorded spec).
        const reason = `${state.reason}: ${state.message}`;
        await recordHistory(k, t.namespace, t.app, { ...entry, reason });
        const lastGood = (await readHistory(k, t.namespace, t.app)).find(
          (e) => e.outcome === 'succeeded' && e.image !== t.image,
        );
        let restored = 'nothing to restore (first rollout of this app)';
        if (lastGood) {
          doing = `rolling back ${t.namespace}/${t.app} to ${lastGood.image}`;
          await applyTarget(k, {
            ...t,
            workload: lastGood.workload,
            image: lastGood.image,
            deployId: lastGood.deployId,
            commit: lastGood.commit,
          });
          const back = await waitForRollout(k, t.namespace, t.app, {
            timeoutSeconds: lastGood.workload.deploy.progressDeadlineSeconds + 120,
            onProgress: (message) => heartbeat({ image: lastGood.image, rollback: true, message }),
          });
          restored = back.done
            ? `restored ${lastGood.digest}`
            : `restoring ${lastGood.digest} did not finish either (${back.done ? '' : back.message})`;
        } else if (previousImage && previousImage !== t.image) {
          restored = `previous image ${previousImage} is not in Flui's history; left as Kubernetes has it`;
        }
        throw ApplicationFailure.nonRetryable(
          `rollout of ${t.image} to ${t.namespace}/${t.app} failed (${reason}); ${restored}`,
          FailureType.RolloutFailed,
          { reason: state.reason, restored: lastGood?.digest ?? null },
        );
      } catch (err) {
        throw kubeFailure(err, doing);
      }
    },
  };
}

export { listImages };
