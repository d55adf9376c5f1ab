/**
 * A worker on a local, throw-away Temporal dev server, for development: `npm run dev:worker`. It says so loudly,
 * because deploys it runs live only as long as that server's file under FLUI_DATA_DIR (~/.local/share/flui). The
 * production worker (`npm run worker`) never starts a server of its own: it connects to TEMPORAL_ADDRESS.
 */
import { join } from 'node:path';
import { Runtime, DefaultLogger } from '@temporalio/worker';
import { ConfigError, loadConfig } from '../src/config.ts';
import { startWorker } from '../src/worker.ts';
import { startDevServer } from './temporal.ts';

async function main(): Promise<number> {
  const config = loadConfig();
  if (!config.temporal.addressIsDefault) {
    process.stderr.write(
      `flui dev worker: TEMPORAL_ADDRESS is set (${config.temporal.address}); use \`npm run worker\` for a real Temporal\n`,
    );
    return 2;
  }
  process.stderr.write(
    '\n  *** DEVELOPMENT ONLY: starting a local Temporal dev server for this worker. ***\n' +
      `  *** Deploys live in ${join(config.dataDir, 'temporal.db')}; production workers set TEMPORAL_ADDRESS. ***\n\n`,
  );
  const server = await startDevServer({
    port: 7233,
    uiPort: config.temporal.uiPort,
    namespace: config.temporal.namespace,
    dbFile: join(config.dataDir, 'temporal.db'),
    logDir: config.dataDir,
  });
  process.stderr.write(`Temporal dev server: ${server.address}${server.uiUrl ? `, Web UI ${server.uiUrl}` : ''}\n`);
  Runtime.install({ logger: new DefaultLogger(config.worker.logLevel as 'INFO') });
  try {
    const running = await startWorker({ ...config, temporal: { ...config.temporal, address: server.address } });
    await running.done;
  } finally {
    await server.stop();
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`flui dev worker: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(err instanceof ConfigError ? 2 : 1);
  },
);
