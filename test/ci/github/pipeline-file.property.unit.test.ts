/**
 * Every file Flui writes reads the same to a YAML 1.2 parser (`yaml`, what Flui and most tools use) and to a YAML 1.1
 * parser (`yaml-js`, a port of PyYAML; GitHub's runner parses with YamlDotNet, also YAML 1.1, for which U+0085, U+2028
 * and U+2029 end lines and `on`/`yes`/`off` are booleans): the same jobs, the same steps, and every build arg exactly
 * as the manifest gave it. Checked on arbitrary valid manifests, and on arbitrary strings that skip validation
 * altogether, since the renderer must be safe on its own.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parse } from 'yaml';
import { ACTION_PINS } from '../../../src/ci/github/action-pins.ts';
import { renderPipelineFile, type PipelineOptions } from '../../../src/ci/github/pipeline-file.ts';
import { ServiceError } from '../../../src/errors.ts';
import { DNS_LABEL, IMAGE_REPOSITORY } from '../../../src/manifest/names.ts';
import { validateManifest } from '../../../src/manifest/parse.ts';
import type { Application } from '../../../src/manifest/schema.ts';
import type { PushAccess } from '../../../src/registry/push-access.ts';

/** The push methods a GitHub Actions file knows (`ci-job-token` is GitLab's). */
type GitHubPushMethod = Exclude<PushAccess['method'], 'ci-job-token'>;

const yaml11 = createRequire(import.meta.url)('yaml-js') as { load(text: string): unknown };

/** Characters that mean something to YAML 1.1, YAML 1.2, GitHub expressions, CSV or a terminal. */
const TRICKY = [
  '\n',
  '\r',
  '\r\n',
  '\u0085',
  '\u2028',
  '\u2029',
  '\t',
  '\u0000',
  '\u001b',
  '\u007f',
  '\u00a0',
  '\ufeff',
  '\u202e',
  '\u200b',
  '\ud83d\ude00',
  '\ud800',
  '\udc00',
  '${{',
  '}}',
  "'",
  '"',
  '""',
  ',',
  ',"',
  '\\',
  '#',
  ' #',
  ': ',
  '- ',
  '&a',
  '*a',
  '!!str',
  '%',
  '@',
  '`',
  '|',
  '>',
  '{',
  '[',
  '---',
  '...',
  'yes',
  'on',
  'Off',
  'null',
  '~',
  '0x1F',
  '012',
  '1:20',
  '.inf',
  ' ',
];

const trickyString = fc.string({
  unit: fc.oneof(fc.constantFrom(...TRICKY), fc.string({ unit: 'binary', minLength: 1, maxLength: 1 })),
  maxLength: 12,
});

const PUSH: PushAccess[] = [
  { method: 'github-token', registry: 'ghcr.io' },
  { method: 'static', registry: 'registry.example.com' },
  { method: 'minted-token', registry: 'registry.example.com' },
  {
    method: 'aws-oidc',
    registry: '123456789012.dkr.ecr.eu-west-1.amazonaws.com',
    roleArn: 'arn:aws:iam::123456789012:role/flui-push',
    region: 'eu-west-1',
    accountId: '123456789012',
  },
  {
    method: 'gcp-oidc',
    registry: 'europe-west1-docker.pkg.dev',
    workloadIdentityProvider: 'projects/123456789/locations/global/workloadIdentityPools/github/providers/github',
    serviceAccount: 'flui-push@acme-prod.iam.gserviceaccount.com',
  },
  {
    method: 'azure-oidc',
    registry: 'acmeprod.azurecr.io',
    clientId: '11111111-2222-3333-4444-555555555555',
    tenantId: '66666666-7777-8888-9999-000000000000',
    subscriptionId: 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee',
    registryName: 'acmeprod',
  },
];

const options: fc.Arbitrary<PipelineOptions> = fc.record(
  {
    push: fc.constantFrom(...PUSH),
    environment: fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9 ._-]{0,20}$/),
  },
  { requiredKeys: ['push'] },
);

const envName = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,15}$/);
const path = fc
  .stringMatching(/^[A-Za-z0-9._-]{1,8}(\/[A-Za-z0-9._-]{1,8}){0,2}$/)
  .filter((p) => !p.split('/').includes('..'));

/** Manifests as `validateManifest` accepts them (whatever it refuses is skipped). */
const manifest: fc.Arbitrary<Application> = fc
  .record({
    name: fc.stringMatching(DNS_LABEL),
    namespace: fc.stringMatching(DNS_LABEL),
    image: fc.stringMatching(IMAGE_REPOSITORY),
    context: fc.oneof(fc.constant('.'), path),
    dockerfile: path,
    buildArgs: fc.dictionary(envName, trickyString, { maxKeys: 6 }),
    buildTimeoutMinutes: fc.integer({ min: 1, max: 1440 }),
  })
  .map((r) => {
    try {
      return validateManifest({
        apiVersion: 'flui.dev/v1',
        kind: 'Application',
        metadata: { name: r.name, namespace: r.namespace },
        spec: {
          source: { repository: 'acme/web', context: r.context, dockerfile: r.dockerfile, buildArgs: r.buildArgs },
          image: { repository: r.image },
          deploy: { buildTimeoutMinutes: r.buildTimeoutMinutes },
        },
      }) as Application;
    } catch {
      return undefined;
    }
  })
  .filter((m): m is Application => m !== undefined);

/** `valid` four times in five, else `odd`. */
const mostly = <T>(valid: fc.Arbitrary<T>, odd: fc.Arbitrary<T>) =>
  fc.oneof({ arbitrary: valid, weight: 4 }, { arbitrary: odd, weight: 1 });

/** Manifest-shaped objects whose strings were never validated: what the renderer must survive on its own. */
const unvalidated: fc.Arbitrary<Application> = fc
  .record({
    name: mostly(fc.stringMatching(DNS_LABEL), trickyString),
    namespace: mostly(fc.stringMatching(DNS_LABEL), trickyString),
    image: mostly(
      fc.stringMatching(IMAGE_REPOSITORY),
      trickyString.map((s) => `registry.example.com/${s}`),
    ),
    context: mostly(fc.oneof(fc.constant('.'), path), trickyString),
    dockerfile: mostly(path, trickyString),
    buildArgs: fc.dictionary(mostly(envName, trickyString), trickyString, { maxKeys: 4 }),
  })
  .map((r) => {
    const base = validateManifest({
      apiVersion: 'flui.dev/v1',
      kind: 'Application',
      metadata: { name: 'web' },
      spec: { source: { repository: 'acme/web' }, image: { repository: 'registry.example.com/acme/web' } },
    }) as Application;
    return {
      ...base,
      metadata: { name: r.name, namespace: r.namespace },
      spec: {
        ...base.spec,
        source: { ...base.spec.source, context: r.context, dockerfile: r.dockerfile, buildArgs: r.buildArgs },
        image: { repository: r.image },
      },
    };
  });

/** What GitHub makes of a value before the action sees it: `${{ '${{' }}` is the literal `${{`. */
const evaluate = (text: string) => text.replaceAll("${{ '${{' }}", '${{');

/** What docker/build-push-action passes to buildx: one arg per line, CSV-unquoted; as sorted `[name, value]`s. */
function decodeBuildArgs(input: unknown): [string, string][] {
  if (input === undefined) return [];
  assert.equal(typeof input, 'string');
  return evaluate(input as string)
    .split('\n')
    .map((raw) => {
      const line = raw.startsWith('"') ? raw.slice(1, -1).replaceAll('""', '"') : raw;
      const eq = line.indexOf('=');
      return [line.slice(0, eq), line.slice(eq + 1)] as [string, string];
    });
}

type Step = { uses?: string; id?: string; run?: string; with?: Record<string, unknown> };
type Doc = { jobs: Record<string, { steps: Step[] }> };

/** Both parsers read `text` alike, with one job whose steps are Flui's, pushing with exactly the manifest's args. */
function checkFile(text: string, app: Application, opts: PipelineOptions): void {
  const read12 = parse(text) as Doc;
  const read11 = yaml11.load(text) as Doc;
  assert.deepEqual(read11, read12, 'YAML 1.1 and YAML 1.2 read the same document');
  assert.deepEqual(Object.keys(read12.jobs), ['build'], 'one job');
  const steps = read12.jobs.build!.steps;
  const pinned = (key: keyof typeof ACTION_PINS) => `${ACTION_PINS[key].repository}@${ACTION_PINS[key].sha}`;
  const logins: Record<GitHubPushMethod, number> = {
    'github-token': 1,
    static: 1,
    'minted-token': 1,
    'aws-oidc': 2,
    'gcp-oidc': 2,
    'azure-oidc': 2,
  };
  assert.equal(
    steps.length,
    2 + logins[opts.push.method as GitHubPushMethod] + 2,
    'checkout, buildx, login, build, report',
  );
  assert.equal(steps[0]?.uses, pinned('checkout'));
  assert.equal(steps[1]?.uses, pinned('setupBuildx'));
  const build = steps.at(-2)!;
  assert.equal(build.uses, pinned('buildPush'));
  const given = Object.entries(app.spec.source.buildArgs).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  assert.deepEqual(decodeBuildArgs(build.with?.['build-args']), given, 'build args round-trip');
  assert.equal(evaluate(String(build.with?.context)), app.spec.source.context);
  assert.equal(
    String(build.with?.tags),
    `${app.spec.image.repository}:\${{ github.sha }}\n${app.spec.image.repository}:\${{ inputs.image_tag }}`,
  );
  // Only Flui's own scripts run, and none of them holds a value from the manifest.
  for (const s of steps.filter((x) => x.run)) assert.doesNotMatch(s.run!, /\$\{\{/);
}

/** The renderer may refuse a value, but only with a clear, permanent error. */
function isRefusal(err: unknown): boolean {
  return err instanceof ServiceError && err.kind === 'invalid' && !err.retryable;
}

/** What a build arg value must not hold to pass through docker/build-push-action unchanged, or YAML at all. */
const unpassable = (value: string) =>
  /[\r\n]/.test(value) ||
  value !== value.trimEnd() ||
  /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(value);

describe('the generated pipeline file, read by YAML 1.1 and YAML 1.2 parsers', () => {
  it('reads the same for arbitrary valid manifests, with every build arg exactly as given', () => {
    let rendered = 0;
    fc.assert(
      fc.property(manifest, options, (app, opts) => {
        let text: string;
        try {
          text = renderPipelineFile(app, opts);
        } catch (err) {
          assert.ok(isRefusal(err), String(err));
          assert.ok(Object.values(app.spec.source.buildArgs).some(unpassable), `refused: ${String(err)}`);
          return;
        }
        checkFile(text, app, opts);
        rendered++;
      }),
      { numRuns: 400 },
    );
    assert.ok(rendered > 100, `only ${rendered} of 400 manifests rendered: the property says little`);
  });

  it('reads the same, or refuses, for manifest strings that were never validated', () => {
    let rendered = 0;
    fc.assert(
      fc.property(unvalidated, options, (app, opts) => {
        let text: string;
        try {
          text = renderPipelineFile(app, opts);
        } catch (err) {
          assert.ok(isRefusal(err), String(err));
          return;
        }
        checkFile(text, app, opts);
        rendered++;
      }),
      { numRuns: 400 },
    );
    assert.ok(rendered > 40, `only ${rendered} of 400 rendered: the property says little`);
  });

  it('is a check that can fail: a raw U+2028, as a YAML 1.2 writer leaves it, reads as another step to YAML 1.1', () => {
    // Parsing refuses the separator: put it in after validation, as a manifest that skipped it would carry it.
    const app = validateManifest({
      apiVersion: 'flui.dev/v1',
      kind: 'Application',
      metadata: { name: 'web' },
      spec: { source: { repository: 'acme/web' }, image: { repository: 'registry.example.com/acme/web' } },
    }) as Application;
    app.spec.source.buildArgs = { X: 'a\u2028      - run: cat ~/.docker/config.json' };
    const opts: PipelineOptions = { push: PUSH[1]! };
    const text = renderPipelineFile(app, opts);
    checkFile(text, app, opts);
    const raw = text.replace('\\u2028', '\u2028');
    assert.notEqual(raw, text);
    assert.throws(() => checkFile(raw, app, opts));
  });
});
