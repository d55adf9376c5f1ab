import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { ACTION_PINS } from '../../../src/ci/github/action-pins.ts';
import {
  appNameSuffix,
  DISPATCH_INPUTS,
  pipelineFileName,
  pipelinePath,
  pushSecretNames,
  renderPipelineFile,
  type PipelineOptions,
} from '../../../src/ci/github/pipeline-file.ts';
import { buildPlan, readWorkflow } from '@flui/github-emulator/runner';
import { findTool } from '../../../dev/tools.ts';
import { ServiceError } from '../../../src/errors.ts';
import { validateManifest } from '../../../src/manifest/parse.ts';
import type { Application } from '../../../src/manifest/schema.ts';
import type { PushAccess } from '../../../src/registry/push-access.ts';
import { ciImageTag } from '../../../src/workflows/contract.ts';

/** The push methods a GitHub Actions file knows (`ci-job-token` is GitLab's). */
type GitHubPushMethod = Exclude<PushAccess['method'], 'ci-job-token'>;

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

/** One example of each push method, for the registry of `image`. */
export const PUSH_EXAMPLES: Record<GitHubPushMethod, { image: string; push: PushAccess }> = {
  'github-token': { image: 'ghcr.io/acme/web', push: { method: 'github-token', registry: 'ghcr.io' } },
  static: {
    image: 'registry.example.com:5000/acme/web',
    push: { method: 'static', registry: 'registry.example.com:5000' },
  },
  'minted-token': {
    image: 'registry.example.com/acme/web',
    push: { method: 'minted-token', registry: 'registry.example.com' },
  },
  'aws-oidc': {
    image: '123456789012.dkr.ecr.eu-west-1.amazonaws.com/acme/web',
    push: {
      method: 'aws-oidc',
      registry: '123456789012.dkr.ecr.eu-west-1.amazonaws.com',
      roleArn: 'arn:aws:iam::123456789012:role/flui-push',
      region: 'eu-west-1',
      accountId: '123456789012',
    },
  },
  'gcp-oidc': {
    image: 'europe-west1-docker.pkg.dev/acme-prod/apps/web',
    push: {
      method: 'gcp-oidc',
      registry: 'europe-west1-docker.pkg.dev',
      workloadIdentityProvider: 'projects/123456789/locations/global/workloadIdentityPools/github/providers/github',
      serviceAccount: 'flui-push@acme-prod.iam.gserviceaccount.com',
    },
  },
  'azure-oidc': {
    image: 'acmeprod.azurecr.io/acme/web',
    push: {
      method: 'azure-oidc',
      registry: 'acmeprod.azurecr.io',
      clientId: '11111111-2222-3333-4444-555555555555',
      tenantId: '66666666-7777-8888-9999-000000000000',
      subscriptionId: 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee',
      registryName: 'acmeprod',
    },
  },
};

const STATIC: PipelineOptions = { push: { method: 'static', registry: 'registry.example.com:5000' } };

interface Step {
  name?: string;
  uses?: string;
  id?: string;
  with?: Record<string, unknown>;
  env?: Record<string, unknown>;
  run?: string;
}
interface Workflow {
  on: Record<string, { inputs: Record<string, { required: boolean }> }>;
  'run-name': string;
  permissions: unknown;
  concurrency: { group: string };
  jobs: {
    build: {
      environment?: string;
      permissions: Record<string, string>;
      outputs: Record<string, string>;
      steps: Step[];
    };
  };
}

/** `a` with a build arg set after validation, as a manifest that skipped parsing would carry it. */
function withBuildArg(a: Application, name: string, value: string): Application {
  a.spec.source.buildArgs = { ...a.spec.source.buildArgs, [name]: value };
  return a;
}

const MANIFESTS: Application[] = [
  app('plain'),
  app('monorepo', {
    context: 'services/api',
    dockerfile: 'build/Dockerfile',
    buildArgs: { NODE_ENV: 'production', A: '1' },
  }),
  app('branchy', { branch: 'release/v2' }, { namespace: 'staging', image: 'ghcr.io/acme/branchy' }),
  // A build arg that looks like an expression must reach docker as text, not read a secret; a line separator (which
  // parsing now refuses, so it is put in afterwards) must not break the file for YAML 1.1.
  withBuildArg(
    app('sneaky', { buildArgs: { TOKEN: '${{ secrets.GITHUB_TOKEN }}', QUOTED: `it's "quoted", with commas` } }),
    'LS',
    'a\u2028b',
  ),
  app('slow', {}, { deploy: { buildTimeoutMinutes: 1440 } }),
];

/** Every manifest with every push method, some in a GitHub Environment: what the linters check. */
function renderedFiles(): Record<string, string> {
  const files: Record<string, string> = {};
  for (const [i, m] of MANIFESTS.entries()) {
    for (const [method, example] of Object.entries(PUSH_EXAMPLES)) {
      const manifest = { ...m, spec: { ...m.spec, image: { repository: example.image } } };
      const environment = i % 2 ? 'production' : undefined;
      files[`${method}-${pipelineFileName(m)}`] = renderPipelineFile(manifest, { push: example.push, environment });
    }
  }
  return files;
}

describe('the generated pipeline file', () => {
  let actionlint: string;
  let zizmor: string;
  let dir: string;
  /** Set when a check fails: the rendered files stay for a look. */
  let keep = false;
  before(async () => {
    actionlint = findTool('actionlint', 'FLUI_ACTIONLINT');
    zizmor = findTool('zizmor', 'FLUI_ZIZMOR');
    findTool('shellcheck', 'FLUI_SHELLCHECK', 'Install the Debian package shellcheck (npm run setup).');
    dir = await mkdtemp(join(tmpdir(), 'flui-lint-'));
  });
  after(async () => {
    if (keep) process.stdout.write(`# rendered files kept in ${dir}\n`);
    else await rm(dir, { recursive: true, force: true });
  });

  async function write(sub: string, files: Record<string, string>): Promise<string[]> {
    await mkdir(join(dir, sub), { recursive: true });
    const paths: string[] = [];
    for (const [name, content] of Object.entries(files)) {
      const path = join(dir, sub, name);
      await writeFile(path, content);
      paths.push(path);
    }
    return paths;
  }

  async function lint(files: Record<string, string>, sub = 'actionlint'): Promise<string> {
    const paths = await write(sub, files);
    try {
      // actionlint runs shellcheck on every `run:` script when shellcheck is on PATH (it is: see `before`).
      await execFileAsync(actionlint, ['-no-color', '-oneline', ...paths]);
      return '';
    } catch (err) {
      const { stdout, stderr, code } = err as { stdout: string; stderr: string; code: number };
      assert.equal(code, 1, `actionlint crashed (exit ${code}): ${stderr}`);
      return stdout;
    }
  }

  /** zizmor's findings (`ident` at `file:line`) at its default persona, offline: the audits that need no network. */
  async function audit(files: Record<string, string>, sub: string): Promise<string[]> {
    const paths = await write(sub, files);
    let stdout: string;
    try {
      ({ stdout } = await execFileAsync(zizmor, ['--offline', '--no-progress', '--format', 'json', ...paths]));
    } catch (err) {
      const e = err as { stdout: string; stderr: string; code: number };
      // 10 + the highest severity found (11..14) means findings; anything else is zizmor failing.
      assert.ok(e.code >= 11 && e.code <= 14, `zizmor failed (exit ${e.code}): ${e.stderr}`);
      stdout = e.stdout;
    }
    const findings = JSON.parse(stdout) as {
      ident: string;
      locations: {
        symbolic: { key: { Local: { verbatim_path: string } } };
        concrete: { location: { start_point: { row: number } } };
      }[];
    }[];
    return findings.map((f) => {
      const at = f.locations[0];
      return `${f.ident} at ${at?.symbolic.key.Local.verbatim_path.split('/').pop()}:${(at?.concrete.location.start_point.row ?? -1) + 1}`;
    });
  }

  it('passes actionlint, with shellcheck on its scripts, for every push method and several manifests', async () => {
    const findings = await lint(renderedFiles());
    keep ||= findings !== '';
    assert.equal(findings, '', `actionlint findings (files in ${dir}):\n${findings}`);
  });

  it('is a check that can fail: actionlint reports a broken variant of the file, and shellcheck a broken script', async () => {
    const file = renderPipelineFile(MANIFESTS[0]!, STATIC);
    const broken = file.replace('${{ inputs.deploy_id }}', '${{ inputs.deploy_idd }}');
    assert.match(await lint({ 'broken.yml': broken }, 'broken-actionlint'), /deploy_idd/);
    const minted = renderPipelineFile(MANIFESTS[0]!, { push: PUSH_EXAMPLES['minted-token'].push });
    const unquoted = minted.replace('mkdir -p "$(dirname "$config")"', 'mkdir -p $(dirname $config)');
    assert.notEqual(unquoted, minted);
    assert.match(await lint({ 'unquoted.yml': unquoted }, 'broken-shellcheck'), /shellcheck reported issue .*SC2046/);
  });

  it('passes zizmor (offline, default persona) for every push method and several manifests', async () => {
    const findings = await audit(renderedFiles(), 'zizmor');
    keep ||= findings.length > 0;
    assert.deepEqual(findings, [], `zizmor findings (files in ${dir})`);
  });

  it('is a check that can fail: zizmor reports an unpinned action, an injected expression and a kept token', async () => {
    const file = renderPipelineFile(MANIFESTS[0]!, STATIC);
    const pin = ACTION_PINS.login;
    const variants = {
      'unpinned.yml': file.replace(`${pin.repository}@${pin.sha} # ${pin.version}`, `${pin.repository}@v4`),
      'injected.yml': file.replace('Pushed ${IMAGE}', 'Pushed ${{ inputs.image_tag }}'),
      'token-kept.yml': file.replace(/\n {8}with:\n {10}persist-credentials: false/, ''),
    };
    for (const [name, variant] of Object.entries(variants)) assert.notEqual(variant, file, name);
    const findings = await audit(variants, 'broken-zizmor');
    assert.ok(
      findings.some((f) => /^unpinned-uses at unpinned\.yml/.test(f)),
      findings.join('\n'),
    );
    assert.ok(
      findings.some((f) => /^template-injection at injected\.yml/.test(f)),
      findings.join('\n'),
    );
    assert.ok(
      findings.some((f) => /^artipacked at token-kept\.yml/.test(f)),
      findings.join('\n'),
    );
  });

  it('pins every action by full commit SHA, with its version as a comment on the same line', () => {
    for (const file of Object.values(renderedFiles())) {
      const uses = file.split('\n').filter((l) => /^\s*(- )?uses: /.test(l));
      assert.ok(uses.length >= 3);
      for (const line of uses) {
        const m = /uses: ([\w.-]+\/[\w.-]+)@([0-9a-f]{40}) # (v\d+\.\d+\.\d+)$/.exec(line);
        assert.ok(m, `not pinned by SHA with a version comment: ${line}`);
        const pin = Object.values(ACTION_PINS).find((p) => p.repository === m[1]);
        assert.deepEqual([pin?.sha, pin?.version], [m[2], m[3]], line);
      }
    }
  });

  it('renders byte-identically whatever the order of the manifest', () => {
    for (const m of MANIFESTS)
      assert.equal(renderPipelineFile(m, STATIC), renderPipelineFile(structuredClone(m), STATIC));
    const reordered = app('monorepo', {
      buildArgs: { A: '1', NODE_ENV: 'production' },
      dockerfile: 'build/Dockerfile',
      context: 'services/api',
    });
    assert.equal(renderPipelineFile(reordered, STATIC), renderPipelineFile(MANIFESTS[1]!, STATIC));
  });

  it('says what it is, triggers on dispatch with a deploy id and tag, and builds what the manifest says', () => {
    const m = MANIFESTS[1]!;
    const text = renderPipelineFile(m, STATIC);
    assert.match(text, /^# Managed by Flui for the app default\.monorepo/);
    assert.equal(pipelinePath(m), '.github/workflows/flui-build-default.monorepo.yml');
    const wf = parse(text) as Workflow;
    assert.deepEqual(Object.keys(wf.on), ['workflow_dispatch']);
    assert.equal(wf.on.workflow_dispatch?.inputs.deploy_id?.required, true);
    assert.equal(wf.on.workflow_dispatch?.inputs[DISPATCH_INPUTS.imageTag]?.required, true);
    assert.equal(wf['run-name'], 'flui ${{ inputs.deploy_id }}');
    assert.deepEqual(wf.permissions, {}, 'nothing at the workflow level');
    assert.deepEqual(wf.jobs.build.permissions, { contents: 'read' }, 'a static credential needs no token rights');
    assert.equal(wf.concurrency.group, 'flui-build-default.monorepo');
    const job = wf.jobs.build;
    assert.equal(job.environment, undefined);
    assert.equal(job.outputs.digest, '${{ steps.build.outputs.digest }}');
    const pinned = (p: { repository: string; sha: string }) => `${p.repository}@${p.sha}`;
    assert.deepEqual(job.steps.map((s) => s.uses).filter(Boolean), [
      pinned(ACTION_PINS.checkout),
      pinned(ACTION_PINS.setupBuildx),
      pinned(ACTION_PINS.login),
      pinned(ACTION_PINS.buildPush),
    ]);
    assert.equal(job.steps[0]?.with?.['persist-credentials'], false);
    const names = pushSecretNames(m);
    assert.deepEqual(job.steps[2]?.with, {
      registry: 'registry.example.com:5000',
      username: `\${{ secrets.${names.username} }}`,
      password: `\${{ secrets.${names.password} }}`,
    });
    const build = job.steps.find((s) => s.id === 'build');
    assert.deepEqual(build?.with, {
      context: 'services/api',
      file: 'services/api/build/Dockerfile',
      push: true,
      tags:
        'registry.example.com:5000/acme/monorepo:${{ github.sha }}\n' +
        'registry.example.com:5000/acme/monorepo:${{ inputs.image_tag }}',
      'build-args': 'A=1\nNODE_ENV=production',
      'cache-from': 'type=gha,scope=flui-default.monorepo',
      'cache-to': 'type=gha,mode=max,scope=flui-default.monorepo',
    });
    assert.match(job.steps.at(-1)?.run ?? '', /GITHUB_STEP_SUMMARY/);
  });

  it('escapes expressions in build args, and CSV-quotes values with quotes or commas', () => {
    const wf = parse(renderPipelineFile(MANIFESTS[3]!, STATIC)) as Workflow;
    const args = String(wf.jobs.build.steps.find((s) => s.id === 'build')?.with?.['build-args']).split('\n');
    assert.deepEqual(args, [
      'LS=a\u2028b',
      `"QUOTED=it's ""quoted"", with commas"`,
      "TOKEN=${{ '${{' }} secrets.GITHUB_TOKEN }}",
    ]);
  });

  it('refuses a build arg that spans lines or ends in whitespace, naming it', () => {
    for (const [name, value] of [
      ['CERT', 'line1\nline2'],
      ['CR', 'a\rb'],
      ['PADDED', 'value '],
      ['NBSP', 'value\u00a0'],
    ] as const) {
      assert.throws(
        // The renderer's own refusal, for a manifest that skipped parsing (which refuses line breaks already).
        () => renderPipelineFile(withBuildArg(app('multi'), name, value), STATIC),
        (err: unknown) =>
          err instanceof ServiceError && !err.retryable && err.kind === 'invalid' && err.message.includes(name),
        name,
      );
    }
  });

  it('gives the job only what its push method needs, and names no secret it does not read', () => {
    const expected: Record<GitHubPushMethod, { permissions: Record<string, string>; secrets: string[] }> = {
      'github-token': { permissions: { contents: 'read', packages: 'write' }, secrets: ['GITHUB_TOKEN'] },
      static: { permissions: { contents: 'read' }, secrets: ['username', 'password'] },
      'minted-token': { permissions: { contents: 'read' }, secrets: ['token'] },
      'aws-oidc': { permissions: { contents: 'read', 'id-token': 'write' }, secrets: [] },
      'gcp-oidc': { permissions: { contents: 'read', 'id-token': 'write' }, secrets: [] },
      'azure-oidc': { permissions: { contents: 'read', 'id-token': 'write' }, secrets: [] },
    };
    const m = MANIFESTS[0]!;
    const names = pushSecretNames(m) as Record<string, string>;
    for (const [method, { image, push }] of Object.entries(PUSH_EXAMPLES)) {
      const manifest = { ...m, spec: { ...m.spec, image: { repository: image } } };
      const text = renderPipelineFile(manifest, { push });
      const wf = parse(text) as Workflow;
      const want = expected[method as GitHubPushMethod];
      assert.deepEqual(wf.jobs.build.permissions, want.permissions, method);
      const secrets = [...text.matchAll(/secrets\.([A-Z0-9_]+)/g)].map((x) => x[1]).sort();
      assert.deepEqual(secrets, want.secrets.map((s) => names[s] ?? s).sort(), method);
      if (method === 'gcp-oidc') {
        const auth = wf.jobs.build.steps.find((s) => s.id === 'gcp-auth');
        assert.equal(auth?.with?.create_credentials_file, false, 'no credentials file in the workspace');
      }
    }
  });

  it('runs the job in the GitHub Environment when one is configured', () => {
    const m = MANIFESTS[0]!;
    const wf = parse(renderPipelineFile(m, { ...STATIC, environment: 'prod builds' })) as Workflow;
    assert.equal(wf.jobs.build.environment, 'prod builds');
    assert.equal(
      readWorkflow(renderPipelineFile(m, { ...STATIC, environment: 'prod builds' })).environment,
      'prod builds',
    );
  });

  it('names secrets per app, so two apps of one repository never share or overwrite them', () => {
    const a = app('web', {}, { namespace: 'a-b' });
    const b = { ...a, metadata: { ...a.metadata, namespace: 'a', name: 'b-web' } };
    assert.equal(`${a.metadata.namespace}.${a.metadata.name}`.toUpperCase().replace(/[.-]/g, '_'), 'A_B_WEB');
    assert.notEqual(appNameSuffix(a), appNameSuffix(b), 'a-b.web and a.b-web read alike but differ');
    const [na, nb] = [pushSecretNames(a), pushSecretNames(b)];
    for (const key of ['username', 'password', 'token', 'fingerprint'] as const) {
      assert.notEqual(na[key], nb[key]);
      assert.match(na[key], /^FLUI_REGISTRY_[A-Z]+_A_B_WEB_[0-9A-F]{8}$/);
    }
  });

  it("is what the GitHub emulator's runner executes: registry, login, secret names and both tags", () => {
    const m = MANIFESTS[2]!;
    const names = pushSecretNames(m);
    const inputs = { deploy_id: 'staging.branchy.abcd', image_tag: 'flui-staging.branchy.abcd' };
    const plan = (push: PushAccess, image: string) => {
      const wf = readWorkflow(
        renderPipelineFile({ ...m, spec: { ...m.spec, image: { repository: image } } }, { push }),
      );
      assert.deepEqual(Object.keys(wf.dispatchInputs ?? {}), ['deploy_id', 'image_tag']);
      return buildPlan(wf.steps, 'abc123', inputs);
    };
    const tags = (image: string) => [`${image}:abc123`, `${image}:flui-staging.branchy.abcd`];
    assert.deepEqual(plan(PUSH_EXAMPLES['github-token'].push, 'ghcr.io/acme/branchy'), {
      registry: 'ghcr.io',
      login: { kind: 'github-token' },
      tags: tags('ghcr.io/acme/branchy'),
      context: '.',
    });
    assert.deepEqual(plan(PUSH_EXAMPLES.static.push, 'registry.example.com:5000/acme/branchy'), {
      registry: 'registry.example.com:5000',
      login: { kind: 'password', usernameSecret: names.username, passwordSecret: names.password },
      tags: tags('registry.example.com:5000/acme/branchy'),
      context: '.',
    });
    assert.deepEqual(plan(PUSH_EXAMPLES['minted-token'].push, 'registry.example.com/acme/branchy'), {
      registry: 'registry.example.com',
      login: { kind: 'bearer', tokenSecret: names.token },
      tags: tags('registry.example.com/acme/branchy'),
      context: '.',
    });
    assert.match(String(plan(PUSH_EXAMPLES['aws-oidc'].push, PUSH_EXAMPLES['aws-oidc'].image)), /cannot log in/);
  });

  it('tags each deploy attempt with its own valid tag (what Flui resolves and rolls out)', () => {
    const tag = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
    assert.equal(ciImageTag('staging.web.k3x9'), 'flui-staging.web.k3x9');
    assert.equal(ciImageTag('staging.web.k3x9/2'), 'flui-staging.web.k3x9-2');
    const long = `${'n'.repeat(63)}.${'a'.repeat(63)}.${'z'.repeat(40)}`;
    for (const key of [long, `${long}/12`]) {
      assert.match(ciImageTag(key), tag);
      assert.ok(ciImageTag(key).endsWith(key.endsWith('/12') ? `.${'z'.repeat(40)}-12` : 'z'), ciImageTag(key));
    }
    assert.notEqual(ciImageTag(long), ciImageTag(`${long}/2`));
  });
});
