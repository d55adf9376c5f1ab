/**
 * Two worker processes (as `npm run worker` runs them) on one task queue share 100 deploys in flight; one is
 * SIGKILLed mid-way and every deploy still completes exactly once: one CI run dispatched and one rollout each,
 * counted from the GitHub emulator's and the cluster's own records. The CI's webhooks reach the workers through a
 * round-robin balancer (what a Kubernetes Service in front of two pods does), so each worker's receiver signals
 * deploys that may run on the other, and every signal lands on the deploy whose run it names. Which worker ran what
 * is read from the workflow histories' worker identities (`pid@host`). The surviving worker's /metrics carries the
 * Temporal SDK metrics the dashboard uses.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { freePort } from '../../dev/process.ts';
import { startDeploy } from '../../src/client/index.ts';
import { readHistory } from '../../src/kube/history.ts';
import { kubeClients } from '../../src/kube/rollout.ts';
import { TEMPORAL_SDK_METRICS } from '../../src/observability/prometheus.ts';
import type { Application } from '../../src/manifest/schema.ts';
import type { DeployOutcome } from '../../src/workflows/contract.ts';
import { createApplication, eventually, useStack } from '../helpers/stack.ts';
import { startWorkerProcess, writeBundleFile, type WorkerProcess } from '../helpers/worker-process.ts';
import { sampleSum, scrape } from './prometheus-text.ts';

const DEPLOYS = 100;
/** SIGKILL the second worker once its receiver has signalled this many finished CI runs: most deploys are in flight. */
const KILL_AFTER_WEBHOOKS = 3;

interface Balancer {
  /** Deliveries each receiver accepted (202 "accepted"), by receiver index. */
  accepted: number[];
  stop(): Promise<void>;
}

/** Forwards each delivery to the next receiver in turn, and to the other one when that one does not answer. */
async function startBalancer(port: number, receivers: string[]): Promise<Balancer> {
  const accepted = receivers.map(() => 0);
  let next = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const body = Buffer.concat(chunks);
        const headers = Object.fromEntries(
          Object.entries(req.headers).filter(
            (kv): kv is [string, string] => typeof kv[1] === 'string' && !['host', 'content-length'].includes(kv[0]),
          ),
        );
        const first = next++ % receivers.length;
        for (let i = 0; i < receivers.length; i++) {
          const target = (first + i) % receivers.length;
          try {
            const r = await fetch(receivers[target]!, { method: 'POST', headers, body });
            const text = await r.text();
            if (r.status === 202 && text.includes('"accepted"')) accepted[target]!++;
            res.writeHead(r.status, { 'content-type': 'application/json' }).end(text);
            return;
          } catch {
            // that receiver is gone (a killed pod): the next one
          }
        }
        res.writeHead(502).end();
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    accepted,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

describe('two workers on one task queue', () => {
  const stack = useStack({
    worker: false,
    runner: { queuedMs: 200, buildMs: 2000 },
    // The emulator has no secondary limits: unpaced writes keep 100 deploys' commits and dispatches quick.
    env: { GITHUB_WRITE_INTERVAL_MS: '0' },
    githubRateLimit: 100_000,
  });
  const running = new Set<WorkerProcess>();
  let balancer: Balancer | undefined;
  after(async () => {
    await Promise.all([...running].map((w) => w.kill()));
    await balancer?.stop();
  });

  it('share 100 deploys, survive a SIGKILL of one, and each deploy completes exactly once', async () => {
    const s = stack();
    const gh = s.github!;
    const k = kubeClients(s.env.KUBECONFIG);
    const bundleFile = await writeBundleFile(s.dataDir);
    const workers: { proc: WorkerProcess; ops: string; webhook: string }[] = [];
    for (const name of ['a', 'b']) {
      const [ops, webhook] = [await freePort(), await freePort()];
      const env = { ...s.env, FLUI_OPS_PORT: String(ops), FLUI_WEBHOOK_PORT: String(webhook) };
      const proc = await startWorkerProcess(env, {
        bundleFile,
        logFile: join(s.dataDir, `worker-${name}.log`),
        timeoutMs: 60_000,
      });
      running.add(proc);
      workers.push({ proc, ops: `http://127.0.0.1:${ops}`, webhook: `http://127.0.0.1:${webhook}/` });
    }
    const [a, b] = workers as [(typeof workers)[0], (typeof workers)[0]];
    // The emulator posts to the stack's webhook port: the balancer listens there.
    balancer = await startBalancer(
      Number(s.env.FLUI_WEBHOOK_PORT),
      workers.map((w) => w.webhook),
    );

    const apps: Application[] = [];
    for (let i = 0; i < DEPLOYS; i++)
      apps.push(await createApplication(s, { deploy: { progressDeadlineSeconds: 60 } }));
    const started = Date.now();
    const deploys = await Promise.all(apps.map((app) => startDeploy(s.client, app)));
    const dispatched = () => apps.reduce((n, app) => n + (gh.records.dispatches[app.spec.source.repository] ?? 0), 0);

    await eventually(
      () => (balancer!.accepted[1]! >= KILL_AFTER_WEBHOOKS ? true : undefined),
      150_000,
      'webhooks through the second worker',
    );
    const finished = () => apps.filter((app) => gh.runs(app.spec.source.repository)[0]?.conclusion).length;
    const beforeKill = { dispatched: dispatched(), finished: finished() };
    await b.proc.kill();
    running.delete(b.proc);
    const killedAt = Date.now();

    const outcomes = await Promise.all(
      deploys.map(async (d) => (await s.client.workflow.getHandle(d.workflowId).result()) as DeployOutcome),
    );
    assert.ok(beforeKill.finished < DEPLOYS / 2, `killed mid-way (${beforeKill.finished} CI runs finished)`);
    process.stderr.write(
      `# ${DEPLOYS} deploys on 2 workers: killed one after ${((killedAt - started) / 1000).toFixed(1)} s ` +
        `(${beforeKill.dispatched} CI runs dispatched, ${beforeKill.finished} finished), ` +
        `all done after ${((Date.now() - started) / 1000).toFixed(1)} s; webhooks accepted per worker: ${balancer.accepted.join(', ')}\n`,
    );

    // Exactly once: one CI run dispatched and one rollout recorded per deploy, the digest the CI pushed running.
    for (const [i, app] of apps.entries()) {
      const outcome = outcomes[i]!;
      const repo = app.spec.source.repository;
      assert.equal(outcome.phase, 'succeeded', repo);
      assert.equal(gh.records.dispatches[repo], 1, `${repo}: CI runs dispatched`);
      const runs = gh.runs(repo);
      assert.equal(runs.length, 1, `${repo}: CI runs`);
      assert.equal(outcome.digest, runs[0]!.digest, `${repo}: the digest the CI pushed`);
      const entries = (await readHistory(k, 'default', app.metadata.name)).filter(
        (e) => e.deployId === deploys[i]!.deployId,
      );
      assert.deepEqual(
        entries.map((e) => [e.digest, e.outcome]),
        [[outcome.digest, 'succeeded']],
        `${repo}: one rollout`,
      );
    }

    // Who ran what, from the histories; and every webhook signal landed on the deploy whose run it names.
    const byWorker = new Map<string, number>();
    let movedOver = 0;
    let signalled = 0;
    for (const [i, d] of deploys.entries()) {
      const { events } = await s.client.workflow.getHandle(d.workflowId).fetchHistory();
      const identities = new Set<string>();
      for (const e of events ?? []) {
        const who = e.workflowTaskCompletedEventAttributes?.identity ?? e.activityTaskStartedEventAttributes?.identity;
        if (who) identities.add(who.split('@')[0]!);
        const signal = e.workflowExecutionSignaledEventAttributes;
        if (signal?.signalName === 'runCompleted') {
          signalled++;
          const payload = signal.input?.payloads?.[0]?.data;
          const arg = JSON.parse(Buffer.from(payload!).toString('utf8')) as { deployId: string; runId: string };
          assert.equal(arg.deployId, d.deployId, 'the signal names this deploy');
          assert.equal(arg.runId, outcomes[i]!.ciRun?.id, "the signal names this deploy's own run");
        }
      }
      for (const who of identities) byWorker.set(who, (byWorker.get(who) ?? 0) + 1);
      if (identities.has(String(a.proc.pid)) && identities.has(String(b.proc.pid))) movedOver++;
    }
    const onA = byWorker.get(String(a.proc.pid)) ?? 0;
    const onB = byWorker.get(String(b.proc.pid)) ?? 0;
    process.stderr.write(`# deploys touched: worker a ${onA}, worker b ${onB} (killed), both ${movedOver}\n`);
    assert.ok(onB >= 10, `the second worker took its share before it died (${onB})`);
    assert.ok(onA >= 10, `the first worker took its share (${onA})`);
    assert.ok(movedOver >= 1, 'deploys in flight on the killed worker were finished by the other');
    assert.ok(signalled >= DEPLOYS * 0.9, `most runs completed through a webhook (${signalled})`);
    assert.ok(balancer.accepted[0]! >= 1 && balancer.accepted[1]! >= 1, `both receivers: ${balancer.accepted}`);

    // The survivor's metrics: its share of the deploys, and the SDK metrics the dashboard reads.
    const metrics = await scrape(a.ops);
    assert.ok(sampleSum(metrics, 'flui_deploys_finished_total', { outcome: 'succeeded' }) >= DEPLOYS - onB);
    for (const name of [
      ...TEMPORAL_SDK_METRICS.counters,
      ...TEMPORAL_SDK_METRICS.gauges,
      ...TEMPORAL_SDK_METRICS.histograms.map((h) => `${h}_bucket`),
    ]) {
      assert.ok(
        metrics.some((m) => m.name === name),
        `${name} in the worker's /metrics`,
      );
    }
  });
});
