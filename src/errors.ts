/**
 * The one error the adapters throw: the CI backends (src/ci), the registry client (src/registry) and the Kubernetes
 * code (src/kube). It says what kind of trouble a call ran into in terms any caller understands, and nothing about
 * Temporal: the activities turn it into a Temporal failure in one place (src/activities/failures.ts), so a backend
 * author never needs to know how retries work.
 *
 * Kinds, and what the deploy does about them:
 * - `unauthorized`, `not-found`, `invalid`, `misconfigured`: permanent. Retrying cannot help; the phase fails at once
 *   with the message (and hint), which should say what a person must fix.
 * - `unavailable`, `rate-limited`, `conflict`: transient (5xx, timeouts, resets, rate limits, a write that kept
 *   racing another). Retried with backoff, or after `retryAfterSeconds` when the service said when to come back.
 */

export type ServiceErrorKind =
  | 'unauthorized' // the service refused the credentials (401/403)
  | 'not-found' // what was asked for does not exist or is not visible (404)
  | 'invalid' // the request was understood and refused (400/422), or our input cannot work
  | 'misconfigured' // the worker lacks a setting this call needs
  | 'unavailable' // the service is down, slow or unreachable
  | 'rate-limited' // the service asked us to slow down
  | 'conflict'; // a concurrent change kept winning

const PERMANENT: ReadonlySet<ServiceErrorKind> = new Set(['unauthorized', 'not-found', 'invalid', 'misconfigured']);

export interface ServiceErrorInit {
  /** The system that answered, as one word: `GitHub`, `Registry`, `Cluster`; it names transient failures. */
  service: string;
  kind: ServiceErrorKind;
  /** What went wrong, in the service's words where they help. Never a secret. */
  message: string;
  /** What a person can do about it, e.g. which setting to check. */
  hint?: string;
  /** The service said to come back after this long (Retry-After, a rate limit's reset). */
  retryAfterSeconds?: number;
  /** The HTTP status, when there was one. */
  status?: number;
  /** Plain data a caller may act on (e.g. the pull request to merge). Never a secret. */
  details?: Record<string, unknown>;
  cause?: unknown;
}

export class ServiceError extends Error {
  readonly service: string;
  readonly kind: ServiceErrorKind;
  /** The message without the hint. */
  readonly problem: string;
  readonly hint: string | undefined;
  readonly retryAfterSeconds: number | undefined;
  readonly status: number | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(init: ServiceErrorInit) {
    super(init.hint ? `${init.message}: ${init.hint}` : init.message, { cause: init.cause });
    this.name = 'ServiceError';
    this.service = init.service;
    this.kind = init.kind;
    this.problem = init.message;
    this.hint = init.hint;
    this.retryAfterSeconds = init.retryAfterSeconds;
    this.status = init.status;
    this.details = init.details;
  }

  /** False for the permanent kinds: retrying the same call cannot succeed. */
  get retryable(): boolean {
    return !PERMANENT.has(this.kind);
  }

  /** The same error with what to do about it (the caller often knows better than the adapter). */
  withHint(hint: string | undefined): ServiceError {
    if (!hint) return this;
    return new ServiceError({ ...this.init(), hint });
  }

  /** The same error, to be retried no sooner than `seconds` from now. */
  withRetryAfter(seconds: number): ServiceError {
    return new ServiceError({ ...this.init(), retryAfterSeconds: seconds });
  }

  private init(): ServiceErrorInit {
    return {
      service: this.service,
      kind: this.kind,
      message: this.problem,
      hint: this.hint,
      retryAfterSeconds: this.retryAfterSeconds,
      status: this.status,
      details: this.details,
      cause: this.cause,
    };
  }
}

/** The kind an HTTP status stands for; `undefined` (no answer at all) is `unavailable`. */
export function kindOfStatus(status: number | undefined): ServiceErrorKind {
  if (status === 401 || status === 403) return 'unauthorized';
  if (status === 404) return 'not-found';
  if (status === 429) return 'rate-limited';
  if (status === 409) return 'conflict';
  if (status !== undefined && status >= 400 && status < 500) return 'invalid';
  return 'unavailable';
}
