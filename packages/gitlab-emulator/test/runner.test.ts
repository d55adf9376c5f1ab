/**
 * The emulator's runner end to end, driven by the production client (`@gitbeaker/rest`) where it can be: a pipeline
 * created with `inputs` runs the buildah job of a Flui-like `.gitlab-ci.yml`, pushes a real image to the real
 * registry (Debian's docker-registry with htpasswd auth) with the credential stored as masked CI/CD variables, and
 * reports the registry's digest in its trace; the pipelines list's `name` filter finds it; a wrong credential fails
 * it with the registry's 401; cancel; Pipeline Hook deliveries with the hook's token.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { startWebhookReceiver } from '@flui/emulator-kit/webhook-receiver';
import { headManifest } from '../../../src/registry/oci.ts';
import { useGitLabEmulator } from '../../../test/helpers/gitlab-emulator.ts';
import { REGISTRY_PASSWORD, REGISTRY_USER, useRegistry } from '../../../test/helpers/registry.ts';
import { startGitLabEmulator } from '../src/index.ts';
import { api, backendEntryFile, backendJobFile, eventually, fluiCiFile, gitbeakerFor } from './support.ts';

const receiver = await startWebhookReceiver('/hooks/gitlab', 200);
after(() => receiver.close());
const { deliveries } = receiver;
const WEBHOOK = {
  url: receiver.url,
  token: 'hook-token-for-tests',
};

type PipelineEvent = {
  object_kind: string;
  object_attributes: { id: number; status: string; name: string };
  project: { path_with_namespace: string };
};
const eventsFor = (id: number) =>
  deliveries
    .map((d) => ({ ...d, event: JSON.parse(d.body) as PipelineEvent }))
    .filter((d) => d.event.object_attributes.id === id);

describe('GitLab emulator runner', () => {
  const registry = useRegistry({ auth: true });
  const gitlab = useGitLabEmulator({ webhook: WEBHOOK });

  async function setup(path: string, password = REGISTRY_PASSWORD) {
    const gl = gitlab();
    await gl.createProject({
      path,
      files: {
        Dockerfile: 'FROM scratch\nCOPY index.html /\n',
        'index.html': `<h1>${path}</h1>\n`,
        '.gitlab-ci.yml': fluiCiFile(registry().host),
      },
    });
    const token = gl.createToken({ projects: [path] });
    const client = gitbeakerFor(gl, token);
    await client.ProjectVariables.create(path, 'FLUI_REGISTRY_USERNAME', REGISTRY_USER, { masked: false } as never);
    await client.ProjectVariables.create(path, 'FLUI_REGISTRY_PASSWORD', password, {
      masked: true,
      raw: true,
    } as never);
    return { gl, token, client };
  }

  it('runs the buildah job: a real image in the registry, its digest in the trace, found by name', async () => {
    const path = 'acme/platform/web';
    const { gl, token, client } = await setup(path);
    // gitbeaker's Pipelines.create has no `inputs` option (gitbeaker 43): it sends extra options in the body as is.
    const created = await client.Pipelines.create(path, 'main', { inputs: { deploy_id: 'd-1' } } as never);
    assert.equal(created.status, 'pending');
    assert.equal((created as { name?: string }).name, 'flui d-1');

    const done = await eventually(async () => {
      const p = await client.Pipelines.show(path, created.id);
      return ['success', 'failed', 'canceled'].includes(p.status) ? p : undefined;
    }, 'the pipeline to finish');
    const [job] = await client.Jobs.all(path, { pipelineId: created.id } as never);
    const trace = await client.Jobs.showLog(path, job!.id);
    assert.equal(done.status, 'success', trace);

    const image = `${registry().host}/acme/web:d-1`;
    const { digest } = await headManifest(image, {
      credentials: { username: REGISTRY_USER, password: REGISTRY_PASSWORD },
      insecureHosts: ['127.0.0.1'],
    });
    assert.equal(gl.pipelines(path)[0]!.digest, digest);
    assert.match(trace, new RegExp(`flui-digest ${digest}`));
    assert.ok(!trace.includes(REGISTRY_PASSWORD), 'a masked variable never appears in a trace');

    const found = await client.Pipelines.all(path, { name: 'flui d-1', source: 'api' });
    assert.deepEqual(
      found.map((p) => p.id),
      [created.id],
    );
    assert.deepEqual(await client.Pipelines.all(path, { name: 'flui other' }), []);

    const events = await eventually(() => {
      const e = eventsFor(created.id);
      return e.some((x) => x.event.object_attributes.status === 'success') ? e : undefined;
    }, 'the success webhook');
    assert.deepEqual(
      events.map((e) => e.event.object_attributes.status),
      ['pending', 'running', 'success'],
    );
    for (const e of events) {
      assert.equal(e.headers['x-gitlab-event'], 'Pipeline Hook');
      assert.equal(e.headers['x-gitlab-token'], WEBHOOK.token);
      assert.match(String(e.headers['x-gitlab-event-uuid']), /^[0-9a-f-]{36}$/);
      assert.equal(e.event.object_attributes.name, 'flui d-1');
      assert.equal(e.event.project.path_with_namespace, path);
    }
    assert.equal(new Set(events.map((e) => e.headers['x-gitlab-event-uuid'])).size, 3);

    // Raw creation with a missing input: GitLab's 400 naming it, nothing created.
    const before = gl.records.pipelinesCreated[path];
    const missing = await api(gl, token, 'POST', `/projects/${encodeURIComponent(path)}/pipeline`, { ref: 'main' });
    assert.equal(missing.status, 400);
    assert.deepEqual(missing.body, { message: { base: ['`deploy_id` input: required value has not been provided'] } });
    assert.equal(gl.records.pipelinesCreated[path], before);
  });

  it('fails the job with the registry 401 when the stored credential is wrong', async () => {
    const path = 'acme/wrong-password';
    const { client } = await setup(path, 'not-the-password');
    const created = await client.Pipelines.create(path, 'main', { inputs: { deploy_id: 'd-2' } } as never);
    const done = await eventually(async () => {
      const p = await client.Pipelines.show(path, created.id);
      return ['success', 'failed'].includes(p.status) ? p : undefined;
    }, 'the pipeline to fail');
    assert.equal(done.status, 'failed');
    const [job] = await client.Jobs.all(path, { pipelineId: created.id } as never);
    assert.equal(job!.failure_reason, 'script_failure');
    const trace = await client.Jobs.showLog(path, job!.id);
    assert.match(trace, /logging into .*401/i);
  });

  it('cancels a pending pipeline: canceled, with its webhook, and a second cancel changes nothing', async () => {
    const path = 'acme/cancel';
    const { gl, client } = await setup(path);
    gl.faults.keepPending(true);
    try {
      const created = await client.Pipelines.create(path, 'main', { inputs: { deploy_id: 'd-3' } } as never);
      const canceled = await client.Pipelines.cancel(path, created.id);
      assert.equal(canceled.status, 'canceled');
      assert.equal((await client.Pipelines.cancel(path, created.id)).status, 'canceled');
      assert.equal(gl.records.cancels, 1);
      await eventually(
        () => (eventsFor(created.id).some((e) => e.event.object_attributes.status === 'canceled') ? true : undefined),
        'the canceled webhook',
      );
    } finally {
      gl.faults.keepPending(false);
    }
  });

  it("runs the GitLab backend's file shape: an entry file with optional inputs including the app's job file", async () => {
    const path = 'acme/group/sub/shop';
    const gl = gitlab();
    await gl.createProject({
      path,
      files: {
        Dockerfile: 'FROM scratch\nARG GREETING\nCOPY index.html /\n',
        'index.html': '<h1>shop</h1>\n',
        '.gitlab-ci.yml': backendEntryFile(),
        '.flui/acme.web.gitlab-ci.yml': backendJobFile(registry().host),
      },
    });
    const token = gl.createToken({ projects: [path] });
    const client = gitbeakerFor(gl, token);
    await client.ProjectVariables.create(path, 'FLUI_REGISTRY_USERNAME_ACME_WEB', REGISTRY_USER);
    const encoded = Buffer.from(REGISTRY_PASSWORD).toString('base64');
    await client.ProjectVariables.create(path, 'FLUI_REGISTRY_PASSWORD_ACME_WEB', encoded, { masked: true } as never);

    // A pipeline Flui did not start (no inputs): the user's job only, and no name.
    const plain = await client.Pipelines.create(path, 'main');
    assert.equal((plain as { name?: unknown }).name, null);
    const plainJobs = await client.Jobs.all(path, { pipelineId: plain.id } as never);
    assert.deepEqual(
      plainJobs.map((j) => j.name),
      ['unit-tests'],
    );

    const inputs = {
      flui_app: 'acme.web',
      flui_deploy_id: 'acme.web-7/1',
      flui_image_tag: 't7',
      flui_run_name: 'flui acme.web-7/1',
    };
    const created = await client.Pipelines.create(path, 'main', { inputs } as never);
    assert.equal((created as { name?: unknown }).name, 'flui acme.web-7/1');
    const done = await eventually(async () => {
      const p = await client.Pipelines.show(path, created.id);
      return ['success', 'failed'].includes(p.status) ? p : undefined;
    }, 'the pipeline to finish');
    const jobs = await client.Jobs.all(path, { pipelineId: created.id } as never);
    const build = jobs.find((j) => j.name === 'flui-build-acme.web')!;
    const trace = await client.Jobs.showLog(path, build.id);
    assert.equal(done.status, 'success', trace);
    const creds = {
      credentials: { username: REGISTRY_USER, password: REGISTRY_PASSWORD },
      insecureHosts: ['127.0.0.1'],
    };
    const { digest } = await headManifest(`${registry().host}/acme/web:t7`, creds);
    const bySha = await headManifest(`${registry().host}/acme/web:${created.sha}`, creds);
    assert.equal(bySha.digest, digest);
    assert.match(trace, new RegExp(`Pushed ${registry().host}/acme/web:t7 as ${digest}`));
    assert.ok(!trace.includes(encoded) && !trace.includes(REGISTRY_PASSWORD));
    const [found] = await client.Pipelines.all(path, { name: 'flui acme.web-7/1', source: 'api' });
    assert.equal(found?.id, created.id);

    // An input outside its regex: GitLab's 400, nothing created.
    const bad = await api(gl, token, 'POST', `/projects/${encodeURIComponent(path)}/pipeline`, {
      ref: 'main',
      inputs: { ...inputs, flui_app: 'acme.web', flui_run_name: 'not flui' },
    });
    assert.equal(bad.status, 400, bad.text);
    assert.match(bad.text, /`run_name` input: provided value does not match required RegEx pattern/);
  });

  it("lends the instance registry's credential as CI_REGISTRY_USER/CI_REGISTRY_PASSWORD (the job-token push)", async () => {
    const gl = await startGitLabEmulator({
      runner: { pendingMs: 10, buildMs: 10 },
      registry: { ciRegistry: { host: registry().host, username: REGISTRY_USER, password: REGISTRY_PASSWORD } },
    });
    try {
      const path = 'acme/job-token';
      const ci = `build:
  stage: build
  script:
    - printf '%s' "$CI_REGISTRY_PASSWORD" | buildah login --username "$CI_REGISTRY_USER" --password-stdin "$CI_REGISTRY"
    - buildah bud -t "$CI_REGISTRY_IMAGE:latest" .
    - buildah push --digestfile /tmp/d "$CI_REGISTRY_IMAGE:latest" "docker://$CI_REGISTRY_IMAGE:latest"
    - echo "digest $(cat /tmp/d)"
`;
      await gl.createProject({ path, files: { Dockerfile: 'FROM scratch\n', '.gitlab-ci.yml': ci } });
      const token = gl.createToken({ projects: [path] });
      const res = await api(gl, token, 'POST', `/projects/${encodeURIComponent(path)}/pipeline`, { ref: 'main' });
      assert.equal(res.status, 201, res.text);
      const pipeline = await eventually(() => {
        const p = gl.pipelines(path)[0]!;
        return ['success', 'failed'].includes(p.status) ? p : undefined;
      }, 'the job-token pipeline');
      assert.equal(pipeline.status, 'success', gl.trace(path, pipeline.jobs[0]!.id));
      const { digest } = await headManifest(`${registry().host}/acme/job-token:latest`, {
        credentials: { username: REGISTRY_USER, password: REGISTRY_PASSWORD },
        insecureHosts: ['127.0.0.1'],
      });
      assert.equal(pipeline.digest, digest);
      assert.deepEqual(gl.contract.violations, []);
    } finally {
      await gl.stop();
    }
  });
});
