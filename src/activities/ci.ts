/**
 * Activities that drive the user's CI, whichever backend the worker is configured with (GitHub Actions today; see
 * src/ci/). Each is idempotent; the key that makes it so is named on each function.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { ApplicationFailureCategory } from '@temporalio/common';
import type { CiBackend, RegistryCredential, RunState } from '../ci/backend.ts';
import type { Config } from '../config.ts';
import { authFor } from '../registry/auths.ts';
import { ServiceError } from '../errors.ts';
import type { Application } from '../manifest/schema.ts';
import { pushAccessFor, pushTokenIssuer } from '../registry/push-access.ts';
import { mintPushToken } from '../registry/push-token.ts';
import { imageHost, parseImageReference } from '../registry/reference.ts';
import { FailureType } from '../workflows/contract.ts';
import type {
  AwaitRunInput,
  CancelRunInput,
  DeployActivities,
  EnsureRegistryCredentialInput,
  EnsureWorkflowFileInput,
  TriggerRunInput,
} from './types.ts';

/** What awaitRun remembers between polls (in heartbeat details: no secrets). */
interface PollMemory {
  etag?: string;
  state?: Exclude<RunState, { state: 'completed' }>;
  /** Consecutive polls that failed (CI outage): the next poll backs off exponentially. */
  failures?: number;
}

/** Poll interval while the CI is failing: doubles per failed poll, capped, so an outage costs a few dozen calls. */
const outageFailures = new Map<string, number>();
const pollKey = (info: Context['info']) =>
  `${info.workflowExecution?.workflowId}/${info.workflowExecution?.runId}/${info.activityId}`;

const OUTAGE_BACKOFF = { firstSeconds: 10, maxSeconds: 600 };

export function createCiActivities(
  ci: CiBackend,
  config: Pick<Config, 'registry'>,
): Pick<DeployActivities, 'ensureWorkflowFile' | 'ensureRegistryCredential' | 'triggerRun' | 'awaitRun' | 'cancelRun'> {
  return {
    /**
     * Key: the rendered pipeline file's content; the backend writes only when the branch holds something else. A
     * change the backend could only propose (pull-request mode) stops the deploy: the run would build with the old
     * pipeline, or not start at all. Once the proposal is merged, a retry finds the file current.
     */
    async ensureWorkflowFile({ app }: EnsureWorkflowFileInput) {
      const result = await ci.ensurePipeline(app, {
        push: pushAccessFor(config.registry.push, app.spec.image.repository),
      });
      const { pullRequestUrl } = result;
      if (!pullRequestUrl) return result;
      const { namespace, name } = app.metadata;
      throw ApplicationFailure.nonRetryable(
        `the build pipeline of ${namespace}.${name} differs from its manifest; Flui proposed the new ${result.path} ` +
          `in ${pullRequestUrl}: merge it, then run \`flui retry ${name}\` or deploy again`,
        FailureType.Invalid,
        { pullRequestUrl },
      );
    },

    /**
     * A static credential (opted in per registry): key, its fingerprint stored beside the secrets; unchanged
     * credentials are not rewritten. Every other push method stores nothing here (the job's token and OIDC need no
     * secret; a minted token is stored by `triggerRun`, right before the dispatch it is for) and removes a password
     * stored before: key, the secrets' names, absent once removed.
     */
    async ensureRegistryCredential({ app }: EnsureRegistryCredentialInput) {
      const access = pushAccessFor(config.registry.push, app.spec.image.repository);
      if (access.method === 'static') {
        return ci.ensureCredential(app, registryCredential(config, app.spec.image.repository));
      }
      // Nothing to store now; a password stored before (by an older Flui, or while this registry was static) goes.
      const { changed } = await ci.ensureCredential(app, { registry: access.registry, none: true });
      return { method: access.method, changed };
    },

    /**
     * Key: the run key (deploy id + attempt) in the run's name: a crash after dispatch finds the run instead. For a
     * minted-token registry, a fresh token for this app's repository is stored first (each attempt overwrites the
     * last: the secret is this app's, and only the run dispatched next reads it).
     */
    async triggerRun({ runKey, app }: TriggerRunInput) {
      // Only a retry can follow a dispatch that was never recorded (a crash or timeout of an earlier attempt);
      // the first attempt skips the lookup and its rate-limited request.
      const existing = Context.current().info.attempt > 1 ? await ci.findRun(app, runKey) : undefined;
      if (existing) {
        Context.current().log.info('CI run already dispatched for this deploy; reusing it', { runId: existing.id });
        return existing;
      }
      const access = pushAccessFor(config.registry.push, app.spec.image.repository);
      if (access.method === 'minted-token') await ci.ensureCredential(app, deployPushToken(config, app));
      return ci.trigger(app, runKey);
    },

    /**
     * Read-only. One conditional status check per attempt: completes with the run's result, or throws a retryable
     * `RunInProgress` so the retry policy (the poll interval) brings it back. The ETag travels in heartbeat details
     * between attempts, so an unchanged run costs a 304, which does not count against the CI's rate limit.
     */
    async awaitRun({ app, run, queuedTimeoutSeconds }: AwaitRunInput) {
      const ctx = Context.current();
      const memory = (ctx.info.heartbeatDetails as PollMemory | undefined) ?? {};
      let response;
      try {
        response = await ci.status(app, run, memory.etag);
      } catch (err) {
        if (err instanceof ServiceError && !err.retryable) throw err;
        // Heartbeat details carry the count across attempts; servers that drop details of failed attempts (the
        // time-skipping test server) fall back on this worker's memory of the same activity.
        const key = pollKey(ctx.info);
        const failures = Math.max(memory.failures ?? 0, outageFailures.get(key) ?? 0) + 1;
        outageFailures.set(key, failures);
        if (outageFailures.size > 10_000) outageFailures.delete(outageFailures.keys().next().value!);
        ctx.heartbeat({ ...memory, failures });
        const backoff = Math.min(OUTAGE_BACKOFF.maxSeconds, OUTAGE_BACKOFF.firstSeconds * 2 ** (failures - 1));
        const unavailable =
          err instanceof ServiceError
            ? err
            : new ServiceError({ service: 'Ci', kind: 'unavailable', message: (err as Error).message, cause: err });
        throw unavailable.withRetryAfter(Math.max(backoff, unavailable.retryAfterSeconds ?? 0));
      }
      outageFailures.delete(pollKey(ctx.info));
      const state = response.status ?? memory.state;
      if (state?.state === 'completed') return state.result;

      const next: PollMemory = { etag: response.etag ?? memory.etag, state };
      ctx.heartbeat(next);
      // Measured on Temporal's clock from the first poll, so it holds through worker restarts and time skipping.
      const waitedSeconds = (ctx.info.currentAttemptScheduledTimestampMs - ctx.info.scheduledTimestampMs) / 1000;
      if (state?.state === 'queued' && waitedSeconds > queuedTimeoutSeconds) {
        throw ApplicationFailure.nonRetryable(
          `CI run ${run.id} waited ${Math.round(waitedSeconds / 60)} minutes for a runner without starting ` +
            `(limit ${Math.round(queuedTimeoutSeconds / 60)} minutes): check the repository's runners at ${run.htmlUrl}`,
          FailureType.RunQueuedTooLong,
        );
      }
      // BENIGN: an unfinished run is the normal case of a poll, logged at DEBUG rather than as a failure. A CI without
      // conditional requests (GitLab) says when to read again; otherwise the retry policy's interval applies.
      throw ApplicationFailure.create({
        message: `CI run ${run.id} is ${state?.state ?? 'not visible yet'}`,
        type: 'RunInProgress',
        category: ApplicationFailureCategory.BENIGN,
        ...(response.pollAfterSeconds ? { nextRetryDelay: `${response.pollAfterSeconds(waitedSeconds)} seconds` } : {}),
      });
    },

    /** Idempotent: cancelling a finished or already cancelled run is a no-op in the backend. */
    async cancelRun({ app, run, runKey }: CancelRunInput) {
      const target = run ?? (await ci.findRun(app, runKey));
      if (target) await ci.cancel(app, target);
    },
  };
}

/**
 * A token for this deploy's push: `push,pull` on the app's image repository only, valid for the app's build and
 * queue timeouts (the longest the run can take to push), capped by the registry's `maxTokenMinutes`.
 */
export function deployPushToken(config: Pick<Config, 'registry'>, app: Application) {
  const image = parseImageReference(app.spec.image.repository);
  const { signer, maxTokenMinutes } = pushTokenIssuer(config.registry.push, image.host);
  const { buildTimeoutMinutes, queueTimeoutMinutes } = app.spec.deploy;
  const { token, expiresAt } = mintPushToken(signer, {
    repository: image.repository,
    subject: `flui:${app.metadata.namespace}.${app.metadata.name}`,
    ttlSeconds: Math.min(buildTimeoutMinutes + queueTimeoutMinutes, maxTokenMinutes) * 60,
  });
  return { registry: image.host, token, expiresAt };
}

/**
 * The static push credential for the image's registry, from worker configuration: the credential held for that very
 * host (REGISTRY_AUTH_FILE, or REGISTRY_USERNAME/PASSWORD bound to it by REGISTRY_HOST), never another host's.
 */
export function registryCredential(config: Pick<Config, 'registry'>, imageRepository: string): RegistryCredential {
  const registry = imageHost(imageRepository);
  const auth = authFor(config.registry.auths, registry);
  if (!auth) {
    throw new ServiceError({
      service: 'Registry',
      kind: 'misconfigured',
      message: `the worker has no registry credential for ${registry} to give the CI of ${imageRepository}`,
      hint: `add ${registry} to REGISTRY_AUTH_FILE, or set REGISTRY_HOST=${registry} with REGISTRY_USERNAME and REGISTRY_PASSWORD`,
    });
  }
  return { registry, username: auth.username, password: auth.password };
}
