/**
 * The build engine against real buildah (as root of a fresh user namespace), the real registry (dev/registry.ts) and
 * a real git server (dev/git-server.ts): build and push, the cached rebuild, a failing build, cancel and timeout with
 * no process left behind and nothing pushed, RUN steps without network, the exact commit after a branch moved, and
 * examples/hello FROM a node base seeded offline.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startGitServer, type GitServer } from '../../dev/git-server.ts';
import { ServiceError } from '../../src/errors.ts';
import { resolveCommit, runBuild, type BuilderSettings, type BuildSpec } from '../../src/build/index.ts';
import { useRegistry } from '../helpers/registry.ts';
import { builderRoot, imageLabels, processesWith, registryDigest, seedBase, settingsFor } from './helpers.ts';

const EXAMPLE = join(import.meta.dirname, '..', '..', 'examples', 'hello', 'repo');

describe('build engine (real buildah, registry and git)', () => {
  const registry = useRegistry();
  let git: GitServer;
  let root: string;
  let settings: BuilderSettings;
  let n = 0;

  before(async () => {
    git = await startGitServer();
    root = await builderRoot();
    settings = settingsFor(root, registry().host);
    await seedBase('busybox', root, settings);
  });
  after(() => git?.stop());

  /** A repository with one commit of `files`; the spec that builds it. */
  async function repoWith(files: Record<string, string>, more: Partial<BuildSpec> = {}): Promise<BuildSpec> {
    const name = `acme/app${++n}.git`;
    const commit = await git.commit(name, files);
    return {
      buildId: `run-${n}-${Date.now()}`,
      app: `acme.app${n}`,
      source: { kind: 'git', url: git.repoUrl(name), commit },
      context: '.',
      dockerfile: 'Dockerfile',
      buildArgs: {},
      image: `${registry().host}/acme/app${n}`,
      tags: [`flui-${n}`, commit],
      timeoutMs: 120_000,
      ...more,
    };
  }

  it('builds from the exact commit, pushes every tag, and reports the digest the registry serves', async () => {
    const spec = await repoWith({
      Dockerfile: 'FROM busybox\nARG GREETING\nRUN echo "$GREETING" > /greeting && cat /greeting\nLABEL step=one\n',
    });
    spec.buildArgs = { GREETING: 'hello $(id) `x`; "quoted"' };
    const lines: string[] = [];
    const result = await runBuild(spec, settings, { onLog: (l) => lines.push(l) });
    assert.match(result.digest, /^sha256:[0-9a-f]{64}$/);
    assert.equal(result.image, spec.image);
    for (const tag of spec.tags) {
      assert.equal(await registryDigest(registry().url, `acme/app${n}`, tag), result.digest, `tag ${tag}`);
    }
    // The build arg reached the RUN step as one value, never through a shell of ours.
    assert.ok(lines.includes('hello $(id) `x`; "quoted"'), lines.join('\n'));
    assert.ok(result.logTail.split('\n').length <= 20);
  });

  it('rebuilds from the layer cache: cached steps reported, faster, same digest', async () => {
    const spec = await repoWith({
      Dockerfile: 'FROM busybox\nRUN echo one > /one\nRUN echo two > /two\nCOPY . /src\n',
      'a.txt': 'a\n',
    });
    const first = await runBuild(spec, settings, {});
    const second = await runBuild({ ...spec, buildId: `${spec.buildId}-again` }, settings, {});
    assert.equal(first.cachedSteps, 0);
    assert.ok(second.cachedSteps >= 3, `cached steps: ${second.cachedSteps}\n${second.logTail}`);
    assert.equal(second.digest, first.digest);
    assert.ok(second.durationMs < first.durationMs, `cold ${first.durationMs} ms, cached ${second.durationMs} ms`);
  });

  it('a failing RUN step is a permanent "invalid" error ending with the log tail; nothing is pushed', async () => {
    const spec = await repoWith({ Dockerfile: 'FROM busybox\nRUN echo about-to-fail && exit 3\n' });
    await assert.rejects(runBuild(spec, settings, {}), (err: unknown) => {
      assert.ok(err instanceof ServiceError);
      assert.equal(err.kind, 'invalid');
      assert.equal(err.retryable, false);
      assert.match(err.message, /about-to-fail[\s\S]*exit status 3/);
      return true;
    });
    assert.equal(await registryDigest(registry().url, `acme/app${n}`, spec.tags[0]!), undefined);
  });

  it('refuses hostile paths before anything starts', async () => {
    const spec = await repoWith({ Dockerfile: 'FROM busybox\n' });
    for (const bad of [{ context: '../..' }, { dockerfile: '/etc/passwd' }, { buildArgs: { 'A B': 'x' } }]) {
      await assert.rejects(runBuild({ ...spec, ...bad }, settings, {}), (err: unknown) => {
        assert.ok(err instanceof ServiceError && err.kind === 'invalid', String(err));
        return true;
      });
    }
  });

  it('RUN steps reach no network by default, and the network with network: host', async () => {
    let hits = 0;
    const server = createServer((_req, res) => {
      hits++;
      res.end('reached\n');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      const files = {
        Dockerfile: `FROM busybox\nRUN printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 127.0.0.1 ${port} | grep reached\n`,
      };
      const denied = await repoWith(files);
      await assert.rejects(runBuild(denied, settings, {}), (err: unknown) => {
        assert.ok(err instanceof ServiceError && err.kind === 'invalid', String(err));
        return true;
      });
      assert.equal(hits, 0, 'a RUN step reached the host with network none');
      const allowed = await repoWith(files);
      await runBuild(allowed, { ...settings, network: 'host' }, {});
      assert.equal(hits, 1);
    } finally {
      server.close();
    }
  });

  it('builds the commit resolved from a branch even after the branch moved on', async () => {
    const name = 'acme/moving.git';
    await git.commit(name, { Dockerfile: 'FROM busybox\nLABEL version=one\n' });
    const resolved = await resolveCommit({ kind: 'git', url: git.repoUrl(name), branch: 'main' }, settings);
    await git.commit(name, { Dockerfile: 'FROM busybox\nLABEL version=two\n' });
    const result = await runBuild(
      {
        buildId: `moving-${Date.now()}`,
        app: 'acme.moving',
        source: { kind: 'git', url: git.repoUrl(name), commit: resolved },
        context: '.',
        dockerfile: 'Dockerfile',
        buildArgs: {},
        image: `${registry().host}/acme/moving`,
        tags: [resolved],
        timeoutMs: 60_000,
      },
      settings,
      {},
    );
    assert.ok(result.digest);
    assert.equal((await imageLabels(registry().url, 'acme/moving', resolved)).version, 'one');
  });

  it('a commit the git server does not have is "not-found"', async () => {
    const spec = await repoWith({ Dockerfile: 'FROM busybox\n' });
    const missing = { ...spec, source: { ...spec.source, commit: 'f'.repeat(40) } };
    await assert.rejects(runBuild(missing, settings, {}), (err: unknown) => {
      assert.ok(err instanceof ServiceError, String(err));
      assert.equal(err.kind, 'not-found', err.message);
      return true;
    });
  });

  it('cancel kills the whole buildah process tree within seconds, and nothing is tagged or pushed', async () => {
    const marker = '313.25';
    const spec = await repoWith({ Dockerfile: `FROM busybox\nRUN echo started && sleep ${marker}\n` });
    const controller = new AbortController();
    const build = runBuild(spec, settings, {
      signal: controller.signal,
      onLog: (l) => {
        if (l === 'started') controller.abort();
      },
    });
    const t0 = Date.now();
    await assert.rejects(build, (err: unknown) => {
      assert.equal((err as Error).name, 'AbortError');
      return true;
    });
    assert.ok(Date.now() - t0 < 30_000);
    // The RUN step was running (it logged) and is gone: not one process with its command line is left.
    await sleep(500);
    assert.deepEqual(await processesWith(`sleep ${marker}`), []);
    assert.deepEqual(await processesWith('buildah'), []);
    for (const tag of spec.tags) assert.equal(await registryDigest(registry().url, `acme/app${n}`, tag), undefined);
  });

  it('a build past its timeout is killed the same way and fails as "invalid", saying so', async () => {
    const marker = '317.5';
    const spec = await repoWith({ Dockerfile: `FROM busybox\nRUN sleep ${marker}\n` }, { timeoutMs: 4000 });
    const t0 = Date.now();
    await assert.rejects(runBuild(spec, settings, {}), (err: unknown) => {
      assert.ok(err instanceof ServiceError, String(err));
      assert.equal(err.kind, 'invalid');
      assert.match(err.message, /timeout of 4s/);
      return true;
    });
    assert.ok(Date.now() - t0 < 20_000, `took ${Date.now() - t0} ms`);
    await sleep(500);
    assert.deepEqual(await processesWith(`sleep ${marker}`), []);
    assert.equal(await registryDigest(registry().url, `acme/app${n}`, spec.tags[0]!), undefined);
  });

  it('builds examples/hello FROM node:20 seeded offline into the registry, with RUN steps denied network', async () => {
    await seedBase('node', root, settings);
    const name = 'flui-examples/hello.git';
    const commit = await git.commit(name, {}, { dir: EXAMPLE });
    const result = await runBuild(
      {
        buildId: `hello-${Date.now()}`,
        app: 'default.hello',
        source: { kind: 'git', url: git.repoUrl(name), commit },
        context: '.',
        dockerfile: 'Dockerfile',
        buildArgs: {},
        image: `${registry().host}/flui-examples/hello`,
        tags: ['flui-hello', commit],
        timeoutMs: 120_000,
      },
      settings,
      {},
    );
    assert.equal(await registryDigest(registry().url, 'flui-examples/hello', commit), result.digest);
  });
});
