/**
 * The Flui worker: runs deploy workflows and their activities, and the CI webhook receiver beside them.
 *
 *   node dist/worker.js                    (npm run worker; `npm run build` compiles it)
 *
 * Configuration comes from environment variables (src/config.ts). Without TEMPORAL_ADDRESS it connects to
 * 127.0.0.1:7233, as the CLI and the Temporal CLI do, and stops with a clear error when nothing answers there: it never
 * launches a throw-away server of its own (the sandbox does that, `npm run dev:worker` too, and both say so).
 * SIGINT/SIGTERM (handled by the SDK's runtime) drain in-flight activity attempts and stop cleanly; deploys continue
 * on the next worker.
 */
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { Runtime, Worker, type LogLevel, type NativeConnection, type WorkflowBundleOption } from '@temporalio/worker';
import { createActivities } from './activities/index.ts';
import { keepAlive } from './activities/keep-alive.ts';
import { startWebhookReceiver, type RunCompletedEvent } from './ci/github/webhook.ts';
import { ConfigError, loadConfigOrExit, type Config } from './config.ts';
import { connectNative } from './temporal-connection.ts';
import { parseCiRunName, runCompletedSignal } from './workflows/contract.ts';
import { freeLoopbackPort, startOpsServer, withTimeout, type Health } from './observability/ops-server.ts';
import { createLogger, progressLine } from './observability/logging.ts';
import { createTracing } from './observability/tracing.ts';
import { metricsSinks } from './observability/worker-sinks.ts';
import { WORKFLOW_INTERCEPTOR_MODULES } from './observability/workflow-modules.ts';
import { processMeter } from './observability/worker-metrics.ts';

/** The workflow code beside this module: its sources under tsx, its compiled JavaScript in the build (dist/). */
export const WORKFLOWS_PATH = fileURLToPath(new URL(`./workflows/index${extname(import.meta.url)}`, import.meta.url));

export interface RunningWorker {
  worker: Worker;
  /** Where the worker connected. */
  address: string;
  namespace: string;
  webhookUrl?: string;
  /** The ops server: /livez, /readyz, /metrics. */
  opsUrl: string;
  /** Resolves when the worker has stopped (after shutdown or a fatal error). */
  done: Promise<void>;
  shutdown(): Promise<void>;
}

export interface StartWorkerOptions {
  /** Prebundled workflow code (tests and the sandbox bundle once). */
  workflowBundle?: WorkflowBundleOption;
  /** Where progress lines go (default: stderr). */
  log?: (line: string) => void;
  /** The Temporal SDK's Prometheus endpoint, appended to /metrics (main() sets the runtime up with one). */
  sdkMetricsUrl?: string;
}

/** Connects to Temporal, starts the worker and the webhook receiver. */
export async function startWorker(config: Config, opts: StartWorkerOptions = {}): Promise<RunningWorker> {
  const say = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const { address, tls, apiKey, metadata } = config.temporal;
  const connection = await connectNative(
    config.temporal,
    'Set TEMPORAL_ADDRESS to your Temporal frontend, or run `npm run dev:worker` for a local dev server.',
  );
  // Up before the worker, so a probe gets an answer (live, not ready) while the workflow code loads.
  let worker: Worker | undefined;
  const ops = await startOpsServer({
    host: config.ops.host,
    port: config.ops.port,
    registry: processMeter().registry,
    sdkMetricsUrl: opts.sdkMetricsUrl,
    live: () => workerLiveness(worker),
    ready: () => workerReadiness(worker, connection),
  }).catch(async (err: unknown) => {
    await connection.close().catch(() => undefined);
    throw new ConfigError(
      `cannot serve health and metrics on ${config.ops.host}:${config.ops.port} (FLUI_OPS_HOST, FLUI_OPS_PORT): ${(err as Error).message}`,
    );
  });
  const tracing = createTracing(config.ops.otel);
  const code = workflowCode(config, opts.workflowBundle);
  try {
    worker = await Worker.create({
      connection,
      namespace: config.temporal.namespace,
      taskQueue: config.temporal.taskQueue,
      ...code,
      activities: createActivities(config),
      interceptors: {
        activity: [keepAlive, ...tracing.activity],
        // A bundle carries its workflow interceptors already (workflow-modules.ts); sources are bundled with them here.
        ...('workflowsPath' in code ? { workflowModules: WORKFLOW_INTERCEPTOR_MODULES } : {}),
      },
      sinks: { ...metricsSinks(), ...tracing.sinks },
      maxConcurrentActivityTaskExecutions: config.worker.maxConcurrentActivities,
      maxCachedWorkflows: config.worker.maxCachedWorkflows,
      shutdownGraceTime: '10 seconds',
      // A workflow task waits this long for the worker that has the deploy cached before any worker may take it: short,
      // so a killed worker's deploys move on in seconds (a cache miss only costs a replay of a small history).
      stickyQueueScheduleToStartTimeout: '3 seconds',
    });
  } catch (err) {
    await tracing.shutdown().catch(() => undefined);
    await ops.stop();
    await connection.close().catch(() => undefined);
    throw err;
  }
  say(`Health and metrics: ${ops.url}/livez, /readyz, /metrics`);

  // The webhook receiver signals the deploy whose CI run finished; polling covers any lost delivery.
  let webhookUrl: string | undefined;
  let stopWebhook: (() => Promise<void>) | undefined;
  const gitlabSecret = config.ci.backend === 'gitlab' ? config.gitlab.webhookSecret : undefined;
  const gitlabSigningToken = config.ci.backend === 'gitlab' ? config.gitlab.webhookSigningToken : undefined;
  const gitlabHook = gitlabSecret || gitlabSigningToken;
  if (config.webhook && (config.github.webhookSecret || gitlabHook)) {
    const client = new Client({
      connection: await Connection.connect({ address, tls, apiKey, metadata }),
      namespace: config.temporal.namespace,
    });
    const onRunCompleted = async (event: RunCompletedEvent) => {
      const key = parseCiRunName(event.runName);
      if (!key) return; // not one of ours
      await client.workflow.getHandle(key.workflowId).signal(runCompletedSignal, {
        deployId: key.deployId,
        runId: String(event.runId),
        result: { conclusion: event.conclusion, htmlUrl: event.htmlUrl, headSha: event.headSha },
      });
    };
    const receiver = await startWebhookReceiver({
      host: config.webhook.host,
      port: config.webhook.port,
      // Empty: GitHub deliveries fail their signature check (only GitLab is configured).
      secret: config.github.webhookSecret ?? '',
      onRunCompleted,
      // GitLab's Pipeline Hook on the same port, told apart by its X-Gitlab-Event header; each configured secret
      // (token, signing token) is required of every delivery.
      ...(gitlabHook
        ? {
            gitlab: {
              ...(gitlabSecret ? { token: gitlabSecret } : {}),
              ...(gitlabSigningToken ? { signingToken: gitlabSigningToken } : {}),
              onPipelineCompleted: onRunCompleted,
            },
          }
        : {}),
    });
    webhookUrl = receiver.url;
    stopWebhook = async () => {
      await receiver.stop();
      await client.connection.close();
    };
    say(`CI webhooks: ${webhookUrl}`);
  }

  const done = worker.run().finally(async () => {
    await stopWebhook?.();
    await ops.stop();
    await tracing.shutdown().catch(() => undefined);
    await connection.close().catch(() => undefined);
  });
  say(
    `Flui worker polling task queue "${config.temporal.taskQueue}" on ${address} (namespace ${config.temporal.namespace})`,
  );
  return {
    worker,
    address,
    namespace: config.temporal.namespace,
    webhookUrl,
    opsUrl: ops.url,
    done,
    async shutdown() {
      if (worker!.getState() === 'RUNNING') worker!.shutdown();
      await done;
    },
  };
}

/** Live while the worker has not stopped or failed (a worker still starting or draining is alive). */
function workerLiveness(worker: Worker | undefined): Health {
  const state = worker?.getState();
  return state === 'FAILED' || state === 'STOPPED' ? { ok: false, reason: `the worker is ${state}` } : { ok: true };
}

/** Ready when the worker polls its task queue and Temporal answers (a cheap call: GetSystemInfo). */
async function workerReadiness(worker: Worker | undefined, connection: NativeConnection): Promise<Health> {
  const state = worker?.getState() ?? 'starting';
  if (state !== 'RUNNING') return { ok: false, reason: `the worker is ${state}, not polling` };
  try {
    // The SDK keeps retrying a call to an unreachable server, so the check has a deadline of its own too.
    await withTimeout(
      connection.withDeadline(Date.now() + 1500, () => connection.workflowService.getSystemInfo({})),
      1500,
      'no answer to GetSystemInfo within 1.5 s',
    );
    return { ok: true };
  } catch (err) {
    return { ok: false, reason: `Temporal does not answer: ${(err as Error).message}` };
  }
}

/** Prebundled code when given (fast start), else the sources, bundled by the SDK at start-up (a few seconds). */
function workflowCode(config: Config, bundle?: WorkflowBundleOption) {
  if (bundle) return { workflowBundle: bundle };
  if (config.worker.workflowBundlePath) return { workflowBundle: { codePath: config.worker.workflowBundlePath } };
  return { workflowsPath: WORKFLOWS_PATH };
}

async function main(): Promise<void> {
  const config = loadConfigOrExit('flui worker');
  const level = config.worker.logLevel as LogLevel;
  const logger = createLogger(level, config.ops.logFormat);
  // The SDK's metrics exporter serves on a private loopback port; the ops server re-exposes them (ops-server.ts).
  const sdkMetricsPort = await freeLoopbackPort();
  Runtime.install({
    logger,
    telemetryOptions: {
      // JSON mode: Core's own lines go through the same logger, so every line on stderr is one JSON object.
      ...(config.ops.logFormat === 'json'
        ? { logging: { filter: { core: 'WARN', other: 'ERROR' }, forward: {} } }
        : {}),
      metrics: {
        prometheus: {
          bindAddress: `127.0.0.1:${sdkMetricsPort}`,
          // Prometheus's naming conventions: counters end in _total, durations are seconds with the unit in the name.
          countersTotalSuffix: true,
          unitSuffix: true,
          useSecondsForDurations: true,
        },
      },
    },
  });
  const say = progressLine(config.ops.logFormat, logger);
  let running: RunningWorker;
  try {
    running = await startWorker(config, {
      log: say,
      sdkMetricsUrl: `http://127.0.0.1:${sdkMetricsPort}/metrics`,
    });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    if (config.ops.logFormat === 'json') logger.error(`flui worker: ${err.message}`);
    else process.stderr.write(`flui worker: ${err.message}\n`);
    process.exit(4);
  }
  await running.done;
  say('Flui worker stopped.');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((err: unknown) => {
    process.stderr.write(`flui worker: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
