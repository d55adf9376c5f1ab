/**
 * Deploys through GitLab CI end to end on real servers: Temporal dev server, registry, kwok cluster, the GitLab
 * emulator (its runner pushes real images; its responses are checked against GitLab's documented schemas) and the
 * worker with its webhook receiver, configured with FLUI_CI=gitlab. The app lives in a nested group
 * (`acme/apps/<name>`). Exactly-once results: one commit or none, one pipeline, one rollout.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import { startDeploy, status } from '../../../src/client/index.ts';
import { jobFilePath, jobName, pushVariableNames } from '../../../src/ci/gitlab/pipeline-file.ts';
import { kubeClients } from '../../../src/kube/rollout.ts';
import { ciRunName, type DeployOutcome } from '../../../src/workflows/contract.ts';
import { scanForSecrets } from '../../helpers/secrets.ts';
import { createApplication, eventually, HELLO_FILES, useStack, phaseOf } from '../../helpers/stack.ts';

describe('deploy through GitLab CI end to end', () => {
  const stack = useStack({ ci: 'gitlab' });
  afterEach(() => {
    stack().gitlab!.faults.reset();
    assert.deepEqual(stack().gitlab!.contract.violations, [], 'GitLab emulator responses match the contract');
  });

  async function deploy(app: Awaited<ReturnType<typeof createApplication>>) {
    const s = stack();
    const { workflowId } = await startDeploy(s.client, app, { taskQueue: s.config.temporal.taskQueue });
    return (await s.client.workflow.getHandle(workflowId).result()) as DeployOutcome;
  }

  it('builds with GitLab CI and lands the digest; a redeploy writes no commit and no variable', async () => {
    const s = stack();
    const gl = s.gitlab!;
    const app = await createApplication(s);
    const repo = app.spec.source.repository;
    assert.equal(repo.split('/').length, 3, 'a project in a nested group');
    const started = Date.now();
    const outcome = await deploy(app);
    assert.equal(outcome.phase, 'succeeded');
    // The webhook reported the end: polling alone would have waited at least 30 s (pollAfterSeconds with a webhook).
    // The stack configures a signing token, so those were signed deliveries the worker verified.
    assert.ok(Date.now() - started < 30_000, `done in ${Date.now() - started} ms: the webhook came first`);
    assert.match(s.env.GITLAB_WEBHOOK_SIGNING_TOKEN ?? '', /^whsec_/);
    const unsigned = await fetch(s.worker!.webhookUrl!, {
      method: 'POST',
      headers: { 'x-gitlab-event': 'Pipeline Hook', 'x-gitlab-token': s.env.GITLAB_WEBHOOK_SECRET! },
      body: '{}',
    });
    assert.equal(unsigned.status, 401, 'the right token without a signature is refused');
    const [pipeline] = gl.pipelines(repo);
    assert.equal(gl.pipelines(repo).length, 1);
    assert.equal(pipeline!.source, 'api');
    assert.equal(pipeline!.name, ciRunName(outcome.deployId));
    assert.equal(outcome.digest, pipeline!.digest);
    assert.equal(outcome.commit, pipeline!.sha);
    assert.equal(outcome.image, `${app.spec.image.repository}@${pipeline!.digest}`);
    assert.deepEqual(
      pipeline!.jobs.map((j) => j.name),
      [jobName(app)],
    );
    const k = kubeClients(s.env.KUBECONFIG);
    const d = await k.apps.readNamespacedDeployment({ name: app.metadata.name, namespace: 'default' });
    assert.equal(d.spec?.template.spec?.containers[0]?.image, outcome.image);
    assert.equal(gl.records.commits[repo], 1, 'one commit: the job file and the entry file together');
    assert.ok(gl.file(repo, jobFilePath(app)));
    assert.match(gl.file(repo, '.gitlab-ci.yml')!, /local: "?\.flui\//);
    const names = pushVariableNames(app);
    const password = gl.variables(repo).find((v) => v.key === names.password);
    assert.ok(password?.masked && password.hidden, 'the password is masked and hidden');
    assert.equal(
      Buffer.from(gl.variableValue(repo, names.password)!, 'base64').toString('utf8'),
      s.env.REGISTRY_PASSWORD,
    );
    const writes = gl.records.variableWrites[repo];

    const again = await deploy(app);
    assert.equal(again.phase, 'succeeded');
    assert.equal(gl.records.commits[repo], 1, 'no second commit');
    assert.equal(gl.records.variableWrites[repo], writes, 'no variable written again');
    assert.equal(gl.records.pipelinesCreated[repo], 2);
  });

  it("adds its include to the user's own .gitlab-ci.yml and keeps the user's pipeline", async () => {
    const s = stack();
    const gl = s.gitlab!;
    const user = '# Our pipeline\nstages: [test]\nunit:\n  stage: test\n  script:\n    - echo unit tests\n';
    const app = await createApplication(s, { files: { ...HELLO_FILES, '.gitlab-ci.yml': user } });
    const repo = app.spec.source.repository;
    const outcome = await deploy(app);
    assert.equal(outcome.phase, 'succeeded');
    const entry = gl.file(repo, '.gitlab-ci.yml')!;
    assert.match(entry, /# Our pipeline/);
    assert.match(entry, /unit:\n {2}stage: test\n {2}script:\n {4}- echo unit tests/);
    assert.match(entry, /stages: \[ build, test \]/);
    // Flui's pipeline ran its build; the user's job is still defined and runs where its rules say.
    const [pipeline] = gl.pipelines(repo);
    assert.ok(pipeline!.jobs.some((j) => j.name === jobName(app)));
    assert.ok(pipeline!.jobs.some((j) => j.name === 'unit'));
    // The deploy's status says what Flui did to the user's entry file.
    const st = await status(s.client, 'default', app.metadata.name);
    assert.equal(st.pipeline?.path, jobFilePath(app));
    assert.equal(st.pipeline?.changed, true);
    assert.ok(
      st.pipeline?.changes?.some((c) => c.includes('.gitlab-ci.yml')),
      `changes name the entry file: ${JSON.stringify(st.pipeline)}`,
    );
  });

  it('a crash after the pipeline was created (its answer lost) finds it by name: exactly one pipeline', async () => {
    const s = stack();
    const gl = s.gitlab!;
    const app = await createApplication(s);
    const repo = app.spec.source.repository;
    let lost = 0;
    gl.hooks.after = (info) => {
      if (info.method === 'POST' && info.operation === '/projects/:id/pipeline' && info.project === repo && !lost++) {
        throw new Error('the worker lost the answer');
      }
    };
    try {
      const outcome = await deploy(app);
      assert.equal(outcome.phase, 'succeeded');
    } finally {
      gl.hooks.after = undefined;
    }
    assert.equal(lost, 1);
    assert.equal(gl.records.pipelinesCreated[repo], 1, 'exactly one pipeline');
  });

  it('cancels while the pipeline is pending: the pipeline is cancelled and nothing is rolled out', async () => {
    const s = stack();
    const gl = s.gitlab!;
    const app = await createApplication(s);
    gl.faults.keepPending(true);
    const { workflowId } = await startDeploy(s.client, app, { taskQueue: s.config.temporal.taskQueue });
    await phaseOf(s.client, 'default', app.metadata.name, 'building');
    const pipeline = await eventually(() => gl.pipelines(app.spec.source.repository)[0], 30_000, 'pipeline');
    await s.client.workflow.getHandle(workflowId).cancel();
    await assert.rejects(
      s.client.workflow.getHandle(workflowId).result(),
      (err: unknown) => err instanceof WorkflowFailedError && err.cause?.name === 'CancelledFailure',
    );
    await eventually(() => (pipeline.status === 'canceled' ? true : undefined), 30_000, 'pipeline canceled');
    assert.equal(gl.records.cancels, 1);
    const k = kubeClients(s.env.KUBECONFIG);
    await assert.rejects(
      k.apps.readNamespacedDeployment({ name: app.metadata.name, namespace: 'default' }),
      (e: { code?: number }) => e.code === 404,
    );
  });

  it('rides out an outage and rate limits (429 with and without Retry-After)', async () => {
    const s = stack();
    const gl = s.gitlab!;
    const app = await createApplication(s);
    gl.faults.outage({ requests: 2 });
    gl.faults.secondaryLimit({ count: 1, retryAfterSeconds: 1 });
    const outcome = await deploy(app);
    assert.equal(outcome.phase, 'succeeded');
    assert.ok(gl.records.outageFailures >= 2);
    // The whole token's limit at zero for two seconds, announced without Retry-After (RateLimit-Reset only).
    gl.faults.exhaustRateLimit({ forMs: 2000, retryAfter: false });
    const again = await deploy(app);
    assert.equal(again.phase, 'succeeded');
    assert.ok(Object.values(gl.records.limitRefusals).reduce((a, b) => a + b, 0) >= 2);
    assert.equal(gl.records.pipelinesCreated[app.spec.source.repository], 2, 'one pipeline per deploy');
  });

  it('no secret in any history, memo, search attribute or GitLab job log (raw or base64)', async () => {
    const s = stack();
    const gl = s.gitlab!;
    const app = await createApplication(s);
    assert.equal((await deploy(app)).phase, 'succeeded');
    const projects = new Set([app.spec.source.repository]);
    for (const repo of Object.keys(gl.records.pipelinesCreated)) projects.add(repo);
    const traces = [...projects].flatMap((repo) =>
      gl
        .pipelines(repo)
        .flatMap((p) => p.jobs.map((j) => ({ where: `job ${j.id} of ${repo}`, text: gl.trace(repo, j.id) ?? '' }))),
    );
    assert.ok(
      traces.some((t) => / as sha256:/.test(t.text)),
      'the job logs were read',
    );
    const scan = await scanForSecrets(
      s.client,
      [
        s.env.REGISTRY_PASSWORD!,
        s.env.GITLAB_TOKEN!,
        s.env.GITLAB_WEBHOOK_SECRET!,
        s.env.GITLAB_WEBHOOK_SIGNING_TOKEN!,
      ],
      [],
      traces,
    );
    assert.ok(scan.workflows > 0 && scan.events > 0);
    assert.deepEqual(scan.hits, []);
  });

  it('a lost webhook delivery costs a poll, not the deploy', async () => {
    const s = stack();
    const gl = s.gitlab!;
    const app = await createApplication(s);
    gl.faults.webhooks({ drop: 10 });
    const outcome = await deploy(app);
    assert.equal(outcome.phase, 'succeeded');
    assert.ok(gl.records.webhooksDropped >= 1);
    assert.equal(gl.records.pipelinesCreated[app.spec.source.repository], 1);
  });
});
