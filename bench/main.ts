/**
 * Benchmarks of the pipeline against the GitHub emulator (simulated builds of fixed length) and a kwok cluster, and of
 * a naive baseline run in the same process: the script users would otherwise write (dispatch, poll the run every 3 s
 * like `gh run watch`, then poll the Deployment every second like `kubectl rollout status`). Prints numbers and writes
 * BENCHMARKS.md. Not a test: nothing here asserts.
 *
 *   npm run bench                      (FLUI_BENCH_DEPLOYS, FLUI_BENCH_INFLIGHT tune the counts)
 */
import { cpus, totalmem } from 'node:os';
import { writeFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { DefaultLogger, Runtime, bundleWorkflowCode } from '@temporalio/worker';
import { Octokit } from '@octokit/rest';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { newDeployId, startDeploy } from '../src/client/index.ts';
import { pipelinePath } from '../src/ci/github/pipeline-file.ts';
import { GitHubActionsBackend } from '../src/ci/github/actions.ts';
import { loadConfig } from '../src/config.ts';
import { applyTarget, kubeClients, waitForRollout } from '../src/kube/rollout.ts';
import { freePort } from '../src/local/process.ts';
import { startLocalStack, type LocalStack } from '../src/local/stack.ts';
import { registerSearchAttributes } from '../src/local/temporal.ts';
import { findTool } from '../src/local/tools.ts';
import { validateManifest } from '../src/manifest/parse.ts';
import type { Application } from '../src/manifest/schema.ts';
import { deployWorkflowId, type DeployOutcome, type DeployRequest } from '../src/workflows/api.ts';

Runtime.install({ logger: new DefaultLogger('ERROR') });

const DEPLOYS = Number(process.env.FLUI_BENCH_DEPLOYS ?? 10);
const INFLIGHT = Number(process.env.FLUI_BENCH_INFLIGHT ?? 200);
const BUILD_MS = 2000;
const QUEUED_MS = 200;
const lines: string[] = [];
const say = (line = '') => {
  lines.push(line);
  process.stdout.write(`${line}\n`);
};

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};
const ms = (x: number) => `${Math.round(x)} ms`;

let appCounter = 0;
async function newApp(stack: LocalStack, deploy: Record<string, unknown> = {}): Promise<Application> {
  const name = `bench-${process.pid}-${appCounter++}`;
  await stack.github!.createRepo({ owner: 'bench', name, files: { Dockerfile: 'FROM scratch\n', 'app.txt': name } });
  return validateManifest({
    apiVersion: 'flui.dev/v1',
    kind: 'Application',
    metadata: { name },
    spec: {
      source: { repository: `bench/${name}` },
      image: { repository: `${stack.registryHost}/bench/${name}` },
      replicas: 1,
      deploy: { progressDeadlineSeconds: 60, retryWindowMinutes: 0, ...deploy },
    },
  }) as Application;
}

const rateLimitedTotal = (stack: LocalStack) =>
  Object.values(stack.github!.records.rateLimited).reduce((a, b) => a + b, 0);

/** Orchestration overhead: wall time minus the CI run's own duration minus the rollout's. */
async function overheadOfFlui(stack: LocalStack, n: number): Promise<{ overhead: number[]; requests: number[] }> {
  const overhead: number[] = [];
  const requests: number[] = [];
  for (let i = 0; i < n + 1; i++) {
    const app = await newApp(stack);
    // Steady state: the pipeline file and credential are in place (first deploy of an app writes them).
    const warm = await startDeploy(stack.client, app, { taskQueue: stack.config.temporal.taskQueue });
    await stack.client.workflow.getHandle(warm.workflowId).result();
    const before = rateLimitedTotal(stack);
    const t0 = performance.now();
    const { workflowId } = await startDeploy(stack.client, app, { taskQueue: stack.config.temporal.taskQueue });
    const outcome = (await stack.client.workflow.getHandle(workflowId).result()) as DeployOutcome;
    const wall = performance.now() - t0;
    const run = stack.github!.runs(app.spec.source.repository).at(-1)!;
    const build = Date.parse(run.completedAt!) - Date.parse(run.createdAt);
    const rollout = outcome.timings.find((t) => t.phase === 'rolling-out');
    const rolloutMs = rollout?.endedAt ? Date.parse(rollout.endedAt) - Date.parse(rollout.startedAt) : 0;
    if (i > 0) {
      overhead.push(wall - build - rolloutMs);
      requests.push(rateLimitedTotal(stack) - before);
    }
  }
  return { overhead, requests };
}

/** The naive script: dispatch, poll the run every 3 s, then poll the Deployment every second. */
async function overheadOfNaive(stack: LocalStack, n: number): Promise<{ overhead: number[]; requests: number[] }> {
  const token = stack.env.GITHUB_TOKEN!;
  const gh = new Octokit({ auth: token, baseUrl: stack.github!.url });
  const backend = new GitHubActionsBackend(loadConfig(stack.env).github);
  const k = kubeClients(stack.env.KUBECONFIG);
  const overhead: number[] = [];
  const requests: number[] = [];
  for (let i = 0; i < n; i++) {
    const app = await newApp(stack);
    await backend.ensurePipeline(app);
    await backend.ensureCredential(app, {
      registry: stack.registryHost,
      username: stack.env.REGISTRY_USERNAME!,
      password: stack.env.REGISTRY_PASSWORD!,
    });
    const before = rateLimitedTotal(stack);
    const t0 = performance.now();
    const [owner, repo] = app.spec.source.repository.split('/') as [string, string];
    const file = pipelinePath(app).split('/').pop()!;
    await gh.rest.actions.createWorkflowDispatch({
      owner,
      repo,
      workflow_id: file,
      ref: 'main',
      inputs: { deploy_id: `naive-${i}` },
    });
    let runId: number | undefined;
    let run;
    for (;;) {
      await sleep(3000);
      if (runId === undefined) {
        const list = await gh.rest.actions.listWorkflowRuns({ owner, repo, workflow_id: file, per_page: 1 });
        runId = list.data.workflow_runs[0]?.id;
        continue;
      }
      run = (await gh.rest.actions.getWorkflowRun({ owner, repo, run_id: runId })).data;
      if (run.status === 'completed') break;
    }
    const emulated = stack.github!.runs(app.spec.source.repository).at(-1)!;
    const image = `${app.spec.image.repository}@${emulated.digest}`;
    const r0 = performance.now();
    await applyTarget(k, {
      namespace: 'default',
      app: app.metadata.name,
      workload: app.spec,
      image,
      deployId: `naive-${i}`,
    });
    await waitForRollout(k, 'default', app.metadata.name, { timeoutSeconds: 120, intervalMs: 1000 });
    const rolloutMs = performance.now() - r0;
    const wall = performance.now() - t0;
    const build = Date.parse(emulated.completedAt!) - Date.parse(emulated.createdAt);
    overhead.push(wall - build - rolloutMs);
    requests.push(rateLimitedTotal(stack) - before);
  }
  return { overhead, requests };
}

/** Rate-limited GitHub requests of one steady-state deploy whose build takes `minutes`, on Temporal's time-skipping server. */
async function requestsForBuildLength(minutesList: number[]): Promise<Map<number, number>> {
  const port = await freePort();
  const env = await TestWorkflowEnvironment.createTimeSkipping({
    server: {
      executable: { type: 'existing-path', path: findTool('temporal-test-server', 'TEMPORAL_TEST_SERVER_PATH') },
      port,
    },
  });
  await registerSearchAttributes(env.connection, 'default');
  const stack = await startLocalStack({
    configured: { TEMPORAL_ADDRESS: `127.0.0.1:${port}` },
    webhooks: false,
    runner: { queuedMs: 50, buildMs: 100 },
    workflowBundle: {
      code: (
        await bundleWorkflowCode({
          workflowsPath: new URL('../src/workflows/index.ts', import.meta.url).pathname,
          logger: new DefaultLogger('ERROR'),
        })
      ).code,
    },
  });
  const out = new Map<number, number>();
  try {
    for (const minutes of minutesList) {
      const app = await newApp(stack, { queueTimeoutMinutes: 120, buildTimeoutMinutes: 240 });
      const run = async () => {
        const request: DeployRequest = {
          deployId: newDeployId('default', app.metadata.name),
          kind: 'Application',
          manifest: app,
          policy: 'supersede',
        };
        return env.client.workflow.start('deployWorkflow', {
          taskQueue: stack.config.temporal.taskQueue,
          workflowId: deployWorkflowId('default', app.metadata.name),
          args: [request],
        });
      };
      await (await run()).result(); // first deploy writes the pipeline file and credential
      const before = rateLimitedTotal(stack);
      stack.github!.faults.keepQueued(true); // the build waits `minutes` of Temporal time for a runner
      const handle = await run();
      await env.sleep(`${minutes} minutes`);
      stack.github!.faults.keepQueued(false);
      await handle.result();
      out.set(minutes, rateLimitedTotal(stack) - before);
    }
  } finally {
    await stack.stop();
    await env.teardown();
  }
  return out;
}

/** Many deploys waiting on CI at once on one worker: memory and CPU, and that every one completes. */
async function inFlight(
  stack: LocalStack,
  n: number,
): Promise<{ rssMb: number; cpuSeconds: number; completed: number; startMs: number }> {
  stack.github!.faults.keepQueued(true);
  const apps: Application[] = [];
  for (let i = 0; i < n; i++) apps.push(await newApp(stack, { queueTimeoutMinutes: 120 }));
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const handles = await Promise.all(
    apps.map((app) => startDeploy(stack.client, app, { taskQueue: stack.config.temporal.taskQueue })),
  );
  // Wait until every deploy has dispatched its run and is waiting on CI.
  while (apps.some((a) => stack.github!.runs(a.spec.source.repository).length === 0)) await sleep(250);
  const startMs = performance.now() - t0;
  await sleep(5000);
  const rssMb = process.memoryUsage().rss / 1024 / 1024;
  const cpu = process.cpuUsage(cpu0);
  stack.github!.faults.keepQueued(false);
  const results = await Promise.allSettled(handles.map((h) => stack.client.workflow.getHandle(h.workflowId).result()));
  return {
    rssMb,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    completed: results.filter((r) => r.status === 'fulfilled').length,
    startMs,
  };
}

async function main() {
  const started = new Date();
  say('# Benchmarks');
  say();
  say(
    `Run ${started.toISOString()} on ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}.`,
  );
  say('Reproduce: `npm run bench` (FLUI_BENCH_DEPLOYS, FLUI_BENCH_INFLIGHT set the counts).');
  say(`Simulated CI: ${QUEUED_MS} ms queued + ${BUILD_MS} ms build per run; one worker in this process; kwok cluster.`);
  say();

  const bundle = {
    code: (
      await bundleWorkflowCode({
        workflowsPath: new URL('../src/workflows/index.ts', import.meta.url).pathname,
        logger: new DefaultLogger('ERROR'),
      })
    ).code,
  };
  const stack = await startLocalStack({
    runner: { queuedMs: QUEUED_MS, buildMs: BUILD_MS },
    workflowBundle: bundle,
    ports: { ui: false },
  });
  try {
    const withWebhook = await overheadOfFlui(stack, DEPLOYS);
    stack.github!.faults.webhooks({ drop: 1_000_000 });
    const pollingOnly = await overheadOfFlui(stack, DEPLOYS);
    stack.github!.faults.reset();
    const naive = await overheadOfNaive(stack, Math.max(3, Math.ceil(DEPLOYS / 2)));

    say('## Orchestration overhead per deploy (wall time minus CI run and rollout)');
    say();
    say('| approach | p50 | p95 | rate-limited GitHub requests per deploy (median) |');
    say('| --- | --- | --- | --- |');
    say(
      `| Flui, webhook + polling | ${ms(pct(withWebhook.overhead, 50))} | ${ms(pct(withWebhook.overhead, 95))} | ${pct(withWebhook.requests, 50)} |`,
    );
    say(
      `| Flui, polling only (webhooks dropped) | ${ms(pct(pollingOnly.overhead, 50))} | ${ms(pct(pollingOnly.overhead, 95))} | ${pct(pollingOnly.requests, 50)} |`,
    );
    say(
      `| naive script (poll 3 s, then 1 s) | ${ms(pct(naive.overhead, 50))} | ${ms(pct(naive.overhead, 95))} | ${pct(naive.requests, 50)} |`,
    );
    say(
      `| ratio naive / Flui (webhook), p50 | ${(pct(naive.overhead, 50) / pct(withWebhook.overhead, 50)).toFixed(1)}× | | |`,
    );
    say();
    say(`Target: p50 ≤ 250 ms with webhook — ${pct(withWebhook.overhead, 50) <= 250 ? 'met' : 'missed'}.`);
    say();

    const lengths = await requestsForBuildLength([1, 10, 30]);
    say('## Rate-limited GitHub requests per steady-state deploy, by build length (time-skipped)');
    say();
    say('| build length | Flui (measured) | naive: one unconditional poll every 3 s (derived) | ratio |');
    say('| --- | --- | --- | --- |');
    for (const [minutes, count] of lengths) {
      const naiveCount = 2 + minutes * 20;
      say(`| ${minutes} min | ${count} | ${naiveCount} | ${(naiveCount / count).toFixed(0)}× |`);
    }
    say();
    say(
      `Target: ≤ 6 whatever the build length — ${[...lengths.values()].every((c) => c <= 6) ? 'met' : 'missed'}. Unchanged polls are conditional (304) and free.`,
    );
    say();

    const fl = await inFlight(stack, INFLIGHT);
    say(`## ${INFLIGHT} deploys in flight waiting on CI, one worker`);
    say();
    say(
      `| RSS of the process (worker, client, emulator) | CPU while waiting (5 s) | all dispatched after | completed |`,
    );
    say('| --- | --- | --- | --- |');
    say(
      `| ${fl.rssMb.toFixed(0)} MB | ${fl.cpuSeconds.toFixed(1)} s | ${(fl.startMs / 1000).toFixed(1)} s | ${fl.completed}/${INFLIGHT} |`,
    );
    say();
    say(
      'The RSS includes the GitHub emulator and the client running in the same process, so it overstates the worker alone.',
    );
  } finally {
    await stack.stop();
  }
  await writeFile(new URL('../BENCHMARKS.md', import.meta.url), `${lines.join('\n')}\n`);
  process.exit(0);
}

main().catch((err) => {
  process.stderr.write(`bench: ${(err as Error).stack}\n`);
  process.exit(1);
});
