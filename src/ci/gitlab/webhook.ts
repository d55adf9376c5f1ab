/**
 * GitLab's Pipeline Hook, served by the worker's webhook receiver beside GitHub's (src/ci/github/webhook.ts routes a
 * delivery here when it carries `X-Gitlab-Event`). GitLab sends the webhook's secret token in clear as
 * `X-Gitlab-Token` (GitLab docs, "Webhooks": "Secret token"), so it is compared in constant time, on hashes of equal
 * length, before the body is read. Each delivery is handled once by `X-Gitlab-Event-UUID` (a redelivery while the
 * first is being handled waits for it; a failed one may be redelivered and is handled again). Only pipelines that
 * reached a final status (success, failed, canceled, skipped) are reported.
 *
 * Answers: 202 handled or ignored, 400 not a JSON object, 401 bad or missing token, 500 the callback failed.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { CiRunResult } from '../../workflows/contract.ts';

export interface PipelineCompletedEvent {
  /** The pipeline's name (`workflow:name`), e.g. `flui default.hello.k3x9a1`. */
  runName: string;
  runId: number;
  conclusion: CiRunResult['conclusion'];
  htmlUrl: string;
  headSha: string;
}

export interface GitLabWebhookOptions {
  /** GITLAB_WEBHOOK_SECRET. */
  token: string;
  onPipelineCompleted(event: PipelineCompletedEvent): Promise<void>;
}

/** Whether `header` is the token, compared in constant time whatever their lengths. */
export function tokenMatches(token: string, header: string | undefined): boolean {
  if (!token || !header) return false;
  const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();
  return timingSafeEqual(digest(token), digest(header));
}

const FINAL: Record<string, CiRunResult['conclusion']> = {
  success: 'success',
  failed: 'failure',
  canceled: 'cancelled',
  skipped: 'skipped',
};

/** The fields of a Pipeline Hook payload Flui reads (GitLab docs, "Webhook events": Pipeline events). */
interface PipelinePayload {
  object_kind?: string;
  object_attributes?: { id?: number; name?: string | null; status?: string; sha?: string; url?: string };
  project?: { web_url?: string };
}

const MAX_REMEMBERED = 10_000;

/** A handler for one receiver: remembers the deliveries it has handled. */
export function createGitLabWebhookHandler(opts: GitLabWebhookOptions) {
  const seen = new Map<string, Promise<void>>();
  return async function handle(
    headers: Record<string, string | string[] | undefined>,
    readBody: () => Promise<Buffer | undefined>,
  ): Promise<[number, string]> {
    const header = (name: string) => {
      const v = headers[name];
      return Array.isArray(v) ? v[0] : v;
    };
    if (!tokenMatches(opts.token, header('x-gitlab-token'))) return [401, 'bad or missing X-Gitlab-Token'];
    const body = await readBody();
    if (!body) return [413, 'payload too large'];
    if (header('x-gitlab-event') !== 'Pipeline Hook') return [202, 'ignored: not a Pipeline Hook'];
    let payload: PipelinePayload;
    try {
      const value: unknown = JSON.parse(body.toString('utf8'));
      if (!value || typeof value !== 'object' || Array.isArray(value)) return [400, 'body is not a JSON object'];
      payload = value as PipelinePayload;
    } catch {
      return [400, 'body is not a JSON object'];
    }
    const p = payload.object_attributes;
    const conclusion = p?.status ? FINAL[p.status] : undefined;
    if (payload.object_kind !== 'pipeline' || !p || typeof p.id !== 'number' || !conclusion) {
      return [202, 'ignored: not a finished pipeline'];
    }
    const delivery = header('x-gitlab-event-uuid') ?? '';
    const earlier = delivery ? seen.get(delivery) : undefined;
    if (earlier) {
      await earlier;
      return [202, 'duplicate delivery'];
    }
    const handling = opts.onPipelineCompleted({
      runName: p.name ?? '',
      runId: p.id,
      conclusion,
      htmlUrl: p.url ?? `${payload.project?.web_url ?? ''}/-/pipelines/${p.id}`,
      headSha: p.sha ?? '',
    });
    if (delivery) {
      seen.set(delivery, handling);
      if (seen.size > MAX_REMEMBERED) seen.delete(seen.keys().next().value!);
    }
    try {
      await handling;
    } catch (err) {
      if (delivery) seen.delete(delivery);
      throw err;
    }
    return [202, 'accepted'];
  };
}
