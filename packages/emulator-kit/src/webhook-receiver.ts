/**
 * For emulator tests: a webhook receiver on a free port of 127.0.0.1 that keeps every delivery as received (headers
 * and body) and answers each with `status`.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface WebhookReceiver {
  readonly deliveries: { headers: IncomingHttpHeaders; body: string }[];
  /** `http://127.0.0.1:<port>` and the path asked for. */
  url: string;
  close(): Promise<void>;
}

export async function startWebhookReceiver(path: string, status: number): Promise<WebhookReceiver> {
  const deliveries: WebhookReceiver['deliveries'] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      deliveries.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    deliveries,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
