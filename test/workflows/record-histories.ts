/**
 * Records the histories that replay.unit.test.ts replays: each scenario runs deployWorkflow for real on a Temporal
 * dev server, with the stub activities of the logic tests, and every run's history is stored as
 * test/workflows/histories/<scenario>.json (a run it continued as: <scenario>.<n>.json; the format is in
 * history-files.ts).
 *
 *   npm run record-histories                      records the scenarios that have no history yet
 *   npm run record-histories -- --force <name>…   records those scenarios again
 *
 * Histories stand for deploys in flight when a new worker starts. Do not record one again because deploy.ts changed
 * and it stopped replaying: that failure is the point (the change needs `patched()`). Add a scenario instead, and
 * when a change is patched, record its scenarios with the workflow code from before the change (`source` below).
 * Needs `npm run setup` (the dev server).
 */
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Client, WorkflowHandle } from '@temporalio/client';
import {
  bundleWorkflowCode,
  DefaultLogger,
  Worker,
  type NativeConnection,
  type WorkflowBundleWithSourceMap,
} from '@temporalio/worker';
import { format, resolveConfig } from 'prettier';
import { rollback, startDeploy } from '../../src/client/index.ts';
import type { DeployPolicy, Manifest } from '../../src/manifest/schema.ts';
import {
  cancelSignal,
  FailureType,
  retrySignal,
  runCompletedSignal,
  statusQuery,
} from '../../src/workflows/contract.ts';
import {
  STUB_WORKER_OPTIONS,
  StubActivities,
  stubApplication,
  stubCatalogApp,
  type ActivityName,
} from '../fixtures/deploy-activities.ts';
import { pollUntil } from '../helpers/eventually.ts';
import { HISTORIES_DIR, historyToText, type History } from './history-files.ts';
import { bundleSrc, srcAt } from './workflow-code.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Workflow code to record with: the working tree, or `src/` as it was at a commit. */
type Source = 'working tree' | { commit: string; why: string };

/** The code before the undo of a cancelled rollout (af7f632, then patched as `undo-cancelled-rollout` in 094f8fc). */
const BEFORE_UNDO: Source = { commit: '8de41d4', why: 'before the undo of a cancelled rollout' };

interface Run {
  /** The app of this scenario (its name): a workflow id of its own. */
  app: string;
  client: Client;
  taskQueue: string;
  stubs: StubActivities;
  /** Starts (or reaches) the app's deploy, as `flui deploy` does; returns the run that received the request. */
  deploy(manifest: Manifest, policy?: DeployPolicy): Promise<FirstRun>;
}

type FirstRun = WorkflowHandle & { runId: string };

interface Scenario {
  name: string;
  source: Source;
  /** Sets up the stubs before the worker starts. */
  stubs?(stubs: StubActivities): void;
  /** Drives the deploy and returns its first run; the recorder waits for the app's last run to end. */
  run(r: Run): Promise<FirstRun>;
}

const held = (r: Run, name: ActivityName, nth = 0) =>
  pollUntil(() => r.stubs.inputs(name)[nth], { what: `${name} called`, timeoutMs: 60_000, intervalMs: 50 });

const phase = (handle: WorkflowHandle, wanted: string) =>
  pollUntil(async () => ((await handle.query(statusQuery)).phase === wanted ? true : undefined), {
    what: `phase ${wanted}`,
    timeoutMs: 60_000,
    intervalMs: 50,
  });

/** A deploy cancelled (through Temporal, or the `cancel` signal) while `activity` is held in flight. */
function cancelledWhile(name: string, source: Source, activity: ActivityName, how: 'temporal' | 'signal'): Scenario {
  return {
    name,
    source,
    stubs: (stubs) => void stubs.hold(activity),
    async run(r) {
      const handle = await r.deploy(stubApplication(r.app));
      await held(r, activity);
      if (how === 'temporal') await handle.cancel();
      else await handle.signal(cancelSignal, { reason: 'wrong branch' });
      return handle;
    },
  };
}

export const SCENARIOS: Scenario[] = [
  {
    name: 'application-succeeded',
    source: 'working tree',
    run: (r) => r.deploy(stubApplication(r.app)),
  },
  {
    name: 'catalog-app-succeeded',
    source: 'working tree',
    run: (r) => r.deploy(stubCatalogApp(r.app)),
  },
  {
    name: 'rollback-succeeded',
    source: 'working tree',
    async run(r) {
      const started = await rollback(r.client, 'default', r.app, { taskQueue: r.taskQueue });
      return Object.assign(r.client.workflow.getHandle(started.workflowId, started.runId), { runId: started.runId });
    },
  },
  {
    name: 'build-failed-then-retried',
    source: 'working tree',
    stubs(stubs) {
      let polls = 0;
      stubs.answer('awaitRun', ({ run }) => ({
        conclusion: ++polls === 1 ? 'failure' : 'success',
        htmlUrl: run.htmlUrl,
        headSha: 'c'.repeat(40),
      }));
    },
    async run(r) {
      const handle = await r.deploy(stubApplication(r.app, { retryWindowMinutes: 60 }));
      await phase(handle, 'awaiting-retry');
      await handle.signal(retrySignal);
      return handle;
    },
  },
  {
    name: 'failed-without-retry-window',
    source: 'working tree',
    stubs: (stubs) => stubs.fail('resolveImage', 'image not found', { type: FailureType.NotFound }),
    run: (r) => r.deploy(stubApplication(r.app, { retryWindowMinutes: 0 })),
  },
  {
    name: 'superseded-while-building',
    source: 'working tree',
    stubs: (stubs) => void stubs.hold('awaitRun'),
    async run(r) {
      const first = await r.deploy(stubApplication(r.app));
      await held(r, 'awaitRun');
      await r.deploy(stubApplication(r.app), 'supersede');
      return first;
    },
  },
  {
    name: 'queued-two-behind',
    source: 'working tree',
    stubs: (stubs) => void stubs.hold('awaitRun'),
    async run(r) {
      const first = await r.deploy(stubApplication(r.app));
      await held(r, 'awaitRun');
      await r.deploy(stubApplication(r.app), 'queue');
      await r.deploy(stubApplication(r.app), 'queue');
      await pollUntil(async () => ((await first.query(statusQuery)).queued.length === 2 ? true : undefined), {
        what: 'two queued',
        timeoutMs: 60_000,
        intervalMs: 50,
      });
      r.stubs.releaseAll();
      return first;
    },
  },
  cancelledWhile('cancelled-mid-rollout', 'working tree', 'rolloutImage', 'temporal'),
  cancelledWhile('cancelled-by-signal-mid-rollout', 'working tree', 'rolloutImage', 'signal'),
  cancelledWhile('cancelled-by-signal-while-building', 'working tree', 'awaitRun', 'signal'),
  {
    name: 'cancelled-mid-dispatch',
    source: 'working tree',
    stubs: (stubs) => void stubs.hold('triggerRun'),
    async run(r) {
      const handle = await r.deploy(stubApplication(r.app));
      await held(r, 'triggerRun');
      await handle.cancel();
      // The workflow waits for the dispatch to land (a timer bounds the wait), then cancels the run it created.
      await pollUntil(
        async () =>
          ((await handle.fetchHistory()).events ?? []).some((e) => e.timerStartedEventAttributes) || undefined,
        { what: 'the wait for the dispatch', timeoutMs: 60_000, intervalMs: 50 },
      );
      r.stubs.releaseAll();
      return handle;
    },
  },
  {
    name: 'webhook-won-the-race',
    source: 'working tree',
    stubs: (stubs) => void stubs.hold('awaitRun'),
    async run(r) {
      const handle = await r.deploy(stubApplication(r.app));
      await held(r, 'awaitRun');
      const { deployId } = await handle.query(statusQuery);
      await handle.signal(runCompletedSignal, {
        deployId,
        runId: '1',
        result: { conclusion: 'success', htmlUrl: 'https://ci.test/runs/1', headSha: 'w'.repeat(40) },
      });
      return handle;
    },
  },
  {
    name: 'before-undo-application-succeeded',
    source: BEFORE_UNDO,
    run: (r) => r.deploy(stubApplication(r.app)),
  },
  cancelledWhile('before-undo-cancelled-mid-rollout', BEFORE_UNDO, 'rolloutImage', 'temporal'),
  cancelledWhile('before-undo-cancelled-by-signal-mid-rollout', BEFORE_UNDO, 'rolloutImage', 'signal'),
];

/** The workflow code of `source`, bundled. */
function bundleOf(source: Source): Promise<WorkflowBundleWithSourceMap> {
  if (source === 'working tree') {
    return bundleWorkflowCode({
      workflowsPath: join(ROOT, 'src/workflows/index.ts'),
      logger: new DefaultLogger('WARN'),
    });
  }
  return bundleSrc(srcAt(source.commit));
}

/** Every run of the deploy from `first` on, following continue-as-new. */
async function runsFrom(client: Client, first: FirstRun): Promise<History[]> {
  const histories: History[] = [];
  for (let runId: string | null | undefined = first.runId; runId;) {
    const history = await client.workflow.getHandle(first.workflowId, runId).fetchHistory();
    histories.push(history);
    runId = history.events?.at(-1)?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId;
  }
  return histories;
}

async function record(scenario: Scenario, client: Client, nativeConnection: NativeConnection): Promise<History[]> {
  const stubs = new StubActivities();
  scenario.stubs?.(stubs);
  const taskQueue = `record-${scenario.name}`;
  const worker = await Worker.create({
    connection: nativeConnection,
    taskQueue,
    workflowBundle: await bundleOf(scenario.source),
    activities: stubs.activities,
    ...STUB_WORKER_OPTIONS,
  });
  return worker.runUntil(async () => {
    const r: Run = {
      app: scenario.name,
      client,
      taskQueue,
      stubs,
      async deploy(manifest, policy) {
        const started = await startDeploy(client, manifest, { taskQueue, policy });
        return Object.assign(client.workflow.getHandle(started.workflowId, started.runId), { runId: started.runId });
      },
    };
    const first = await scenario.run(r);
    // Follows the runs it continued as; a failed or cancelled deploy is a history like any other.
    await first.result().catch(() => undefined);
    stubs.releaseAll();
    return runsFrom(client, first);
  });
}

async function main(args: string[]): Promise<void> {
  const force = args[0] === '--force' ? new Set(args.slice(1)) : undefined;
  const unknown = [...(force ?? [])].filter((name) => !SCENARIOS.some((s) => s.name === name));
  if (unknown.length) throw new Error(`no scenario named ${unknown.join(', ')}`);
  await mkdir(HISTORIES_DIR, { recursive: true });
  const existing = new Set(await readdir(HISTORIES_DIR));
  const todo = SCENARIOS.filter((s) => (force ? force.has(s.name) : !existing.has(`${s.name}.json`)));
  if (!todo.length) {
    process.stdout.write('every scenario has its history; --force <name> records one again\n');
    return;
  }
  const prettier = { ...(await resolveConfig(join(HISTORIES_DIR, 'x.json'))), parser: 'json' };
  // Imported here: the helper installs the SDK's runtime, which the replay test (importing SCENARIOS) sets up itself.
  const { startTestTemporal } = await import('../helpers/temporal.ts');
  const temporal = await startTestTemporal();
  try {
    for (const scenario of todo) {
      const histories = await record(scenario, temporal.client, temporal.nativeConnection);
      for (const file of existing) {
        if (file === `${scenario.name}.json` || file.startsWith(`${scenario.name}.`)) {
          await rm(join(HISTORIES_DIR, file));
        }
      }
      for (const [i, history] of histories.entries()) {
        const file = join(HISTORIES_DIR, i === 0 ? `${scenario.name}.json` : `${scenario.name}.${i + 1}.json`);
        await writeFile(file, await format(historyToText(history), prettier));
      }
      const from =
        scenario.source === 'working tree' ? 'the working tree' : `${scenario.source.commit} (${scenario.source.why})`;
      process.stdout.write(`${scenario.name}: ${histories.length} run(s), recorded with ${from}\n`);
    }
  } finally {
    await temporal.stop();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}
