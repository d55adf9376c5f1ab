import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import {
  ACTIONS,
  pipelineFileName,
  pipelinePath,
  REGISTRY_PASSWORD_SECRET,
  REGISTRY_USERNAME_SECRET,
  renderPipelineFile,
} from '../../../src/ci/github/pipeline-file.ts';
import { buildPlan, readWorkflow } from '@flui/github-emulator/runner';
import { findTool } from '../../../dev/tools.ts';
import { ServiceError } from '../../../src/errors.ts';
import { validateManifest } from '../../../src/manifest/parse.ts';
import type { Application } from '../../../src/manifest/schema.ts';

const execFileAsync = promisify(execFile);

function app(name: string, source: Record<string, unknown> = {}, more: Record<string, unknown> = {}): Application {
  return validateManifest({
    apiVersion: 'flui.dev/v1',
    kind: 'Application',
    metadata: { name, ...(more.namespace ? { namespace: more.namespace } : {}) },
    spec: {
      source: { repository: `acme/${name}`, ...source },
      image: { repository: (more.image as string) ?? `registry.example.com:5000/acme/${name}` },
      ...(more.deploy ? { deploy: more.deploy } : {}),
    },
  }) as Application;
}

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

const MANIFESTS: Application[] = [
  app('plain'),
  app('monorepo', {
    context: 'services/api',
    dockerfile: 'build/Dockerfile',
    buildArgs: { NODE_ENV: 'production', A: '1' },
  }),
  app('branchy', { branch: 'release/v2' }, { namespace: 'staging', image: 'ghcr.io/acme/branchy' }),
  // A build arg that looks like an expression must reach docker as text, not read a secret.
  app('sneaky', { buildArgs: { TOKEN: '${{ secrets.GITHUB_TOKEN }}', QUOTED: `it's "quoted", with commas` } }),
  app('slow', {}, { deploy: { buildTimeoutMinutes: 1440 } }),
];

describe('the generated pipeline file', () => {
  let actionlint: string;
  let dir: string;
  /** Set when a check fails: the rendered files stay for a look. */
  let keep = false;
  before(async () => {
    actionlint = findTool('actionlint', 'FLUI_ACTIONLINT');
    dir = await mkdtemp(join(tmpdir(), 'flui-actionlint-'));
  });
  after(async () => {
    if (keep) process.stdout.write(`# rendered files kept in ${dir}\n`);
    else await rm(dir, { recursive: true, force: true });
  });

  async function lint(files: Record<string, string>): Promise<string> {
    const paths: string[] = [];
    for (const [name, content] of Object.entries(files)) {
      const path = join(dir, name);
      await writeFile(path, content);
      paths.push(path);
    }
    try {
      await execFileAsync(actionlint, ['-no-color', '-oneline', ...paths]);
      return '';
    } catch (err) {
      const { stdout, stderr, code } = err as { stdout: string; stderr: string; code: number };
      assert.equal(code, 1, `actionlint crashed (exit ${code}): ${stderr}`);
      return stdout;
    }
  }

  it('passes actionlint for several manifests', async () => {
    const findings = await lint(Object.fromEntries(MANIFESTS.map((m) => [pipelineFileName(m), renderPipelineFile(m)])));
    keep ||= findings !== '';
    assert.equal(findings, '', `actionlint findings (files in ${dir}):\n${findings}`);
  });

  it('is a check that can fail: actionlint reports a broken variant of the file', async () => {
    const broken = renderPipelineFile(MANIFESTS[0]!).replace('${{ inputs.deploy_id }}', '${{ inputs.deploy_idd }}');
    assert.match(await lint({ 'broken.yml': broken }), /deploy_idd/);
  });

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
