/**
 * The worker process's ops endpoints, started exactly as `npm run worker` (test/helpers/worker-process.ts): /livez
 * and /readyz answer, /metrics carries Flui's metrics and the Temporal SDK's (re-exposed from the Core runtime's
 * exporter), FLUI_LOG_FORMAT=json makes every stderr line one JSON object, and readiness goes 503 (with a reason)
 * while liveness stays 200 once the Temporal server is gone.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePort, makeTempDir } from '../../dev/process.ts';
import { startDevServer, type DevServer } from '../../dev/temporal.ts';
import { startWorkerProcess, writeBundleFile, type WorkerProcess } from '../helpers/worker-process.ts';
import { eventually } from '../helpers/stack.ts';

async function get(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  return { status: res.status, body: await res.text() };
}

describe('worker ops endpoints (a real worker process)', () => {
  let temporal: DevServer;
  let worker: WorkerProcess;
  let ops: string;
  let logFile: string;

  before(async () => {
    const dir = await makeTempDir('flui-ops-');
    temporal = await startDevServer({ uiPort: false });
    const port = await freePort();
    ops = `http://127.0.0.1:${port}`;
    logFile = join(dir, 'worker.log');
    worker = await startWorkerProcess(
      {
        TEMPORAL_ADDRESS: temporal.address,
        TEMPORAL_NAMESPACE: temporal.namespace,
        FLUI_TASK_QUEUE: 'ops-health',
        FLUI_OPS_PORT: String(port),
        FLUI_LOG_FORMAT: 'json',
      },
      { bundleFile: await writeBundleFile(dir), logFile },
    );
  });
  after(async () => {
    await worker?.stop().catch(() => undefined);
    await temporal?.stop().catch(() => undefined);
  });

  it('is live and ready while connected and polling', async () => {
    assert.equal((await get(`${ops}/livez`)).status, 200);
    const ready = await eventually(async () => {
      const r = await get(`${ops}/readyz`);
      return r.status === 200 ? r : undefined;
    }, 30_000);
    assert.deepEqual(JSON.parse(ready.body), { ready: true });
    assert.equal((await get(`${ops}/nothing`)).status, 404);
  });

  it("serves Flui's metrics and the Temporal SDK's on one /metrics", async () => {
    const { status, body } = await eventually(async () => {
      const r = await get(`${ops}/metrics`);
      // The SDK's pollers report once they have polled.
      return /^temporal_/m.test(r.body) ? r : undefined;
    }, 30_000);
    assert.equal(status, 200);
    assert.match(body, /^# HELP flui_deploys_started_total /m);
    assert.match(body, /^# HELP flui_webhook_deliveries_total /m);
    assert.match(body, /^process_resident_memory_bytes /m);
    assert.match(body, /^temporal_num_pollers\{.*poller_type="workflow_task".*\} [1-9]/m);
    assert.doesNotMatch(body, /Temporal SDK metrics unavailable/);
  });

  it('writes one JSON object per line with FLUI_LOG_FORMAT=json', async () => {
    const lines = (await readFile(logFile, 'utf8')).split('\n').filter(Boolean);
    assert.ok(lines.length >= 2, `expected the worker's start-up lines, got ${lines.length}`);
    for (const line of lines) {
      const entry = JSON.parse(line) as { time: string; level: string; message: string };
      assert.equal(typeof entry.message, 'string', line);
      assert.ok(!Number.isNaN(Date.parse(entry.time)), line);
      assert.match(entry.level, /^(trace|debug|info|warn|error)$/, line);
    }
    assert.ok(lines.some((l) => l.includes('Flui worker polling task queue')));
  });

  it('stops being ready, but stays live, when Temporal goes away', async () => {
    await temporal.stop();
    const notReady = await eventually(async () => {
      const r = await get(`${ops}/readyz`);
      return r.status === 503 ? r : undefined;
    }, 30_000);
    const reason = (JSON.parse(notReady.body) as { ready: boolean; reason: string }).reason;
    assert.match(reason, /Temporal does not answer|not polling/);
    assert.equal((await get(`${ops}/livez`)).status, 200);
  });
});
