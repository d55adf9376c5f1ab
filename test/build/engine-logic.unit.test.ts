/** The build engine's pure logic: cache eviction, Dockerfile bases, manifest path checks, buildah's config files. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  authFile,
  buildArgFlags,
  pullHost,
  qualify,
  registriesConf,
  signaturePolicy,
} from '../../src/build/buildah.ts';
import { checkSpec } from '../../src/build/build.ts';
import { cacheName, chooseEvictions, type CacheEntry } from '../../src/build/cache.ts';
import { baseImages, buildArgProblems, insidePath } from '../../src/build/dockerfile.ts';
import { BuildLog, redact } from '../../src/build/logs.ts';
import { createSandbox } from '../../src/build/sandbox.ts';
import { ServiceError } from '../../src/errors.ts';

const GiB = 2 ** 30;

describe('chooseEvictions', () => {
  const entry = (app: string, gib: number, lastUsed: number, inUse = false): CacheEntry => ({
    app,
    bytes: gib * GiB,
    lastUsed,
    inUse,
  });

  it('keeps everything within the budget', () => {
    assert.deepEqual(chooseEvictions([entry('a', 1, 1), entry('b', 1, 2)], 2 * GiB), []);
  });
  it('removes least recently used first, only as many as needed', () => {
    const entries = [entry('new', 2, 30), entry('old', 2, 10), entry('mid', 2, 20)];
    assert.deepEqual(chooseEvictions(entries, 4 * GiB), ['old']);
    assert.deepEqual(chooseEvictions(entries, 1 * GiB), ['old', 'mid', 'new']);
  });
  it('never removes a cache in use, even when that leaves the total over budget', () => {
    const entries = [entry('busy', 5, 1, true), entry('idle', 1, 2)];
    assert.deepEqual(chooseEvictions(entries, 2 * GiB), ['idle']);
    assert.deepEqual(chooseEvictions([entry('busy', 5, 1, true)], 0), []);
  });
  it('cache names are readable and distinct', () => {
    assert.match(cacheName('acme.web'), /^acme\.web-[0-9a-f]{8}$/);
    assert.notEqual(cacheName('a/b'), cacheName('a_b'));
  });
});

describe('baseImages', () => {
  it('lists FROM images and COPY --from images, not stages or scratch', () => {
    const text = [
      'ARG BASE=node:20',
      'FROM --platform=linux/amd64 $BASE AS build',
      'RUN make',
      'FROM scratch AS empty',
      'FROM busybox',
      'COPY --from=build /out /out',
      'COPY --from=registry.example.com/tools:1 /bin/t /bin/t',
      '# FROM commented:out',
    ].join('\n');
    assert.deepEqual(baseImages(text, {}), ['node:20', 'busybox', 'registry.example.com/tools:1']);
    assert.deepEqual(baseImages(text, { BASE: 'node:22' }), ['node:22', 'busybox', 'registry.example.com/tools:1']);
  });
  it('joins continuation lines', () => {
    assert.deepEqual(baseImages('FROM \\\n  busybox\n', {}), ['busybox']);
  });
});

describe('manifest inputs', () => {
  it('insidePath keeps paths inside and refuses the rest', () => {
    assert.equal(insidePath('.'), '.');
    assert.equal(insidePath('app/'), 'app');
    assert.equal(insidePath('a/../b'), 'b');
    for (const bad of ['..', '../x', 'a/../../x', '/etc', 'C:/x', 'a\0b']) assert.equal(insidePath(bad), undefined);
  });
  it('build arg names must be ARG names; values are anything but NUL', () => {
    assert.deepEqual(buildArgProblems({ OK: '$(rm -rf /)', _x1: '' }), []);
    assert.equal(buildArgProblems({ 'A B': 'x', '--x': 'y', Z: 'a\0b' }).length, 3);
    assert.deepEqual(buildArgFlags({ A: 'x y' }), ['--build-arg', 'A=x y']);
  });
  it('checkSpec refuses bad specs with one invalid error naming every problem', () => {
    const spec = {
      buildId: 'bad id',
      app: 'a.b',
      source: { kind: 'git' as const, url: 'http://x/y', commit: 'a'.repeat(40) },
      context: '../up',
      dockerfile: 'Dockerfile',
      buildArgs: {},
      image: '127.0.0.1:5000/a/b:tag',
      tags: ['ok', 'not ok'],
      timeoutMs: 0,
    };
    assert.throws(
      () => checkSpec(spec),
      (err: unknown) => {
        assert.ok(err instanceof ServiceError && err.kind === 'invalid');
        for (const part of ['build id', 'context', 'without tag', '"not ok"', 'timeoutMs']) {
          assert.ok(err.message.includes(part), `${part}: ${err.message}`);
        }
        return true;
      },
    );
  });
});

describe("buildah's configuration", () => {
  it('registries.conf sends docker.io to the base registry and marks insecure hosts', () => {
    const conf = registriesConf('127.0.0.1:5001', ['127.0.0.1:5001']);
    assert.match(conf, /prefix = "docker.io"\nlocation = "127.0.0.1:5001"\ninsecure = true/);
    assert.match(conf, /unqualified-search-registries = \["docker.io"\]/);
    assert.doesNotMatch(registriesConf(undefined, []), /\[\[registry\]\]/);
  });
  it('the signature policy refuses every registry not named, when air-gapped', () => {
    const policy = JSON.parse(signaturePolicy(['docker.io', 'mirror:5000'])) as {
      default: { type: string }[];
      transports: { docker: Record<string, unknown> };
    };
    assert.deepEqual(policy.default, [{ type: 'reject' }]);
    assert.deepEqual(Object.keys(policy.transports.docker), ['docker.io', 'mirror:5000']);
    assert.deepEqual(JSON.parse(signaturePolicy(undefined)), { default: [{ type: 'insecureAcceptAnything' }] });
  });
  it('the auth file carries the credentials of the named hosts only', () => {
    const auths = {
      'reg.example.com': { username: 'u', password: 'p1', realms: [] },
      'other.example.com': { username: 'v', password: 'p2', realms: [] },
    };
    const { json, secrets } = authFile(auths, ['reg.example.com', 'nobody.example.com']);
    assert.deepEqual(Object.keys((JSON.parse(json) as { auths: object }).auths), ['reg.example.com']);
    assert.ok(secrets.includes('p1') && !secrets.includes('p2'));
  });
  it('short names are docker.io names, served by the base registry', () => {
    assert.equal(qualify('node:20'), 'docker.io/library/node:20');
    assert.equal(qualify('acme/tool'), 'docker.io/acme/tool');
    assert.equal(qualify('127.0.0.1:5001/x/y:1'), '127.0.0.1:5001/x/y:1');
    assert.equal(pullHost('node:20', 'mirror:5000'), 'mirror:5000');
    assert.equal(pullHost('quay.io/x/y', 'mirror:5000'), 'quay.io');
  });
});

describe('build log', () => {
  it('blanks secrets, keeps a 20-line tail, counts cached steps, splits lines', () => {
    const seen: string[] = [];
    const log = new BuildLog(['s3cret-value'], (l) => seen.push(l));
    const w = log.writer();
    w.write('token s3cret-');
    w.write('value here\n--> Using cache abc\r\n');
    for (let i = 0; i < 30; i++) w.write(`line ${i}\n`);
    w.write('partial');
    w.flush();
    assert.equal(seen[0], 'token *** here');
    assert.equal(log.cachedSteps, 1);
    assert.equal(log.tail().split('\n').length, 20);
    assert.ok(log.tail().endsWith('partial'));
    assert.equal(redact('a b a', ['a']), '*** b ***');
  });
});

describe('the build sandbox without namespaces of its own', () => {
  it('still runs each command under a parent-death signal, so it ends with the builder', async () => {
    const sandbox = await createSandbox({ userNamespace: false, isolateNetwork: false });
    try {
      assert.equal(sandbox.owner, undefined);
      assert.deepEqual(sandbox.wrap('buildah', ['bud', '.'], false), {
        cmd: 'setpriv',
        args: ['--pdeathsig', 'KILL', '--', 'buildah', 'bud', '.'],
      });
    } finally {
      await sandbox.close();
    }
  });
});
