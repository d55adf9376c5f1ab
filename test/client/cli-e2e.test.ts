/**
 * `flui` end to end: the real command (a child process) drives real deploys through the whole local stack — Temporal
 * dev server, the worker running the real deploy workflow, the GitHub emulator whose runner pushes real images to the
 * registry, and a kwok cluster. Exit codes and --json output are what scripts rely on, so they are checked here.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { follow, startDeploy, type Build, type BuildLogs, type ImageListing } from '../../src/client/index.ts';
import { EXIT } from '../../src/cli/exit.ts';
import type { Manifest } from '../../src/manifest/schema.ts';
import type { DeployStatus } from '../../src/workflows/contract.ts';
import { createApplication, eventually, useStack } from '../helpers/stack.ts';
import { events, flui, json, startFlui, type FluiRun, type RunningFlui } from './flui.ts';

type Event = { event: 'started'; deployId: string } | { event: 'status'; status: DeployStatus } | FinishedEvent;
type FinishedEvent = { event: 'finished'; phase: string; exitCode: number };

const statuses = (run: FluiRun) => events<Event>(run).flatMap((e) => (e.event === 'status' ? [e.status] : []));

/** Resolves once the running `--follow --json` command has reported `phase`. */
function reached(running: RunningFlui, phase: DeployStatus['phase']): Promise<true> {
  return eventually(
    () => (running.stdout().includes(`"phase":"${phase}"`) ? true : undefined),
    60_000,
    `phase ${phase} in --follow output`,
  );
}

describe('flui end to end on the local stack', () => {
  const stack = useStack();
  let env: Record<string, string>;
  let log: string;

  before(() => {
    const s = stack();
    // Only what the CLI needs: it never sees the GitHub token or the registry password the worker uses.
    env = {
      TEMPORAL_ADDRESS: s.env.TEMPORAL_ADDRESS!,
      FLUI_TASK_QUEUE: s.config.temporal.taskQueue,
      KUBECONFIG: s.env.KUBECONFIG!,
      ...(s.temporal?.uiUrl ? { TEMPORAL_UI_URL: s.temporal.uiUrl } : {}),
    };
    log = join(s.dataDir, 'flui-cli.log');
  });

  async function manifestFile(app: Manifest): Promise<string> {
    const file = join(stack().dataDir, `${app.metadata.name}.yaml`);
    await writeFile(file, stringify(app));
    return file;
  }

  it('deploy --follow --json builds and rolls out (exit 0); status, builds, logs and images report it', async () => {
    const s = stack();
    const app = await createApplication(s);
    const name = app.metadata.name;
    const run = await flui(['deploy', await manifestFile(app), '--follow', '--json'], env, log);
    assert.equal(run.code, EXIT.ok, run.transcript);
    const all = events<Event>(run);
    assert.equal(all[0]!.event, 'started');
    const deployId = (all[0] as { deployId: string }).deployId;
    // Polled every 500 ms, a quick phase may pass unseen; what is seen comes in pipeline order.
    const phases = statuses(run).map((st) => st.phase);
    const order = ['queued', 'preparing', 'building', 'resolving', 'rolling-out', 'succeeded'];
    assert.deepEqual(
      phases,
      [...phases].sort((a, b) => order.indexOf(a) - order.indexOf(b)),
    );
    assert.ok(phases.includes('building'));
    assert.equal(phases.at(-1), 'succeeded');
    assert.deepEqual(all.at(-1), { event: 'finished', phase: 'succeeded', exitCode: 0 });
    const last = statuses(run).at(-1)!;
    const ciRun = s.github!.runs(app.spec.source.repository)[0]!;
    assert.equal(last.digest, ciRun.digest);
    const runPage = new RegExp(`/acme/${name}/actions/runs/${ciRun.id}$`);
    assert.match(last.ciRun?.htmlUrl ?? '', runPage);

    const st = json<DeployStatus & { source: string }>(await flui(['status', name, '--json'], env, log));
    assert.equal(st.deployId, deployId);
    assert.equal(st.phase, 'succeeded');
    assert.equal(st.digest, ciRun.digest);
    assert.equal(st.commit, ciRun.headSha);

    const builds = await eventually(async () => {
      const list = json<Build[]>(await flui(['builds', name, '--json'], env, log));
      return list[0]?.phase === 'succeeded' ? list : undefined;
    });
    assert.equal(builds.length, 1);
    assert.equal(builds[0]!.deployId, deployId);
    assert.equal(builds[0]!.commit, ciRun.headSha);
    assert.equal(builds[0]!.ciRun?.htmlUrl, last.ciRun?.htmlUrl);
    assert.ok(builds[0]!.durationSeconds! > 0);

    const logs = json<BuildLogs>(await flui(['logs', name, '--json'], env, log));
    assert.equal(logs.deployId, deployId);
    assert.match(logs.logsUrl, runPage);

    const images = json<ImageListing[]>(await flui(['images', name, '--json'], env, log));
    assert.deepEqual(
      images.map((i) => [i.digest, i.current, i.deployId]),
      [[ciRun.digest, true, deployId]],
    );
  });

  it('rollback --to an earlier digest goes through the deploy workflow and marks it current', async () => {
    const s = stack();
    const app = await createApplication(s);
    const name = app.metadata.name;
    const file = await manifestFile(app);
    const first = await flui(['deploy', file, '--follow', '--json'], env, log);
    assert.equal(first.code, EXIT.ok, first.transcript);
    const firstDigest = statuses(first).at(-1)!.digest!;
    s.github!.push(app.spec.source.repository, 'main', { 'server.js': 'console.log("v2")\n' }, 'v2');

    // People's view: a line per phase with elapsed time, no terminal control codes when stdout is not a TTY.
    const second = await flui(['deploy', file, '--follow'], env, log);
    assert.equal(second.code, EXIT.ok, second.transcript);
    assert.match(second.stdout, /^deploy of default\/\S+ default\.\S+ started\nWeb UI: http:\/\/127\.0\.0\.1:\d+\//);
    const webUi = /^Web UI: (\S+)$/m.exec(second.stdout)![1]!;
    assert.match(webUi, new RegExp(`/namespaces/default/workflows/deploy-default\\.${name}/[0-9a-f-]{36}/history$`));
    if (s.temporal?.uiUrl) assert.equal((await fetch(webUi)).status, 200, `Web UI answers ${webUi}`);
    assert.match(second.stdout, /^ +\d+\.\ds {2}building {7}CI run http/m);
    assert.match(second.stdout, /^ +\d+\.\ds {2}succeeded {6}CI run http\S+ · sha256:[0-9a-f]{64}$/m);
    assert.match(second.stdout, /^deployed \S+@sha256:[0-9a-f]{64} in \d+\.\ds\n$/m);
    assert.ok(!/[\r]/.test(second.stdout) && !second.stdout.includes('\u001b'), 'no terminal control codes');

    const before = json<ImageListing[]>(await flui(['images', name, '--json'], env, log));
    assert.equal(before.length, 2);
    assert.notEqual(before[0]!.digest, firstDigest);
    assert.equal(before.find((i) => i.current)?.digest, before[0]!.digest);
    const human = await flui(['images', name], env, log);
    assert.match(human.stdout, /^\s+DIGEST +DEPLOY +COMMIT +ROLLED OUT +OUTCOME\n\* +sha256:/);

    const rollback = await flui(['rollback', name, '--to', firstDigest, '--follow', '--json'], env, log);
    assert.equal(rollback.code, EXIT.ok, rollback.transcript);
    assert.deepEqual(
      statuses(rollback).map((st) => st.phase),
      ['rolling-out', 'succeeded'],
    );
    const after = json<ImageListing[]>(await flui(['images', name, '--json'], env, log));
    assert.equal(after.find((i) => i.current)?.digest, firstDigest);
    const builds = await eventually(async () => {
      const list = json<Build[]>(await flui(['builds', name, '--json'], env, log));
      return list.length === 3 && list[0]!.phase === 'succeeded' ? list : undefined;
    });
    assert.deepEqual(
      builds.map((b) => b.kind),
      ['Rollback', 'Application', 'Application'],
    );
  });

  it('a failed build exits 1 and says to retry; retry --follow succeeds in the same workflow', async () => {
    const s = stack();
    const app = await createApplication(s);
    const name = app.metadata.name;
    s.github!.faults.failBuilds(1);
    const failed = await flui(['deploy', await manifestFile(app), '--follow'], env, log);
    assert.equal(failed.code, EXIT.failed, failed.transcript);
    assert.match(failed.stderr, /deploy failed: CI run \S+ concluded "failure"/);
    assert.match(failed.stderr, new RegExp(`fix the cause, then run \`flui retry ${name}\``));

    const st = json<DeployStatus>(await flui(['status', name, '--json'], env, log));
    assert.equal(st.phase, 'awaiting-retry');
    assert.equal(st.failedPhase, 'building');

    const retried = await flui(['retry', name, '--follow', '--json'], env, log);
    assert.equal(retried.code, EXIT.ok, retried.transcript);
    const seen = statuses(retried);
    assert.ok(
      seen.every((x) => x.attempt === 2),
      'nothing of the failed attempt is reported again',
    );
    assert.equal(seen.at(-1)!.phase, 'succeeded');
    assert.equal(seen.at(-1)!.deployId, st.deployId);
  });

  it('cancel during the build: the followed deploy exits 3 and its CI run is cancelled', async () => {
    const s = stack();
    const app = await createApplication(s);
    s.github!.faults.keepQueued(true);
    try {
      const followed = startFlui(['deploy', await manifestFile(app), '--follow', '--json'], env, log);
      // Once the CI run is dispatched and recorded (its link is in the status), cancelling must also stop it.
      await eventually(() => (followed.stdout().includes('"htmlUrl"') ? true : undefined), 60_000, 'CI run link');
      const cancel = await flui(['cancel', app.metadata.name], env, log);
      assert.equal(cancel.code, EXIT.ok, cancel.transcript);
      assert.match(cancel.stdout, /^cancel requested for deploy \S+ \(was building\)\n$/);
      const run = await followed.done;
      assert.equal(run.code, EXIT.cancelled, run.transcript);
      assert.deepEqual(events(run).at(-1), { event: 'finished', phase: 'cancelled', exitCode: 3 });
      const ciRun = await eventually(() => s.github!.runs(app.spec.source.repository)[0], 30_000, 'CI run');
      assert.equal(ciRun.conclusion, 'cancelled');
      const again = await flui(['cancel', app.metadata.name], env, log);
      assert.equal(again.code, EXIT.failed, again.transcript);
      assert.match(again.stderr, /already ended \(cancelled\): nothing to cancel/);
    } finally {
      s.github!.faults.keepQueued(false);
    }
  });

  it('a newer deploy supersedes the one in flight (exit 3); a queued one waits, then runs (exit 0)', async () => {
    const s = stack();
    const app = await createApplication(s);
    const file = await manifestFile(app);
    s.github!.faults.keepQueued(true);
    let released = false;
    try {
      const older = startFlui(['deploy', file, '--follow', '--json'], env, log);
      await reached(older, 'building');
      const newer = startFlui(['deploy', file, '--follow', '--json'], env, log);
      const o = await older.done;
      assert.equal(o.code, EXIT.cancelled, o.transcript);
      assert.equal((events(o).at(-1) as FinishedEvent).phase, 'superseded');

      await reached(newer, 'building');
      const queued = startFlui(['deploy', file, '--policy', 'queue', '--follow', '--json'], env, log);
      await reached(queued, 'queued');
      s.github!.faults.keepQueued(false);
      released = true;
      const n = await newer.done;
      assert.equal(n.code, EXIT.ok, n.transcript);
      const q = await queued.done;
      assert.equal(q.code, EXIT.ok, q.transcript);
      const phases = statuses(q).map((st) => st.phase);
      assert.equal(phases[0], 'queued');
      assert.equal(phases.at(-1), 'succeeded');
      // From the deploy's own record of its phases: the CLI's polling may step over a short one.
      const last = statuses(q).at(-1)!;
      assert.ok(
        last.timings.some((t) => t.phase === 'building'),
        `the queued deploy built after the one before it finished: ${JSON.stringify(last)}`,
      );
    } finally {
      if (!released) s.github!.faults.keepQueued(false);
    }
  });

  it('follow(client, deployId) reports a queued request that a newer one replaced before it ran as superseded', async () => {
    const s = stack();
    const app = await createApplication(s);
    const opts = { taskQueue: s.config.temporal.taskQueue };
    s.github!.faults.keepQueued(true);
    try {
      const running = await startDeploy(s.client, app, opts);
      for await (const st of follow(s.client, running.deployId)) if (st.phase === 'building') break;
      const waiting = await startDeploy(s.client, app, { ...opts, policy: 'queue' });
      for await (const st of follow(s.client, waiting.deployId)) if (st.phase === 'queued') break;
      const newest = await startDeploy(s.client, app, opts);
      s.github!.faults.keepQueued(false);
      const seen: DeployStatus[] = [];
      for await (const st of follow(s.client, waiting.deployId, { intervalMs: 200 })) seen.push(st);
      assert.equal(seen.at(-1)!.phase, 'superseded');
      assert.ok(!seen.some((x) => x.phase === 'building'), 'it never ran');
      let final: DeployStatus | undefined;
      for await (const st of follow(s.client, newest.deployId)) final = st;
      assert.equal(final?.phase, 'succeeded');
    } finally {
      s.github!.faults.keepQueued(false);
    }
  });
});
