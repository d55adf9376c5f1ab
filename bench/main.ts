/**
 * Benchmarks of the pipeline against the GitHub emulator (simulated builds of fixed length) and a kwok cluster, each
 * beside a naive baseline run in the same process: the script users would otherwise write (dispatch, poll the run
 * every 3 s like `gh run watch`, then poll the Deployment every second like `kubectl rollout status`). Prints numbers
 * and writes BENCHMARKS.md. Not a test: nothing here asserts.
 *
 *   npm run bench      (FLUI_BENCH_DEPLOYS, FLUI_BENCH_INFLIGHT, FLUI_BENCH_BURST, FLUI_BENCH_CLI_RUNS tune the
 *                       counts; FLUI_BENCH_ONLY picks sections; FLUI_BENCH_WORKER_ENV adds to the workers' environment)
 *
 * The worker under test runs as its own process (`npm run worker`: the build, as in production), so its memory and
 * CPU are its own; the emulator, the client and the naive scripts run here or in processes of their own.
 */
import { readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { Octokit } from '@octokit/rest';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { newDeployId, startDeploy } from '../src/client/index.ts';
import { pipelinePath } from '../src/ci/github/pipeline-file.ts';
import { GitHubActionsBackend } from '../src/ci/github/actions.ts';
import { loadConfig } from '../src/config.ts';
import { applyTarget, kubeClients, waitForRollout } from '../src/kube/rollout.ts';
import { freePort } from '../dev/process.ts';
import { startLocalStack, type LocalStack } from '../dev/stack.ts';
import { registerSearchAttributes } from '../dev/temporal.ts';
import { findTool } from '../dev/tools.ts';
import { validateManifest } from '../src/manifest/parse.ts';
import type { Application } from '../src/manifest/schema.ts';
import { deployWorkflowId, type DeployOutcome, type DeployRequest } from '../src/workflows/contract.ts';
import { ensureBuilt } from '../test/helpers/build.ts';
import { workflowBundle } from '../test/helpers/temporal.ts';
import { startWorkerProcess, writeBundleFile, type WorkerProcess } from '../test/helpers/worker-process.ts';

// (test/helpers/temporal.ts installs the SDK's runtime with its logger at ERROR.)

const DEPLOYS = Number(process.env.FLUI_BENCH_DEPLOYS ?? 10);
const INFLIGHT = Number(process.env.FLUI_BENCH_INFLIGHT ?? 1000);
const BURST = Number(process.env.FLUI_BENCH_BURST ?? 50);
const SECTIONS = ['overhead', 'lengths', 'burst', 'inflight', 'cli'];
/** Sections to run (comma-separated: overhead, lengths, burst, inflight, cli); all by default. `gitlab` runs alone. */
const ONLY = new Set((process.env.FLUI_BENCH_ONLY ?? SECTIONS.join(',')).split(','));
/**
 * 1,000 first deploys make ~13,000 rate-limited requests: more than the 5,000 an hour GitHub gives one token (a
 * GitHub App installation on Enterprise Cloud gets 15,000). The emulated GitHub of the bench allows more, so what is
 * measured is the worker, not the wait for the limit to reset; the counts show what the limit would have to be.
 */
const BENCH_RATE_LIMIT = 100_000;
const BUILD_MS = 2000;
const QUEUED_MS = 200;
/** How long the in-flight deploys wait on CI while the worker's CPU and the requests are counted. */
const WAIT_WINDOW_MS = 60_000;
/** Runners the held runs are released to (GitHub Team's 60 concurrent jobs; Enterprise has 500). */
const RUNNERS = 60;
/** Extra environment for every worker the bench starts (JSON), to measure other settings: `{"NODE_OPTIONS": ...}`. */
const WORKER_ENV = JSON.parse(process.env.FLUI_BENCH_WORKER_ENV ?? '{}') as Record<string, string>;
const lines: string[] = [];
const NOTES_MARKER = '<!-- Notes below are written by hand; npm run bench keeps them. -->';
const say = (line = '') => {
  lines.push(line);
  process.stdout.write(`${line}\n`);
};
const progress = (line: string) => process.stderr.write(`[bench] ${line}\n`);

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};
const ms = (x: number) => `${Math.round(x)} ms`;
const ratio = (naive: number, flui: number) => `${(naive / flui).toFixed(1)}×`;

/** Resident memory (now and peak) and CPU time of a process, from /proc. */
function procStats(pid: number): { rssMb: number; peakMb: number; cpuSeconds: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
  // Fields 14 and 15 of /proc/PID/stat (after the parenthesised name): user and system time in clock ticks.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return {
    rssMb: kb('VmRSS') / 1024,
    peakMb: kb('VmHWM') / 1024,
    cpuSeconds: (Number(fields[11]) + Number(fields[12])) / 100,
  };
}

let appCounter = 0;
async function newApp(stack: LocalStack, spec: Record<string, unknown> = {}): Promise<Application> {
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
      deploy: { progressDeadlineSeconds: 60, retryWindowMinutes: 0 },
      ...spec,
    },
  }) as Application;
}

const rateLimitedTotal = (stack: LocalStack) =>
  Object.values(stack.github!.records.rateLimited).reduce((a, b) => a + b, 0);

/** Worker processes of the bench, each on its own task queue. */
class Workers {
  #bundleFile?: string;
  #count = 0;
  readonly running = new Set<WorkerProcess>();
  readonly stack: LocalStack;
  constructor(stack: LocalStack) {
    this.stack = stack;
  }

  /** `prebundled: false` starts the worker as plain `npm run worker` does: it bundles its workflow code at start. */
  async start(taskQueue: string, env: Record<string, string> = {}, prebundled = true): Promise<WorkerProcess> {
    this.#bundleFile ??= await writeBundleFile(this.stack.dataDir);
    const w = await startWorkerProcess(
      { ...this.stack.env, FLUI_TASK_QUEUE: taskQueue, FLUI_LOG_LEVEL: 'WARN', ...env, ...WORKER_ENV },
      {
        bundleFile: prebundled ? this.#bundleFile : null,
        logFile: join(this.stack.dataDir, `bench-worker-${++this.#count}.log`),
      },
    );
    this.running.add(w);
    return w;
  }

  async stop(w: WorkerProcess): Promise<void> {
    await w.stop();
    this.running.delete(w);
  }
}

async function deployAndWait(stack: LocalStack, app: Application, taskQueue: string): Promise<DeployOutcome> {
  const { workflowId } = await startDeploy(stack.client, app, { taskQueue });
  return (await stack.client.workflow.getHandle(workflowId).result()) as DeployOutcome;
}

/** Orchestration overhead of steady-state deploys: wall time minus the CI run's own duration minus the rollout's. */
async function overheadOfFlui(
  stack: LocalStack,
  taskQueue: string,
  n: number,
): Promise<{ overhead: number[]; requests: number[]; breakdown: string }> {
  const overhead: number[] = [];
  const requests: number[] = [];
  let last = '';
  for (let i = 0; i < n + 1; i++) {
    const app = await newApp(stack);
    await deployAndWait(stack, app, taskQueue); // the first deploy of an app writes its pipeline file and credential
    const before = rateLimitedTotal(stack);
    const t0 = performance.now();
    const { workflowId } = await startDeploy(stack.client, app, { taskQueue });
    const outcome = (await stack.client.workflow.getHandle(workflowId).result()) as DeployOutcome;
    const wall = performance.now() - t0;
    last = await breakdown(stack, workflowId, app.spec.source.repository);
    const run = stack.github!.runs(app.spec.source.repository).at(-1)!;
    const build = run.completedAtMs! - run.createdAtMs!;
    const rollout = outcome.timings.find((t) => t.phase === 'rolling-out');
    const rolloutMs = rollout?.endedAt ? Date.parse(rollout.endedAt) - Date.parse(rollout.startedAt) : 0;
    if (i > 0) {
      // The first measured deploy warms the worker's caches (workflow code, connections): it is not counted.
      overhead.push(wall - build - rolloutMs);
      requests.push(rateLimitedTotal(stack) - before);
    }
  }
  return { overhead, requests, breakdown: last };
}

/**
 * Where one deploy's time went, from its workflow history (server timestamps) and the emulator's record of the run:
 * time in activities by type, the CI run, and the gaps between them (task dispatch, workflow tasks, the webhook).
 */
async function breakdown(stack: LocalStack, workflowId: string, repo: string): Promise<string> {
  const { events } = await stack.client.workflow.getHandle(workflowId).fetchHistory();
  const at = (e: { eventTime?: { seconds?: unknown; nanos?: number | null } | null }) =>
    Number(e.eventTime?.seconds ?? 0) * 1000 + (e.eventTime?.nanos ?? 0) / 1e6;
  const list = events ?? [];
  const first = at(list[0]!);
  const last = at(list.at(-1)!);
  const types = new Map<string, string>();
  const spent = new Map<string, number>();
  for (const e of list) {
    if (e.activityTaskScheduledEventAttributes) {
      types.set(String(e.eventId), e.activityTaskScheduledEventAttributes.activityType?.name ?? '?');
    }
    const done = e.activityTaskCompletedEventAttributes ?? e.activityTaskFailedEventAttributes;
    if (done) {
      const type = types.get(String(done.scheduledEventId)) ?? '?';
      const scheduled = list.find((x) => String(x.eventId) === String(done.scheduledEventId))!;
      spent.set(type, (spent.get(type) ?? 0) + at(e) - at(scheduled));
    }
  }
  const run = stack.github!.runs(repo).at(-1)!;
  const parts = [...spent].map(([type, msSpent]) => `${type} ${Math.round(msSpent)} ms`);
  parts.push(`CI run (dispatch to completion) ${run.completedAtMs! - run.createdAtMs!} ms`);
  return `workflow ${Math.round(last - first)} ms: ${parts.join(', ')} (activities scheduled to completed)`;
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
    await backend.ensurePipeline(app, { push: { method: 'static', registry: stack.registryHost } });
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
      inputs: { deploy_id: `naive-${i}`, image_tag: `naive-${i}` },
    });
    let runId: number | undefined;
    for (;;) {
      await sleep(3000);
      if (runId === undefined) {
        const list = await gh.rest.actions.listWorkflowRuns({ owner, repo, workflow_id: file, per_page: 1 });
        runId = list.data.workflow_runs[0]?.id;
        continue;
      }
      const run = (await gh.rest.actions.getWorkflowRun({ owner, repo, run_id: runId })).data;
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
    overhead.push(wall - (emulated.completedAtMs! - emulated.createdAtMs!) - rolloutMs);
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
    workflowBundle: { code: (await workflowBundle('src/workflows/index.ts')).code },
  });
  const out = new Map<number, number>();
  try {
    for (const minutes of minutesList) {
      const app = await newApp(stack, { deploy: { queueTimeoutMinutes: 120, buildTimeoutMinutes: 240 } });
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

/**
 * Rate-limited GitLab requests of one steady-state deploy whose pipeline waits `minutes` for a runner, with the
 * webhook or by polling alone (GitLab emulator, FLUI_CI=gitlab, the Temporal dev server: real time). GitLab's API has
 * no conditional requests, so every status read counts; the poll schedule (pollAfterSeconds) decides how many. Real
 * time because the time-skipping test server did not finish these deploys (the poll's `nextRetryDelay`, or the
 * webhook's signal, under skipped time: not investigated), so longer builds are derived from the same schedule.
 */
async function gitlabRequestsForBuildLength(
  minutesList: number[],
  webhooks: boolean,
): Promise<Map<number, { total: number; byOperation: Record<string, number> }>> {
  const stack = await startLocalStack({
    ci: 'gitlab',
    webhooks,
    ports: { ui: false },
    runner: { queuedMs: 50, buildMs: 100 },
    workflowBundle: { code: (await workflowBundle('src/workflows/index.ts')).code },
  });
  const gl = stack.gitlab!;
  const total = () => Object.values(gl.records.rateLimited).reduce((a, b) => a + b, 0);
  const out = new Map<number, { total: number; byOperation: Record<string, number> }>();
  try {
    for (const minutes of minutesList) {
      const name = `bench-gl-${process.pid}-${appCounter++}`;
      await gl.createProject({ path: `bench/apps/${name}`, files: { Dockerfile: 'FROM scratch\n', 'app.txt': name } });
      const app = validateManifest({
        apiVersion: 'flui.dev/v1',
        kind: 'Application',
        metadata: { name },
        spec: {
          source: { repository: `bench/apps/${name}` },
          image: { repository: `${stack.registryHost}/bench/${name}` },
          replicas: 1,
          deploy: {
            progressDeadlineSeconds: 60,
            retryWindowMinutes: 0,
            queueTimeoutMinutes: 120,
            buildTimeoutMinutes: 240,
          },
        },
      }) as Application;
      const run = async () => {
        const { workflowId } = await startDeploy(stack.client, app, { taskQueue: stack.config.temporal.taskQueue });
        return stack.client.workflow.getHandle(workflowId).result();
      };
      await run(); // the first deploy writes the pipeline files and the credential
      const before = total();
      const ops = { ...gl.records.operations };
      gl.faults.keepPending(true); // the pipeline waits `minutes` for a runner
      const done = run();
      await sleep(minutes * 60_000);
      gl.faults.keepPending(false);
      await done;
      const byOperation = Object.fromEntries(
        Object.entries(gl.records.operations)
          .map(([k, v]) => [k, v - (ops[k] ?? 0)] as const)
          .filter(([, v]) => v > 0),
      );
      out.set(minutes, { total: total() - before, byOperation });
    }
  } finally {
    await stack.stop();
  }
  return out;
}

/** The GitLab section alone (FLUI_BENCH_ONLY=gitlab): its own stacks, printed, BENCHMARKS.md untouched. */
async function gitlabSection(): Promise<void> {
  const lengths = (process.env.FLUI_BENCH_GITLAB_MINUTES ?? '1').split(',').map(Number);
  progress(`GitLab: requests for builds of ${lengths.join(', ')} min, with the webhook (real time)`);
  const withWebhook = await gitlabRequestsForBuildLength(lengths, true);
  progress('GitLab: the same, polling only');
  const pollingOnly = await gitlabRequestsForBuildLength(lengths, false);
  say('## GitLab CI: rate-limited requests per steady-state deploy, by build length');
  say();
  say('| build length | with the webhook (measured) | polling only (measured) | a poll every 10 s (derived) |');
  say('| --- | --- | --- | --- |');
  for (const minutes of lengths) {
    say(
      `| ${minutes} min | ${withWebhook.get(minutes)!.total} | ${pollingOnly.get(minutes)!.total} | ${4 + minutes * 6} |`,
    );
  }
  say();
  const last = lengths.at(-1)!;
  say(`Requests of the ${last}-minute deploy, polling only: ${JSON.stringify(pollingOnly.get(last)!.byOperation)}.`);
  say(`With the webhook: ${JSON.stringify(withWebhook.get(last)!.byOperation)}.`);
}

interface InFlight {
  dispatchedAllMs: number;
  /** Rate-limited GitHub requests from the first start to the last dispatch. */
  setupRateLimited: number;
  worker: {
    idleMb: number;
    rssMb: number;
    peakMb: Record<Phase, number>;
    cpuSecondsWaiting: number;
    cpuSecondsTotal: number;
  };
  rateLimitedPerMinute: number;
  requestsPerMinute: number;
  /** How the deploys ended: `succeeded`, or the failure's type. */
  outcomes: Record<string, number>;
  finishedAllMs: number;
  naive: { rssMb: number; cpuSeconds: number; requestsPerMinute: number; refusedPerMinute: number };
}

type Phase = 'starting' | 'waiting' | 'finishing';

/** The worker's RSS read every second, its highest reading kept per phase of the run. */
function sampleRss(pid: number) {
  const peak: Record<Phase, number> = { starting: 0, waiting: 0, finishing: 0 };
  let phase: Phase = 'starting';
  const read = () => {
    try {
      peak[phase] = Math.max(peak[phase], procStats(pid).rssMb);
    } catch {
      // the process has exited
    }
  };
  const timer = setInterval(read, 1000);
  return {
    peak,
    enter(next: Phase) {
      read();
      phase = next;
    },
    stop() {
      read();
      clearInterval(timer);
    },
  };
}

/** `succeeded`, or why a deploy failed: the failure type of its cause. */
function outcomeOf(r: PromiseSettledResult<unknown>): string {
  if (r.status === 'fulfilled') return 'succeeded';
  let err = r.reason as { cause?: unknown; type?: string; name?: string } | undefined;
  while (err?.cause) err = err.cause as typeof err;
  return err?.type ?? err?.name ?? 'unknown';
}

/**
 * Many deploys waiting on CI at once on one worker process: its memory and CPU, and that every one completes. The
 * runs are held queued until every deploy is waiting, then released to a pool of `RUNNERS` runners (a plan's
 * concurrent-job limit), so the builds' pushes and the rollouts come as they would, not all in the same second.
 */
async function inFlight(stack: LocalStack, workers: Workers, n: number): Promise<InFlight> {
  const gh = stack.github!;
  // The emulator has no secondary rate limits to respect: writes unpaced, so 1,000 first deploys set up in minutes
  // (on github.com, GitHub's one write a second per token would stretch their set-up to over an hour).
  const worker = await workers.start('bench-inflight', { GITHUB_WRITE_INTERVAL_MS: '0' });
  await sleep(3000);
  const idleMb = procStats(worker.pid).rssMb; // connected and polling, no deploy yet
  progress(`in flight: the idle worker's RSS is ${idleMb.toFixed(0)} MB`);
  const rss = sampleRss(worker.pid);
  const cpuAtStart = procStats(worker.pid).cpuSeconds;
  gh.faults.keepQueued(true);
  const apps: Application[] = [];
  for (let i = 0; i < n; i++) apps.push(await newApp(stack, { replicas: 0, deploy: { queueTimeoutMinutes: 120 } }));
  const rateLimitedAtStart = rateLimitedTotal(stack);
  const t0 = performance.now();
  const started: string[] = [];
  for (let i = 0; i < n; i += 50) {
    const chunk = await Promise.all(
      apps.slice(i, i + 50).map((app) => startDeploy(stack.client, app, { taskQueue: 'bench-inflight' })),
    );
    started.push(...chunk.map((d) => d.workflowId));
  }
  for (;;) {
    const dispatched = apps.filter((a) => gh.runs(a.spec.source.repository).length > 0).length;
    if (dispatched === n) break;
    progress(
      `in flight: ${dispatched}/${n} dispatched after ${((performance.now() - t0) / 1000).toFixed(0)} s, ` +
        `worker RSS ${procStats(worker.pid).rssMb.toFixed(0)} MB`,
    );
    await sleep(5000);
  }
  const dispatchedAllMs = performance.now() - t0;
  const setupRateLimited = rateLimitedTotal(stack) - rateLimitedAtStart;
  await sleep(15_000); // let the first poll of every run pass
  rss.enter('waiting');
  progress(`in flight: all ${n} waiting on CI; measuring for ${WAIT_WINDOW_MS / 1000} s`);

  const before = { worker: procStats(worker.pid), rateLimited: rateLimitedTotal(stack), requests: gh.records.requests };
  await sleep(WAIT_WINDOW_MS);
  const after = { worker: procStats(worker.pid), rateLimited: rateLimitedTotal(stack), requests: gh.records.requests };
  const minutes = WAIT_WINDOW_MS / 60_000;

  // The naive script's way of waiting on the same runs, over a window as long, right after (with its own token).
  progress(`in flight: the naive watchers on the same ${n} runs for ${WAIT_WINDOW_MS / 1000} s`);
  const targets = apps.map((a) => `${a.spec.source.repository}:${gh.runs(a.spec.source.repository)[0]!.id}`);
  const naive = spawn(
    process.execPath,
    ['--import', 'tsx', 'bench/naive-watch.ts', gh.url, gh.createToken(), ...targets],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let naiveOut = '';
  naive.stdout.on('data', (c: Buffer) => (naiveOut += c.toString()));
  await sleep(5000); // start-up: node, tsx, Octokit
  const naiveBefore = procStats(naive.pid!);
  await sleep(WAIT_WINDOW_MS);
  const naiveAfter = procStats(naive.pid!);
  const naiveExit = new Promise((resolve) => naive.once('exit', resolve));
  naive.kill('SIGTERM');
  await naiveExit;
  const naiveCounts = JSON.parse(naiveOut.trim() || '{"requests":0,"refused":0}') as {
    requests: number;
    refused: number;
  };
  // Its counts cover the start-up too: per minute over the whole time it ran.
  const naiveMinutes = (WAIT_WINDOW_MS + 5000) / 60_000;

  rss.enter('finishing');
  gh.faults.runnerCapacity(RUNNERS);
  gh.faults.keepQueued(false);
  const released = performance.now();
  let settled = 0;
  const results = started.map((id) => {
    const result = stack.client.workflow.getHandle(id).result();
    void result.finally(() => settled++).catch(() => undefined);
    return result;
  });
  const ticker = setInterval(
    () =>
      progress(
        `in flight: ${settled}/${n} deploys finished ${((performance.now() - released) / 1000).toFixed(0)} s after ` +
          `the runs were released to ${RUNNERS} runners, worker RSS ${procStats(worker.pid).rssMb.toFixed(0)} MB`,
      ),
    10_000,
  );
  const outcomes: Record<string, number> = {};
  try {
    for (const r of await Promise.allSettled(results)) {
      const kind = outcomeOf(r);
      outcomes[kind] = (outcomes[kind] ?? 0) + 1;
    }
  } finally {
    clearInterval(ticker);
  }
  const finishedAllMs = performance.now() - released;
  const cpuSecondsTotal = procStats(worker.pid).cpuSeconds - cpuAtStart;
  rss.stop();
  gh.faults.reset();
  await workers.stop(worker);
  return {
    dispatchedAllMs,
    setupRateLimited,
    worker: {
      idleMb,
      rssMb: after.worker.rssMb,
      peakMb: rss.peak,
      cpuSecondsWaiting: after.worker.cpuSeconds - before.worker.cpuSeconds,
      cpuSecondsTotal,
    },
    rateLimitedPerMinute: (after.rateLimited - before.rateLimited) / minutes,
    requestsPerMinute: (after.requests - before.requests) / minutes,
    outcomes,
    finishedAllMs,
    naive: {
      rssMb: naiveAfter.rssMb,
      cpuSeconds: naiveAfter.cpuSeconds - naiveBefore.cpuSeconds,
      requestsPerMinute: naiveCounts.requests / naiveMinutes,
      refusedPerMinute: naiveCounts.refused / naiveMinutes,
    },
  };
}

/** Start-to-dispatch latencies of `n` steady-state deploys started at `perSecond`. */
async function burstOfFlui(
  stack: LocalStack,
  workers: Workers,
  n: number,
  perSecond: number,
  writeIntervalMs: number,
): Promise<number[]> {
  const gh = stack.github!;
  const apps: Application[] = [];
  for (let i = 0; i < n; i++) apps.push(await newApp(stack, { replicas: 0 }));
  // Steady state first: every app deployed once, by an unpaced worker (how they were set up is not measured).
  const setup = await workers.start('bench-setup', { GITHUB_WRITE_INTERVAL_MS: '0' });
  await Promise.all(apps.map((app) => deployAndWait(stack, app, 'bench-setup')));
  await workers.stop(setup);
  const queue = `bench-burst-${writeIntervalMs}`;
  const worker = await workers.start(queue, { GITHUB_WRITE_INTERVAL_MS: String(writeIntervalMs) });
  const dispatchedAt = new Map<string, number>();
  gh.hooks.after = (info) => {
    if (info.method === 'POST' && info.operation.endsWith('/dispatches') && info.repo) {
      dispatchedAt.set(info.repo, performance.now());
    }
  };
  const startedAt = new Map<string, number>();
  const t0 = performance.now();
  const deploys = apps.map(async (app, i) => {
    await sleep(t0 + (i * 1000) / perSecond - performance.now());
    startedAt.set(app.spec.source.repository, performance.now());
    const { workflowId } = await startDeploy(stack.client, app, { taskQueue: queue });
    return stack.client.workflow.getHandle(workflowId).result();
  });
  await Promise.all(deploys);
  gh.hooks.after = undefined;
  await workers.stop(worker);
  return apps.map((a) => dispatchedAt.get(a.spec.source.repository)! - startedAt.get(a.spec.source.repository)!);
}

/** The naive script's dispatch: one request the moment it starts, unpaced. */
async function burstOfNaive(stack: LocalStack, n: number, perSecond: number): Promise<number[]> {
  const gh = new Octokit({ auth: stack.github!.createToken(), baseUrl: stack.github!.url });
  const backend = new GitHubActionsBackend({ ...loadConfig(stack.env).github, writeIntervalMs: 0 });
  const apps: Application[] = [];
  for (let i = 0; i < n; i++) {
    const app = await newApp(stack, { replicas: 0 });
    await backend.ensurePipeline(app, { push: { method: 'static', registry: stack.registryHost } });
    apps.push(app);
  }
  const t0 = performance.now();
  return Promise.all(
    apps.map(async (app, i) => {
      await sleep(t0 + (i * 1000) / perSecond - performance.now());
      const start = performance.now();
      const [owner, repo] = app.spec.source.repository.split('/') as [string, string];
      await gh.rest.actions.createWorkflowDispatch({
        owner,
        repo,
        workflow_id: pipelinePath(app).split('/').pop()!,
        ref: 'main',
        inputs: { deploy_id: `naive-burst-${i}`, image_tag: `naive-burst-${i}` },
      });
      return performance.now() - start;
    }),
  );
}

// ---- The CLI and an idle worker -----------------------------------------------------------------------------

const CLI_RUNS = Number(process.env.FLUI_BENCH_CLI_RUNS ?? 10);
/**
 * How long an idle worker is left to settle before its memory is read: V8 gives back the memory of start-up (webpack
 * bundling the workflow code) some 20 to 30 s after the worker goes idle, later on a busy machine.
 */
const IDLE_SETTLE_MS = 60_000;
const FLUI_BIN = new URL('../bin/flui.js', import.meta.url);

/** Wall time of one `flui` process, from spawn to exit, as a user waits for it. */
async function timeFlui(args: string[], env: Record<string, string>): Promise<number> {
  const t0 = performance.now();
  const child = spawn(process.execPath, [FLUI_BIN.pathname, ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: 'ignore',
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', resolve);
  });
  if (code !== 0) throw new Error(`flui ${args.join(' ')} exited ${code}`);
  return performance.now() - t0;
}

async function cliAndIdleWorker(stack: LocalStack, workers: Workers) {
  await ensureBuilt();
  // One finished deploy for `flui status` to report, as after `npm start`.
  const w = await workers.start('bench-cli');
  const app = await newApp(stack);
  await deployAndWait(stack, app, 'bench-cli');
  await workers.stop(w);
  // Only what the CLI reads: the worker's secrets are not its business.
  const env = { TEMPORAL_ADDRESS: stack.env.TEMPORAL_ADDRESS!, FLUI_TASK_QUEUE: 'bench-cli' };
  const timed = async (args: string[]) => {
    await timeFlui(args, env); // warm-up: the operating system's file cache
    const xs: number[] = [];
    for (let i = 0; i < CLI_RUNS; i++) xs.push(await timeFlui(args, env));
    return xs;
  };
  const help = await timed(['--help']);
  const status = await timed(['status', app.metadata.name]);
  const idle = async (prebundled: boolean) => {
    const worker = await workers.start(`bench-idle-${prebundled}`, {}, prebundled);
    await sleep(IDLE_SETTLE_MS);
    const stats = procStats(worker.pid);
    await workers.stop(worker);
    return stats;
  };
  return { help, status, bundledAtStart: await idle(false), prebundled: await idle(true) };
}

async function main() {
  if (ONLY.size === 1 && ONLY.has('gitlab')) {
    await gitlabSection();
    process.exit(0);
  }
  const started = new Date();
  say('# Benchmarks');
  say();
  say(
    `Run ${started.toISOString()} on ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, ` +
      `Node ${process.version}. Reproduce: \`npm run bench\` (FLUI_BENCH_DEPLOYS=${DEPLOYS}, ` +
      `FLUI_BENCH_INFLIGHT=${INFLIGHT}, FLUI_BENCH_BURST=${BURST}).`,
  );
  say(
    `Simulated CI: ${QUEUED_MS} ms queued + ${BUILD_MS} ms build per run. The worker under test is its own process ` +
      '(`npm run worker`, compiled); the Temporal dev server, the GitHub emulator (contract checks on), the registry and a kwok ' +
      'cluster run on the same 2 cores.',
  );
  say();

  const stack = await startLocalStack({
    runner: { queuedMs: QUEUED_MS, buildMs: BUILD_MS },
    worker: false,
    ports: { ui: false },
    githubRateLimit: BENCH_RATE_LIMIT,
    log: progress,
  });
  const workers = new Workers(stack);
  try {
    if (ONLY.has('overhead')) {
      progress('overhead: Flui with webhooks');
      const main = await workers.start('bench-overhead');
      const withWebhook = await overheadOfFlui(stack, 'bench-overhead', DEPLOYS);
      progress('overhead: Flui with polling only');
      stack.github!.faults.webhooks({ drop: 1_000_000 });
      const pollingOnly = await overheadOfFlui(stack, 'bench-overhead', Math.max(3, Math.ceil(DEPLOYS / 2)));
      stack.github!.faults.reset();
      await workers.stop(main);
      progress('overhead: the naive script');
      const naive = await overheadOfNaive(stack, Math.max(3, Math.ceil(DEPLOYS / 2)));

      say('## Orchestration overhead per steady-state deploy (wall time minus CI run and rollout)');
      say();
      say('| approach | p50 | p95 | rate-limited GitHub requests per deploy (median) |');
      say('| --- | --- | --- | --- |');
      const row = (name: string, r: { overhead: number[]; requests: number[] }) =>
        say(`| ${name} | ${ms(pct(r.overhead, 50))} | ${ms(pct(r.overhead, 95))} | ${pct(r.requests, 50)} |`);
      row('Flui, webhook + polling', withWebhook);
      row('Flui, polling only (webhooks lost)', pollingOnly);
      row('naive script (poll 3 s, then 1 s)', naive);
      say(
        `| ratio naive / Flui (webhook), p50 | ${ratio(pct(naive.overhead, 50), pct(withWebhook.overhead, 50))} | | |`,
      );
      say();
      say(
        `Target p50 ≤ 250 ms with webhook: ${pct(withWebhook.overhead, 50) <= 250 ? 'met' : '**missed**'} ` +
          `(${ms(pct(withWebhook.overhead, 50))}). Polling only, a finished run is seen at the next 10 s poll.`,
      );
      say();
      say(`One deploy with the webhook, from its history: ${withWebhook.breakdown}.`);
      say();
    }
    if (ONLY.has('lengths')) {
      progress('requests by build length (time-skipping server)');
      const lengths = await requestsForBuildLength([1, 10, 30]);
      say('## Rate-limited GitHub requests per steady-state deploy, by build length (time-skipped, polling only)');
      say();
      say('| build length | Flui (measured) | naive: one unconditional poll every 3 s (derived) | ratio |');
      say('| --- | --- | --- | --- |');
      for (const [minutes, count] of lengths) {
        const naiveCount = 2 + minutes * 20;
        say(`| ${minutes} min | ${count} | ${naiveCount} | ${ratio(naiveCount, count)} |`);
      }
      say();
      say(
        `Target ≤ 6 whatever the build length: ${[...lengths.values()].every((c) => c <= 6) ? 'met' : '**missed**'}. ` +
          'Polls of an unchanged run are conditional (304) and cost no rate limit.',
      );
      say();
    }
    if (ONLY.has('burst')) {
      progress(`burst: ${BURST} deploys at ${BURST}/s`);
      const paced = await burstOfFlui(stack, workers, BURST, BURST, 1000);
      const unpaced = await burstOfFlui(stack, workers, BURST, BURST, 0);
      const naiveBurst = await burstOfNaive(stack, BURST, BURST);
      say(`## A burst of ${BURST} steady-state deploys in one second: start to CI dispatch`);
      say();
      say('| approach | p50 | p99 |');
      say('| --- | --- | --- |');
      say(`| Flui, writes paced 1/s (GitHub's advice, the default) | ${ms(pct(paced, 50))} | ${ms(pct(paced, 99))} |`);
      say(
        `| Flui, writes unpaced (\`GITHUB_WRITE_INTERVAL_MS=0\`) | ${ms(pct(unpaced, 50))} | ${ms(pct(unpaced, 99))} |`,
      );
      say(`| naive script (dispatches at once) | ${ms(pct(naiveBurst, 50))} | ${ms(pct(naiveBurst, 99))} |`);
      say();
      say(
        'GitHub asks API clients to start writes at least a second apart, to stay clear of its secondary rate ' +
          'limits (at most 80 content-creating requests a minute): with that pacing a burst drains at one dispatch a ' +
          'second, whoever sends it. Unpaced, the figure is the orchestration itself. The naive script is faster to ' +
          'dispatch because it does nothing before it; a burst of it on github.com meets the secondary limit.',
      );
      say();
    }
    if (ONLY.has('inflight')) {
      progress(`in flight: ${INFLIGHT} deploys`);
      const fl = await inFlight(stack, workers, INFLIGHT);
      say(`## ${INFLIGHT} deploys in flight waiting on CI, one worker process`);
      say();
      say(
        '| approach | RSS while waiting (peak) | CPU over 60 s of waiting | GitHub requests a minute (rate-limited) |',
      );
      say('| --- | --- | --- | --- |');
      say(
        `| Flui worker | ${fl.worker.rssMb.toFixed(0)} MB (${fl.worker.peakMb.waiting.toFixed(0)} MB) | ` +
          `${fl.worker.cpuSecondsWaiting.toFixed(1)} s | ${fl.requestsPerMinute.toFixed(0)} (${fl.rateLimitedPerMinute.toFixed(0)}) |`,
      );
      say(
        `| naive watchers, one process | ${fl.naive.rssMb.toFixed(0)} MB | ${fl.naive.cpuSeconds.toFixed(1)} s | ` +
          `${fl.naive.requestsPerMinute.toFixed(0)} (all; ${fl.naive.refusedPerMinute.toFixed(0)} refused) |`,
      );
      say();
      const outcomes = Object.entries(fl.outcomes)
        .sort((a, b) => b[1] - a[1])
        .map(([k, v]) => `${v} ${k}`)
        .join(', ');
      const lost = INFLIGHT - Object.values(fl.outcomes).reduce((a, b) => a + b, 0);
      say('| phase | worker RSS, peak |');
      say('| --- | --- |');
      say(`| idle: connected, no deploy | ${fl.worker.idleMb.toFixed(0)} MB |`);
      say(`| starting: ${INFLIGHT} first deploys set up and dispatched | ${fl.worker.peakMb.starting.toFixed(0)} MB |`);
      say(`| waiting on CI (above) | ${fl.worker.peakMb.waiting.toFixed(0)} MB |`);
      say(`| finishing: builds, pushes and rollouts | ${fl.worker.peakMb.finishing.toFixed(0)} MB |`);
      say();
      say(
        `All ${INFLIGHT} first deploys were dispatched ${(fl.dispatchedAllMs / 1000).toFixed(0)} s after the first ` +
          `start (writes unpaced), with ${fl.setupRateLimited} rate-limited GitHub requests: against github.com, one ` +
          "token's 5,000 an hour would spread such a set-up over hours (the emulated limit here is " +
          `${BENCH_RATE_LIMIT.toLocaleString('en')}). Once released to ${RUNNERS} runners, the runs built and the ` +
          `deploys finished in ${(fl.finishedAllMs / 1000).toFixed(0)} s: ${outcomes}; ${lost} lost. The worker used ` +
          `${fl.worker.cpuSecondsTotal.toFixed(0)} s of CPU over the whole section. Flui polls each waiting run ` +
          'every 10 s with conditional requests, which GitHub answers 304 without charging the rate limit; each of ' +
          "the naive watchers' unconditional polls costs one of the token's 5,000 an hour on github.com, which at " +
          `their rate last ${Math.round((5000 / fl.naive.requestsPerMinute) * 60)} s. ` +
          `Target ≤ 512 MB RSS at 1,000 in flight: ${INFLIGHT >= 1000 && fl.worker.peakMb.waiting <= 512 ? 'met' : INFLIGHT < 1000 ? 'not measured at 1,000' : '**missed**'}.`,
      );
      say();
      const perPoll = (cpuSeconds: number, perMinute: number) =>
        `${((cpuSeconds * 1000) / (perMinute * (WAIT_WINDOW_MS / 60_000))).toFixed(1)} ms`;
      say(
        `CPU per status check while waiting: Flui ${perPoll(fl.worker.cpuSecondsWaiting, fl.requestsPerMinute)} ` +
          `(an activity attempt: task from Temporal, conditional request, heartbeat with the ETag, retryable failure ` +
          `back), the naive watcher ${perPoll(fl.naive.cpuSeconds, fl.naive.requestsPerMinute)} (a bare request). ` +
          `Flui checks a third as often and in all uses ${ratio(fl.worker.cpuSecondsWaiting, fl.naive.cpuSeconds)} ` +
          "the naive watchers' CPU. A long-running activity per run would cost less per check, but would hold one " +
          "of the worker's activity slots per deploy for the whole build.",
      );
    }
    if (ONLY.has('cli')) {
      progress(`the CLI (${CLI_RUNS} runs each) and an idle worker`);
      const c = await cliAndIdleWorker(stack, workers);
      const spread = (xs: number[]) => `${ms(pct(xs, 50))} (${ms(Math.min(...xs))}–${ms(Math.max(...xs))})`;
      say('## The CLI and an idle worker');
      say();
      say(`| command (compiled, \`bin/flui.js\`) | wall time, median of ${CLI_RUNS} (min–max) | target |`);
      say('| --- | --- | --- |');
      say(`| \`flui --help\` | ${spread(c.help)} | ≤ 300 ms: ${pct(c.help, 50) <= 300 ? 'met' : '**missed**'} |`);
      say(
        `| \`flui status <app>\` (a finished deploy, local Temporal) | ${spread(c.status)} | ≤ 500 ms: ` +
          `${pct(c.status, 50) <= 500 ? 'met' : '**missed**'} |`,
      );
      say();
      say(
        `| worker (\`npm run worker\`), idle: connected, no deploy, after ${IDLE_SETTLE_MS / 1000} s | RSS | peak RSS |`,
      );
      say('| --- | --- | --- |');
      const mb = (x: number) => `${x.toFixed(0)} MB`;
      say(
        `| workflow code bundled at start (the default) | ${mb(c.bundledAtStart.rssMb)} | ${mb(c.bundledAtStart.peakMb)} |`,
      );
      say(
        `| prebundled (\`npm run bundle\`, \`FLUI_WORKFLOW_BUNDLE\`) | ${mb(c.prebundled.rssMb)} | ${mb(c.prebundled.peakMb)} |`,
      );
      say();
      say(
        `Target idle RSS ≤ 200 MB: ${Math.max(c.bundledAtStart.rssMb, c.prebundled.rssMb) <= 200 ? 'met' : '**missed**'}. ` +
          'Wall time is from spawn to exit of the process; RSS and its peak are VmRSS and VmHWM from /proc.',
      );
      say();
    }
  } finally {
    await Promise.all([...workers.running].map((w) => w.kill()));
    await stack.stop();
  }
  // Only a run of every section replaces BENCHMARKS.md.
  if (SECTIONS.every((section) => ONLY.has(section))) {
    // Written by hand below the marker (how a figure was reached, what was tried): kept across runs.
    const file = new URL('../BENCHMARKS.md', import.meta.url);
    const old = await readFile(file, 'utf8').catch(() => '');
    const kept = old.includes(NOTES_MARKER) ? old.slice(old.indexOf(NOTES_MARKER)) : `${NOTES_MARKER}\n`;
    await writeFile(file, `${lines.join('\n')}\n\n${kept}`);
  }
  process.exit(0);
}

main().catch((err) => {
  process.stderr.write(`bench: ${(err as Error).stack}\n`);
  process.exit(1);
});
