/**
 * Receives GitHub `workflow_run` webhooks and reports completed runs. Verifies `X-Hub-Signature-256` (HMAC-SHA256 of
 * the raw body) with a constant-time compare before reading anything else, ignores other events and actions, and
 * handles each `X-GitHub-Delivery` once (a redelivery of a delivery whose callback failed is handled again).
 * Answers: 202 handled or ignored, 400 not a JSON object, 401 bad or missing signature, 500 the callback failed.
 * It knows nothing of Temporal: the worker passes the callback that signals the deploy.
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { components } from '@octokit/openapi-webhooks-types';
import { verify } from '@octokit/webhooks-methods';
import type { CiRunResult } from '../../workflows/contract.ts';
import { meter, type WebhookResult } from '../../observability/meter.ts';
import { createGitLabWebhookHandler, type GitLabWebhookOptions } from '../gitlab/webhook.ts';

export interface RunCompletedEvent {
  /** The run's title (`run-name`), e.g. `flui default.hello.k3x9a1`. */
  runName: string;
  runId: number;
  conclusion: CiRunResult['conclusion'];
  htmlUrl: string;
  headSha: string;
}

export interface WebhookReceiverOptions {
  host: string;
  port: number;
  secret: string;
  onRunCompleted(event: RunCompletedEvent): Promise<void>;
  /** GitLab's Pipeline Hook on the same port (deliveries carrying `X-Gitlab-Event`); see ../gitlab/webhook.ts. */
  gitlab?: GitLabWebhookOptions;
  /** Errors of the callback or the request (the delivery is answered 500 so GitHub shows it failed). */
  onError?(err: unknown): void;
}

export interface WebhookReceiver {
  url: string;
  stop(): Promise<void>;
}

const MAX_BODY = 5 * 1024 * 1024;
const MAX_REMEMBERED = 10_000;

/**
 * Whether `header` is `sha256=<HMAC-SHA256 of body>` under `secret` (compared in constant time by Octokit). GitHub
 * signs the UTF-8 JSON it sends, so reading the body as UTF-8 loses nothing; bytes that are not UTF-8 fail the check.
 */
export async function verifySignature(secret: string, body: Buffer, header: string | undefined): Promise<boolean> {
  // Octokit throws on an empty secret, body or signature; none of those is a valid delivery.
  if (!secret || !body.length || !header) return false;
  return verify(secret, body.toString('utf8'), header);
}

async function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) return undefined;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** A `workflow_run` delivery as GitHub's published webhook description types it, one shape per action. */
type WorkflowRunPayload = components['schemas'][
  'webhook-workflow-run-requested' | 'webhook-workflow-run-in-progress' | 'webhook-workflow-run-completed'];
type CompletedRun = components['schemas']['webhook-workflow-run-completed']['workflow_run'];

/**
 * The JSON payload: the body itself, or its `payload` field when the hook sends `application/x-www-form-urlencoded`;
 * undefined when that is not a JSON object. The signature vouches that GitHub sent it, so its shape is trusted.
 */
function parsePayload(body: Buffer, contentType: string | undefined): Partial<WorkflowRunPayload> | undefined {
  const text = body.toString('utf8');
  const json = contentType?.startsWith('application/x-www-form-urlencoded')
    ? (new URLSearchParams(text).get('payload') ?? '')
    : text;
  try {
    const value: unknown = JSON.parse(json);
    return value && typeof value === 'object' && !Array.isArray(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/** GitHub's conclusions that Flui's CI contract does not name are failures (a run that never started, or none). */
function conclusionOf(run: CompletedRun): CiRunResult['conclusion'] {
  return run.conclusion === null || run.conclusion === 'startup_failure' ? 'failure' : run.conclusion;
}

/** What a delivery came to, for the metrics: refused (4xx: bad signature, method, body), duplicate, ignored, accepted. */
function deliveryResult(status: number, message: string): WebhookResult {
  if (status >= 400) return 'refused';
  if (message === 'duplicate delivery') return 'duplicate';
  return message === 'accepted' ? 'accepted' : 'ignored';
}

export async function startWebhookReceiver(opts: WebhookReceiverOptions): Promise<WebhookReceiver> {
  /** Deliveries handled (and being handled): GitHub redelivers on timeouts and people redeliver by hand. */
  const seen = new Map<string, Promise<void>>();
  const forget = (delivery: string) => seen.delete(delivery);

  const gitlab = opts.gitlab && createGitLabWebhookHandler(opts.gitlab);

  /** Which CI a delivery says it comes from, for the metrics (GitLab's carry `X-Gitlab-Event`). */
  const senderOf = (req: IncomingMessage) => (req.headers['x-gitlab-event'] !== undefined ? 'gitlab' : 'github');

  async function handle(req: IncomingMessage): Promise<[number, string]> {
    if (req.method !== 'POST') return [405, 'POST webhooks here'];
    if (req.headers['x-gitlab-event'] !== undefined) {
      return gitlab ? gitlab(req.headers, () => readBody(req)) : [401, 'this receiver takes no GitLab webhooks'];
    }
    const body = await readBody(req);
    if (!body) return [413, 'payload too large'];
    if (!(await verifySignature(opts.secret, body, req.headers['x-hub-signature-256'] as string | undefined))) {
      return [401, 'bad or missing X-Hub-Signature-256'];
    }
    if (req.headers['x-github-event'] !== 'workflow_run') return [202, 'ignored: not a workflow_run event'];
    const payload = parsePayload(body, req.headers['content-type']);
    if (!payload) return [400, 'body is not a JSON object'];
    const run = payload.action === 'completed' ? payload.workflow_run : undefined;
    if (!run) return [202, 'ignored: not a completed run'];
    const delivery = String(req.headers['x-github-delivery'] ?? '');
    const earlier = delivery ? seen.get(delivery) : undefined;
    if (earlier) {
      // A redelivery while the first is still being handled waits for its outcome instead of signalling twice.
      await earlier;
      return [202, 'duplicate delivery'];
    }
    const handling = opts.onRunCompleted({
      runName: run.display_title ?? run.name ?? '',
      runId: run.id,
      conclusion: conclusionOf(run),
      htmlUrl: run.html_url,
      headSha: run.head_sha,
    });
    if (delivery) {
      seen.set(delivery, handling);
      if (seen.size > MAX_REMEMBERED) forget(seen.keys().next().value!);
    }
    try {
      await handling;
    } catch (err) {
      if (delivery) forget(delivery); // a failed delivery may be redelivered and must then be handled again
      throw err;
    }
    return [202, 'accepted'];
  }

  const server = createServer((req, res) => {
    handle(req).then(
      ([status, message]) => {
        meter().webhookDelivery(senderOf(req), deliveryResult(status, message));
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ message }));
      },
      (err: unknown) => {
        meter().webhookDelivery(senderOf(req), 'failed');
        opts.onError?.(err);
        if (!res.headersSent) {
          res
            .writeHead(500, { 'content-type': 'application/json' })
            .end(JSON.stringify({ message: 'could not deliver to the deploy' }));
        }
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${port}/`,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
