/**
 * Builders come and go: the deploy waits while none runs, and a builder SIGKILLed at any point of a build leaves the
 * deploy to another builder, still rolling out exactly one digest. Builders run as their own processes, launched as
 * `npm run builder` runs them; the Flui worker runs in the test process. Real Temporal, buildah, registry and kwok.
 *
 * Kill points, chosen for what this backend can get wrong (each costs the build's heartbeat timeout, ~20 s):
 * - before the build: the build activity has started on the builder (Temporal says so), nothing built yet;
 * - mid-build: a RUN step is running (the build's log says so);
 * - after the push, before completion: the registry holds the attempt's own tag, the builder has not reported.
 * After each, the next builder redoes the build; the deploy must succeed with the digest the registry holds under
 * the attempt's tag, and the cluster must run that digest, recorded once for the deploy.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startBuilderProcess, type BuilderProcess } from '../../dev/builder.ts';
import { createCiBackend } from '../../src/ci/index.ts';
import { main } from '../../src/cli/main.ts';
import { WorkflowFailedError } from '@temporalio/client';
import { startDeploy, status } from '../../src/client/index.ts';
import { readHistory } from '../../src/kube/history.ts';
import { kubeClients } from '../../src/kube/rollout.ts';
import type { Application } from '../../src/manifest/schema.ts';
import { buildWorkflowId } from '../../src/workflows/build-contract.ts';
import { ciImageTag, type DeployOutcome } from '../../src/workflows/contract.ts';
import { ensureBuilt } from '../helpers/build.ts';
import { createApplication, eventually, useStack } from '../helpers/stack.ts';
import { registryDigest, runningImage, seedBusybox } from './base.ts';

interface Proc {
  pid: number;
  comm: string;
  /** Start time in clock ticks since boot: with the pid, names one process even after the pid is reused. */
  started: string;
}

function readProc(pid: number | string): (Proc & { ppid: number }) | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z') return undefined; // a zombie has ended
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    return { pid: Number(pid), comm, ppid: Number(fields[1]), started: fields[19]! };
  } catch {
    return undefined; // gone meanwhile
  }
}

/** Whether the process `p` names is still running. */
function sameProcess(p: Proc): boolean {
  return readProc(p.pid)?.started === p.started;
}

/** The processes descending from `pid`, with their command names (from /proc). */
function descendants(pid: number): Proc[] {
  const children = new Map<number, Proc[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    const p = readProc(entry);
    if (p) children.set(p.ppid, [...(children.get(p.ppid) ?? []), { pid: p.pid, comm: p.comm, started: p.started }]);
  }
  const out: Proc[] = [];
  const walk = (p: number) => {
    for (const c of children.get(p) ?? []) {
      out.push(c);
      walk(c.pid);
    }
  };
  walk(pid);
  return out;
}

type KillPoint = 'before-build' | 'mid-build' | 'after-push';

describe('self-hosted builds: builders come and go', () => {
  const stack = useStack({ ci: 'self-hosted', buildSource: 'git', builder: false });
  const builders = new Set<BuilderProcess>();
  after(() => Promise.all([...builders].map((b) => b.kill())));
  let spawned = 0;
  before(async () => {
    await ensureBuilt();
    await seedBusybox(stack());
  });

  /** Starts a builder; each test starts from none running (one left by a failed test would take its builds). */
  async function startBuilder(): Promise<BuilderProcess> {
    const s = stack();
    const b = await startBuilderProcess(s.env, { logFile: join(s.dataDir, `builder-${++spawned}.log`) });
    builders.add(b);
    return b;
  }

  async function kill(b: BuilderProcess) {
    await b.kill();
    builders.delete(b);
  }

  async function cli(...argv: string[]): Promise<{ code: number; out: string }> {
    const out: string[] = [];
    const io = { out: (t: string) => void out.push(t), err: () => undefined, isTTY: false };
    const code = await main(argv, io, { TEMPORAL_ADDRESS: stack().env.TEMPORAL_ADDRESS! });
    return { code, out: out.join('') };
  }

  /** Exactly one rollout for the deploy, of the digest the registry holds under the attempt's tag. */
  async function assertOneDigest(app: Application, deployId: string, outcome: DeployOutcome) {
    const s = stack();
    assert.equal(outcome.phase, 'succeeded');
    const tagged = await registryDigest(s, app, ciImageTag(deployId));
    assert.equal(outcome.digest, tagged, 'the rolled-out digest is the one the registry holds under the attempt tag');
    assert.equal(await runningImage(s, app), `${app.spec.image.repository}@${tagged}`);
    const history = await readHistory(kubeClients(s.env.KUBECONFIG), app.metadata.namespace, app.metadata.name);
    const own = history.filter((e) => e.deployId === deployId);
    assert.equal(own.length, 1, 'recorded once');
    assert.equal(own[0]!.image, `${app.spec.image.repository}@${tagged}`);
  }

  beforeEach(() => Promise.all([...builders].map((b) => kill(b))));

  it('with no builder the deploy waits, and `flui status` says so; it proceeds once a builder starts', async () => {
    const s = stack();
    const app = await createApplication(s, { deploy: { queueTimeoutMinutes: 10, retryWindowMinutes: 0 } });
    const started = await startDeploy(s.client, app, { taskQueue: s.config.temporal.taskQueue });
    const backend = createCiBackend(s.config);
    const run = { id: buildWorkflowId(started.deployId), htmlUrl: '' };
    await eventually(async () => (await backend.findRun(app, started.deployId)) && true, 30_000, 'the build');
    await sleep(3000);
    assert.equal((await backend.status(app, run)).status?.state, 'queued');
    assert.equal((await status(s.client, 'default', app.metadata.name)).phase, 'building');
    const shown = await cli('status', app.metadata.name);
    assert.equal(shown.code, 0);
    assert.match(shown.out, /waiting for a builder/);
    const json = JSON.parse((await cli('status', app.metadata.name, '--json')).out) as { build?: { state: string } };
    assert.equal(json.build?.state, 'waiting-for-builder');

    const builder = await startBuilder();
    const outcome = (await s.client.workflow.getHandle(started.workflowId).result()) as DeployOutcome;
    await assertOneDigest(app, started.deployId, outcome);
    await kill(builder);
  });

  for (const point of ['before-build', 'mid-build', 'after-push'] as KillPoint[]) {
    it(`a builder killed ${point} is replaced; the deploy rolls out exactly one digest`, async () => {
      const s = stack();
      const app = await createApplication(s, {
        deploy: { retryWindowMinutes: 0 },
        files: {
          Dockerfile: `FROM busybox\nRUN echo building-${point} && sleep 3 && date > /built-at\nCOPY server.js /\n`,
          'server.js': 'console.log("hello")\n',
        },
      });
      const first = await startBuilder();
      const started = await startDeploy(s.client, app, { taskQueue: s.config.temporal.taskQueue });
      const backend = createCiBackend(s.config);
      const run = { id: buildWorkflowId(started.deployId), htmlUrl: '' };
      await eventually(async () => (await backend.findRun(app, started.deployId)) && true, 30_000, 'the build');
      if (point === 'before-build') {
        await eventually(async () => (await backend.status(app, run)).status?.state === 'in_progress' || undefined);
      } else if (point === 'mid-build') {
        await eventually(async () => /building-mid-build/.test((await backend.readLogs(app, run)).text) || undefined);
      } else {
        await eventually(
          async () => (await registryDigest(s, app, ciImageTag(started.deployId))) !== undefined || undefined,
          120_000,
          'the first push',
        );
      }
      await kill(first);
      const second = await startBuilder();
      const outcome = (await s.client.workflow.getHandle(started.workflowId).result()) as DeployOutcome;
      await assertOneDigest(app, started.deployId, outcome);
      // The kill mattered: the build ran again on the next builder.
      const history = await s.client.workflow.getHandle(run.id).fetchHistory();
      const attempts = (history.events ?? []).flatMap((e) =>
        e.activityTaskStartedEventAttributes ? [e.activityTaskStartedEventAttributes.attempt ?? 1] : [],
      );
      assert.ok(Math.max(...attempts) >= 2, `attempts: ${attempts.join(', ')}`);
      // The log tells the attempts apart (the first one's lines, when it lived long enough to send any, stay).
      const logs = await backend.readLogs(app, run);
      assert.match(logs.text, /\(attempt 2\)/);
      await kill(second);
    });
  }

  /** A deploy whose build is in a long RUN step (it printed `marker`) on a builder of its own. */
  async function inLongRunStep(marker: string, seconds: number) {
    const s = stack();
    const app = await createApplication(s, {
      deploy: { retryWindowMinutes: 0 },
      files: { Dockerfile: `FROM busybox\nRUN echo ${marker} && sleep ${seconds}\n`, 'server.js': '' },
    });
    const builder = await startBuilder();
    const started = await startDeploy(s.client, app, { taskQueue: s.config.temporal.taskQueue });
    const backend = createCiBackend(s.config);
    const run = { id: buildWorkflowId(started.deployId), htmlUrl: '' };
    await eventually(async () => (await backend.findRun(app, started.deployId)) && true, 30_000, 'the build');
    await eventually(
      async () => new RegExp(marker).test((await backend.readLogs(app, run)).text) || undefined,
      120_000,
    );
    return { s, app, builder, started, run };
  }

  it('a builder killed outright takes its whole build with it: no buildah or RUN step goes on without it', async () => {
    const { s, builder, started } = await inLongRunStep('orphan-step', 300);
    const tree = descendants(builder.pid);
    assert.ok(
      tree.some((p) => p.comm === 'sleep') && tree.some((p) => p.comm === 'buildah'),
      `buildah and the RUN step run under the builder: ${tree.map((p) => p.comm).join(', ')}`,
    );
    await kill(builder);
    // Orphans would be reparented away from the builder, so look the recorded processes up by pid and start time.
    const left = () => tree.filter(sameProcess).map((p) => p.comm);
    await eventually(
      () => left().length === 0 || undefined,
      10_000,
      "the killed builder's build processes to end",
    ).catch(() => assert.deepEqual(left(), [], 'build processes outlived the builder'));
    await s.client.workflow.getHandle(started.workflowId).cancel();
    await assert.rejects(s.client.workflow.getHandle(started.workflowId).result(), WorkflowFailedError);
  });

  it('a cancel mid-build stops the buildah process tree within seconds; nothing is pushed or rolled out', async () => {
    const { s, app, builder, started, run } = await inLongRunStep('long-step', 120);
    assert.ok(
      descendants(builder.pid).some((p) => p.comm === 'sleep'),
      'the RUN step runs under the builder',
    );
    const cancelledAt = Date.now();
    await s.client.workflow.getHandle(started.workflowId).cancel();
    await assert.rejects(s.client.workflow.getHandle(started.workflowId).result(), WorkflowFailedError);
    // The build workflow ends cancelled once its activity stopped; the tree is gone by then, or within seconds.
    await assert.rejects(s.client.workflow.getHandle(run.id).result(), WorkflowFailedError);
    await eventually(() => descendants(builder.pid).length === 0 || undefined, 10_000, 'no process left');
    const seconds = (Date.now() - cancelledAt) / 1000;
    assert.ok(seconds < 15, `${seconds} s to stop`);
    assert.equal(await registryDigest(s, app, ciImageTag(started.deployId)), undefined, 'nothing pushed');
    const k = kubeClients(s.env.KUBECONFIG);
    await assert.rejects(
      k.apps.readNamespacedDeployment({ name: app.metadata.name, namespace: 'default' }),
      (e: { code?: number }) => e.code === 404,
    );
    await kill(builder);
  });
});
