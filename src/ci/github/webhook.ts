/**
 * Receives GitHub `workflow_run` webhooks and reports completed runs. Verifies `X-Hub-Signature-256` (HMAC-SHA256 of
 * the raw body) with a constant-time compare before reading anything else, ignores other events and actions, and
 * handles each `X-GitHub-Delivery` once (a redelivery of a delivery whose callback failed is handled again).
 * Answers: 202 handled or ignored, 400 not JSON, 401 bad or missing signature, 500 the callback failed.
 * It knows nothing of Temporal: the worker passes the callback that signals the deploy.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { CiRunResult } from '../../workflows/api.ts';

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
  /** Errors of the callback or the request (the delivery is answered 500 so GitHub shows it failed). */
  onError?(err: unknown): void;
}

export interface WebhookReceiver {
  url: string;
  stop(): Promise<void>;
}

const MAX_BODY = 5 * 1024 * 1024;
const MAX_REMEMBERED = 10_000;

export function verifySignature(secret: string, body: Buffer, header: string | undefined): boolean {
  if (!header?.startsWith('sha256=')) return false;
  const expected = Buffer.from(`sha256=${createHmac('sha256', secret).update(body).digest('hex')}`);
  const given = Buffer.from(header);
  return given.length === expected.length && timingSafeEqual(given, expected);
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

/** The JSON payload: the body itself, or its `payload` field when the hook sends `application/x-www-form-urlencoded`. */
function parsePayload(body: Buffer, contentType: string | undefined): WorkflowRunPayload {
  const text = body.toString('utf8');
  const json = contentType?.startsWith('application/x-www-form-urlencoded')
    ? (new URLSearchParams(text).get('payload') ?? '')
    : text;
  return JSON.parse(json) as WorkflowRunPayload;
}

interface WorkflowRunPayload {
  action?: string;
  workflow_run?: Record<string, unknown>;
}

export async function startWebhookReceiver(opts: WebhookReceiverOptions): Promise<WebhookReceiver> {
  /** Deliveries handled (and being handled): GitHub redelivers on timeouts and people redeliver by hand. */
  const seen = new Map<string, Promise<void>>();
  const forget = (delivery: string) => seen.delete(delivery);

  async function handle(req: IncomingMessage): Promise<[number, string]> {
    if (req.method !== 'POST') return [405, 'POST webhooks here'];
    const body = await readBody(req);
    if (!body) return [413, 'payload too large'];
    if (!verifySignature(opts.secret, body, req.headers['x-hub-signature-256'] as string | undefined)) {
      return [401, 'bad or missing X-Hub-Signature-256'];
    }
    if (req.headers['x-github-event'] !== 'workflow_run') return [202, 'ignored: not a workflow_run event'];
    let payload: WorkflowRunPayload;
    try {
      payload = parsePayload(body, req.headers['content-type']);
    } catch {
      return [400, 'body is not JSON'];
    }
    const run = payload.workflow_run;
    if (payload.action !== 'completed' || !run || typeof run !== 'object') {
      return [202, 'ignored: not a completed run'];
    }
    const delivery = String(req.headers['x-github-delivery'] ?? '');
    const earlier = delivery ? seen.get(delivery) : undefined;
    if (earlier) {
      // A redelivery while the first is still being handled waits for its outcome instead of signalling twice.
      await earlier;
      return [202, 'duplicate delivery'];
    }
    const handling = opts.onRunCompleted({
      runName: String(run.display_title ?? run.name ?? ''),
      runId: Number(run.id),
      conclusion: (run.conclusion ?? 'failure') as CiRunResult['conclusion'],
      htmlUrl: String(run.html_url ?? ''),
      headSha: String(run.head_sha ?? ''),
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
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ message }));
      },
      (err: unknown) => {
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
