/**
 * The GitLab CI files Flui writes, checked by a real GitLab CI tool: `gitlab-ci-local` (npm, 4.73.0) validates them
 * against GitLab's published CI JSON schema, expands includes and inputs as GitLab does, and evaluates the rules,
 * the way actionlint checks the GitHub file. It needs a git repository with an `origin` remote, made here in a
 * temporary directory. Proves: the files are valid for every push method GitLab supports; in a project with its own
 * pipeline, a push pipeline runs the user's jobs and never Flui's; a pipeline Flui starts (source `api`, its inputs)
 * runs Flui's job, named `flui <run key>`, with the image tag of the deploy; another app's pipeline does not.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, describe, it } from 'node:test';
import { parse } from 'yaml';
import {
  jobFilePath,
  jobName,
  plannedFiles,
  PIPELINE_INPUTS,
  type GitLabPipelineOptions,
} from '../../../src/ci/gitlab/pipeline-file.ts';
import { validateManifest } from '../../../src/manifest/parse.ts';
import type { Application } from '../../../src/manifest/schema.ts';
import { ciImageTag, ciRunName } from '../../../src/workflows/contract.ts';

const run = promisify(execFile);
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const GITLAB_CI_LOCAL = join(ROOT, 'node_modules/.bin/gitlab-ci-local');
const BUILDER = `quay.io/buildah/stable@sha256:${'1'.repeat(64)}`;

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const app = validateManifest({
  apiVersion: 'flui.dev/v1',
  kind: 'Application',
  metadata: { name: 'web', namespace: 'shop' },
  spec: {
    source: { repository: 'acme/platform/web', buildArgs: { GREETING: 'hello $USER "world"', EMPTY: '' } },
    image: { repository: 'registry.gitlab.example.com/acme/platform/web' },
  },
}) as Application;

/** A project directory holding `files` (plus what Flui plans to write), committed, with an origin remote. */
async function project(files: Record<string, string>, options: GitLabPipelineOptions): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'flui-glcl-'));
  dirs.push(dir);
  const entry = files['.gitlab-ci.yml'];
  const plan = plannedFiles(app, options, { entryPath: '.gitlab-ci.yml', ...(entry ? { entry } : {}) });
  for (const [path, content] of [...Object.entries(files), ...plan.files.map((f) => [f.path, f.content] as const)]) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  const git = (...args: string[]) => run('git', args, { cwd: dir });
  await git('init', '-q', '-b', 'main');
  await git('remote', 'add', 'origin', 'https://gitlab.example.com/acme/platform/web.git');
  await git('add', '-A');
  await git('-c', 'user.email=ci@example.com', '-c', 'user.name=CI', 'commit', '-qm', 'files');
  return dir;
}

async function glcl(dir: string, args: string[]): Promise<string> {
  const { stdout } = await run(
    GITLAB_CI_LOCAL,
    ['--ignore-predefined-vars', 'CI_PIPELINE_SOURCE', ...args],
    // It wants a relative --cwd: run it in the project instead.
    { cwd: dir, env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' }, maxBuffer: 10 * 1024 * 1024 },
  );
  return stdout;
}

/** Jobs and when they run, for a pipeline of `source` with `inputs`. */
async function jobs(dir: string, source: string, inputs: Record<string, string> = {}): Promise<Record<string, string>> {
  const out = await glcl(dir, [
    '--list-json',
    '--variable',
    `CI_PIPELINE_SOURCE=${source}`,
    ...Object.entries(inputs).flatMap(([k, v]) => ['--input', `${k}=${v}`]),
  ]);
  const list = JSON.parse(out.slice(out.indexOf('['))) as { name: string; when: string }[];
  return Object.fromEntries(list.map((j) => [j.name, j.when]));
}

const runKey = 'shop.web.k3x9a1';
const fluiInputs = {
  [PIPELINE_INPUTS.app]: 'shop.web',
  [PIPELINE_INPUTS.deployId]: runKey,
  [PIPELINE_INPUTS.imageTag]: ciImageTag(runKey),
  [PIPELINE_INPUTS.runName]: ciRunName(runKey),
};

const pushMethods: [string, GitLabPipelineOptions][] = [
  ['static', { push: { method: 'static', registry: 'registry.gitlab.example.com' }, builderImage: BUILDER }],
  [
    'minted-token',
    { push: { method: 'minted-token', registry: 'registry.gitlab.example.com' }, builderImage: BUILDER },
  ],
  [
    'ci-job-token',
    {
      push: { method: 'ci-job-token', registry: 'registry.gitlab.example.com' },
      builderImage: BUILDER,
      registryHost: 'registry.gitlab.example.com',
    },
  ],
];

describe('GitLab CI files under gitlab-ci-local', () => {
  for (const [method, options] of pushMethods) {
    it(`a project without a pipeline: valid, and Flui's job runs only in Flui's pipeline (${method})`, async () => {
      const dir = await project({ Dockerfile: 'FROM scratch\n' }, options);
      assert.deepEqual(await jobs(dir, 'api', fluiInputs), { [jobName(app)]: 'on_success' });
      assert.deepEqual(await jobs(dir, 'push'), { [jobName(app)]: 'never' });
    });
  }

  it("a project with its own pipeline: push pipelines run the user's jobs, never Flui's", async () => {
    const user = [
      '# The team pipeline',
      'stages: [lint, test]',
      'variables:',
      '  NODE_ENV: test',
      'lint:',
      '  stage: lint',
      '  script: [npm run lint]',
      'unit:',
      '  stage: test',
      '  script: [npm test]',
      '',
    ].join('\n');
    const dir = await project({ '.gitlab-ci.yml': user, Dockerfile: 'FROM scratch\n' }, pushMethods[0]![1]);
    assert.deepEqual(await jobs(dir, 'push'), { [jobName(app)]: 'never', lint: 'on_success', unit: 'on_success' });
    assert.deepEqual(await jobs(dir, 'merge_request_event'), {
      [jobName(app)]: 'never',
      lint: 'on_success',
      unit: 'on_success',
    });
    // Flui's pipeline: its job runs (the user's jobs too, unless their rules exclude `api` pipelines).
    assert.equal((await jobs(dir, 'api', fluiInputs))[jobName(app)], 'on_success');
    // Another app's pipeline in the same project does not build this one.
    assert.equal(
      (await jobs(dir, 'api', { ...fluiInputs, [PIPELINE_INPUTS.app]: 'shop.other' }))[jobName(app)],
      'never',
    );
  });

  it("expands Flui's pipeline as GitLab would: its name, the deploy's tag, build args kept literal", async () => {
    const dir = await project({ Dockerfile: 'FROM scratch\n' }, pushMethods[0]![1]);
    const preview = parse(
      await glcl(dir, [
        '--preview',
        '--variable',
        'CI_PIPELINE_SOURCE=api',
        ...Object.entries(fluiInputs).flatMap(([k, v]) => ['--input', `${k}=${v}`]),
      ]),
    ) as Record<string, { variables: Record<string, string>; script: string[] }> & {
      workflow: { name: string };
      variables: Record<string, string>;
    };
    assert.equal(preview.workflow.name, '$FLUI_PIPELINE_NAME');
    assert.equal(preview.variables.FLUI_PIPELINE_NAME, ciRunName(runKey));
    const job = preview[jobName(app)]!;
    assert.equal(job.variables.FLUI_IMAGE_TAG, ciImageTag(runKey));
    assert.equal(job.variables.FLUI_BUILD_ARG_GREETING, 'hello $$USER "world"', 'a literal $ stays escaped');
    assert.ok(job.script.some((l) => /^buildah bud --layers /.test(l)));
    assert.ok(job.script.some((l) => /^buildah push --digestfile /.test(l)));
    assert.ok(jobFilePath(app).startsWith('.flui/'));
  });
});
