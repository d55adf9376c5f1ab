/**
 * The one place where an adapter's {@link ServiceError} becomes a Temporal failure. Every activity goes through it
 * ({@link withActivityFailures}, applied where the worker's activities are built), so no adapter needs to know
 * Temporal and no activity maps errors by hand.
 */
import { ApplicationFailure } from '@temporalio/activity';
import { ServiceError, type ServiceErrorKind } from '../errors.ts';
import { FailureType } from '../workflows/contract.ts';

/** Permanent kinds: the failure type the workflow's retry policy lists as non-retryable. */
const PERMANENT: Partial<Record<ServiceErrorKind, FailureType>> = {
  unauthorized: FailureType.Unauthorized,
  'not-found': FailureType.NotFound,
  invalid: FailureType.Invalid,
  misconfigured: FailureType.Misconfigured,
};

/** Transient kinds name the service in their type (`GitHubRateLimited`), so Web UI shows who is in trouble. */
const TRANSIENT: Record<Exclude<ServiceErrorKind, keyof typeof PERMANENT>, string> = {
  unavailable: 'Unavailable',
  'rate-limited': 'RateLimited',
  conflict: 'Conflict',
};

/**
 * A service error as the failure Temporal acts on: non-retryable with a {@link FailureType} for the permanent kinds;
 * retryable for the transient ones, after `retryAfterSeconds` when the service named a time. Anything else (already
 * a Temporal failure, a cancellation, an unexpected error) is returned as it is: Temporal retries unknown errors.
 */
export function toActivityFailure(err: unknown): unknown {
  if (!(err instanceof ServiceError)) return err;
  const permanent = PERMANENT[err.kind];
  const retryAfter = err.retryAfterSeconds;
  return ApplicationFailure.create({
    message: err.message,
    type: permanent ?? `${err.service}${TRANSIENT[err.kind as keyof typeof TRANSIENT]}`,
    nonRetryable: permanent !== undefined,
    nextRetryDelay: !permanent && retryAfter !== undefined && retryAfter > 0 ? `${retryAfter} seconds` : undefined,
    details: err.details ? [err.details] : undefined,
  });
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- activities take and return anything serializable
type Activity = (...args: any[]) => Promise<unknown>;

/** The same activities, each translating what it throws through {@link toActivityFailure}. */
export function withActivityFailures<T extends object>(activities: T): T {
  return Object.fromEntries(
    Object.entries(activities as Record<string, Activity>).map(([name, activity]) => [
      name,
      {
        // A named function per activity (the object-literal key names it), so stack traces keep the activity's name.
        async [name](...args: unknown[]) {
          try {
            return await activity(...args);
          } catch (err) {
            throw toActivityFailure(err);
          }
        },
      }[name]!,
    ]),
  ) as T;
}
