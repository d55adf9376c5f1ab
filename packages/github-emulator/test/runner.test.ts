/**
 * The emulator's runner end to end: dispatch → queued → in progress → completed, a real image in the real registry
 * (Debian's docker-registry with htpasswd auth) made of the repository's files at the run's commit, the registry's
 * 401 failing the run when the credential is wrong, cancel, re-run, failing and queued builds, and signed
 * `workflow_run` webhooks, lost or duplicated on demand.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { startWebhookReceiver } from '@flui/emulator-kit/webhook-receiver';
import { setTimeout as sleep } from 'node:timers/promises';
import { gunzipSync } from 'node:zlib';
import { extract } from 'tar-stream';
import { headManifest, MANIFEST_TYPES } from '../../../src/registry/oci.ts';
import { useGitHubEmulator } from '../../../test/helpers/github-emulator.ts';
import { REGISTRY_PASSWORD, REGISTRY_USER, useRegistry } from '../../../test/helpers/registry.ts';
import { eventually, fluiWorkflow, octokitFor, statusOf, storeCredential } from './support.ts';

const credential = { username: REGISTRY_USER, password: REGISTRY_PASSWORD };
const basic = `Basic ${Buffer.from(`${REGISTRY_USER}:${REGISTRY_PASSWORD}`).toString('base64')}`;

/** A webhook receiver: every delivery, as received. */
const receiver = await startWebhookReceiver('/hooks', 204);
after(() => receiver.close());
const { deliveries } = receiver;
const WEBHOOK = { url: receiver.url, secret: 'whsec-test' };

type RunEvent = {
  action: string;
  repository: { full_name: string };
  workflow_run: {
    id: number;
    conclusion: string;
    head_sha: string;
    name: string;
    display_title: string;
    html_url: string;
    status: string;
    run_attempt: number;
  };
};
/** Deliveries for one run (run ids restart with each emulator, so the repository tells them apart). */
const eventsFor = (runId: number, repository?: string) =>
  deliveries
    .map((d) => ({ ...d, event: JSON.parse(d.body) as RunEvent }))
    .filter((d) => d.event.workflow_run.id === runId && (!repository || d.event.repository.full_name === repository));

/** The files of the image's single layer, read back from the registry. */
async function layerFiles(registryUrl: string, repository: string, tag: string): Promise<Record<string, string>> {
  const manifest = (await (
    await fetch(`${registryUrl}/v2/${repository}/manifests/${tag}`, {
      headers: { authorization: basic, accept: MANIFEST_TYPES.join(', ') },
    })
  ).json()) as { layers: { digest: string }[]; config: { digest: string } };
  assert.equal(manifest.layers.length, 1);
  const blob = Buffer.from(
    await (
      await fetch(`${registryUrl}/v2/${repository}/blobs/${manifest.layers[0]!.digest}`, {
        headers: { authorization: basic },
      })
    ).arrayBuffer(),
  );
  const files: Record<string, string> = {};
  const tar = extract();
  const done = new Promise<void>((resolve, reject) => {
    tar.on('entry', (header, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => chunks.push(c as Buffer));
      stream.on('end', () => {
        files[header.name] = Buffer.concat(chunks).toString('utf8');
        next();
      });
    });
    tar.on('finish', resolve);
    tar.on('error', reject);
  });
  tar.end(gunzipSync(blob));
  await done;
  return files;
}

describe('GitHub emulator: the runner builds and pushes real images', () => {
  const registry = useRegistry({ auth: true });
  const github = useGitHubEmulator({ webhook: WEBHOOK });
  let n = 0;
  async function repo(files: Record<string, string> = {}, password = REGISTRY_PASSWORD) {
    const name = `web${++n}`;
    await github().createRepo({
      owner: 'acme',
      name,
      files: {
        Dockerfile: 'FROM scratch\nCOPY . /\n',
        'server.js': 'console.log("v1")\n',
        '.github/workflows/flui.yml': fluiWorkflow(registry().host, `acme/${name}`),
        ...files,
      },
    });
    const gh = octokitFor(github(), github().createToken({ repos: [`acme/${name}`] }));
    await storeCredential(gh, 'acme', name, { ...credential, password });
    const dispatch = async (deployId: string) => {
      const res = await gh.request('POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches', {
        owner: 'acme',
        repo: name,
        workflow_id: 'flui.yml',
        ref: 'main',
        inputs: { deploy_id: deployId },
        return_run_details: true,
      } as never);
      return (res.data as { workflow_run_id: number }).workflow_run_id;
    };
    const completed = (runId: number, attempt = 1) =>
      eventually(async () => {
        const { data } = await gh.rest.actions.getWorkflowRun({ owner: 'acme', repo: name, run_id: runId });
        return data.status === 'completed' && data.run_attempt === attempt ? data : undefined;
      }, `run ${runId} attempt ${attempt} to complete`);
    return { gh, name, full: `acme/${name}`, dispatch, completed };
  }

  it('runs queued → in_progress → completed and pushes the commit’s files as <repository>:<sha>', async () => {
    const { gh, name, full, dispatch, completed } = await repo();
    const runId = await dispatch('default.web.1');
    github().push(full, 'main', { 'server.js': 'console.log("v2")\n' }); // after the dispatch: not in this build
    const seen = new Set<string>();
    const run = await eventually(async () => {
      const { data } = await gh.rest.actions.getWorkflowRun({ owner: 'acme', repo: name, run_id: runId });
      seen.add(data.status!);
      return data.status === 'completed' ? data : undefined;
    }, 'the run to complete');
    assert.equal(run.conclusion, 'success', github().runs(full)[0]!.log.join('\n'));
    assert.ok(seen.has('completed') && [...seen].every((s) => ['queued', 'in_progress', 'completed'].includes(s)));
    assert.ok(run.created_at <= run.run_started_at! && run.run_started_at! <= run.updated_at);

    const image = `${registry().host}/acme/${name}:${run.head_sha}`;
    const { digest } = await headManifest(image, { credentials: credential });
    const record = github().runs(full)[0]!;
    assert.equal(record.digest, digest);
    assert.equal(record.image, image);
    assert.equal(record.htmlUrl, run.html_url);
    const files = await layerFiles(registry().url, `acme/${name}`, run.head_sha);
    assert.equal(files['server.js'], 'console.log("v1")\n', 'the files of the dispatched commit');
    assert.ok(files.Dockerfile && files['.github/workflows/flui.yml']);

    const { data: jobs } = await gh.rest.actions.listJobsForWorkflowRun({ owner: 'acme', repo: name, run_id: runId });
    assert.ok(jobs.jobs[0]!.steps!.every((s) => s.conclusion === 'success'));
    assert.match(record.log.join('\n'), new RegExp(`Pushed ${image} as ${digest}`));

    const [hook, ...more] = await eventually(
      () => (eventsFor(runId).length ? eventsFor(runId) : undefined),
      'the webhook',
    );
    assert.equal(more.length, 0);
    assert.equal(hook!.headers['x-github-event'], 'workflow_run');
    assert.match(String(hook!.headers['x-github-delivery']), /^[0-9a-f]{8}-[0-9a-f]{4}-/);
    const expected = `sha256=${createHmac('sha256', WEBHOOK.secret).update(hook!.body).digest('hex')}`;
    assert.equal(hook!.headers['x-hub-signature-256'], expected);
    assert.equal(hook!.event.action, 'completed');
    assert.deepEqual(
      {
        conclusion: hook!.event.workflow_run.conclusion,
        head_sha: hook!.event.workflow_run.head_sha,
        display_title: hook!.event.workflow_run.display_title,
        html_url: hook!.event.workflow_run.html_url,
        status: hook!.event.workflow_run.status,
      },
      {
        conclusion: 'success',
        head_sha: run.head_sha,
        display_title: 'flui default.web.1',
        html_url: run.html_url,
        status: 'completed',
      },
    );

    // A re-run builds the same commit again: the same files give the same digest.
    await gh.rest.actions.reRunWorkflow({ owner: 'acme', repo: name, run_id: runId });
    const again = await completed(runId, 2);
    assert.equal(again.conclusion, 'success');
    assert.equal(github().runs(full)[0]!.digest, digest);
  });

  it('fails the run with the registry’s 401 when the credential is wrong, and says so in the job log', async () => {
    const { gh, name, full, dispatch, completed } = await repo({}, 'not-the-password');
    const runId = await dispatch('wrong');
    const run = await completed(runId);
    assert.equal(run.conclusion, 'failure');
    const log = github().runs(full)[0]!.log.join('\n');
    assert.match(log, /login to 127\.0\.0\.1:\d+ failed: .*\(401 unauthorized\)/);
    assert.ok(!log.includes('not-the-password'), 'the job log never shows the secret');
    const { data: jobs } = await gh.rest.actions.listJobsForWorkflowRun({ owner: 'acme', repo: name, run_id: runId });
    assert.equal(jobs.jobs[0]!.steps!.find((s) => s.name === 'Log in to the registry')?.conclusion, 'failure');
    assert.equal(jobs.jobs[0]!.conclusion, 'failure');
    await eventually(
      () => (eventsFor(runId)[0]?.event.workflow_run.conclusion === 'failure' ? true : undefined),
      'the failure webhook',
    );
    assert.equal(await statusOf(gh.rest.actions.reRunWorkflow({ owner: 'acme', repo: name, run_id: runId })), 201);
  });

  it('fails builds on demand, and when the workflow or the Dockerfile is not what a build needs', async () => {
    const { full, dispatch, completed } = await repo();
    github().faults.failBuilds(1);
    const failed = await completed(await dispatch('flaky'));
    assert.equal(failed.conclusion, 'failure');
    assert.match(github().runs(full).at(-1)!.log.join('\n'), /simulated build failure/);
    assert.equal((await completed(await dispatch('fine'))).conclusion, 'success', 'only the next build fails');

    github().push(full, 'main', { Dockerfile: null });
    assert.equal((await completed(await dispatch('no-dockerfile'))).conclusion, 'failure');
    assert.match(github().runs(full).at(-1)!.log.join('\n'), /failed to read dockerfile: open Dockerfile/);

    github().push(full, 'main', {
      Dockerfile: 'FROM scratch\n',
      '.github/workflows/flui.yml': fluiWorkflow(registry().host, 'acme/x').replace(
        /docker\/login-action@v4/,
        'other/login@v1',
      ),
    });
    assert.equal((await completed(await dispatch('no-login'))).conclusion, 'failure');
    assert.match(github().runs(full).at(-1)!.log.join('\n'), /no docker\/login-action step/);
  });

  it('keeps runs queued while told to, then runs them', async () => {
    const { gh, name, dispatch, completed } = await repo();
    github().faults.keepQueued(true);
    try {
      const runId = await dispatch('held');
      await sleep(300); // several times the queue time
      const { data } = await gh.rest.actions.getWorkflowRun({ owner: 'acme', repo: name, run_id: runId });
      assert.equal(data.status, 'queued');
      github().faults.keepQueued(false);
      assert.equal((await completed(runId)).conclusion, 'success');
    } finally {
      github().faults.reset();
    }
  });

  it('runs no more at once than its runner capacity; the rest wait queued', async () => {
    const { full, dispatch, completed } = await repo();
    github().faults.runnerCapacity(1);
    try {
      const ids = [await dispatch('cap-1'), await dispatch('cap-2'), await dispatch('cap-3')];
      let most = 0;
      const sampler = setInterval(() => {
        const running = github()
          .runs(full)
          .filter((r) => ids.includes(r.id) && r.status === 'in_progress').length;
        most = Math.max(most, running);
      }, 5);
      try {
        for (const id of ids) assert.equal((await completed(id)).conclusion, 'success');
      } finally {
        clearInterval(sampler);
      }
      assert.equal(most, 1, 'one run in progress at a time');
    } finally {
      github().faults.reset();
    }
  });

  it('loses or duplicates webhook deliveries on demand', async () => {
    const { dispatch, completed } = await repo();
    github().faults.webhooks({ drop: 1 });
    const dropped = await dispatch('drop');
    await completed(dropped);
    const duplicated = await dispatch('dup');
    github().faults.webhooks({ duplicate: 1 });
    await completed(duplicated);
    const twice = await eventually(
      () => (eventsFor(duplicated).length === 2 ? eventsFor(duplicated) : undefined),
      'two deliveries',
    );
    assert.equal(twice[0]!.headers['x-github-delivery'], twice[1]!.headers['x-github-delivery'], 'a redelivery');
    assert.equal(twice[0]!.body, twice[1]!.body);
    assert.equal(eventsFor(dropped).length, 0, 'the dropped delivery never came');
    assert.equal(github().records.webhooksDropped, 1);
  });
});

describe('GitHub emulator: cancelling a build in progress', () => {
  const registry = useRegistry({ auth: true });
  // Builds that take a minute, so the test meets them in progress.
  const github = useGitHubEmulator({ webhook: WEBHOOK, runner: { queuedMs: 20, buildMs: 60_000 } });

  it('stops the run: conclusion cancelled, the running step cancelled, a webhook sent', async () => {
    await github().createRepo({
      owner: 'acme',
      name: 'slow',
      files: { Dockerfile: 'FROM scratch\n', '.github/workflows/flui.yml': fluiWorkflow(registry().host, 'acme/slow') },
    });
    const gh = octokitFor(github(), github().createToken());
    await storeCredential(gh, 'acme', 'slow', credential);
    await gh.rest.actions.createWorkflowDispatch({
      owner: 'acme',
      repo: 'slow',
      workflow_id: 'flui.yml',
      ref: 'main',
      inputs: { deploy_id: 'slow' },
    });
    const run = github().runs('acme/slow')[0]!;
    await eventually(() => (run.status === 'in_progress' ? true : undefined), 'the build to start');
    assert.equal(
      (await gh.rest.actions.cancelWorkflowRun({ owner: 'acme', repo: 'slow', run_id: run.id })).status,
      202,
    );
    const { data } = await gh.rest.actions.getWorkflowRun({ owner: 'acme', repo: 'slow', run_id: run.id });
    assert.equal(data.status, 'completed');
    assert.equal(data.conclusion, 'cancelled');
    assert.ok(run.steps!.every((s) => s.status === 'completed'));
    await eventually(
      () => (eventsFor(run.id, 'acme/slow')[0]?.event.workflow_run.conclusion === 'cancelled' ? true : undefined),
      'the webhook',
    );
    assert.equal(
      await statusOf(gh.rest.actions.cancelWorkflowRun({ owner: 'acme', repo: 'slow', run_id: run.id })),
      409,
    );
  });
});

describe('GitHub emulator: a webhook without a secret', () => {
  const github = useGitHubEmulator({ webhook: { url: WEBHOOK.url, secret: '' }, runner: { queuedMs: 60_000 } });

  it('is delivered unsigned, as GitHub delivers it', async () => {
    await github().createRepo({
      owner: 'acme',
      name: 'unsigned',
      files: { '.github/workflows/flui.yml': fluiWorkflow('127.0.0.1:1', 'acme/unsigned') },
    });
    const gh = octokitFor(github(), github().createToken());
    await gh.rest.actions.createWorkflowDispatch({
      owner: 'acme',
      repo: 'unsigned',
      workflow_id: 'flui.yml',
      ref: 'main',
      inputs: { deploy_id: 'unsigned' },
    });
    const run = github().runs('acme/unsigned')[0]!;
    await gh.rest.actions.cancelWorkflowRun({ owner: 'acme', repo: 'unsigned', run_id: run.id });
    const [hook] = await eventually(
      () => (eventsFor(run.id, 'acme/unsigned').length ? eventsFor(run.id, 'acme/unsigned') : undefined),
      'the webhook',
    );
    assert.equal(hook!.event.workflow_run.conclusion, 'cancelled');
    assert.equal(hook!.headers['x-github-event'], 'workflow_run');
    assert.equal(hook!.headers['x-hub-signature-256'], undefined);
  });
});
