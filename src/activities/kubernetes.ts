/**
 * The Kubernetes activity: roll a pinned image out to the app's Deployment (server-side apply), wait for health as
 * `kubectl rollout status` does, and return to the last good image when the rollout fails, as `kubectl rollout undo`
 * would. Every image rolled out is recorded in the app's history (src/kube/history.ts), which rollbacks read.
 *
 * Idempotency key: the deploy id with its attempt and digest. Re-applying the same object is a no-op for the API
 * server (same generation, no new ReplicaSet), so a retry after a crash only waits again; a retry of an attempt whose
 * rollout is already recorded as failed does not apply the broken image again but makes sure the good one is back,
 * while `flui retry` (the deploy's next attempt) applies it again: what failed may have passed (a quota, a node pool
 * scaling up, a registry hiccup). A retried rollback finds the Deployment already carrying its deploy id and keeps
 * the image it chose the first time.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { ServiceError } from '../errors.ts';
import { meter } from '../observability/meter.ts';
import { kubeError } from '../kube/errors.ts';
import { listImages, readHistory, recordHistory, type HistoryEntry } from '../kube/history.ts';
import {
  ANNOTATION,
  applyTarget,
  ensureNamespace,
  kubeClients,
  readDeployment,
  restartRollout,
  rolloutState,
  statusOf,
  waitForRollout,
  type KubeClients,
  type RolloutState,
  type RolloutTarget,
} from '../kube/rollout.ts';
import { PINNED_IMAGE } from '../manifest/names.ts';
import type { PullCredential } from '../kube/pull-secret.ts';
import { FailureType } from '../workflows/contract.ts';
import type {
  AbortRolloutInput,
  AbortRolloutResult,
  DeployActivities,
  RolloutImageInput,
  RolloutImageResult,
} from './types.ts';

/** Past the manifest's progress deadline, how long the controller gets to say so before we stop waiting. */
const VERDICT_GRACE_SECONDS = 120;

function digestOf(image: string): string {
  const at = image.indexOf('@');
  return at >= 0 ? image.slice(at + 1) : '';
}

/** The activity context when running as an activity; undefined when called directly (tests, tools). */
function activityContext(): Context | undefined {
  try {
    return Context.current();
  } catch {
    return undefined;
  }
}

/** Where a call to the cluster is: what it is doing (for people) and the API server it talks to. */
interface ClusterCall {
  doing: string;
  server?: string;
}

/**
 * Runs `work` against the cluster: what the cluster answers on failure becomes a service error that says what was
 * being done. A cancelled attempt rethrows as it is, so the SDK reports the cancellation.
 */
async function onCluster<T>(ctx: Context | undefined, call: ClusterCall, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (ctx?.cancellationSignal.aborted) throw err;
    throw kubeError(err, call.doing, call.server);
  }
}

/** Finds a recorded good image by full digest or a unique prefix of it (`sha256:1a2b3c4`, `1a2b3c4`). */
function findByDigest(good: HistoryEntry[], digest: string): HistoryEntry | undefined {
  const want = digest.startsWith('sha256:') ? digest : `sha256:${digest}`;
  const exact = good.find((e) => e.digest === want);
  if (exact) return exact;
  if (want.length < 'sha256:'.length + 7) return undefined;
  const matches = new Set(good.filter((e) => e.digest.startsWith(want)).map((e) => e.digest));
  return matches.size === 1 ? good.find((e) => e.digest.startsWith(want)) : undefined;
}

function describeEntries(entries: HistoryEntry[]): string {
  const seen = new Set<string>();
  const lines: string[] = [];
  for (const e of entries) {
    if (seen.has(e.digest)) continue;
    seen.add(e.digest);
    lines.push(
      `${e.digest} (deploy ${e.deployId}${e.commit ? `, commit ${e.commit.slice(0, 12)}` : ''}, ${e.rolledOutAt})`,
    );
  }
  return lines.join('; ') || 'none';
}

/** What to run: the request's manifest and image, or for a rollback the recorded entry it names. */
async function targetOf(
  k: KubeClients,
  input: RolloutImageInput,
): Promise<{ target: RolloutTarget; restoredFrom?: string }> {
  const { request } = input;
  if (request.kind !== 'Rollback') {
    const { image, commit } = input as Extract<RolloutImageInput, { image: string }>;
    if (!PINNED_IMAGE.test(image)) {
      throw new ServiceError({
        service: 'Cluster',
        kind: 'invalid',
        message: `rolloutImage needs an image pinned by digest (host/repo@sha256:...), got "${image}"`,
      });
    }
    const { metadata, spec } = request.manifest;
    return {
      target: {
        namespace: metadata.namespace,
        app: metadata.name,
        workload: spec,
        image,
        deployId: request.deployId,
        commit,
      },
    };
  }

  const { namespace, app } = request;
  const good = (await readHistory(k, namespace, app)).filter((e) => e.outcome === 'succeeded');
  const deployment = await readDeployment(k, namespace, app);
  const current = deployment?.spec?.template.spec?.containers[0]?.image;
  // A retry of this very rollback (the Deployment carries its deploy id): keep the image chosen the first time.
  const retried = deployment?.metadata?.annotations?.[ANNOTATION.deployId] === request.deployId;
  // A retry of a rollback that already finished finds its own entry.
  const own = good.find((e) => e.deployId === request.deployId);
  let entry: HistoryEntry | undefined;
  if (own) entry = own;
  else if (request.digest) entry = findByDigest(good, request.digest);
  else if (retried) entry = good.find((e) => e.image === current);
  else entry = good.find((e) => e.image !== current);
  if (!entry) {
    throw new ServiceError({
      service: 'Cluster',
      kind: 'not-found',
      message: request.digest
        ? `${namespace}/${app} never ran ${request.digest} successfully (or the prefix is ambiguous); ` +
          `images that did: ${describeEntries(good)}`
        : `${namespace}/${app} has no earlier good image to roll back to; images that ran: ${describeEntries(good)}`,
    });
  }
  return {
    target: {
      namespace,
      app,
      workload: entry.workload,
      image: entry.image,
      deployId: request.deployId,
      commit: entry.commit,
    },
    restoredFrom: entry === own ? (own.restoredFrom ?? own.deployId) : entry.deployId,
  };
}

/** The controller's verdict is in, and it is a failure. */
function ranOutOfTime(state: RolloutState): boolean {
  return !state.done && state.failed;
}

/** The latest image recorded as good, other than this deploy's own. */
function lastGoodExcept(history: HistoryEntry[], deployId: string): HistoryEntry | undefined {
  return history.find((e) => e.outcome === 'succeeded' && e.deployId !== deployId);
}

/** Waits for the controller's verdict on the app's Deployment, heartbeating progress while it waits. */
function waitWithProgress(
  k: KubeClients,
  namespace: string,
  app: string,
  progress: { phase: 'rollout' | 'rollback' | 'abort'; image: string; deadlineSeconds: number },
  ctx: Context | undefined,
): Promise<RolloutState> {
  return waitForRollout(k, namespace, app, {
    timeoutSeconds: progress.deadlineSeconds + VERDICT_GRACE_SECONDS,
    signal: ctx?.cancellationSignal,
    // Progress only: names, counts and the controller's words, never a value from the spec.
    onPoll: (s: RolloutState) =>
      ctx?.heartbeat({
        phase: progress.phase,
        image: progress.image,
        revision: s.revision,
        status: s.done ? 'rolled out' : s.message,
      }),
  });
}

/** Puts a recorded image back with its exact recorded spec (`kubectl rollout undo`) and waits for the verdict. */
async function restoreEntry(
  k: KubeClients,
  namespace: string,
  app: string,
  entry: HistoryEntry,
  phase: 'rollback' | 'abort',
  ctx: Context | undefined,
  pullCredential?: (image: string) => PullCredential | undefined,
): Promise<RolloutState> {
  await applyTarget(
    k,
    {
      namespace,
      app,
      workload: entry.workload,
      image: entry.image,
      deployId: entry.deployId,
      commit: entry.commit,
    },
    pullCredential?.(entry.image),
  );
  const deadlineSeconds = entry.workload.deploy.progressDeadlineSeconds;
  return waitWithProgress(k, namespace, app, { phase, image: entry.image, deadlineSeconds }, ctx);
}

export function createKubernetesActivities(deps: {
  kubeconfig?: string;
  /** The pull credential for an image's registry, when Flui writes pull secrets for it (FLUI_PULL_SECRET_REGISTRIES). */
  pullCredential?: (image: string) => PullCredential | undefined;
}): Pick<DeployActivities, 'rolloutImage' | 'abortRollout'> {
  return {
    /**
     * A deploy cancelled during its rollout leaves the cluster as it was before: the last good image back (with its
     * recorded spec, as after a failed rollout), or, for the app's first rollout, no app at all. Only a Deployment
     * that carries this deploy's id is touched, so a newer deploy's rollout is never undone.
     */
    async abortRollout({ deployId, namespace, app }: AbortRolloutInput): Promise<AbortRolloutResult> {
      const ctx = activityContext();
      const call: ClusterCall = { doing: `reading ${namespace}/${app}` };
      return onCluster(ctx, call, async () => {
        const k = kubeClients(deps.kubeconfig);
        call.server = k.kc.getCurrentCluster()?.server;
        const deployment = await readDeployment(k, namespace, app);
        if (deployment?.metadata?.annotations?.[ANNOTATION.deployId] !== deployId) return { action: 'none' };
        const history = await readHistory(k, namespace, app);
        // A rollout that finished just before the cancel reached it is recorded as good: no longer, it was undone.
        const own = history.find((e) => e.deployId === deployId);
        if (own?.outcome === 'succeeded') {
          await recordHistory(k, namespace, app, { ...own, outcome: 'failed', reason: 'Cancelled: undone by cancel' });
        }
        const lastGood = lastGoodExcept(history, deployId);
        // Revision 1 (or none yet): the Deployment never had another pod template, so this deploy created it.
        const revision = Number(deployment.metadata.annotations['deployment.kubernetes.io/revision'] ?? 1);
        if (!lastGood && revision > 1) return { action: 'kept' }; // an earlier template, but none known good
        if (!lastGood) {
          // The Service first: the Deployment is the key, and a retry that found it gone would leave the Service.
          call.doing = `removing ${namespace}/${app}, whose first rollout was cancelled`;
          for (const remove of [
            () => k.core.deleteNamespacedService({ name: app, namespace }),
            () => k.apps.deleteNamespacedDeployment({ name: app, namespace, propagationPolicy: 'Background' }),
          ]) {
            await remove().catch((err: unknown) => {
              if (statusOf(err) !== 404) throw err;
            });
          }
          // Counted after the change: a retry finds the Deployment gone (or another deploy's) and returns `none`.
          meter().rolloutUndone('cancel', 'removed');
          return { action: 'removed' };
        }
        call.doing = `putting ${lastGood.image} back on ${namespace}/${app}`;
        const back = await restoreEntry(k, namespace, app, lastGood, 'abort', ctx, deps.pullCredential);
        meter().rolloutUndone('cancel', 'restored');
        return { action: 'restored', digest: lastGood.digest, healthy: back.done };
      });
    },

    async rolloutImage(input: RolloutImageInput): Promise<RolloutImageResult> {
      const ctx = activityContext();
      const call: ClusterCall = { doing: 'reading the cluster' };
      const outcome = await onCluster(ctx, call, () => rollOut(input, call, ctx));
      if ('failed' in outcome) {
        // A verdict of the cluster on this image, not trouble talking to it: the workflow's contract says so.
        throw ApplicationFailure.nonRetryable(
          outcome.failed.message,
          FailureType.RolloutFailed,
          outcome.failed.details,
        );
      }
      return outcome;
    },
  };

  /** The rollout itself; a failed one comes back as `failed`, after the last good image was put back. */
  async function rollOut(
    input: RolloutImageInput,
    call: ClusterCall,
    ctx: Context | undefined,
  ): Promise<
    | RolloutImageResult
    | { failed: { message: string; details: { reason: string; message: string; restored: string | null } } }
  > {
    const k = kubeClients(deps.kubeconfig);
    call.server = k.kc.getCurrentCluster()?.server;
    const { target: t, restoredFrom } = await targetOf(k, input);
    const digest = digestOf(t.image);

    // A retry of an attempt whose rollout already failed (its worker crashed after the verdict): do not start the
    // broken image again. Another attempt of the deploy is `flui retry`: it applies again.
    const attempt = input.attempt ?? 1;
    const recorded = (await readHistory(k, t.namespace, t.app)).find((e) => e.deployId === t.deployId);
    const prior = recorded && (recorded.attempt ?? 1) === attempt ? recorded : undefined;
    let state: RolloutState;
    let unchanged = false;
    if (prior?.outcome === 'failed' && prior.image === t.image) {
      const [reason = 'Failed', ...message] = (prior.reason ?? '').split(': ');
      state = { done: false, failed: true, reason, message: message.join(': '), revision: '' };
    } else {
      call.doing = `rolling out ${t.image} to ${t.namespace}/${t.app}`;
      await ensureNamespace(k, t.namespace);
      const before = await readDeployment(k, t.namespace, t.app);
      let applied = await applyTarget(k, t, deps.pullCredential?.(t.image));
      // `flui retry` of a rollout that failed and left nothing to restore: the spec is the one that ran out of time,
      // and the controller will not try it again on its own. Start it over, as `kubectl rollout restart` would.
      if (attempt > 1 && ranOutOfTime(rolloutState(applied))) {
        call.doing = `restarting the rollout of ${t.image} on ${t.namespace}/${t.app}`;
        applied = await restartRollout(k, t.namespace, t.app);
        call.doing = `rolling out ${t.image} to ${t.namespace}/${t.app}`;
      }
      // Unchanged: nothing in the spec moved. Flui's own annotations may have (a new deploy of the same digest),
      // which bumps the generation but starts no ReplicaSet.
      unchanged =
        before?.metadata?.generation === applied.metadata?.generation ||
        JSON.stringify(before?.spec) === JSON.stringify(applied.spec);
      const deadlineSeconds = t.workload.deploy.progressDeadlineSeconds;
      state = await waitWithProgress(k, t.namespace, t.app, { phase: 'rollout', image: t.image, deadlineSeconds }, ctx);
    }

    const entry: HistoryEntry = {
      deployId: t.deployId,
      digest,
      image: t.image,
      commit: t.commit,
      rolledOutAt: new Date().toISOString(),
      outcome: state.done ? 'succeeded' : 'failed',
      attempt,
      workload: t.workload,
      ...(restoredFrom ? { restoredFrom } : {}),
    };
    if (state.done) {
      await recordHistory(k, t.namespace, t.app, entry);
      return { namespace: t.namespace, app: t.app, image: t.image, digest, revision: state.revision, unchanged };
    }
    if (!state.failed) throw new Error('unreachable: the wait ends with a verdict');

    // Failed: back to the last image that ran well, with its exact recorded spec (kubectl rollout undo).
    const reason = prior?.reason ?? `${state.reason}: ${state.message}`;
    if (!prior) await recordHistory(k, t.namespace, t.app, { ...entry, reason });
    const lastGood = lastGoodExcept(await readHistory(k, t.namespace, t.app), t.deployId);
    let restored: string;
    let restoredDigest: string | null = null;
    if (lastGood) {
      call.doing = `rolling ${t.namespace}/${t.app} back to ${lastGood.image}`;
      const back = await restoreEntry(k, t.namespace, t.app, lastGood, 'rollback', ctx, deps.pullCredential);
      if (back.done) restoredDigest = lastGood.digest;
      // Counted by the attempt that recorded the failure (a retry finds it recorded: `prior`), so once per rollout.
      if (back.done && !prior) meter().rolloutUndone('failure', 'restored');
      restored = back.done
        ? `restored ${lastGood.digest} (deploy ${lastGood.deployId})`
        : `restoring ${lastGood.digest} failed too (${back.done ? '' : back.message})`;
    } else {
      restored = 'no earlier good image to restore (first rollout of this app)';
    }
    return {
      failed: {
        message: `rollout of ${t.image} to ${t.namespace}/${t.app} failed: ${reason}; ${restored}`,
        details: { reason: state.reason, message: reason, restored: restoredDigest },
      },
    };
  }
}

export { listImages };
