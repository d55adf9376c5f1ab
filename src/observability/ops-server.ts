/**
 * The worker's ops HTTP server (FLUI_OPS_HOST:FLUI_OPS_PORT, default 127.0.0.1:9464):
 *
 *   GET /livez    200 while the process answers and its worker has not stopped or failed; 503 otherwise
 *   GET /readyz   200 when Temporal answers and the worker polls its task queue; 503 with {"ready":false,"reason"}
 *   GET /metrics  Prometheus text: Flui's metrics, then the Temporal SDK's
 *
 * The Temporal SDK's metrics come from its Core runtime, whose Prometheus exporter can only serve on an address of its
 * own. The worker binds that exporter to a private loopback port and this server appends its text to Flui's, so a
 * platform scrapes one port, exposes one port from the pod, and sees one consistent set of labels. (If that exporter
 * does not answer, /metrics still serves Flui's metrics and says so in a comment line.)
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface Health {
  ok: boolean;
  reason?: string;
}

export interface OpsServerOptions {
  host: string;
  port: number;
  registry: Registry;
  /** The Temporal SDK's own Prometheus endpoint (a loopback URL), appended to /metrics. */
  sdkMetricsUrl?: string;
  live(): Health;
  ready(): Promise<Health>;
}

export interface OpsServer {
  url: string;
  port: number;
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 2000;

export async function startOpsServer(opts: OpsServerOptions): Promise<OpsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const reply = (status: number, type: string, body: string) =>
      res
        .writeHead(status, { 'content-type': type, 'cache-control': 'no-store' })
        .end(req.method === 'HEAD' ? '' : body);
    const json = (status: number, body: unknown) => reply(status, 'application/json', `${JSON.stringify(body)}\n`);
    if (req.method !== 'GET' && req.method !== 'HEAD') return json(405, { message: 'GET only' });
    if (path === '/livez') {
      const live = opts.live();
      return json(live.ok ? 200 : 503, { live: live.ok, ...(live.reason ? { reason: live.reason } : {}) });
    }
    if (path === '/readyz') {
      void withTimeout(opts.ready(), READY_TIMEOUT_MS, 'the readiness check did not finish in 2 s').then(
        (ready) => json(ready.ok ? 200 : 503, { ready: ready.ok, ...(ready.reason ? { reason: ready.reason } : {}) }),
        (err: unknown) => json(503, { ready: false, reason: (err as Error).message }),
      );
      return;
    }
    if (path === '/metrics') {
      void metricsText(opts).then(
        (text) => reply(200, opts.registry.contentType, text),
        (err: unknown) => reply(500, 'text/plain', `# metrics failed: ${(err as Error).message}\n`),
      );
      return;
    }
    return json(404, { message: 'try /livez, /readyz or /metrics' });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  return {
    url: `http://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${port}`,
    port,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function metricsText(opts: OpsServerOptions): Promise<string> {
  const own = await opts.registry.metrics();
  if (!opts.sdkMetricsUrl) return own;
  let sdk: string;
  try {
    const res = await fetch(opts.sdkMetricsUrl, { signal: AbortSignal.timeout(READY_TIMEOUT_MS) });
    sdk = res.ok ? await res.text() : `# Temporal SDK metrics unavailable: HTTP ${res.status}\n`;
  } catch (err) {
    sdk = `# Temporal SDK metrics unavailable: ${(err as Error).message}\n`;
  }
  return `${own.endsWith('\n') ? own : `${own}\n`}${sdk}`;
}

/** `promise`, or a rejection with `message` after `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(message)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** A TCP port free on the loopback interface right now (for the SDK's private metrics exporter). */
export async function freeLoopbackPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', resolve);
  });
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}
