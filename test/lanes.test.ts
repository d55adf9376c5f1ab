/**
 * Lanes (src/lanes.ts) and their admission to every activity (src/activities/admission.ts), without servers: what
 * the worker settings mean, which inputs are refused and with what words, and that a refused activity never starts.
 * The same refusals against the real worker, Temporal, the GitHub emulator and a cluster: test/workflows/lanes.test.ts.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/activity';
import { admit, laneRequestOf, withAdmission } from '../src/activities/admission.ts';
import { withActivityFailures } from '../src/activities/failures.ts';
import type { DeployActivities } from '../src/activities/types.ts';
import { ConfigError, loadConfig } from '../src/config.ts';
import { laneRefusal, parseLaneSettings, type Lanes } from '../src/lanes.ts';
import { validateManifest } from '../src/manifest/parse.ts';
import type { Application, CatalogApp } from '../src/manifest/schema.ts';
import { FailureType } from '../src/workflows/contract.ts';
import { makeTempDir } from '../dev/process.ts';

const NO_POD = { serviceAccountNamespaceFile: '/nonexistent/namespace' };
const lanesOf = (env: NodeJS.ProcessEnv) => {
  const { value, problems } = parseLaneSettings(env, NO_POD);
  assert.deepEqual(problems, []);
  return value;
};

function application(namespace: string, repository = 'acme/web', image = 'ghcr.io/acme/web'): Application {
  return validateManifest({
    apiVersion: 'flui.dev/v1',
    kind: 'Application',
    metadata: { name: 'web', namespace },
    spec: { source: { repository }, image: { repository: image } },
  }) as Application;
}

function catalog(namespace: string, image: string): CatalogApp {
  return validateManifest({
    apiVersion: 'flui.dev/v1',
    kind: 'CatalogApp',
    metadata: { name: 'redis', namespace },
    spec: { image },
  }) as CatalogApp;
}

describe('lane settings', () => {
  it('by default refuses only the cluster’s own namespaces, and the worker’s when it runs in a pod', async () => {
    const none = lanesOf({});
    assert.deepEqual([none.namespaces, none.repositoryOwners, none.registries], [undefined, undefined, undefined]);
    assert.deepEqual(none.reservedNamespaces, ['kube-system', 'kube-public', 'kube-node-lease']);
    const dir = await makeTempDir('lanes');
    const file = join(dir, 'namespace');
    await writeFile(file, 'flui-system\n');
    assert.deepEqual(parseLaneSettings({}, { serviceAccountNamespaceFile: file }).value.reservedNamespaces, [
      'kube-system',
      'kube-public',
      'kube-node-lease',
      'flui-system',
    ]);
    // Configured, it wins over the pod's.
    assert.deepEqual(
      parseLaneSettings({ FLUI_WORKER_NAMESPACE: 'platform' }, { serviceAccountNamespaceFile: file }).value
        .reservedNamespaces,
      ['kube-system', 'kube-public', 'kube-node-lease', 'platform'],
    );
  });

  it('reads comma lists with patterns, and says what is wrong with each bad entry', () => {
    assert.deepEqual(
      lanesOf({
        FLUI_ALLOWED_NAMESPACES: ' team-*, staging ,,',
        FLUI_ALLOWED_REPOSITORY_OWNERS: 'acme,Acme-*',
        FLUI_ALLOWED_REGISTRIES: 'ghcr.io,*.dkr.ecr.*.amazonaws.com,127.0.0.1:*',
      }),
      {
        namespaces: ['team-*', 'staging'],
        reservedNamespaces: ['kube-system', 'kube-public', 'kube-node-lease'],
        repositoryOwners: ['acme', 'Acme-*'],
        registries: ['ghcr.io', '*.dkr.ecr.*.amazonaws.com', '127.0.0.1:*'],
      },
    );
    assert.deepEqual(lanesOf({ FLUI_ALLOWED_NAMESPACES: '' }).namespaces, undefined, 'empty is unset');
    const { problems } = parseLaneSettings(
      {
        FLUI_ALLOWED_NAMESPACES: 'Team_A,ok',
        FLUI_ALLOWED_REPOSITORY_OWNERS: 'acme/web',
        FLUI_ALLOWED_REGISTRIES: 'https://ghcr.io',
        FLUI_WORKER_NAMESPACE: 'Flui\u001b[2J',
      },
      NO_POD,
    );
    assert.deepEqual(problems, [
      'FLUI_WORKER_NAMESPACE: "Flui\\u{1b}[2J" is not a namespace name',
      'FLUI_ALLOWED_NAMESPACES: "Team_A" is not a namespace or a pattern of namespaces (lowercase letters, digits, "-", and "*" for any run of characters)',
      'FLUI_ALLOWED_REPOSITORY_OWNERS: "acme/web" is not a repository owner or a pattern of owners (letters, digits, "-", and "*" for any run of characters)',
      'FLUI_ALLOWED_REGISTRIES: "https://ghcr.io" is not a registry host[:port] or a pattern of them (e.g. "ghcr.io", "*.dkr.ecr.*.amazonaws.com", "127.0.0.1:*")',
    ]);
  });

  it('is part of the worker configuration, which refuses to load with a bad lane setting', () => {
    assert.deepEqual(loadConfig({ FLUI_ALLOWED_REGISTRIES: 'ghcr.io' }).lanes.registries, ['ghcr.io']);
    assert.throws(
      () => loadConfig({ FLUI_ALLOWED_NAMESPACES: 'a b' }),
      (err: unknown) => err instanceof ConfigError && /\n {2}FLUI_ALLOWED_NAMESPACES: "a b" is not/.test(err.message),
    );
  });
});

describe('laneRefusal', () => {
  it('refuses the cluster’s namespaces and the worker’s even when a pattern matches; an exact entry opens one', () => {
    const any = lanesOf({ FLUI_WORKER_NAMESPACE: 'flui' });
    for (const ns of ['kube-system', 'kube-public', 'kube-node-lease', 'flui']) {
      assert.deepEqual(laneRefusal(any, { namespace: ns }), {
        lane: 'namespace',
        value: ns,
        message:
          `namespace ${ns} is not open to deploys on this Flui (allowed: any namespace but kube-system, ` +
          'kube-public, kube-node-lease, flui); ask your platform team (worker setting FLUI_ALLOWED_NAMESPACES)',
      });
    }
    assert.equal(laneRefusal(any, { namespace: 'default' }), undefined);
    assert.equal(laneRefusal(any, { namespace: 'kube-systemd' }), undefined, 'only the names themselves');

    const star = lanesOf({ FLUI_ALLOWED_NAMESPACES: '*' });
    assert.equal(laneRefusal(star, { namespace: 'kube-system' })?.lane, 'namespace');
    const opened = lanesOf({ FLUI_ALLOWED_NAMESPACES: 'team-*,kube-public' });
    assert.equal(laneRefusal(opened, { namespace: 'kube-public' }), undefined);
    assert.equal(laneRefusal(opened, { namespace: 'team-a' }), undefined);
    assert.equal(
      laneRefusal(opened, { namespace: 'default' })?.message,
      'namespace default is not open to deploys on this Flui (allowed: team-*, kube-public; never kube-system, ' +
        'kube-node-lease unless named exactly); ask your platform team (worker setting FLUI_ALLOWED_NAMESPACES)',
    );
  });

  it('checks the owner of the source repository and the registry host of every image, case-insensitively', () => {
    const lanes = lanesOf({
      FLUI_ALLOWED_REPOSITORY_OWNERS: 'acme,team-*',
      FLUI_ALLOWED_REGISTRIES: 'ghcr.io,*.example.com,127.0.0.1:*',
    });
    for (const repository of ['acme/web', 'ACME/web', 'team-x/api'])
      assert.equal(laneRefusal(lanes, { repository }), undefined, repository);
    assert.equal(
      laneRefusal(lanes, { repository: 'evil/web' })?.message,
      'repository owner evil is not open to deploys on this Flui (allowed: acme, team-*); ask your platform team ' +
        '(worker setting FLUI_ALLOWED_REPOSITORY_OWNERS)',
    );
    for (const image of ['ghcr.io/acme/web', 'GHCR.IO/acme/web:1', 'r.example.com/a/b@sha256:' + 'a'.repeat(64)])
      assert.equal(laneRefusal(lanes, { images: [image] }), undefined, image);
    assert.equal(laneRefusal(lanes, { images: ['127.0.0.1:5001/acme/web:1'] }), undefined);
    assert.deepEqual(laneRefusal(lanes, { images: ['ghcr.io/acme/web', 'ghcr.io.evil.net/acme/web:1'] }), {
      lane: 'registry',
      value: 'ghcr.io.evil.net',
      message:
        'registry ghcr.io.evil.net is not open to deploys on this Flui (allowed: ghcr.io, *.example.com, ' +
        '127.0.0.1:*); ask your platform team (worker setting FLUI_ALLOWED_REGISTRIES)',
    });
    assert.equal(laneRefusal(lanes, { images: ['localhost:5001/acme/web:1'] })?.value, 'localhost:5001');
    assert.equal(laneRefusal(lanes, { images: ['example.com/a:1'] })?.value, 'example.com', '"*." needs a subdomain');
  });
});

describe('admission of activity inputs', () => {
  const lanes: Lanes = lanesOf({ FLUI_ALLOWED_REPOSITORY_OWNERS: 'acme', FLUI_ALLOWED_REGISTRIES: 'ghcr.io' });

  it('reads what every activity input names: manifests, rollbacks, images', () => {
    const app = application('shop');
    assert.deepEqual(laneRequestOf({ app }), {
      namespace: 'shop',
      repository: 'acme/web',
      images: ['ghcr.io/acme/web'],
    });
    assert.deepEqual(laneRequestOf({ image: 'ghcr.io/library/redis:7' }), {
      namespace: undefined,
      repository: undefined,
      images: ['ghcr.io/library/redis:7'],
    });
    const request = { deployId: 'shop.redis.aaaa1', kind: 'CatalogApp', manifest: catalog('shop', 'r.io/a/b:1') };
    assert.deepEqual(laneRequestOf({ request, image: `r.io/a/b@sha256:${'1'.repeat(64)}` }), {
      namespace: 'shop',
      repository: undefined,
      images: ['r.io/a/b:1', `r.io/a/b@sha256:${'1'.repeat(64)}`],
    });
    assert.deepEqual(laneRequestOf({ request: { kind: 'Rollback', namespace: 'kube-system', app: 'dns' } }), {
      namespace: 'kube-system',
      repository: undefined,
      images: [],
    });
  });

  it('refuses with a permanent failure of type Refused that carries the lane and the value', () => {
    assert.throws(
      () => admit(lanes, { app: application('kube-system') }),
      (err: unknown) =>
        err instanceof ApplicationFailure &&
        err.type === FailureType.Refused &&
        err.nonRetryable &&
        /^namespace kube-system is not open to deploys on this Flui/.test(err.message) &&
        JSON.stringify(err.details) === JSON.stringify([{ lane: 'namespace', value: 'kube-system' }]),
    );
    assert.doesNotThrow(() => admit(lanes, { app: application('shop') }));
    assert.ok((Object.values(FailureType) as string[]).includes('Refused'), 'the workflow never retries it');
  });

  it('checks every activity before its body runs, except the two that only undo what their deploy did', async () => {
    const ran: string[] = [];
    const body = (name: string) => async () => {
      ran.push(name);
      return name;
    };
    const names = [
      'ensureWorkflowFile',
      'ensureRegistryCredential',
      'triggerRun',
      'awaitRun',
      'cancelRun',
      'resolveImage',
      'rolloutImage',
      'abortRollout',
    ] as const;
    const activities = withActivityFailures(
      withAdmission(lanes, Object.fromEntries(names.map((n) => [n, body(n)])) as unknown as DeployActivities),
    );
    const outside = application('shop', 'evil/web');
    const refused = async (p: Promise<unknown>) =>
      assert.rejects(p, (err: unknown) => err instanceof ApplicationFailure && err.type === 'Refused');
    await refused(activities.ensureWorkflowFile({ app: outside }));
    await refused(activities.ensureRegistryCredential({ app: outside }));
    await refused(activities.triggerRun({ app: outside, runKey: 'shop.web.aaaa1' }));
    await refused(activities.awaitRun({ app: outside, run: { id: '1', htmlUrl: '' }, queuedTimeoutSeconds: 1 }));
    await refused(activities.resolveImage({ image: 'docker.io/library/redis:7' }));
    await refused(
      activities.rolloutImage({
        request: {
          deployId: 'kube-system.dns.aaaa1',
          kind: 'Rollback',
          namespace: 'kube-system',
          app: 'dns',
          policy: 'supersede',
        },
      }),
    );
    assert.deepEqual(ran, [], 'no refused activity ran');
    assert.equal(activities.rolloutImage.name, 'rolloutImage', 'the activity keeps its name');

    await activities.cancelRun({ app: outside, runKey: 'shop.web.aaaa1' });
    await activities.abortRollout({ deployId: 'kube-system.dns.aaaa1', namespace: 'kube-system', app: 'dns' });
    assert.equal(await activities.resolveImage({ image: 'ghcr.io/library/redis:7' }), 'resolveImage');
    assert.deepEqual(ran, ['cancelRun', 'abortRollout', 'resolveImage']);
  });
});
