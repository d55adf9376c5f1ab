/**
 * GitLab's Pipeline Hook, served by the worker's webhook receiver beside GitHub's (src/ci/github/webhook.ts routes a
 * delivery here when it carries `X-Gitlab-Event`). Two ways to trust a delivery, each required when configured:
 *
 * - The secret token (GITLAB_WEBHOOK_SECRET), which GitLab sends in clear as `X-Gitlab-Token` (GitLab docs,
 *   "Webhooks": "Secret token"): compared in constant time, on hashes of equal length, before the body is read. It
 *   proves nothing about the body, and a captured delivery can be replayed with it at any time.
 * - The signing token (GITLAB_WEBHOOK_SIGNING_TOKEN, newer GitLab): the Standard Webhooks scheme. GitLab sends
 *   `webhook-id` (its `Idempotency-Key`), `webhook-timestamp` (Unix seconds) and `webhook-signature`, one or more
 *   space-separated `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<raw body>">`, keyed with the base64-decoded part of
 *   the `whsec_<base64>` token. The timestamp must be within {@link SIGNATURE_TOLERANCE_SECONDS} of now (either side),
 *   and the signature is checked over the exact bytes received before anything parses them; so a captured delivery
 *   can neither be altered nor replayed later, and a replay inside the window is a duplicate `webhook-id`.
 *   Checked against GitLab's merge requests that add the feature (the signed string, the `v1,` form, `webhook-id`
 *   equal to the Idempotency-Key, tokens accepted only as `whsec_` + base64 of a 32-byte key, verified there with the
 *   Standard Webhooks library); assumed: that GitLab sends one `v1` signature (any of several is accepted anyway).
 *
 * With both configured, a delivery needs both (the token alone is what the signature is meant to replace; accepting
 * either would let a leaked token bypass the signature). Each delivery is handled once, by `X-Gitlab-Event-UUID` and by
 * `webhook-id` when signed (a redelivery while the first is being handled waits for it; a failed one may be
 * redelivered and is handled again). Only pipelines that reached a final status (success, failed, canceled, skipped)
 * are reported.
 *
 * Answers: 202 handled or ignored, 400 not a JSON object, 401 bad or missing token or signature, or a timestamp out
 * of tolerance, 500 the callback failed.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
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
  /** GITLAB_WEBHOOK_SECRET: every delivery must carry it as `X-Gitlab-Token`. */
  token?: string;
  /** GITLAB_WEBHOOK_SIGNING_TOKEN (`whsec_<base64>`): every delivery must be signed with it. */
  signingToken?: string;
  onPipelineCompleted(event: PipelineCompletedEvent): Promise<void>;
  /** The clock for the timestamp check, in milliseconds (tests). */
  now?(): number;
}

/** Whether `header` is the token, compared in constant time whatever their lengths. */
export function tokenMatches(token: string, header: string | undefined): boolean {
  if (!token || !header) return false;
  const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();
  return timingSafeEqual(digest(token), digest(header));
}

/** How far `webhook-timestamp` may be from the receiver's clock, either way (Standard Webhooks' usual 5 minutes). */
export const SIGNATURE_TOLERANCE_SECONDS = 5 * 60;

/**
 * The HMAC key of a signing token: the bytes `whsec_<base64>` encodes (GitLab generates 32), or undefined when the
 * token is not of that form or encodes fewer than 16 bytes (a truncated paste).
 */
export function signingKey(token: string): Buffer | undefined {
  const m = /^whsec_([A-Za-z0-9+/]+={0,2})$/.exec(token);
  if (!m || m[1]!.length % 4 !== 0) return undefined;
  const key = Buffer.from(m[1]!, 'base64');
  return key.length >= 16 ? key : undefined;
}

/**
 * Whether a delivery is signed with `key`: `signature` holds a `v1,<base64>` entry (among space-separated ones) equal,
 * in constant time, to the HMAC-SHA256 of `<id>.<timestamp>.<body>`, and `timestamp` (Unix seconds) is within the
 * tolerance of `nowMs`. The body is the raw bytes received; nothing is decoded before the check.
 */
export function signatureValid(
  key: Buffer,
  delivery: { id?: string; timestamp?: string; signature?: string },
  body: Buffer,
  nowMs = Date.now(),
): boolean {
  const { id, timestamp, signature } = delivery;
  if (!id || !timestamp || !signature || !timestampFresh(timestamp, nowMs)) return false;
  const expected = Buffer.from(
    createHmac('sha256', key).update(`${id}.${timestamp}.`, 'utf8').update(body).digest('base64'),
    'utf8',
  );
  let valid = false;
  for (const entry of signature.split(' ')) {
    if (!entry.startsWith('v1,')) continue; // another scheme's version (e.g. v1a), or a stray space
    const given = Buffer.from(entry.slice(3), 'utf8');
    // The length of an HMAC-SHA256 in base64 is public (44); equal lengths are compared in constant time.
    if (given.length === expected.length && timingSafeEqual(given, expected)) valid = true;
  }
  return valid;
}

/** Whether `timestamp` is whole Unix seconds within the tolerance of `nowMs`. */
function timestampFresh(timestamp: string, nowMs: number): boolean {
  if (!/^[0-9]{1,12}$/.test(timestamp)) return false;
  return Math.abs(Number(timestamp) - nowMs / 1000) <= SIGNATURE_TOLERANCE_SECONDS;
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
  const key = opts.signingToken === undefined ? undefined : signingKey(opts.signingToken);
  // Fail closed: a handler that checks nothing, or a signing token that cannot be a key, is a configuration error.
  if (opts.signingToken !== undefined && !key) throw new Error('the GitLab signing token must be whsec_<base64>');
  if (!opts.token && !key) throw new Error('a GitLab webhook handler needs a token or a signing token');
  const now = opts.now ?? Date.now;
  const seen = new Map<string, Promise<void>>();
  return async function handle(
    headers: Record<string, string | string[] | undefined>,
    readBody: () => Promise<Buffer | undefined>,
  ): Promise<[number, string]> {
    const header = (name: string) => {
      const v = headers[name];
      return Array.isArray(v) ? v[0] : v;
    };
    if (opts.token && !tokenMatches(opts.token, header('x-gitlab-token'))) {
      return [401, 'bad or missing X-Gitlab-Token'];
    }
    const signed = {
      id: header('webhook-id'),
      timestamp: header('webhook-timestamp'),
      signature: header('webhook-signature'),
    };
    if (key) {
      if (!signed.id || !signed.timestamp || !signed.signature) return [401, 'missing webhook signature headers'];
      if (!timestampFresh(signed.timestamp, now())) return [401, 'webhook-timestamp too far from now'];
    }
    const body = await readBody();
    if (!body) return [413, 'payload too large'];
    if (key && !signatureValid(key, signed, body, now())) return [401, 'bad webhook-signature'];
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
    // Either identity marks a repeat: the event UUID (one per event, the same for every hook) and, when signed, the
    // webhook-id (GitLab's Idempotency-Key, the same on a retry), which a replay cannot change without the key.
    const keys = [
      ...(header('x-gitlab-event-uuid') ? [`event:${header('x-gitlab-event-uuid')}`] : []),
      ...(key && signed.id ? [`id:${signed.id}`] : []),
    ];
    const earlier = keys.map((k) => seen.get(k)).find(Boolean);
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
    for (const k of keys) {
      seen.set(k, handling);
      if (seen.size > MAX_REMEMBERED) seen.delete(seen.keys().next().value!);
    }
    try {
      await handling;
    } catch (err) {
      for (const k of keys) if (seen.get(k) === handling) seen.delete(k);
      throw err;
    }
    return [202, 'accepted'];
  };
}
