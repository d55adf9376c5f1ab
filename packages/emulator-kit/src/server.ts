/**
 * An emulator's HTTP server: a request's body up to a limit, and a server on a free (or given) port that never
 * crashes on a bad request, answers a malformed one with 400, and closes with every connection it holds.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** Larger request bodies get a 413, as from the services' front ends. */
export const MAX_BODY = 50 * 1024 * 1024;

/** The request's body, read to its end; undefined when it is larger than `max` bytes. */
export async function readBody(req: IncomingMessage, max = MAX_BODY): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size <= max) chunks.push(c as Buffer);
  }
  return size > max ? undefined : Buffer.concat(chunks);
}

export interface Served {
  /** `http://host:port`, with 127.0.0.1 for a wildcard host. */
  url: string;
  /** Stops listening and ends every open connection. */
  close(): Promise<void>;
}

/**
 * Serves `handle` on `host` (default 127.0.0.1) and `port` (default: a free one). A handler that throws gets
 * `crashed(err)` as the JSON answer with a 500, as the service answers when it fails.
 */
export async function serve(
  handle: (req: IncomingMessage, res: ServerResponse) => Promise<void>,
  crashed: (err: Error) => { contentType: string; body: unknown },
  opts: { host?: string; port?: number } = {},
): Promise<Served> {
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      // Never crash on a bad request: answer like the service does when it fails.
      if (!res.headersSent && !res.destroyed) {
        const answer = crashed(err as Error);
        res.writeHead(500, { 'content-type': answer.contentType }).end(JSON.stringify(answer.body));
      }
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
    else socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', resolve);
  });
  const address = server.address() as AddressInfo;
  const host = opts.host && opts.host !== '0.0.0.0' && opts.host !== '::' ? opts.host : '127.0.0.1';
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}
