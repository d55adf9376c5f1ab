/**
 * Receives GitHub `workflow_run` webhooks and reports completed runs. Verifies `X-Hub-Signature-256` (HMAC-SHA256 of
 * the raw body) with a constant-time compare, ignores other events, and drops redeliveries of the same delivery id.
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
  /** Errors of the callback (the delivery is answered 500 so GitHub shows it failed). */
  onError?(err: unknown): void;
}

export interface WebhookReceiver {
  url: string;
  stop(): Promise<void>;
}

const MAX_BODY = 5 * 1024 * 1024;

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

export async function startWebhookReceiver(opts: WebhookReceiverOptions): Promise<WebhookReceiver> {
  const seen = new Set<string>();
  const server = createServer(async (req, res) => {
    const reply = (status: number, message: string) => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ message }));
    };
    if (req.method !== 'POST') return reply(405, 'POST webhooks here');
    const body = await readBody(req);
    if (!body) return reply(413, 'payload too large');
    if (!verifySignature(opts.secret, body, req.headers['x-hub-signature-256'] as string | undefined)) {
      return reply(401, 'bad or missing X-Hub-Signature-256');
    }
    const delivery = String(req.headers['x-github-delivery'] ?? '');
    if (req.headers['x-github-event'] !== 'workflow_run') return reply(202, 'ignored: not a workflow_run event');
    let payload: { action?: string; workflow_run?: Record<string, unknown> };
    try {
      payload = JSON.parse(body.toString('utf8'));
    } catch {
      return reply(400, 'body is not JSON');
    }
    const run = payload.workflow_run;
    if (payload.action !== 'completed' || !run) return reply(202, 'ignored: not a completed run');
    if (delivery && seen.has(delivery)) return reply(202, 'duplicate delivery');
    try {
      await opts.onRunCompleted({
        runName: String(run.display_title ?? run.name ?? ''),
        runId: Number(run.id),
        conclusion: (run.conclusion ?? 'failure') as CiRunResult['conclusion'],
        htmlUrl: String(run.html_url ?? ''),
        headSha: String(run.head_sha ?? ''),
      });
      if (delivery) {
        seen.add(delivery);
        if (seen.size > 10_000) seen.delete(seen.values().next().value!);
      }
      reply(202, 'accepted');
    } catch (err) {
      opts.onError?.(err);
      reply(500, 'could not deliver to the deploy');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${opts.host}:${port}/`,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
