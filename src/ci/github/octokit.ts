/**
 * The Octokit client Flui uses in production and against the emulator alike, composed from plugins: throttling
 * (primary and secondary rate limits) and retry (transient 5xx). Long waits are not slept here: they surface as a
 * `rate-limited` service error that says how long to wait, so the caller (Temporal) waits durably and the worker
 * stays free. Which client serves which repository (one per GitHub App installation) is clients.ts's business.
 */
import { retry } from '@octokit/plugin-retry';
import { throttling } from '@octokit/plugin-throttling';
import { Octokit } from '@octokit/rest';
import Bottleneck from 'bottleneck';
import type { Config } from '../../config.ts';
import { ServiceError, type ServiceErrorKind } from '../../errors.ts';
import { meter } from '../../observability/meter.ts';
import { tokenClientId } from '../client-id.ts';

/**
 * Counts each request Flui makes, by its final status (the plugins' short in-place retries are inside it), per client
 * (the throttling id: a token's hash or `installation-N`, never a credential), and records the primary rate-limit
 * budget GitHub reported with the answer.
 */
function requestMetrics(octokit: Pick<Octokit, 'hook'>, options: { throttle?: { id?: string } }): void {
  const client = options.throttle?.id ?? 'default';
  const observe = (status: number, headers: Record<string, string | number | undefined> | undefined) => {
    meter().ciRequest('github', client, status);
    const remaining = Number(headers?.['x-ratelimit-remaining']);
    if (headers?.['x-ratelimit-remaining'] !== undefined && Number.isFinite(remaining)) {
      meter().ciRateLimitRemaining('github', client, remaining);
    }
  };
  octokit.hook.after('request', (response) => observe(response.status, response.headers));
  octokit.hook.error('request', (error) => {
    const e = error as { status?: number; response?: { headers?: Record<string, string | number | undefined> } };
    observe(e.status ?? 0, e.response?.headers);
    throw error;
  });
}

export const FluiOctokit = Octokit.plugin(throttling, retry, requestMetrics);
export type GitHubClient = InstanceType<typeof FluiOctokit>;
type ClientOptions = NonNullable<ConstructorParameters<typeof FluiOctokit>[0]>;

/** Rate-limit waits up to this long are slept in place, at most this many times; longer ones go back to Temporal. */
const MAX_INLINE_WAIT_SECONDS = 5;
const MAX_INLINE_RETRIES = 2;
const REQUEST_TIMEOUT_MS = 30_000;
/**
 * How long to wait after a secondary rate limit that names no wait (no `retry-after`): GitHub's documentation says
 * at least a minute. The throttling plugin is told the same, so it never retries such a limit in place.
 */
export const SECONDARY_LIMIT_WAIT_SECONDS = 60;

/**
 * Writes start at least `intervalMs` apart, as GitHub asks. The throttling plugin keeps one write queue per client
 * `id` in the group it is given: one group per interval for the whole process, and the `id` names whose writes are
 * paced together (a token, or a GitHub App installation: see `clientOptions`), so one tenant's writes never wait
 * behind another's.
 */
const writeQueues = new Map<number, Bottleneck.Group>();
function writeQueue(intervalMs: number): Bottleneck.Group {
  let group = writeQueues.get(intervalMs);
  if (!group) {
    group = new Bottleneck.Group({ id: `flui-write-${intervalMs}`, maxConcurrent: 1, minTime: intervalMs });
    writeQueues.set(intervalMs, group);
  }
  return group;
}

/** The worker has no GitHub credentials at all. */
export function noCredentials(): ServiceError {
  return new ServiceError({
    service: 'GitHub',
    kind: 'misconfigured',
    message: 'the worker has no GitHub credentials',
    hint: 'set GITHUB_TOKEN, or GITHUB_APP_ID with its private key',
  });
}

/**
 * A client for one token (GITHUB_TOKEN). With GitHub App credentials, see `createGitHubClients` in clients.ts, which
 * builds one client per installation with `clientOptions`.
 */
export function createGitHubClient(github: Config['github']): GitHubClient {
  if (!github.auth) throw noCredentials();
  if (github.auth.kind !== 'token') {
    throw new ServiceError({
      service: 'GitHub',
      kind: 'misconfigured',
      message: 'a single GitHub client needs a token; GitHub App credentials get one client per installation',
    });
  }
  return new FluiOctokit({ ...clientOptions(github, tokenClientId(github.auth.token)), auth: github.auth.token });
}

/**
 * Everything but the credentials: the API URL, quiet logs, rate-limit handling, write pacing and retries. `id` names
 * whose writes are paced together and whose rate-limit retries queue together: one token, or one installation.
 */
export function clientOptions(github: Config['github'], id: string): ClientOptions {
  const inlineRetry = (retryAfter: number, _options: unknown, _octokit: unknown, retryCount: number) =>
    retryAfter <= MAX_INLINE_WAIT_SECONDS && retryCount < MAX_INLINE_RETRIES;
  return {
    baseUrl: github.apiUrl,
    userAgent: 'flui-build-pipeline',
    log: { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined },
    throttle: {
      id,
      onRateLimit: inlineRetry,
      onSecondaryRateLimit: inlineRetry,
      fallbackSecondaryRateRetryAfter: SECONDARY_LIMIT_WAIT_SECONDS,
      write: writeQueue(github.writeIntervalMs ?? 1000),
    },
    // One quick in-process retry for a flaky 5xx; anything longer is Temporal's retry policy. The plugin waits
    // base × n² before its retry, where n grows over the client's life: a small base keeps the wait under seconds.
    retry: { retries: 1, retryAfterBaseValue: 100, doNotRetry: [304, 400, 401, 403, 404, 409, 410, 422, 429, 451] },
    request: {
      fetch: (url: string, init: RequestInit) =>
        fetch(url, { ...init, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) }),
    },
  };
}

interface RequestErrorLike {
  status: number;
  message: string;
  request?: { url?: string };
  response?: { headers?: Record<string, string | number | undefined>; data?: unknown };
}

/** An error response from GitHub as Octokit throws it (a service error made from one is not: it was handled). */
export function isRequestError(err: unknown): err is RequestErrorLike {
  return (
    err instanceof Error &&
    !(err instanceof ServiceError) &&
    typeof (err as Partial<RequestErrorLike>).status === 'number'
  );
}

export function hasStatus(err: unknown, ...statuses: number[]): boolean {
  return isRequestError(err) && statuses.includes(err.status);
}

/** GitHub's own message from an error response, without anything from the request (which may hold a token). */
function githubMessage(err: RequestErrorLike): string {
  const data = err.response?.data as { message?: string } | undefined;
  return data?.message ?? err.message.split(' - ')[0] ?? `HTTP ${err.status}`;
}

/**
 * Whether GitHub refused a request for its rate: a 429 always; a 403 when it names a wait, says the primary limit is
 * spent (`x-ratelimit-remaining: 0`), or says so in words (a secondary limit, or the older "abuse detection").
 */
export function isRateLimited(err: RequestErrorLike): boolean {
  if (err.status === 429) return true;
  if (err.status !== 403) return false;
  const h = err.response?.headers ?? {};
  return (
    h['retry-after'] !== undefined ||
    String(h['x-ratelimit-remaining']) === '0' ||
    /secondary rate limit|abuse detection/i.test(githubMessage(err))
  );
}

/** Seconds until GitHub said to come back, from `retry-after` or `x-ratelimit-reset`. */
export function retryAfterSeconds(err: RequestErrorLike, now = Date.now()): number | undefined {
  const h = err.response?.headers ?? {};
  if (h['retry-after'] !== undefined) return Math.max(1, Number(h['retry-after']));
  if (String(h['x-ratelimit-remaining']) === '0' && h['x-ratelimit-reset'] !== undefined) {
    return Math.max(1, Math.ceil(Number(h['x-ratelimit-reset']) - now / 1000));
  }
  return undefined;
}

/** What to check when GitHub refuses the worker's credentials, by the kind of credentials configured. */
export function authHint(github: Config['github']): string {
  if (github.auth?.kind !== 'app') return 'check GITHUB_TOKEN';
  return github.auth.installationId !== undefined
    ? 'check GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY and GITHUB_APP_INSTALLATION_ID, and that the app is installed on the repository'
    : 'check GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY, and that the app is installed on the repository';
}

/**
 * Turns any error from GitHub into a service error: refusals are permanent, with a hint that says what to fix; rate
 * limits say when GitHub allows the next request; everything else (5xx, resets, timeouts) is `unavailable`.
 */
export function githubError(err: unknown, doing: string, hint = 'check GITHUB_TOKEN'): ServiceError {
  if (err instanceof ServiceError) return err;
  const service = 'GitHub';
  if (!isRequestError(err)) {
    const message = `GitHub unreachable while ${doing}: ${(err as Error)?.message ?? String(err)}`;
    return new ServiceError({ service, kind: 'unavailable', message, cause: err });
  }
  const { status } = err;
  const said = `${status} ${githubMessage(err)}`;
  const error = (kind: ServiceErrorKind, message: string, more: { hint?: string; retryAfterSeconds?: number } = {}) =>
    new ServiceError({ service, kind, message, status, ...more });
  // A limit that names no wait is still a limit, never a refusal: wait the least GitHub documents.
  const wait = isRateLimited(err) ? (retryAfterSeconds(err) ?? SECONDARY_LIMIT_WAIT_SECONDS) : undefined;
  if (wait !== undefined) {
    return error('rate-limited', `GitHub rate limit while ${doing} (${said}); retrying in ${wait}s`, {
      retryAfterSeconds: wait,
    });
  }
  // Getting a GitHub App installation token failed: the app's settings, not the repository, are wrong.
  if (/\/app\/installations\/[^/]+\/access_tokens$/.test(err.request?.url ?? '') && status < 500) {
    return error('unauthorized', `GitHub refused the GitHub App installation token while ${doing} (${said})`, { hint });
  }
  switch (status) {
    case 401:
      return error('unauthorized', `GitHub refused the credentials while ${doing} (${said})`, { hint });
    case 403:
      return error('unauthorized', `GitHub denied access while ${doing} (${said})`, {
        hint:
          'the token or GitHub App needs read and write permission for contents, actions, secrets and variables ' +
          '(and pull requests in pull-request mode)',
      });
    case 404:
      return error('not-found', `not found on GitHub while ${doing} (${said})`, {
        hint: 'check the repository name and that the token can see it',
      });
    case 400:
    case 422:
      return error('invalid', `GitHub rejected the request while ${doing} (${said})`);
    default:
      return error('unavailable', `GitHub error while ${doing} (${said})`);
  }
}
