/**
 * A local Temporal dev server (`temporal server start-dev`, with the Web UI) on 127.0.0.1, with Flui's search
 * attributes registered. Used by the worker when no TEMPORAL_ADDRESS is configured, by the sandbox and by tests.
 */
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Connection } from '@temporalio/client';
import proto from '@temporalio/proto';
import { SEARCH_ATTRIBUTES } from '../src/workflows/contract.ts';
import { freePort, makeTempDir, startServerProcess, type ServerProcess } from './process.ts';
import { findTool } from './tools.ts';

export interface DevServerOptions {
  port?: number;
  /** Web UI port; `false` runs headless. Default: a free port. */
  uiPort?: number | false;
  namespace?: string;
  /** SQLite file that keeps state across restarts; in-memory when omitted. */
  dbFile?: string;
  /** Directory for logs (default: a temp dir). */
  logDir?: string;
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
  /** Extra `--dynamic-config-value` settings, e.g. `{ 'frontend.enableUpdateWorkflowExecution': true }`. */
  dynamicConfig?: Record<string, string | number | boolean>;
}

export interface DevServer {
  /** gRPC `127.0.0.1:PORT` */
  address: string;
  namespace: string;
  /** `http://127.0.0.1:PORT`, when the UI runs. */
  uiUrl?: string;
  process: ServerProcess;
  options: DevServerOptions & { port: number; uiPort: number | false };
  stop(): Promise<void>;
}

export async function startDevServer(opts: DevServerOptions = {}): Promise<DevServer> {
  const binary = findTool('temporal', 'TEMPORAL_CLI_PATH');
  const port = opts.port ?? (await freePort());
  const uiPort = opts.uiPort === false ? false : (opts.uiPort ?? (await freePort()));
  const namespace = opts.namespace ?? 'default';
  const logDir = opts.logDir ?? (await makeTempDir('temporal'));
  await mkdir(logDir, { recursive: true });
  if (opts.dbFile) await mkdir(dirname(opts.dbFile), { recursive: true });

  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(port), '--namespace', namespace];
  args.push('--log-level', opts.logLevel ?? 'warn');
  if (uiPort === false) args.push('--headless');
  else args.push('--ui-port', String(uiPort), '--ui-ip', '127.0.0.1');
  if (opts.dbFile) args.push('--db-filename', opts.dbFile);
  for (const [name, type] of Object.entries(SEARCH_ATTRIBUTES)) args.push('--search-attribute', `${name}=${type}`);
  for (const [key, value] of Object.entries(opts.dynamicConfig ?? {})) {
    args.push('--dynamic-config-value', `${key}=${JSON.stringify(value)}`);
  }

  const address = `127.0.0.1:${port}`;
  const proc = await startServerProcess({
    name: 'temporal dev server',
    command: binary,
    args,
    logFile: join(logDir, `temporal-${port}.log`),
    ready: () => namespaceReady(address, namespace),
    timeoutMs: 60_000,
  });
  return {
    address,
    namespace,
    uiUrl: uiPort === false ? undefined : `http://127.0.0.1:${uiPort}`,
    process: proc,
    options: { ...opts, port, uiPort },
    stop: () => proc.stop(10_000),
  };
}

/** True once the frontend answers and the namespace exists. */
export async function namespaceReady(address: string, namespace: string): Promise<boolean> {
  let connection: Connection | undefined;
  try {
    connection = await Connection.connect({ address, connectTimeout: 1000 });
    await connection.workflowService.describeNamespace({ namespace });
    return true;
  } catch {
    return false;
  } finally {
    await connection?.close().catch(() => undefined);
  }
}

/**
 * Registers Flui's search attributes on a server that was not started with them (the time-skipping test server, or a
 * self-hosted cluster whose operator lets the worker do it). Already registered attributes are left alone.
 */
export async function registerSearchAttributes(connection: Connection, namespace: string): Promise<void> {
  const KEYWORD = proto.temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD;
  await connection.operatorService.addSearchAttributes({
    namespace,
    searchAttributes: Object.fromEntries(Object.keys(SEARCH_ATTRIBUTES).map((name) => [name, KEYWORD])),
  });
}
