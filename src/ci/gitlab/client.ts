/**
 * The GitLab REST client: `@gitbeaker/rest` (typed resources) over a requester of Flui's own, so that every request
 * is sent once and every failure becomes a `ServiceError` with GitLab's status and rate-limit headers. Gitbeaker's
 * own requester retries 429 and 502 ten times on a fixed schedule, ignoring `Retry-After`, and then drops the status;
 * Flui leaves retries to Temporal (src/activities/failures.ts), which honours `retryAfterSeconds`.
 *
 * Where gitbeaker 43 lacks what Flui needs, `request` calls the endpoint directly through the same requester: creating
 * a pipeline with `inputs` (GitLab 17.10+), listing pipelines by `name` (16.9+), and reading a job's trace as text.
 *
 * Rate limits (GitLab docs, "Rate limits"): a 429 carries `Retry-After` and `RateLimit-Reset` (Unix seconds) on most
 * installations, but not always; without either, Flui waits a full minute (GitLab's limits are per minute).
 */
import { Gitlab } from '@gitbeaker/rest';
import { createRequesterFn, type RequestOptions } from '@gitbeaker/requester-utils';
import { kindOfStatus, ServiceError } from '../../errors.ts';
import { meter } from '../../observability/meter.ts';
import { tokenClientId } from '../client-id.ts';
import type { GitLabSettings } from './settings.ts';

/** Seconds to wait after a 429 that says nothing about when to come back. */
export const DEFAULT_RATE_LIMIT_WAIT_SECONDS = 60;
const REQUEST_TIMEOUT_MS = 30_000;

/** A GitLab answer that was not 2xx (or no answer). */
export class GitLabHttpError extends Error {
  constructor(
    readonly status: number | undefined,
    readonly headers: Record<string, string>,
    readonly description: string,
  ) {
    super(status ? `${status} ${description}` : description);
    this.name = 'GitLabHttpError';
  }
}

export const hasStatus = (err: unknown, ...statuses: number[]): boolean =>
  err instanceof GitLabHttpError && err.status !== undefined && statuses.includes(err.status);

/** When to come back, from `Retry-After` (seconds or a date) or `RateLimit-Reset` (Unix seconds). */
export function retryAfterSeconds(headers: Record<string, string>, now = Date.now()): number | undefined {
  const retryAfter = headers['retry-after']?.trim();
  if (retryAfter) {
    if (/^[0-9]+$/.test(retryAfter)) return Number(retryAfter);
    const at = Date.parse(retryAfter);
    if (!Number.isNaN(at)) return Math.max(0, Math.ceil((at - now) / 1000));
  }
  const reset = headers['ratelimit-reset']?.trim();
  if (reset && /^[0-9]+$/.test(reset)) return Math.max(0, Number(reset) - Math.floor(now / 1000));
  return undefined;
}

/** The service error for a failed GitLab call; `doing` says what Flui was doing, for people. */
export function gitlabError(err: unknown, doing: string): ServiceError {
  if (err instanceof ServiceError) return err;
  if (!(err instanceof GitLabHttpError)) {
    return new ServiceError({
      service: 'GitLab',
      kind: 'unavailable',
      message: `${doing}: ${(err as Error)?.message ?? String(err)}`,
      cause: err,
    });
  }
  const { status, headers } = err;
  const kind = status === 400 ? 'invalid' : kindOfStatus(status);
  let retryAfter = status && (status === 429 || status >= 500) ? retryAfterSeconds(headers) : undefined;
  if (status === 429 && retryAfter === undefined) retryAfter = DEFAULT_RATE_LIMIT_WAIT_SECONDS;
  const hint =
    status === 401
      ? 'check GITLAB_TOKEN (expired or revoked?)'
      : status === 403
        ? 'GITLAB_TOKEN needs the `api` scope and the Maintainer role on the project'
        : status === 404
          ? 'check the project path (source.repository) and that GITLAB_TOKEN can see it'
          : undefined;
  return new ServiceError({
    service: 'GitLab',
    kind,
    status,
    message: `${doing}: GitLab answered ${err.message}`,
    ...(hint ? { hint } : {}),
    ...(retryAfter !== undefined ? { retryAfterSeconds: retryAfter } : {}),
    cause: err,
  });
}

async function describe(response: Response): Promise<string> {
  const text = await response.text().catch(() => '');
  try {
    const json = JSON.parse(text) as { message?: unknown; error?: unknown };
    const m = json.message ?? json.error ?? text;
    return (typeof m === 'string' ? m : JSON.stringify(m)).slice(0, 500);
  } catch {
    return text.slice(0, 500) || response.statusText;
  }
}

export interface GitLabRequestInfo {
  method: string;
  path: string;
  status: number | undefined;
}

/**
 * Counts the request for the worker's metrics, per credential (a hash of the token: never the token), and records the
 * rate-limit budget GitLab reported (`RateLimit-Remaining`; GitLab sends it on most answers, and no request is free).
 */
function observe(client: string, status: number, headers: Record<string, string>): void {
  meter().ciRequest('gitlab', client, status);
  const remaining = Number(headers['ratelimit-remaining']);
  if (headers['ratelimit-remaining'] !== undefined && Number.isFinite(remaining)) {
    meter().ciRateLimitRemaining('gitlab', client, remaining);
  }
}

/** One request, no retries; throws GitLabHttpError for any answer but 2xx. */
async function send(
  url: URL,
  init: { method: string; headers: Record<string, string>; body?: string | FormData },
  asText: boolean,
  client: string,
  onRequest?: (info: GitLabRequestInfo) => void,
) {
  let response: Response;
  try {
    response = await fetch(url, { ...init, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  } catch (err) {
    onRequest?.({ method: init.method, path: url.pathname, status: undefined });
    throw new GitLabHttpError(undefined, {}, `no answer from ${url.host}: ${(err as Error).message}`);
  }
  onRequest?.({ method: init.method, path: url.pathname, status: response.status });
  const headers = Object.fromEntries(response.headers.entries());
  observe(client, response.status, headers);
  if (!response.ok) throw new GitLabHttpError(response.status, headers, await describe(response));
  const type = (headers['content-type'] ?? '').split(';')[0]!.trim();
  let body: unknown = null;
  if (response.status !== 204) {
    body = !asText && type === 'application/json' ? await response.json() : await response.text();
  }
  return { body, headers, status: response.status };
}

export interface GitLabClient {
  api: InstanceType<typeof Gitlab>;
  /** A direct call to `${url}/api/v4/${path}` (JSON in, JSON or text out). */
  request<T>(
    method: 'GET' | 'POST' | 'PUT' | 'DELETE',
    path: string,
    options?: { query?: Record<string, string | number>; body?: unknown; text?: boolean },
  ): Promise<{ body: T; headers: Record<string, string> }>;
}

export function createGitLabClient(
  settings: Pick<GitLabSettings, 'url' | 'token'>,
  options: { onRequest?: (info: GitLabRequestInfo) => void } = {},
): GitLabClient {
  const token = settings.token;
  if (!token) {
    throw new ServiceError({
      service: 'GitLab',
      kind: 'misconfigured',
      message: 'the worker has no GitLab token',
      hint: 'set GITLAB_TOKEN (a token with the `api` scope and the Maintainer role on the projects Flui builds)',
    });
  }
  const base = `${settings.url}/api/v4/`;
  const client = tokenClientId(token);
  const requesterFn = createRequesterFn(
    async (_service, reqo: RequestOptions) => reqo,
    async (endpoint, opts = {}) => {
      const o = opts as {
        method?: string;
        headers?: Record<string, string>;
        body?: string | FormData;
        searchParams?: string;
        asStream?: boolean;
        prefixUrl?: string;
      };
      // Some resources (variables, members) carry their own prefix, e.g. `${url}/api/v4/projects/`.
      const prefix = o.prefixUrl ? (o.prefixUrl.endsWith('/') ? o.prefixUrl : `${o.prefixUrl}/`) : base;
      const url = new URL(endpoint, prefix);
      if (o.searchParams) url.search = o.searchParams;
      const res = await send(
        url,
        { method: o.method ?? 'GET', headers: o.headers ?? {}, ...(o.body ? { body: o.body } : {}) },
        false,
        client,
        options.onRequest,
      );
      return res as never;
    },
  );
  const api = new Gitlab({ host: settings.url, token, requesterFn } as never) as InstanceType<typeof Gitlab>;
  return {
    api,
    async request(method, path, opts = {}) {
      const url = new URL(path, base);
      for (const [k, v] of Object.entries(opts.query ?? {})) url.searchParams.set(k, String(v));
      const headers: Record<string, string> = { 'private-token': token };
      if (opts.body !== undefined) headers['content-type'] = 'application/json';
      const res = await send(
        url,
        { method, headers, ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}) },
        opts.text ?? false,
        client,
        options.onRequest,
      );
      return { body: res.body as never, headers: res.headers };
    },
  };
}

/** The URL-encoded project path GitLab accepts wherever it takes a project id (`group%2Fsub%2Fproject`). */
export const projectId = (path: string): string => encodeURIComponent(path);
