/**
 * `flui logs` end to end: the real command (a child process with only the CLI's configuration: a Temporal address,
 * no CI credential) reads the build's own log through the worker, from the GitHub emulator, on the whole local stack
 * (Temporal, worker, emulator whose runner pushes to the real registry, kwok).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { buildLog, follow, FluiError, logs, startDeploy } from '../../src/client/index.ts';
import { EXIT } from '../../src/cli/exit.ts';
import type { Application } from '../../src/manifest/schema.ts';
import type { DeployPhase } from '../../src/workflows/contract.ts';
import { scanForSecrets } from '../helpers/secrets.ts';
import { createApplication, eventually, useStack } from '../helpers/stack.ts';
import { events, flui, json, startFlui, type FluiRun } from '../client/flui.ts';

interface LogsJson {
  deployId: string;
  ciRun: { id: string; htmlUrl: string };
  logsUrl: string;
  text: string;
  done: boolean;
}
type LogEvent =
  | ({ event: 'build' } & Omit<LogsJson, 'text' | 'done'>)
  | { event: 'log'; text: string }
  | { event: 'end'; done: boolean };

/** The emulated job's log, as its run page shows it: what `flui logs` must print, whole and in order. */
const jobLog = (lines: readonly string[]) => `${lines.join('\n')}\n`;

describe('flui logs on the local stack', () => {
  const stack = useStack();
  let env: Record<string, string>;
  let log: string;
  const printed: FluiRun[] = [];
  const run = async (args: string[]) => {
    const r = await flui(args, env, log);
    printed.push(r);
    return r;
  };

  before(() => {
    const s = stack();
    env = { TEMPORAL_ADDRESS: s.env.TEMPORAL_ADDRESS!, FLUI_TASK_QUEUE: s.config.temporal.taskQueue };
    log = join(s.dataDir, 'flui-logs-cli.log');
  });

  async function deployUntil(app: Application, phase: DeployPhase): Promise<string> {
    const s = stack();
    const started = await startDeploy(s.client, app, { taskQueue: s.config.temporal.taskQueue });
    for await (const st of follow(s.client, started.deployId, { intervalMs: 200 })) if (st.phase === phase) break;
    return started.deployId;
  }

  it('after a deploy: prints the job log on stdout, the run on stderr; --json says the same in one object', async () => {
    const s = stack();
    const app = await createApplication(s);
    const deployId = await deployUntil(app, 'succeeded');
    const ciRun = s.github!.runs(app.spec.source.repository)[0]!;

    const human = await run(['logs', app.metadata.name]);
    assert.equal(human.code, EXIT.ok, human.transcript);
    assert.equal(human.stdout, `=== job build (success) ===\n${jobLog(ciRun.log)}`, human.transcript);
    assert.match(human.stdout, new RegExp(`Job build started for ${ciRun.headSha}`));
    assert.match(human.stdout, /Pushed \S+ as sha256:[0-9a-f]{64}\n/);
    assert.match(human.stdout, /Job build completed: success\n$/);
    assert.equal(
      human.stderr,
      `CI run of deploy ${deployId} (succeeded, commit ${ciRun.headSha.slice(0, 12)}): ${ciRun.htmlUrl}\n`,
    );

    const machine = json<LogsJson>(await run(['logs', app.metadata.name, '--json']));
    assert.equal(machine.deployId, deployId);
    assert.equal(machine.ciRun.id, String(ciRun.id));
    assert.equal(machine.logsUrl, ciRun.htmlUrl);
    assert.equal(machine.text, human.stdout);
    assert.equal(machine.done, true);
  });

  it('--follow started while the run waits for a runner ends when it completes, every line once and in order', async () => {
    const s = stack();
    const app = await createApplication(s);
    const name = app.metadata.name;
    s.github!.faults.keepQueued(true);
    let released = false;
    try {
      const started = await startDeploy(s.client, app, { taskQueue: s.config.temporal.taskQueue });
      // Started with the deploy, before it dispatched its CI run: it waits for that run, not the last build's.
      const followed = startFlui(['logs', name, '--follow', '--json'], env, log);
      for await (const st of follow(s.client, started.deployId, { intervalMs: 200 }))
        if (st.phase === 'building') break;
      const human = startFlui(['logs', name, '--follow'], env, log);
      const interrupted = startFlui(['logs', name, '--follow'], env, log);
      // Each has read the run once: what is there (nothing finished) and the line pointing at the run's page.
      for (const p of [followed, human, interrupted]) {
        await eventually(() => (p.stdout().includes('still going') ? true : undefined), 60_000, 'the notice');
      }
      interrupted.kill('SIGINT');
      const stopped = await interrupted.done;
      printed.push(stopped);
      assert.equal(stopped.code, EXIT.interrupted, stopped.transcript);
      assert.match(
        stopped.stderr,
        new RegExp(`stopped reading the log of \\S+; the build goes on: flui logs ${name}\\n$`),
      );

      s.github!.faults.keepQueued(false);
      released = true;
      const [f, h] = [await followed.done, await human.done];
      printed.push(f, h);
      assert.equal(f.code, EXIT.ok, f.transcript);
      assert.equal(h.code, EXIT.ok, h.transcript);
      const ciRun = s.github!.runs(app.spec.source.repository)[0]!;
      assert.equal(ciRun.status, 'completed');

      const all = events<LogEvent>(f);
      assert.equal(all[0]!.event, 'build');
      assert.equal((all[0] as { deployId: string }).deployId, started.deployId);
      assert.deepEqual(all.at(-1), { event: 'end', done: true });
      const text = all.flatMap((e) => (e.event === 'log' ? [e.text] : [])).join('');
      const notice = `(the run is still going: GitHub serves a job's log once the job has finished; live output: ${ciRun.htmlUrl})\n`;
      assert.equal(text, `${notice}=== job build (success) ===\n${jobLog(ciRun.log)}`, f.transcript);
      assert.equal(h.stdout, text, 'people see the same text');
    } finally {
      if (!released) s.github!.faults.keepQueued(false);
    }
  });

  it('an app never deployed: a specific error, exit 1, nothing on stdout (with --build N too)', async () => {
    const none = await run(['logs', 'never-built', '--json']);
    assert.equal(none.code, EXIT.failed, none.transcript);
    assert.equal(none.stdout, '');
    assert.equal(
      none.stderr,
      'flui logs: no deploy of default/never-built yet, so no build to read: deploy it first (flui deploy)\n',
    );
    const past = await run(['logs', 'never-built', '--build', '2']);
    assert.equal(past.code, EXIT.failed, past.transcript);
  });

  it('no worker on the task queue: the read gives up after its timeout and says what to check', async () => {
    const s = stack();
    const app = await createApplication(s);
    await deployUntil(app, 'succeeded');
    const build = await logs(s.client, 'default', app.metadata.name);
    const reading = buildLog(s.client, build, { taskQueue: 'no-worker-here', readTimeoutMs: 2000 });
    await assert.rejects(
      reading.next(),
      (e: unknown) =>
        e instanceof FluiError &&
        e.kind === 'unavailable' &&
        e.message === 'no Flui worker read the log within 2 s: is one running on task queue "no-worker-here"?',
    );
  });

  it('the CI unreachable: the worker retries for a bounded time, then a clear error, exit 4', async () => {
    const s = stack();
    const app = await createApplication(s);
    await deployUntil(app, 'succeeded');
    s.github!.faults.outage({ forMs: 120_000 });
    try {
      const t0 = Date.now();
      const r = await run(['logs', app.metadata.name]);
      const seconds = (Date.now() - t0) / 1000;
      process.stdout.write(`# flui logs gave up on an unreachable CI after ${seconds.toFixed(1)} s\n`);
      assert.equal(r.code, EXIT.unavailable, r.transcript);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /^CI run of deploy \S+ \(succeeded/);
      assert.match(
        r.stderr,
        /flui logs: the CI could not be reached to read the log \(the worker tried for a while\): GitHub/,
      );
      assert.ok(seconds < 60, `gave up within a minute (${seconds} s)`);
    } finally {
      s.github!.faults.reset();
    }
  });

  it('prints no secret: not the GitHub token, the registry password or the webhook secret', async () => {
    const s = stack();
    const secrets = [s.env.REGISTRY_PASSWORD!, s.env.GITHUB_TOKEN!, s.env.GITHUB_WEBHOOK_SECRET!].filter(Boolean);
    assert.ok(secrets.length >= 2, 'the stack has secrets to look for');
    assert.ok(printed.length >= 6, 'the scan sees what the commands above printed');
    const scan = await scanForSecrets(
      s.client,
      secrets,
      [],
      printed.map((p, i) => ({ where: `flui output ${i}`, text: `${p.stdout}\n${p.stderr}` })),
    );
    assert.ok(scan.texts === printed.length && scan.workflows > 0);
    assert.deepEqual(scan.hits, []);
  });
});
