/**
 * Real Temporal servers for tests: the dev server (`temporal server start-dev`, Flui's search attributes
 * registered) and the time-skipping test server (Java, from Maven Central). See dev/temporal.ts.
 */
import { Client, Connection } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import {
  bundleWorkflowCode,
  NativeConnection,
  Runtime,
  DefaultLogger,
  type WorkflowBundleWithSourceMap,
} from '@temporalio/worker';
import { fileURLToPath } from 'node:url';
import { registerSearchAttributes, startDevServer, type DevServer, type DevServerOptions } from '../../dev/temporal.ts';
import { findTool } from '../../dev/tools.ts';
import { WORKFLOW_INTERCEPTOR_MODULES } from '../../src/observability/workflow-modules.ts';
import { useServer } from './suite.ts';

// Keep test output readable: the SDK's own logs only when something is wrong.
Runtime.install({ logger: new DefaultLogger((process.env.FLUI_TEST_SDK_LOG as 'INFO' | undefined) ?? 'ERROR') });

export interface TestTemporal {
  server: DevServer;
  address: string;
  namespace: string;
  client: Client;
  connection: Connection;
  nativeConnection: NativeConnection;
  stop(): Promise<void>;
}

export async function startTestTemporal(opts: DevServerOptions = {}): Promise<TestTemporal> {
  const server = await startDevServer({ uiPort: false, ...opts });
  return connectTestTemporal(server);
}

/** Client and worker connections to a running dev server; `stop` closes them and stops the server. */
export async function connectTestTemporal(server: DevServer): Promise<TestTemporal> {
  const connection = await Connection.connect({ address: server.address });
  const nativeConnection = await NativeConnection.connect({ address: server.address });
  const client = new Client({ connection, namespace: server.namespace });
  return {
    server,
    address: server.address,
    namespace: server.namespace,
    client,
    connection,
    nativeConnection,
    async stop() {
      await nativeConnection.close().catch(() => undefined);
      await connection.close().catch(() => undefined);
      await server.stop();
    },
  };
}

/** A dev server for this suite. */
export function useTemporal(opts: DevServerOptions = {}): () => TestTemporal {
  return useServer(() => startTestTemporal(opts));
}

/** The time-skipping test server (with Flui's search attributes registered), on `port` or a free one. */
export async function startTimeSkipping(port?: number): Promise<TestWorkflowEnvironment> {
  const env = await TestWorkflowEnvironment.createTimeSkipping({
    server: {
      executable: { type: 'existing-path', path: findTool('temporal-test-server', 'TEMPORAL_TEST_SERVER_PATH') },
      port,
    },
  });
  await registerSearchAttributes(env.connection, 'default');
  return env;
}

/** The time-skipping test server for this suite. */
export function useTimeSkipping(): () => TestWorkflowEnvironment {
  return useServer(async () => {
    const env = await startTimeSkipping();
    return Object.assign(env, { stop: () => env.teardown() });
  });
}

const bundles = new Map<string, Promise<WorkflowBundleWithSourceMap>>();

/** Workflow code bundled once per test process (webpack takes seconds). `path` is relative to the repo root. */
export function workflowBundle(path: string, interceptorModules: string[] = []): Promise<WorkflowBundleWithSourceMap> {
  const abs = fileURLToPath(new URL(`../../${path}`, import.meta.url));
  const key = [abs, ...interceptorModules].join('\n');
  let bundle = bundles.get(key);
  if (!bundle) {
    bundle = bundleWorkflowCode({
      workflowsPath: abs,
      logger: new DefaultLogger('WARN'),
      ...(interceptorModules.length ? { workflowInterceptorModules: interceptorModules } : {}),
    });
    bundles.set(key, bundle);
  }
  return bundle;
}

/** The workflow code as the worker runs it: with its metrics and tracing interceptors (src/observability). */
export function workerWorkflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  return workflowBundle('src/workflows/index.ts', WORKFLOW_INTERCEPTOR_MODULES);
}
