/**
 * The build engine against real buildah (as root of a fresh user namespace), the real registry (dev/registry.ts) and
 * a real git server (dev/git-server.ts): build and push, the cached rebuild, a failing build, cancel and timeout with
 * no process left behind and nothing pushed, RUN steps without network, the exact commit after a branch moved, and
 * examples/hello FROM a node base seeded offline.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { stat, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startGitServer, type GitServer } from '../../dev/git-server.ts';
import { parseGitCredentials } from '../../src/build/git-credentials.ts';
import { ServiceError } from '../../src/errors.ts';
import { packOciArchive } from '../../dev/base-images.ts';
import {
  importBaseImage,
  resolveCommit,
  runBuild,
  type BuilderSettings,
  type BuildSpec,
} from '../../src/build/index.ts';
import { REGISTRY_PASSWORD, REGISTRY_USER, useRegistry } from '../helpers/registry.ts';
import { useBuilderRoot, imageLabels, processesWith, registryDigest, seedBase, settingsFor } from './helpers.ts';

const EXAMPLE = join(import.meta.dirname, '..', '..', 'examples', 'hello', 'repo');

describe('build engine (real buildah, registry and git)', () => {
  const registry = useRegistry();
  const builderRoot = useBuilderRoot();
  let git: GitServer;
  let root: string;
  let settings: BuilderSettings;
  let n = 0;

  before(async () => {
    git = await startGitServer();
    root = builderRoot();
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
    let abortedAt = 0;
    const build = runBuild(spec, settings, {
      signal: controller.signal,
      onLog: (l) => {
        if (l !== 'started') return;
        abortedAt = Date.now();
        controller.abort();
      },
    });
    await assert.rejects(build, (err: unknown) => {
      assert.equal((err as Error).name, 'AbortError');
      return true;
    });
    assert.ok(abortedAt > 0, 'the RUN step never started');
    assert.ok(Date.now() - abortedAt < 5000, `the build ended ${Date.now() - abortedAt} ms after the cancel`);
    // The RUN step was running (it logged) and is gone: not one process with its command line is left.
    await sleep(500);
    assert.deepEqual(await processesWith(`sleep ${marker}`), []);
    // Nor any buildah of this suite (other builders on the machine are not ours to judge).
    assert.deepEqual(await processesWith(settings.cacheDir), []);
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
    assert.deepEqual(await processesWith(settings.cacheDir), []);
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

describe('registry credentials and the air gap (real buildah, registries with and without auth)', () => {
  const base = useRegistry();
  const target = useRegistry({ auth: true });
  const builderRoot = useBuilderRoot();
  let git: GitServer;
  let settings: BuilderSettings;

  before(async () => {
    git = await startGitServer();
    const root = builderRoot();
    settings = settingsFor(root, base().host, { insecureHosts: [base().host, target().host] });
    await seedBase('busybox', root, settings);
  });
  after(() => git?.stop());

  const spec = (commit: string, name: string, tag: string): BuildSpec => ({
    buildId: `${tag}-${Date.now()}`,
    app: `acme.${tag}`,
    source: { kind: 'git', url: git.repoUrl(name), commit },
    context: '.',
    dockerfile: 'Dockerfile',
    buildArgs: {},
    image: `${target().host}/acme/private`,
    tags: [tag],
    timeoutMs: 60_000,
  });

  it("pushes with the image registry's own credentials, which never show in the log; without them: unauthorized", async () => {
    const commit = await git.commit('acme/private.git', { Dockerfile: 'FROM busybox\nRUN echo private\n' });
    const auths = { [target().host]: { username: REGISTRY_USER, password: REGISTRY_PASSWORD, realms: [] } };
    const lines: string[] = [];
    const result = await runBuild(
      spec(commit, 'acme/private.git', 'with-creds'),
      { ...settings, registryAuths: auths },
      {
        onLog: (l) => lines.push(l),
      },
    );
    const basic = Buffer.from(`${REGISTRY_USER}:${REGISTRY_PASSWORD}`).toString('base64');
    const res = await fetch(`${target().url}/v2/acme/private/manifests/with-creds`, {
      method: 'HEAD',
      headers: { authorization: `Basic ${basic}`, accept: 'application/vnd.oci.image.manifest.v1+json' },
    });
    assert.equal(res.headers.get('docker-content-digest'), result.digest);
    assert.ok(!lines.some((l) => l.includes(REGISTRY_PASSWORD) || l.includes(basic)));
    await assert.rejects(runBuild(spec(commit, 'acme/private.git', 'no-creds'), settings, {}), (err: unknown) => {
      assert.ok(err instanceof ServiceError, String(err));
      assert.equal(err.kind, 'unauthorized', err.message);
      return true;
    });
  });

  it('with a base registry, FROM any other registry is refused by policy, before any connection', async () => {
    const commit = await git.commit('acme/elsewhere.git', { Dockerfile: 'FROM 127.0.0.1:1/acme/tool:1\n' });
    await assert.rejects(runBuild(spec(commit, 'acme/elsewhere.git', 'elsewhere'), settings, {}), (err: unknown) => {
      assert.ok(err instanceof ServiceError, String(err));
      assert.equal(err.kind, 'invalid', err.message);
      assert.match(err.message, /rejected by policy/);
      return true;
    });
  });
});

describe('git credentials and archive imports (real git server with basic auth, real buildah)', () => {
  const registry = useRegistry();
  const builderRoot = useBuilderRoot();
  const auth = { username: 'builder', password: 'git-password-for-tests' };
  let git: GitServer;
  let settings: BuilderSettings;

  before(async () => {
    git = await startGitServer({ auth });
    settings = settingsFor(builderRoot(), registry().host);
  });
  after(() => git?.stop());

  it('imports an oci-archive tarball as well as a layout, to the same digest', async () => {
    const root = builderRoot();
    const layoutDigest = await seedBase('busybox', root, settings);
    await packOciArchive(join(root, 'base-busybox'), join(root, 'busybox.tar'));
    const { digest } = await importBaseImage(join(root, 'busybox.tar'), `${registry().host}/library/bb:tar`, settings);
    assert.equal(digest, layoutDigest);
    assert.equal(await registryDigest(registry().url, 'library/bb', 'tar'), digest);
  });

  it("an import into a work directory that does not exist yet leaves it reachable by the builder's user namespace", async () => {
    const root = builderRoot();
    await seedBase('busybox', root, settings);
    const workDir = join(root, 'fresh', 'work');
    await importBaseImage(join(root, 'base-busybox'), `${registry().host}/library/bb:fresh`, { ...settings, workDir });
    // Only the import's own directory is private; a private work directory would lock every later build out of it.
    for (const dir of [join(root, 'fresh'), workDir]) {
      assert.ok((await stat(dir)).mode & 0o001, `${dir} is searchable by other users`);
    }
  });

  it("sends the git host's credentials to that host only, and never shows them", async () => {
    const commit = await git.commit('acme/secret.git', { Dockerfile: 'FROM busybox\nRUN echo checked-out\n' });
    const url = git.repoUrl('acme/secret.git');
    const spec: BuildSpec = {
      buildId: `git-auth-${Date.now()}`,
      app: 'acme.secret',
      source: { kind: 'git', url, commit },
      context: '.',
      dockerfile: 'Dockerfile',
      buildArgs: {},
      image: `${registry().host}/acme/secret`,
      tags: ['git-auth'],
      timeoutMs: 60_000,
    };
    // The builder's credentials come from its credentials file (FLUI_GIT_CREDENTIALS_FILE), as in production.
    const fromFile = async (lines: string[]) => {
      const file = join(builderRoot(), `git-credentials-${Date.now()}`);
      await writeFile(file, `${lines.join('\n')}\n`, { mode: 0o600 });
      const { value, problems } = parseGitCredentials({ FLUI_GIT_CREDENTIALS_FILE: file });
      assert.deepEqual(problems, []);
      return { ...settings, gitAuth: value };
    };
    const user = `${encodeURIComponent(auth.username)}:${encodeURIComponent(auth.password)}`;
    // Credentials for another host only, or for this host over https: the git server (plain http) sees none, and the
    // build fails as unauthorized.
    const elsewhere = await fromFile([`https://${user}@git.example.com`, `https://${user}@${git.host}`]);
    await assert.rejects(runBuild(spec, elsewhere, {}), (err: unknown) => {
      assert.ok(err instanceof ServiceError, String(err));
      assert.equal(err.kind, 'unauthorized', err.message);
      assert.ok(!err.message.includes(auth.password));
      return true;
    });
    assert.ok(git.requests.length > 0 && git.requests.every((r) => r.authorization === undefined));

    const own = await fromFile(['# the local git server', `http://${user}@${git.host}`]);
    assert.equal(await resolveCommit({ kind: 'git', url, branch: 'main' }, own), commit);
    const lines: string[] = [];
    await runBuild({ ...spec, buildId: `${spec.buildId}-2` }, own, { onLog: (l) => lines.push(l) });
    assert.ok(lines.includes('checked-out'));
    assert.ok(git.requests.some((r) => r.authorization?.startsWith('Basic ')));
    const basic = Buffer.from(`${auth.username}:${auth.password}`).toString('base64');
    assert.ok(!lines.some((l) => l.includes(auth.password) || l.includes(basic)));
  });
});
