/**
 * Every string that reaches a GitLab CI file Flui writes comes back unchanged and adds no key: on arbitrary valid
 * manifests (nested-group repository paths, build args, image names, branch names) and on strings that skip the
 * manifest's validation, the job file reads the same to YAML 1.2 (`yaml`) and YAML 1.1 (`yaml-js`; GitLab parses with
 * Ruby's Psych, YAML 1.1), holds exactly Flui's keys, and each value, with GitLab's `$$` escape undone, is the
 * manifest's. Adding Flui's include to an arbitrary user entry file keeps every one of the user's keys, and adding it
 * again changes nothing.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parse, parseAllDocuments, stringify } from 'yaml';
import {
  jobFilePath,
  jobName,
  PIPELINE_INPUTS,
  renderJobFile,
  renderNewEntryFile,
  updateEntryFile,
  type GitLabPipelineOptions,
} from '../../../src/ci/gitlab/pipeline-file.ts';
import { projectId } from '../../../src/ci/gitlab/client.ts';
import { ServiceError } from '../../../src/errors.ts';
import { DNS_LABEL, IMAGE_REPOSITORY } from '../../../src/manifest/names.ts';
import { validateManifest } from '../../../src/manifest/parse.ts';
import type { Application } from '../../../src/manifest/schema.ts';

const yaml11 = createRequire(import.meta.url)('yaml-js') as { load(text: string): unknown };

const BUILDER = `quay.io/buildah/stable@sha256:${'0'.repeat(64)}`;
const TRICKY = [
  '\n',
  '\r',
  '\u0085',
  '\u2028',
  '\u2029',
  '\t',
  '\u0000',
  '\u001b',
  '$',
  '$$',
  '${X}',
  '$[',
  '[[',
  ']]',
  '"',
  "'",
  '\\',
  ':',
  '#',
  ' ',
  '- ',
  '{',
  '}',
  '&a',
  '*a',
  '!tag',
  '%',
  '@',
  '`',
  'on',
  'yes',
  '~',
  '\ud83d\ude00',
];
const trickyString = fc.string({
  unit: fc.oneof(fc.constantFrom(...TRICKY), fc.string({ unit: 'binary', minLength: 1, maxLength: 1 })),
  maxLength: 30,
});
const segment = fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9._-]{0,10}$/).filter((s) => s !== '.' && s !== '..');
const repositoryPath = fc.array(segment, { minLength: 2, maxLength: 5 }).map((s) => s.join('/'));
const branch = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._/-]{0,20}$/);
const envName = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,15}$/);

function manifest(over: {
  repository: string;
  branch: string;
  image: string;
  buildArgs: Record<string, string>;
  name: string;
  namespace: string;
}): Application {
  return {
    apiVersion: 'flui.dev/v1',
    kind: 'Application',
    metadata: { name: over.name, namespace: over.namespace },
    spec: {
      source: {
        repository: over.repository,
        branch: over.branch,
        context: '.',
        dockerfile: 'Dockerfile',
        buildArgs: over.buildArgs,
      },
      image: { repository: over.image },
      deploy: { buildTimeoutMinutes: 30 },
    },
  } as unknown as Application;
}

const options = (image: string): GitLabPipelineOptions => ({
  push: { method: 'static', registry: image.split('/')[0]! },
  builderImage: BUILDER,
});

const unescape = (v: string) => v.replaceAll('$$', '$');

interface JobDoc {
  workflow: { name: string };
  variables: Record<string, string>;
  [job: string]: unknown;
}

/** Both parsers read the same; exactly Flui's keys; every manifest value round-trips. */
function checkJobFile(text: string, app: Application): void {
  const docs12 = parseAllDocuments(text).map((d) => d.toJS() as unknown);
  const docs11 = text.split(/^---$/m).map((d) => yaml11.load(d));
  assert.deepEqual(docs11, docs12, 'YAML 1.1 and 1.2 read the same documents');
  assert.equal(docs12.length, 2);
  const [header, body] = docs12 as [{ spec: { inputs: Record<string, unknown> } }, JobDoc];
  assert.deepEqual(Object.keys(header), ['spec']);
  assert.deepEqual(Object.keys(header.spec.inputs).sort(), ['app', 'deploy_id', 'image_tag', 'run_name']);
  assert.deepEqual(Object.keys(body).sort(), [jobName(app), 'variables', 'workflow'].sort(), "no key but Flui's");
  const job = body[jobName(app)] as { variables: Record<string, string>; script: string[]; rules: unknown[] };
  const { source, image } = app.spec;
  const expected: Record<string, string> = {
    STORAGE_DRIVER: 'vfs',
    BUILDAH_ISOLATION: 'chroot',
    BUILDAH_FORMAT: 'docker',
    FLUI_REGISTRY: image.repository.split('/')[0]!,
    FLUI_IMAGE: image.repository,
    FLUI_IMAGE_TAG: '$[[ inputs.image_tag ]]',
    FLUI_CONTEXT: source.context,
    FLUI_DOCKERFILE: source.dockerfile,
  };
  for (const [k, v] of Object.entries(source.buildArgs)) expected[`FLUI_BUILD_ARG_${k}`] = v;
  const got = Object.fromEntries(
    Object.entries(job.variables).map(([k, v]) => [k, k === 'FLUI_IMAGE_TAG' ? v : unescape(v)]),
  );
  assert.deepEqual(got, expected, 'every value as the manifest gave it');
  for (const [k, v] of Object.entries(job.variables)) {
    if (k !== 'FLUI_IMAGE_TAG') assert.ok(!/(^|[^$])(\$\$)*\$(?!\$)/.test(v), `${k}: every $ is escaped`);
  }
  // No build arg value reaches a script line: the script is the same whatever the values are.
  const neutral = structuredClone(app);
  neutral.spec.source.buildArgs = Object.fromEntries(Object.keys(source.buildArgs).map((k) => [k, 'v']));
  const neutralBody = parseAllDocuments(renderJobFile(neutral, options(image.repository)))[1]!.toJS() as JobDoc;
  assert.deepEqual(job.script, (neutralBody[jobName(app)] as { script: string[] }).script, 'no value in a script');
  assert.equal(job.rules.length, 1);
}

describe('GitLab job file (property)', () => {
  it('round-trips every manifest string, on valid manifests in nested groups', () => {
    fc.assert(
      fc.property(
        fc.record({
          repository: repositoryPath,
          branch,
          image: fc.stringMatching(IMAGE_REPOSITORY),
          name: fc.stringMatching(DNS_LABEL),
          namespace: fc.stringMatching(DNS_LABEL),
          buildArgs: fc.dictionary(
            envName,
            fc.string({ maxLength: 30 }).filter((v) => !v.includes('$[[')),
            { maxKeys: 4 },
          ),
        }),
        (m) => {
          let app: Application;
          try {
            app = validateManifest(manifest(m)) as Application;
          } catch {
            return; // parse-time validation refused a string (e.g. a control character): nothing is rendered
          }
          checkJobFile(renderJobFile(app, options(app.spec.image.repository)), app);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('is safe on its own: arbitrary strings either round-trip or are refused with a ServiceError', () => {
    fc.assert(
      fc.property(
        fc.record({
          repository: repositoryPath,
          branch,
          image: fc.stringMatching(IMAGE_REPOSITORY),
          name: fc.stringMatching(DNS_LABEL),
          namespace: fc.stringMatching(DNS_LABEL),
          buildArgs: fc.dictionary(envName, trickyString, { maxKeys: 4 }),
        }),
        (m) => {
          const app = manifest(m);
          let text: string;
          try {
            text = renderJobFile(app, options(m.image));
          } catch (err) {
            assert.ok(err instanceof ServiceError && !err.retryable, String(err));
            return;
          }
          checkJobFile(text, app);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('refuses "$[[" (an input interpolation) in any value, and a build arg name that is not a variable name', () => {
    const base = {
      repository: 'g/s/p',
      branch: 'main',
      image: 'registry.example.com/g/p',
      name: 'web',
      namespace: 'default',
    };
    assert.throws(
      () => renderJobFile(manifest({ ...base, buildArgs: { A: 'x$[[ inputs.app ]]' } }), options(base.image)),
      /input interpolation/,
    );
    assert.throws(
      () => renderJobFile(manifest({ ...base, buildArgs: { 'A-B': 'x' } }), options(base.image)),
      /not a variable name/,
    );
  });

  it('encodes nested-group paths as one project id', () => {
    fc.assert(
      fc.property(repositoryPath, (path) => {
        const id = projectId(path);
        assert.ok(!id.includes('/'));
        assert.equal(decodeURIComponent(id), path);
      }),
    );
  });
});

/** An arbitrary user entry file: jobs with scripts, maybe stages, includes and variables. */
const userFile = fc.record(
  {
    stages: fc
      .array(fc.constantFrom('test', 'deploy', 'lint', 'build'), { minLength: 1, maxLength: 3 })
      .map((s) => [...new Set(s)]),
    include: fc.oneof(
      fc.constant('ci/other.yml'),
      fc.constant({ local: 'ci/x.yml' }),
      fc.constant(['a.yml', { template: 'Jobs/SAST.gitlab-ci.yml' }]),
    ),
    variables: fc.dictionary(envName, fc.string({ maxLength: 10 }), { maxKeys: 2 }),
    jobs: fc.dictionary(
      fc
        .stringMatching(/^[a-z][a-z0-9_-]{0,10}$/)
        .filter((k) => !['stages', 'include', 'variables', 'workflow', 'spec', 'default'].includes(k)),
      fc.record({ script: fc.array(fc.string({ maxLength: 10 }), { minLength: 1, maxLength: 2 }) }),
      { minKeys: 1, maxKeys: 3 },
    ),
  },
  { requiredKeys: ['jobs'] },
);

describe('GitLab entry file (property)', () => {
  const app = manifest({
    repository: 'acme/platform/web',
    branch: 'main',
    image: 'registry.example.com/acme/web',
    buildArgs: {},
    name: 'web',
    namespace: 'default',
  });

  it('adds the inputs and one include, keeps every user key, and is a no-op the second time', () => {
    fc.assert(
      fc.property(userFile, fc.boolean(), (generated, comment) => {
        // Plain objects, as a YAML parser returns them (fast-check's dictionaries have no prototype).
        const u = JSON.parse(JSON.stringify(generated)) as typeof generated;
        const { jobs, ...rest } = u;
        const doc = { ...rest, ...jobs };
        const text = `${comment ? "# the team's pipeline\n" : ''}${stringify(doc)}`;
        const first = updateEntryFile(app, '.gitlab-ci.yml', text);
        assert.ok(first.content, 'something to add');
        const [header, body] = parseAllDocuments(first.content!).map((d) => d.toJS() as Record<string, unknown>);
        assert.deepEqual(
          Object.keys((header as { spec: { inputs: object } }).spec.inputs).sort(),
          Object.values(PIPELINE_INPUTS).sort(),
        );
        for (const [k, v] of Object.entries(jobs)) assert.deepEqual(body![k], v, `job ${k} kept`);
        assert.deepEqual(body!.variables, rest.variables);
        const includes = [body!.include].flat() as unknown[];
        const ours = includes.filter((i) => (i as { local?: string }).local === jobFilePath(app));
        assert.equal(ours.length, 1);
        assert.deepEqual(
          includes.filter((i) => !ours.includes(i)),
          rest.include === undefined ? [] : [rest.include].flat(),
        );
        if (rest.stages)
          assert.deepEqual(
            (body!.stages as string[]).filter((s) => s !== 'build'),
            rest.stages.filter((s) => s !== 'build'),
          );
        if (comment) assert.match(first.content!, /# the team's pipeline/);
        assert.deepEqual(updateEntryFile(app, '.gitlab-ci.yml', first.content!), { changes: [] });
      }),
      { numRuns: 200 },
    );
  });

  it("refuses an entry file that names pipelines itself (Flui's name would be hidden)", () => {
    assert.throws(
      () => updateEntryFile(app, '.gitlab-ci.yml', 'workflow:\n  name: mine\njob:\n  script: [x]\n'),
      (err: unknown) => err instanceof ServiceError && err.kind === 'invalid' && /workflow:name/.test(err.message),
    );
  });

  it('a file Flui creates already holds everything', () => {
    assert.deepEqual(updateEntryFile(app, '.gitlab-ci.yml', renderNewEntryFile(app)), { changes: [] });
    const parsed = parse(renderNewEntryFile(app).split('---\n')[1]!) as { include: unknown[] };
    assert.equal(parsed.include.length, 1);
  });
});
