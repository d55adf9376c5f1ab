/**
 * Worker crash matrix. The worker runs as its own process (what `npm run worker` runs) and is SIGKILLed at every
 * point where a crash could make a deploy repeat a side effect or lose one:
 *
 * - before and after every GitHub request a deploy makes, found by a census deploy for a first deploy, a redeploy of
 *   the same manifest and a redeploy whose pipeline changed. "Before": GitHub holds the request until the worker is
 *   dead, then drops it unhandled. "After": GitHub has acted (commit written, run dispatched) and holds the answer
 *   until the worker is dead;
 * - at the phase boundaries, read from the workflow's history (an activity scheduled or completed, the webhook's
 *   signal), and inside the rollout, read from the cluster (Deployment applied, history recorded);
 * - while the CI run finishes, so its completion arrives with no worker running.
 *
 * A new worker starts after each kill, and each deploy must complete with exactly one pipeline commit (none when
 * unchanged), exactly one CI run dispatched, and exactly one rollout of the right digest, counted from the GitHub
 * emulator's and the cluster's own records.
 *
 * Points run in lanes side by side: each lane has its own worker process and task queue, so a kill in one lane hits
 * only its own deploy (and its own pacing of GitHub writes, so no lane waits on the writes of another). One
 * more worker, never killed and serving no deploys, receives the CI's webhooks and signals whichever deploy they name.
 *
 * The same matrix runs against GitLab CI (FLUI_CI=gitlab, the GitLab emulator, projects in a nested group): its
 * requests found by the same census, counted from GitLab's records (commits, pipelines created) and job traces.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pipelinePath, pushSecretNames } from '../../src/ci/github/pipeline-file.ts';
import { pushVariableNames } from '../../src/ci/gitlab/pipeline-file.ts';
import { startDeploy } from '../../src/client/index.ts';
import type { LocalStack } from '../../dev/stack.ts';
import { readHistory } from '../../src/kube/history.ts';
import { kubeClients } from '../../src/kube/rollout.ts';
import type { Application } from '../../src/manifest/schema.ts';
import { ciImageTag, type DeployOutcome } from '../../src/workflows/contract.ts';
import { registryDigest } from '../self-hosted/base.ts';
import { assertContract } from '../helpers/github-emulator.ts';
import { assertGitLabContract, pipelineConclusion } from '../helpers/gitlab-emulator.ts';
import { ciJobLogs, gitlabJobTraces, scanForSecrets } from '../helpers/secrets.ts';
import { createApplication, eventually, useStack } from '../helpers/stack.ts';
import { startWorkerProcess, writeBundleFile, type WorkerProcess } from '../helpers/worker-process.ts';

/** A first deploy of an app; a redeploy of the same manifest; a redeploy that changes the pipeline file. */
type Scenario = 'first' | 'unchanged' | 'changed';
const SCENARIOS: Scenario[] = ['first', 'unchanged', 'changed'];

/** Before or after a request the CI's API received (GitHub's or GitLab's, per the backend under test). */
type RequestPoint = {
  kind: 'request';
  scenario: Scenario;
  request: string;
  occurrence: number;
  stage: 'before' | 'after';
};
type KillPoint =
  | RequestPoint
  | { kind: 'history'; scenario: Scenario; event: `${'scheduled' | 'completed' | 'signaled'} ${string}` }
  | { kind: 'cluster'; scenario: Scenario; when: 'applied' | 'recorded' }
  | { kind: 'ci-finishes-while-down'; scenario: Scenario };

/** Lanes at once: each a worker process with one deploy in flight. */
const LANES = 8;

const PHASE_POINTS: KillPoint[] = [
  { kind: 'history', scenario: 'first', event: 'completed ensureWorkflowFile' },
  { kind: 'history', scenario: 'first', event: 'completed ensureRegistryCredential' },
  { kind: 'history', scenario: 'first', event: 'scheduled triggerRun' },
  { kind: 'history', scenario: 'first', event: 'completed triggerRun' },
  { kind: 'history', scenario: 'first', event: 'signaled runCompleted' },
  { kind: 'history', scenario: 'first', event: 'scheduled resolveImage' },
  { kind: 'history', scenario: 'first', event: 'completed resolveImage' },
  { kind: 'history', scenario: 'first', event: 'scheduled rolloutImage' },
  { kind: 'history', scenario: 'unchanged', event: 'scheduled triggerRun' },
  { kind: 'cluster', scenario: 'first', when: 'applied' },
  { kind: 'cluster', scenario: 'first', when: 'recorded' },
  { kind: 'cluster', scenario: 'changed', when: 'recorded' },
  { kind: 'ci-finishes-while-down', scenario: 'first' },
  { kind: 'ci-finishes-while-down', scenario: 'unchanged' },
];

function describePoint(p: KillPoint): string {
  switch (p.kind) {
    case 'request':
      return `${p.scenario}: ${p.stage} ${p.request} #${p.occurrence}`;
    case 'history':
      return `${p.scenario}: history ${p.event}`;
    case 'cluster':
      return `${p.scenario}: cluster ${p.when}`;
    default:
      return `${p.scenario}: the CI run finishes while no worker runs`;
  }
}

/** True once the workflow's history holds `event` (an activity scheduled or completed, a signal received). */
async function inHistory(
  s: LocalStack,
  workflowId: string,
  event: Extract<KillPoint, { kind: 'history' }>['event'],
): Promise<true | undefined> {
  const [stage, type] = event.split(' ') as [string, string];
  const { events } = await s.client.workflow.getHandle(workflowId).fetchHistory();
  const scheduled = new Map<string, string>();
  for (const e of events ?? []) {
    const a = e.activityTaskScheduledEventAttributes;
    if (a) scheduled.set(String(e.eventId), a.activityType?.name ?? '');
    if (stage === 'scheduled' && a?.activityType?.name === type) return true;
    const c = e.activityTaskCompletedEventAttributes;
    if (stage === 'completed' && c && scheduled.get(String(c.scheduledEventId)) === type) return true;
    if (stage === 'signaled' && e.workflowExecutionSignaledEventAttributes?.signalName === type) return true;
  }
  return undefined;
}

interface Deploy {
  point: KillPoint;
  app: Application;
  repo: string;
  /** The emulator's counts before this deploy started. */
  before: Counts;
  workflowId: string;
  deployId: string;
}

/** What the emulator counted for an app: pipeline commits, CI runs dispatched (pipelines created), runs it holds. */
interface Counts {
  commits: number;
  dispatches: number;
  runs: number;
}

/** A CI run as the emulator records it: `conclusion` is set (the CI's own word) once it has finished. */
interface CiRunRecord {
  conclusion: string | null | undefined;
  digest?: string;
}

/** The CI backend under test, seen through its emulator's own records: what the matrix needs to know of it. */
interface CiUnderTest {
  /** The service's name, in messages. */
  service: string;
  /**
   * The status poll of a CI run: how often it happens depends on timing (the webhook usually wins), so only the first
   * one is a kill point.
   */
  poll: string;
  /** Calls `hook` before and after each request, with the repository (project) it names and `METHOD /operation`. */
  onRequest(hook: (repo: string | undefined, request: string, stage: 'before' | 'after') => Promise<void>): void;
  counts(app: Application): Counts;
  runs(repo: string): CiRunRecord[];
  /** The success conclusion. */
  success: string;
  /** The registry password as the CI holds it for the app's pushes, decoded. */
  credential(app: Application): string | undefined;
  /** The secrets of this backend's configuration, scanned for with the registry password. */
  secrets: string[];
  jobLogs(): { where: string; text: string }[];
}

function githubUnderTest(s: LocalStack): CiUnderTest {
  const gh = s.github!;
  return {
    service: 'GitHub',
    poll: 'GET /repos/{owner}/{repo}/actions/runs/{run_id}',
    onRequest(hook) {
      gh.hooks.before = (info) => hook(info.repo, `${info.method} ${info.operation}`, 'before');
      gh.hooks.after = (info) => hook(info.repo, `${info.method} ${info.operation}`, 'after');
    },
    counts(app) {
      const repo = app.spec.source.repository;
      return {
        commits: gh.records.commits[`${repo}:${pipelinePath(app)}`] ?? 0,
        dispatches: gh.records.dispatches[repo] ?? 0,
        runs: gh.runs(repo).length,
      };
    },
    runs: (repo) => gh.runs(repo),
    success: 'success',
    credential: (app) => gh.secretValue(app.spec.source.repository, pushSecretNames(app).password),
    secrets: [s.env.GITHUB_TOKEN!, s.env.GITHUB_WEBHOOK_SECRET!],
    jobLogs: () => ciJobLogs(gh),
  };
}

function gitlabUnderTest(s: LocalStack): CiUnderTest {
  const gl = s.gitlab!;
  return {
    service: 'GitLab',
    poll: 'GET /projects/:id/pipelines/:pipeline_id',
    onRequest(hook) {
      gl.hooks.before = (info) => hook(info.project, `${info.method} ${info.operation}`, 'before');
      gl.hooks.after = (info) => hook(info.project, `${info.method} ${info.operation}`, 'after');
    },
    counts(app) {
      const repo = app.spec.source.repository;
      return {
        // One commit carries the job file and the entry file together.
        commits: gl.records.commits[repo] ?? 0,
        dispatches: gl.records.pipelinesCreated[repo] ?? 0,
        runs: gl.pipelines(repo).length,
      };
    },
    runs: (repo) => gl.pipelines(repo).map((p) => ({ conclusion: pipelineConclusion(p), digest: p.digest })),
    success: 'success',
    credential(app) {
      const value = gl.variableValue(app.spec.source.repository, pushVariableNames(app).password);
      return value === undefined ? undefined : Buffer.from(value, 'base64').toString('utf8');
    },
    secrets: [s.env.GITLAB_TOKEN!, s.env.GITLAB_WEBHOOK_SECRET!, s.env.GITLAB_WEBHOOK_SIGNING_TOKEN!],
    jobLogs: () => gitlabJobTraces(gl),
  };
}

/**
 * The crash matrix on a stack without a worker: a census of the CI requests each scenario makes, then every kill point
 * (those requests, before and after, and `phasePoints`) on LANES lanes, then the secret scan. `label` names the
 * backend in the printed summary.
 */
async function crashMatrix(
  s: LocalStack,
  ci: CiUnderTest,
  running: Set<WorkerProcess>,
  { label, phasePoints, minPoints }: { label: string; phasePoints: KillPoint[]; minPoints: number },
): Promise<void> {
  const k = kubeClients(s.env.KUBECONFIG);
  const bundleFile = await writeBundleFile(s.dataDir);
  let spawned = 0;
  let kills = 0;

  const spawnWorker = async (env: Record<string, string>) => {
    const logFile = join(s.dataDir, `worker-${++spawned}.log`);
    const w = await startWorkerProcess(env, { bundleFile, logFile, timeoutMs: 60_000 });
    running.add(w);
    if (spawned === 1) {
      // Launched as in production (`npm run worker`): with the heap limits BENCHMARKS.md measured.
      const argv = readFileSync(`/proc/${w.pid}/cmdline`, 'utf8').split('\0');
      assert.ok(argv.includes('--max-old-space-size=256') && argv.includes('--max-semi-space-size=2'), argv.join(' '));
    }
    return w;
  };
  const killWorker = async (w: WorkerProcess) => {
    await w.kill();
    running.delete(w);
    kills++;
  };
  /** The webhook receiver's worker: its task queue gets no deploys, and it is never killed. */
  await spawnWorker({ ...s.env, FLUI_TASK_QUEUE: 'flui-crash-webhooks' });
  /** A lane's worker: its own task queue, no webhook receiver (the port is the receiver's). */
  const laneEnv = (lane: number) => {
    const env: Record<string, string> = { ...s.env, FLUI_TASK_QUEUE: `flui-crash-lane-${lane}` };
    delete env.FLUI_WEBHOOK_PORT;
    return env;
  };

  // ---- CI request hooks: a census of what a deploy asks, and requests held at armed kill points ----
  let census: { repo: string; requests: string[] } | undefined;
  const armed = new Map<string, { point: RequestPoint; seen: number; reached: () => void; release: Promise<void> }>();
  ci.onRequest(async (repo, request, stage) => {
    if (stage === 'before' && census && repo === census.repo) census.requests.push(request);
    const a = repo ? armed.get(repo) : undefined;
    if (!a || a.point.stage !== stage || a.point.request !== request) return;
    if (++a.seen !== a.point.occurrence) return;
    a.reached();
    await a.release; // the worker dies while the CI holds this request
    // "before": the request died with the worker, and the CI never acted on it.
    if (stage === 'before') throw new Error(`the client went away before ${ci.service} handled the request`);
  });

  const deploy = (app: Application, taskQueue: string) => startDeploy(s.client, app, { taskQueue });
  const result = async (workflowId: string) =>
    (await s.client.workflow.getHandle(workflowId).result()) as DeployOutcome;

  /** An app ready for the scenario: for the redeploys, deployed once already (without kills). */
  const prepare = async (scenario: Scenario, taskQueue: string): Promise<Application> => {
    const app = await createApplication(s, { deploy: { progressDeadlineSeconds: 60 } });
    if (scenario === 'first') return app;
    await result((await deploy(app, taskQueue)).workflowId);
    return scenario === 'unchanged'
      ? app
      : { ...app, spec: { ...app.spec, source: { ...app.spec.source, buildArgs: { FLUI_CHANGE: '2' } } } };
  };
  const counts = (app: Application) => ci.counts(app);

  /** What the emulator and the cluster recorded for this deploy: exactly one of each, and the right digest. */
  const verify = async (d: Deploy) => {
    const what = describePoint(d.point);
    const outcome = await result(d.workflowId);
    assert.equal(outcome.phase, 'succeeded', what);
    const now = counts(d.app);
    assert.equal(now.commits - d.before.commits, d.point.scenario === 'unchanged' ? 0 : 1, `${what}: commits`);
    assert.equal(now.dispatches - d.before.dispatches, 1, `${what}: CI runs dispatched`);
    const runs = ci.runs(d.repo).slice(d.before.runs);
    assert.equal(runs.length, 1, `${what}: CI runs`);
    assert.equal(runs[0]!.conclusion, ci.success, what);
    assert.equal(outcome.digest, runs[0]!.digest, `${what}: the digest the CI pushed`);
    assert.equal(ci.credential(d.app), s.env.REGISTRY_PASSWORD, `${what}: credential`);
    const name = d.app.metadata.name;
    const deployment = await k.apps.readNamespacedDeployment({ name, namespace: 'default' });
    assert.equal(deployment.spec?.template.spec?.containers[0]?.image, outcome.image, `${what}: the running image`);
    const sets = await k.apps.listNamespacedReplicaSet({
      namespace: 'default',
      labelSelector: `app.kubernetes.io/name=${name}`,
    });
    const rolled = sets.items.filter((rs) => rs.spec?.template?.spec?.containers[0]?.image === outcome.image);
    assert.equal(rolled.length, 1, `${what}: ReplicaSets of the digest`);
    const entries = (await readHistory(k, 'default', name)).filter((e) => e.deployId === d.deployId);
    assert.deepEqual(
      entries.map((e) => [e.digest, e.outcome]),
      [[outcome.digest, 'succeeded']],
      `${what}: the rollout recorded once`,
    );
  };

  /** Resolves once the deploy is at a phase or rollout point, seen in its history or in the cluster. */
  const reach = async (point: Exclude<KillPoint, RequestPoint>, d: Deploy) => {
    const name = d.app.metadata.name;
    await eventually(
      async () => {
        if (point.kind === 'ci-finishes-while-down') return ci.runs(d.repo).length > d.before.runs || undefined;
        if (point.kind === 'cluster' && point.when === 'recorded') {
          const entries = await readHistory(k, 'default', name).catch(() => []);
          return entries.some((e) => e.deployId === d.deployId) || undefined;
        }
        if (point.kind === 'cluster') {
          const dep = await k.apps.readNamespacedDeployment({ name, namespace: 'default' }).catch(() => undefined);
          return dep?.metadata?.annotations?.['flui.dev/deploy-id'] === d.deployId || undefined;
        }
        return inHistory(s, d.workflowId, point.event);
      },
      60_000,
      describePoint(point),
    );
  };

  /** One kill point: a deploy on the lane's worker, the kill at the point, a new worker, the checks. */
  const runPoint = async (point: KillPoint, lane: number, worker: WorkerProcess): Promise<WorkerProcess> => {
    const env = laneEnv(lane);
    const app = await prepare(point.scenario, env.FLUI_TASK_QUEUE!);
    const repo = app.spec.source.repository;
    let release = () => undefined as void;
    let reached: Promise<void> | undefined;
    if (point.kind === 'request') {
      const released = new Promise<void>((resolve) => (release = resolve));
      reached = new Promise<void>((resolve) =>
        armed.set(repo, { point, seen: 0, reached: resolve, release: released }),
      );
    }
    const d: Deploy = { point, app, repo, before: counts(app), ...(await deploy(app, env.FLUI_TASK_QUEUE!)) };
    try {
      if (reached) {
        const timeout = new AbortController();
        const first = await Promise.race([
          reached.then(() => 'reached'),
          result(d.workflowId).then(
            () => 'the deploy ended first',
            () => 'the deploy ended first',
          ),
          sleep(60_000, 'still not after 60 s', { signal: timeout.signal }),
        ]);
        timeout.abort();
        if (first !== 'reached') throw new Error(`never reached ${describePoint(point)}: ${first}`);
      } else await reach(point as Exclude<KillPoint, RequestPoint>, d);
      await killWorker(worker);
    } finally {
      release();
      armed.delete(repo);
    }
    if (point.kind === 'ci-finishes-while-down') {
      await eventually(
        () => ci.runs(repo)[d.before.runs]!.conclusion || undefined,
        60_000,
        `${describePoint(point)}: the run`,
      );
    }
    const next = await spawnWorker(env);
    await verify(d);
    return next;
  };

  // ---- Census: the CI requests of each scenario, in order ----
  const points: KillPoint[] = [];
  const censusCounts: Partial<Record<Scenario, number>> = {};
  const censusWorker = await spawnWorker(laneEnv(0));
  for (const scenario of SCENARIOS) {
    const app = await prepare(scenario, laneEnv(0).FLUI_TASK_QUEUE!);
    census = { repo: app.spec.source.repository, requests: [] };
    await result((await deploy(app, laneEnv(0).FLUI_TASK_QUEUE!)).workflowId);
    const seen: Record<string, number> = {};
    for (const request of census.requests) {
      seen[request] = (seen[request] ?? 0) + 1;
      if (request === ci.poll && seen[request] > 1) continue;
      for (const stage of ['before', 'after'] as const) {
        points.push({ kind: 'request', scenario, request, occurrence: seen[request], stage });
      }
    }
    censusCounts[scenario] = census.requests.length;
    census = undefined;
  }
  await censusWorker.stop();
  running.delete(censusWorker);
  const requestPoints = points.length;
  points.push(...phasePoints);

  // ---- The matrix: LANES workers, each taking the next point when its last one is done ----
  const started = Date.now();
  const queue = [...points];
  const failures: string[] = [];
  await Promise.all(
    Array.from({ length: LANES }, async (_, lane) => {
      let worker = await spawnWorker(laneEnv(lane));
      for (let point = queue.shift(); point; point = queue.shift()) {
        try {
          worker = await runPoint(point, lane, worker);
        } catch (err) {
          const message = (err as Error).message;
          failures.push(message.startsWith(describePoint(point)) ? message : `${describePoint(point)}: ${message}`);
          if (!running.has(worker)) worker = await spawnWorker(laneEnv(lane));
        }
      }
    }),
  );

  process.stdout.write(
    `# worker crash matrix${label}: ${points.length} kill points (${requestPoints} around ${ci.service} requests, ` +
      `${points.length - requestPoints} at phase boundaries, in the rollout and while CI finishes), ${kills} ` +
      `worker kills in ${Math.round((Date.now() - started) / 1000)} s on ${LANES} lanes; ${ci.service} requests per ` +
      `deploy in the census: ${JSON.stringify(censusCounts)}\n`,
  );
  assert.deepEqual(failures, []);
  assert.ok(points.length >= minPoints, `${points.length} kill points`);
  assert.equal(kills, points.length, 'one kill per point');

  // Crashes and retries log the most: no secret in any history or in the log of any of the workers.
  const logs = Array.from({ length: spawned }, (_, i) => join(s.dataDir, `worker-${i + 1}.log`));
  const secrets = [s.env.REGISTRY_PASSWORD!, ...ci.secrets];
  const scan = await scanForSecrets(s.client, secrets, [...logs, s.temporal!.process.logFile], ci.jobLogs());
  process.stdout.write(
    `# secret scan after the crash matrix: ${scan.workflows} workflows, ${scan.events} events, ` +
      `${scan.logFiles} logs, ${scan.texts} CI job logs, ${scan.bytes} bytes, ${scan.hits.length} hits\n`,
  );
  assert.ok(scan.workflows >= points.length && scan.logFiles >= kills, 'the scan saw the deploys and workers');
  assert.ok(scan.texts >= points.length, 'the scan saw the CI job logs');
  assert.deepEqual(scan.hits, []);
}

describe('worker crash matrix', () => {
  const stack = useStack({ worker: false });
  after(() => assertContract(stack().github!));
  const running = new Set<WorkerProcess>();
  after(() => Promise.all([...running].map((w) => w.kill())));

  it('completes every deploy with one commit, one CI run and one rollout, whatever line the worker died on', () =>
    crashMatrix(stack(), githubUnderTest(stack()), running, { label: '', phasePoints: PHASE_POINTS, minPoints: 50 }));
});

describe('worker crash matrix: GitLab CI', () => {
  const stack = useStack({ ci: 'gitlab', worker: false });
  after(() => assertGitLabContract(stack().gitlab!));
  const running = new Set<WorkerProcess>();
  after(() => Promise.all([...running].map((w) => w.kill())));

  it('completes every deploy with one commit, one pipeline and one rollout, whatever line the worker died on', () =>
    crashMatrix(stack(), gitlabUnderTest(stack()), running, {
      label: ', GitLab CI',
      phasePoints: PHASE_POINTS,
      minPoints: 40,
    }));
});

/**
 * The same matrix for self-hosted builds (FLUI_CI=self-hosted): the worker, which runs the deploys and their build
 * workflows, is SIGKILLed at the points where this backend could start a second build, lose the build's result or
 * roll out twice: right after the build was started (triggerRun completed), when the build told the deploy it
 * finished (the runCompleted signal), before and inside the rollout, and while the build finishes with no worker
 * running. The builder keeps running (its own deaths are test/self-hosted/builders.test.ts). Each deploy must end
 * with exactly one build workflow, built once, and exactly one rollout of the digest the registry holds under the
 * deploy's own tag.
 */
const SELF_HOSTED_POINTS: KillPoint[] = [
  { kind: 'history', scenario: 'first', event: 'scheduled triggerRun' },
  { kind: 'history', scenario: 'first', event: 'completed triggerRun' },
  { kind: 'history', scenario: 'first', event: 'signaled runCompleted' },
  { kind: 'history', scenario: 'first', event: 'scheduled rolloutImage' },
  { kind: 'cluster', scenario: 'first', when: 'recorded' },
  { kind: 'ci-finishes-while-down', scenario: 'first' },
];

describe('worker crash matrix: self-hosted builds', () => {
  // Sources from a git server, as on premises (the GitHub source is test/self-hosted/deploy.test.ts).
  const stack = useStack({
    ci: 'self-hosted',
    buildSource: 'git',
    // Builds tell their deploys themselves (a signal): no CI webhooks, so lanes' workers share no port.
    webhooks: false,
    worker: false,
    builder: true,
    env: { FLUI_BUILD_CONCURRENCY: '4' },
  });
  const running = new Set<WorkerProcess>();
  after(() => Promise.all([...running].map((w) => w.kill())));

  it('completes every deploy with one build and one rollout, whatever line the worker died on', async () => {
    const s = stack();
    const k = kubeClients(s.env.KUBECONFIG);
    const bundleFile = await writeBundleFile(s.dataDir);
    let spawned = 0;
    const spawnWorker = async (lane: number) => {
      const logFile = join(s.dataDir, `sh-worker-${++spawned}.log`);
      const w = await startWorkerProcess(
        { ...s.env, FLUI_TASK_QUEUE: `flui-sh-crash-${lane}` },
        { bundleFile, logFile, timeoutMs: 60_000 },
      );
      running.add(w);
      return w;
    };
    const result = async (workflowId: string) =>
      (await s.client.workflow.getHandle(workflowId).result()) as DeployOutcome;
    const buildOf = (deployId: string) => s.client.workflow.getHandle(`build-${deployId}`);

    const runPoint = async (point: KillPoint, lane: number) => {
      const what = describePoint(point);
      const worker = await spawnWorker(lane);
      const app = await createApplication(s, { deploy: { progressDeadlineSeconds: 60 } });
      const name = app.metadata.name;
      const { workflowId, deployId } = await startDeploy(s.client, app, { taskQueue: `flui-sh-crash-${lane}` });
      await eventually(
        async () => {
          if (point.kind === 'ci-finishes-while-down') {
            // The build has been handed to the builder: kill the worker now, and the build ends while it is down.
            const d = await buildOf(deployId)
              .describe()
              .catch(() => undefined);
            return (d?.raw.pendingActivities?.length ?? 0) > 0 || undefined;
          }
          if (point.kind === 'cluster') {
            const entries = await readHistory(k, 'default', name).catch(() => []);
            return entries.some((e) => e.deployId === deployId) || undefined;
          }
          if (point.kind !== 'history') return undefined;
          return inHistory(s, workflowId, point.event);
        },
        120_000,
        what,
      );
      await worker.kill();
      running.delete(worker);
      if (point.kind === 'ci-finishes-while-down') {
        // The builder finishes and reports while no worker runs: the build workflow takes it up with the next one.
        await eventually(
          async () => {
            const d = await buildOf(deployId).describe();
            const activity = d.raw.pendingActivities?.[0];
            return (d.status.name === 'RUNNING' && !activity) || undefined;
          },
          120_000,
          `${what}: the build activity to complete`,
        );
      }
      const next = await spawnWorker(lane);
      try {
        const outcome = await result(workflowId);
        assert.equal(outcome.phase, 'succeeded', what);
        // One build workflow for the deploy, built once (the builder never died), its digest rolled out once.
        const builds = [];
        for await (const b of s.client.workflow.list({ query: `WorkflowId = "build-${deployId}"` })) builds.push(b);
        assert.equal(builds.length, 1, `${what}: build workflows`);
        const history = await buildOf(deployId).fetchHistory();
        const starts = (history.events ?? []).filter((e) => e.activityTaskStartedEventAttributes);
        assert.deepEqual(
          starts.map((e) => e.activityTaskStartedEventAttributes!.attempt),
          [1],
          `${what}: built once`,
        );
        const tagged = await registryDigest(s, app, ciImageTag(deployId));
        assert.equal(outcome.digest, tagged, `${what}: the digest of the deploy's own tag`);
        const deployment = await k.apps.readNamespacedDeployment({ name, namespace: 'default' });
        assert.equal(deployment.spec?.template.spec?.containers[0]?.image, outcome.image, `${what}: running image`);
        const entries = (await readHistory(k, 'default', name)).filter((e) => e.deployId === deployId);
        assert.deepEqual(
          entries.map((e) => [e.digest, e.outcome]),
          [[outcome.digest, 'succeeded']],
          `${what}: the rollout recorded once`,
        );
      } finally {
        await next.stop();
        running.delete(next);
      }
    };

    const started = Date.now();
    const failures: string[] = [];
    await Promise.all(
      SELF_HOSTED_POINTS.map((point, lane) =>
        runPoint(point, lane).catch((err: unknown) => {
          failures.push(`${describePoint(point)}: ${(err as Error).message}`);
        }),
      ),
    );
    process.stdout.write(
      `# worker crash matrix, self-hosted: ${SELF_HOSTED_POINTS.length} kill points in ` +
        `${Math.round((Date.now() - started) / 1000)} s\n`,
    );
    assert.deepEqual(failures, []);
  });
});
