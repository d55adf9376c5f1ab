/** The generated pipeline file as text and YAML: what it says, what it builds, what the emulator's runner reads. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import {
  ACTIONS,
  pipelinePath,
  REGISTRY_PASSWORD_SECRET,
  REGISTRY_USERNAME_SECRET,
  renderPipelineFile,
} from '../../../src/ci/github/pipeline-file.ts';
import { buildPlan, readWorkflow } from '@flui/github-emulator/runner';
import { ServiceError } from '../../../src/errors.ts';
import { pipelineApp as app, PIPELINE_MANIFESTS as MANIFESTS } from '../../fixtures/pipeline-manifests.ts';

interface Step {
  uses?: string;
  id?: string;
  with?: Record<string, unknown>;
  run?: string;
}
interface Workflow {
  on: Record<string, { inputs: Record<string, { required: boolean }> }>;
  'run-name': string;
  permissions: unknown;
  concurrency: { group: string };
  jobs: { build: { outputs: Record<string, string>; steps: Step[] } };
}

describe('the generated pipeline file', () => {
  it('renders byte-identically whatever the order of the manifest', () => {
    for (const m of MANIFESTS) assert.equal(renderPipelineFile(m), renderPipelineFile(structuredClone(m)));
    const reordered = app('monorepo', {
      buildArgs: { A: '1', NODE_ENV: 'production' },
      dockerfile: 'build/Dockerfile',
      context: 'services/api',
    });
    assert.equal(renderPipelineFile(reordered), renderPipelineFile(MANIFESTS[1]!));
  });

  it('says what it is, triggers on dispatch with a deploy id, and builds what the manifest says', () => {
    const m = MANIFESTS[1]!;
    const text = renderPipelineFile(m);
    assert.match(text, /^# Managed by Flui for the app default\.monorepo/);
    assert.equal(pipelinePath(m), '.github/workflows/flui-build-default.monorepo.yml');
    const wf = parse(text) as Workflow;
    assert.deepEqual(Object.keys(wf.on), ['workflow_dispatch']);
    assert.equal(wf.on.workflow_dispatch?.inputs.deploy_id?.required, true);
    assert.equal(wf['run-name'], 'flui ${{ inputs.deploy_id }}');
    assert.deepEqual(wf.permissions, { contents: 'read' });
    assert.equal(wf.concurrency.group, 'flui-build-default.monorepo');
    const job = wf.jobs.build;
    assert.equal(job.outputs.digest, '${{ steps.build.outputs.digest }}');
    assert.deepEqual(job.steps.map((s) => s.uses).filter(Boolean), [
      ACTIONS.checkout,
      ACTIONS.setupBuildx,
      ACTIONS.login,
      ACTIONS.buildPush,
    ]);
    for (const uses of Object.values(ACTIONS)) assert.match(uses, /@v\d+$/, 'pinned by version');
    assert.equal(job.steps[0]?.with?.['persist-credentials'], false);
    const build = job.steps.find((s) => s.id === 'build');
    assert.deepEqual(build?.with, {
      context: 'services/api',
      file: 'services/api/build/Dockerfile',
      push: true,
      tags: 'registry.example.com:5000/acme/monorepo:${{ github.sha }}',
      'build-args': 'A=1\nNODE_ENV=production',
      'cache-from': 'type=gha,scope=flui-default.monorepo',
      'cache-to': 'type=gha,mode=max,scope=flui-default.monorepo',
    });
    assert.match(job.steps.at(-1)?.run ?? '', /GITHUB_STEP_SUMMARY/);
  });

  it('escapes expressions in build args', () => {
    const wf = parse(renderPipelineFile(MANIFESTS[3]!)) as Workflow;
    const args = String(wf.jobs.build.steps.find((s) => s.id === 'build')?.with?.['build-args']);
    assert.ok(args.includes("TOKEN=${{ '${{' }} secrets.GITHUB_TOKEN }}"), args);
  });

  it('refuses a build arg that spans lines, naming it', () => {
    assert.throws(
      () => renderPipelineFile(app('multi', { buildArgs: { CERT: 'line1\nline2' } })),
      (err: unknown) =>
        err instanceof ServiceError && !err.retryable && err.kind === 'invalid' && /CERT/.test(err.message),
    );
  });

  it("is what the GitHub emulator's runner executes: registry, secret names and tag", () => {
    const m = MANIFESTS[2]!;
    const wf = readWorkflow(renderPipelineFile(m));
    assert.deepEqual(wf.dispatchInputs, { deploy_id: wf.dispatchInputs!.deploy_id });
    assert.deepEqual(buildPlan(wf.steps, 'abc123'), {
      registry: 'ghcr.io',
      usernameSecret: REGISTRY_USERNAME_SECRET,
      passwordSecret: REGISTRY_PASSWORD_SECRET,
      tags: ['ghcr.io/acme/branchy:abc123'],
      context: '.',
    });
  });
});
