/**
 * What went wrong talking to Kubernetes, as a service error (src/errors.ts): the API server's status and its own
 * message, or why it could not be reached. No Temporal here: the activities translate.
 */
import { kindOfStatus, ServiceError } from '../errors.ts';
import { apiMessage, RolloutTimeout, statusOf } from './rollout.ts';

const service = 'Cluster';

/** `err` from a Kubernetes call made while `doing` (words for people), against the API server at `server`. */
export function kubeError(err: unknown, doing: string, server: string | undefined): ServiceError {
  if (err instanceof ServiceError) return err;
  if (err instanceof RolloutTimeout) {
    // The controller is slow or down: a cluster problem, not a verdict on the image. Retrying waits again.
    return new ServiceError({ service, kind: 'unavailable', message: `${doing}: ${err.message}`, cause: err });
  }
  const status = statusOf(err);
  const message = apiMessage(err);
  if (status === undefined) {
    const code = (err as { code?: unknown })?.code;
    return new ServiceError({
      service,
      kind: 'unavailable',
      message: `cannot reach the Kubernetes API${server ? ` at ${server}` : ''} while ${doing}: ${message}`,
      details: typeof code === 'string' ? { code } : undefined,
      cause: err,
    });
  }
  const kind = kindOfStatus(status);
  const retryAfter = Number((err as { headers?: Record<string, string> }).headers?.['retry-after']);
  const said = `(${status}): ${message}`;
  return new ServiceError({
    service,
    // A conflict we could not resolve, a rate limit or a server error: the cluster is busy or recovering.
    kind: kind === 'conflict' || kind === 'rate-limited' ? 'unavailable' : kind,
    status,
    message:
      kind === 'unauthorized'
        ? `the cluster refused ${doing} ${said}`
        : kind === 'not-found'
          ? `not found while ${doing} ${said}`
          : kind === 'invalid'
            ? `the cluster rejected ${doing} ${said}`
            : `the cluster could not serve ${doing} ${said}`,
    retryAfterSeconds: Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : undefined,
  });
}
