/**
 * `flui-builder`: runs self-hosted builds (FLUI_CI=self-hosted). A Temporal worker on the build task queue
 * (FLUI_BUILD_TASK_QUEUE, default flui-build) that serves only the `build` activity: fetch the source at the exact
 * commit, build it with buildah (src/build/), push it with the registry credential of its own configuration.
 *
 *   node dist/builder.js                   (npm run builder, or the `flui-builder` command; `npm run build` compiles it)
 *
 * Scale out by starting more of them, on as many machines as needed: each takes FLUI_BUILD_CONCURRENCY builds at a
 * time (default 1). A builder that dies mid-build is replaced within ~20 s by another one (the build workflow's
 * heartbeat timeout); SIGINT/SIGTERM stop taking builds and let running ones finish for a while, then cancel them
 * (they are redone by another builder). It needs no workflow code: the build workflow runs on the Flui worker.
 */
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Runtime, Worker, type LogLevel } from '@temporalio/worker';
import { createBuildActivities } from './activities/build.ts';
import { keepAlive } from './activities/keep-alive.ts';
import { runBuild } from './build/index.ts';
import { builderSettings } from './ci/self-hosted/settings.ts';
import { ConfigError, loadConfigOrExit, type Config } from './config.ts';
import { connectNative } from './temporal-connection.ts';
import { createLogger } from './observability/logging.ts';

export interface RunningBuilder {
  worker: Worker;
  identity: string;
  done: Promise<void>;
  shutdown(): Promise<void>;
}

/** How long running builds may go on after a stop was asked, before they are cancelled (and redone elsewhere). */
const SHUTDOWN_GRACE = '30 seconds';

export async function startBuilder(
  config: Config,
  opts: { log?: (line: string) => void; identity?: string } = {},
): Promise<RunningBuilder> {
  const say = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const { address, namespace } = config.temporal;
  const connection = await connectNative(
    config.temporal,
    'Set TEMPORAL_ADDRESS to the Temporal frontend the Flui worker uses.',
  );
  const identity = opts.identity ?? `flui-builder@${hostname()}/${process.pid}`;
  const worker = await Worker.create({
    connection,
    namespace,
    taskQueue: config.build.taskQueue,
    identity,
    activities: createBuildActivities(config, builderSettings(config), runBuild),
    // Heartbeats while a build runs: liveness (a dead builder's build moves on) and the way a cancel arrives.
    interceptors: { activity: [keepAlive] },
    maxConcurrentActivityTaskExecutions: config.build.concurrency,
    // A cancel reaches a build only in the answer to a heartbeat: send them every second (the SDK would otherwise
    // hold them back to 80% of the 20 s heartbeat timeout), so a cancelled build's processes are gone in seconds.
    maxHeartbeatThrottleInterval: '1 second',
    defaultHeartbeatThrottleInterval: '1 second',
    shutdownGraceTime: SHUTDOWN_GRACE,
  });
  const done = worker.run().finally(() => connection.close().catch(() => undefined));
  say(
    `Flui builder polling task queue "${config.build.taskQueue}" on ${address} (namespace ${namespace}; ` +
      `${config.build.concurrency} build(s) at a time, RUN network ${config.build.network})`,
  );
  return {
    worker,
    identity,
    done,
    async shutdown() {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await done;
    },
  };
}

/** `flui-builder` (bin/flui-builder.js) and `npm run builder`: configuration from the environment; exit codes 2, 4, 1. */
export async function main(): Promise<void> {
  const config = loadConfigOrExit('flui builder');
  // The worker's log format (FLUI_LOG_FORMAT=json for one JSON object per line) for the builder too.
  Runtime.install({ logger: createLogger(config.worker.logLevel as LogLevel, config.ops.logFormat) });
  let running: RunningBuilder;
  try {
    running = await startBuilder(config);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`flui builder: ${err.message}\n`);
    process.exit(4);
  }
  await running.done;
  process.stderr.write('Flui builder stopped.\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((err: unknown) => {
    process.stderr.write(`flui builder: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
