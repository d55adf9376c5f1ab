/**
 * The `flui` command (a child process) against a real Temporal dev server with no worker on the task queue, which is
 * enough to see that bad input starts nothing, that signal-with-start creates or reaches the app's workflow, and what
 * each command answers and exits with when no deploy has run yet. Without a server: cli.unit.test.ts; deploys that
 * run: cli-e2e.test.ts.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { Build, StartedDeploy } from '../../src/client/index.ts';
import { EXIT } from '../../src/cli/exit.ts';
import { makeTempDir } from '../../dev/process.ts';
import { deployWorkflowId, FluiApp, type DeployStatus } from '../../src/workflows/contract.ts';
import { eventually } from '../helpers/stack.ts';
import { useTemporal } from '../helpers/temporal.ts';
import { events, flui, json, startFlui } from './flui.ts';

describe('flui against a Temporal dev server (no worker)', () => {
  const temporal = useTemporal();
  let dir: string;
  let env: Record<string, string>;
  let log: string;

  before(async () => {
    dir = await makeTempDir('client-cli');
    log = join(dir, 'flui.log');
    env = {
      TEMPORAL_ADDRESS: temporal().address,
      TEMPORAL_NAMESPACE: temporal().namespace,
      // No worker polls this queue: deploys are accepted and wait.
      FLUI_TASK_QUEUE: `nobody-${randomBytes(3).toString('hex')}`,
      TEMPORAL_UI_URL: 'http://ui.example.test/',
      TEMPORAL_CONNECT_TIMEOUT_MS: '2000',
    };
  });

  async function manifest(name: string, extra = ''): Promise<string> {
    const file = join(dir, `${name}.yaml`);
    await writeFile(
      file,
      `apiVersion: flui.dev/v1
kind: Application
metadata:
  name: ${name}
spec:
  source:
    repository: acme/${name}
  image:
    repository: 127.0.0.1:5000/acme/${name}
${extra}`,
    );
    return file;
  }

  async function noWorkflow(app: string): Promise<void> {
    await assert.rejects(
      temporal().client.workflow.getHandle(deployWorkflowId('default', app)).describe(),
      WorkflowNotFoundError,
      `no workflow for ${app}`,
    );
  }

  it('starts nothing for an invalid manifest and names the file, line and field (exit 2)', async () => {
    const file = await manifest('broken', '  replicas: many\n');
    const run = await flui(['deploy', file, '--json'], env, log);
    assert.equal(run.code, EXIT.usage, run.transcript);
    assert.equal(run.stdout, '', run.transcript);
    assert.match(run.stderr, new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: invalid manifest:`));
    assert.match(run.stderr, /^ {2}10:13 {2}spec\.replicas: /m);
    assert.match(run.stderr, /Nothing was deployed\./);

    const mismatch = await flui(['deploy', await manifest('elsewhere'), '-n', 'shop'], env, log);
    assert.equal(mismatch.code, EXIT.usage, mismatch.transcript);
    assert.match(mismatch.stderr, /--namespace shop differs from the manifest's metadata\.namespace \(default\)/);

    await noWorkflow('broken');
    await noWorkflow('elsewhere');
    // Visibility too: once a later, valid deploy is listed, the refused ones are still absent.
    const ok = await flui(['deploy', await manifest('valid-one'), '--json'], env, log);
    assert.equal(ok.code, EXIT.ok, ok.transcript);
    const listed = await eventually(async () => {
      const ids: string[] = [];
      for await (const w of temporal().client.workflow.list({ query: 'WorkflowType = "deployWorkflow"' }))
        ids.push(w.workflowId);
      return ids.includes(deployWorkflowId('default', 'valid-one')) ? ids : undefined;
    });
    assert.ok(!listed.includes(deployWorkflowId('default', 'broken')));
    assert.ok(!listed.includes(deployWorkflowId('default', 'elsewhere')));
  });

  it('deploy signals-with-start the app workflow: a second deploy reaches the same run', async () => {
    const file = await manifest('web');
    const first = await flui(['deploy', file, '--json'], env, log);
    assert.equal(first.code, EXIT.ok, first.transcript);
    const started = json<StartedDeploy>(first);
    assert.deepEqual(Object.keys(started).sort(), ['deployId', 'runId', 'webUiUrl', 'workflowId']);
    assert.match(started.deployId, /^default\.web\.[a-z0-9]{12,}$/);
    assert.equal(started.workflowId, 'deploy-default.web');
    assert.equal(
      started.webUiUrl,
      `http://ui.example.test/namespaces/default/workflows/deploy-default.web/${started.runId}/history`,
    );

    const handle = temporal().client.workflow.getHandle(started.workflowId);
    const description = await handle.describe();
    assert.equal(description.status.name, 'RUNNING');
    assert.equal(description.typedSearchAttributes.get(FluiApp), 'default/web');
    assert.equal(await description.staticSummary(), 'Build acme/web@main and deploy default/web');
    assert.match(
      (await description.staticDetails()) ?? '',
      new RegExp(`${started.deployId}.*policy supersede.*tester`),
    );

    const second = await flui(['deploy', file, '--policy', 'queue'], env, log);
    assert.equal(second.code, EXIT.ok, second.transcript);
    assert.match(
      second.stdout,
      /^deploy default\.web\.[a-z0-9]+ started for default\/web\nWeb UI: http:\/\/ui\.example/,
    );
    assert.match(second.stdout, /Follow it: flui status web\n$/);
    const history = await handle.fetchHistory();
    const signals = history.events!.filter((e) => e.workflowExecutionSignaledEventAttributes);
    assert.equal(signals.length, 2, 'both requests reached the one run');
    assert.equal((await handle.describe()).runId, started.runId);
  });

  it('status without a worker: the recorded state after a bounded wait, and a hint on stderr', async () => {
    const run = await flui(['status', 'web', '--json'], env, log);
    assert.equal(run.code, EXIT.ok, run.transcript);
    const s = json<DeployStatus & { source: string }>(run);
    assert.equal(s.source, 'recorded');
    assert.equal(s.phase, 'queued');
    assert.match(s.deployId, /^default\.web\./);
    assert.match(run.stderr, /no worker answered.*Is a Flui worker running/);

    const human = await flui(['status', 'web'], env, log);
    assert.match(human.stdout, /^app: {6}default\/web\ndeploy: {3}default\.web\.\S+ \(Application\)\nphase: {4}queued/);
  });

  it('status reads only the client configuration: a bad worker-only variable does not break it', async () => {
    const workerOnly = {
      GITHUB_APP_ID: '1',
      GITHUB_APP_PRIVATE_KEY_FILE: '/nonexistent/key.pem',
      FLUI_MAX_CACHED_WORKFLOWS: 'abc',
      REGISTRY_USERNAME: 'only-half',
    };
    const run = await flui(['status', 'web', '--json'], { ...env, ...workerOnly }, log);
    assert.equal(run.code, EXIT.ok, run.transcript);
    assert.equal(json<DeployStatus>(run).phase, 'queued');
    assert.doesNotMatch(run.stderr, /configuration|GITHUB|FLUI_MAX/);
  });

  it('builds lists the waiting deploy from visibility', async () => {
    const builds = await eventually(async () => {
      const run = await flui(['builds', 'web', '--json'], env, log);
      assert.equal(run.code, EXIT.ok, run.transcript);
      const list = json<Build[]>(run);
      return list.length ? list : undefined;
    });
    assert.equal(builds.length, 1);
    assert.equal(builds[0]!.phase, 'queued');
    assert.match(builds[0]!.deployId, /^default\.web\./);
    assert.equal(builds[0]!.durationSeconds, undefined);
    const human = await flui(['builds', 'web'], env, log);
    assert.match(
      human.stdout,
      /^DEPLOY .*\ndefault\.web\.\S+ +Application +queued +- +- +\d{4}-\d\d-\d\d .* running +-\n$/,
    );
    const none = await flui(['builds', 'nothing-here'], env, log);
    assert.equal(none.stdout, 'no deploys of default/nothing-here yet\n');
  });

  it('retry and logs say clearly why there is nothing to do (exit 1)', async () => {
    const retry = await flui(['retry', 'web'], env, log);
    assert.equal(retry.code, EXIT.failed, retry.transcript);
    assert.match(retry.stderr, /deploy of default\/web is queued, not waiting for a retry/);
    const logs = await flui(['logs', 'web', '--json'], env, log);
    assert.equal(logs.code, EXIT.failed, logs.transcript);
    assert.equal(logs.stdout, '');
    assert.match(logs.stderr, /no CI run recorded for default\/web: see `flui builds web`/);
  });

  it('cancel asks Temporal to cancel the deploy in flight', async () => {
    const run = await flui(['cancel', 'web', '--json'], env, log);
    assert.equal(run.code, EXIT.ok, run.transcript);
    const answer = json<{ action: string; deployId: string; phase: string }>(run);
    assert.equal(answer.action, 'cancel');
    assert.match(answer.deployId, /^default\.web\./);
    const history = await temporal().client.workflow.getHandle('deploy-default.web').fetchHistory();
    assert.ok(history.events!.some((e) => e.workflowExecutionCancelRequestedEventAttributes));
  });

  it('status of an app that was never deployed: a clear error, exit 1, nothing on stdout', async () => {
    const run = await flui(['status', 'ghost', '--json'], env, log);
    assert.equal(run.code, EXIT.failed, run.transcript);
    assert.equal(run.stdout, '');
    assert.match(
      run.stderr,
      /^flui status: no deploy of default\/ghost found: check the app name and namespace \(-n\), or deploy it with `flui deploy <manifest>`\n$/,
    );
    const other = await flui(['status', 'web', '-n', 'shop'], env, log);
    assert.match(other.stderr, /no deploy of shop\/web found/);
  });

  it('exits 4 naming the Temporal namespace when it does not exist', async () => {
    const run = await flui(['builds', 'web'], { ...env, TEMPORAL_NAMESPACE: 'no-such-namespace' }, log);
    assert.equal(run.code, EXIT.unavailable, run.transcript);
    assert.match(run.stderr, /Temporal namespace "no-such-namespace" does not exist: set TEMPORAL_NAMESPACE/);
  });

  it('follows with --json as one JSON event per line', async () => {
    // No worker: the deploy stays queued; the follow is stopped after its first event.
    const file = await manifest('followed');
    const running = startFlui(['deploy', file, '--follow', '--json'], env, log);
    await eventually(() => (running.stdout().split('\n').length > 2 ? true : undefined), 30_000, 'two events');
    const lines = running
      .stdout()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { event: string; status?: DeployStatus });
    assert.equal(lines[0]!.event, 'started');
    assert.equal(lines[1]!.event, 'status');
    assert.equal(lines[1]!.status!.phase, 'queued');
    await temporal().client.workflow.getHandle('deploy-default.followed').terminate('test over');
    const run = await running.done;
    assert.equal(run.code, EXIT.cancelled, run.transcript);
    assert.deepEqual(events(run).at(-1), { event: 'finished', phase: 'cancelled', exitCode: 3 });
    assert.match(run.stderr, /no worker answered within 5 s: showing recorded state; is a Flui worker running/);
  });

  it('Ctrl-C stops following, not the deploy (exit 130)', async () => {
    const running = startFlui(['deploy', await manifest('interrupted'), '--follow'], env, log);
    await eventually(() => (running.stdout().includes('queued') ? true : undefined), 30_000, 'first status');
    running.kill('SIGINT');
    const run = await running.done;
    assert.equal(run.code, 130, run.transcript);
    assert.match(
      run.stderr,
      /stopped following default\.interrupted\.\S+; the deploy goes on: flui status interrupted\n$/,
    );
    const handle = temporal().client.workflow.getHandle('deploy-default.interrupted');
    assert.equal((await handle.describe()).status.name, 'RUNNING');
    await handle.terminate('test over');
  });
});
