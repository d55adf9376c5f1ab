/**
 * The OCI client against real registries: Debian's docker-registry with htpasswd (Basic) auth, and the same in
 * token-auth mode behind a Docker token service (the Bearer challenge flow). Plus resolveImage, the activity on top.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/activity';
import { withActivityFailures } from '../../src/activities/failures.ts';
import { createRegistryActivities as createUnwrapped } from '../../src/activities/registry.ts';
import { freePort } from '../../dev/process.ts';
import { checkLogin, pushImage } from '@flui/github-emulator/registry-push';
import {
  headManifest,
  RegistryError,
  RegistryNotFoundError,
  RegistryUnauthorizedError,
} from '../../src/registry/oci.ts';
import { REGISTRY_PASSWORD, REGISTRY_USER, useRegistry } from '../helpers/registry.ts';
import { useTokenRegistry } from '../helpers/token-registry.ts';

/** The registry activity as the worker registers it: what it throws reaches Temporal through the one translation. */
const createRegistryActivities = (config: Parameters<typeof createUnwrapped>[0]) =>
  withActivityFailures(createUnwrapped(config));

const credentials = { username: REGISTRY_USER, password: REGISTRY_PASSWORD };
const wrong = { ...credentials, password: 'wrong' };
const basic = `Basic ${Buffer.from(`${REGISTRY_USER}:${REGISTRY_PASSWORD}`).toString('base64')}`;

describe('OCI client and resolveImage against docker-registry (Basic auth)', () => {
  const registry = useRegistry({ auth: true });

  it('pushes an image and resolves its tag to the same digest; the same files give the same digest', async () => {
    const image = `${registry().host}/acme/hello:abc123`;
    const pushed = await pushImage(image, { credentials, files: { 'server.js': 'console.log(1)\n' } });
    assert.match(pushed.digest, /^sha256:[a-f0-9]{64}$/);
    assert.equal((await headManifest(image, { credentials })).digest, pushed.digest);
    const again = await pushImage(`${registry().host}/acme/hello:other`, {
      credentials,
      files: { 'server.js': 'console.log(1)\n' },
    });
    assert.equal(again.digest, pushed.digest);

    const { resolveImage } = createRegistryActivities({
      registry: { auths: { [registry().host]: { ...credentials, realms: [] } }, insecureHosts: ['127.0.0.1'] },
    });
    const resolved = await resolveImage({ image });
    assert.deepEqual(resolved, { digest: pushed.digest, pinned: `${registry().host}/acme/hello@${pushed.digest}` });
  });

  it('uploads blobs in chunks when asked, to the same digest', async () => {
    const files = { 'big.bin': Buffer.alloc(70_000, 7), 'small.txt': 'x\n' };
    const mono = await pushImage(`${registry().host}/acme/chunks:mono`, { credentials, files });
    const chunked = await pushImage(`${registry().host}/acme/chunks:chunked`, {
      credentials,
      files: { ...files, 'extra.txt': 'so the blobs are new to the registry\n' },
      chunkSize: 1000,
    });
    const back = await headManifest(`${registry().host}/acme/chunks:chunked`, { credentials });
    assert.equal(back.digest, chunked.digest);
    assert.notEqual(chunked.digest, mono.digest);
    const same = await pushImage(`${registry().host}/acme/chunks2:x`, { credentials, files, chunkSize: 4096 });
    assert.equal(same.digest, mono.digest, 'chunked or not, the same image');
  });

  it('resolves an image index by the Accept header, with its own media type', async () => {
    const child = await pushImage(`${registry().host}/acme/multi:amd64`, { credentials, files: { a: 'a' } });
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: [
          {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            digest: child.digest,
            size: (
              await (
                await fetch(`${registry().url}/v2/acme/multi/manifests/amd64`, {
                  headers: { authorization: basic, accept: 'application/vnd.oci.image.manifest.v1+json' },
                })
              ).arrayBuffer()
            ).byteLength,
            platform: { architecture: 'amd64', os: 'linux' },
          },
        ],
      }),
    );
    const put = await fetch(`${registry().url}/v2/acme/multi/manifests/latest`, {
      method: 'PUT',
      headers: { authorization: basic, 'content-type': 'application/vnd.oci.image.index.v1+json' },
      body: index,
    });
    assert.equal(put.status, 201, await put.text());
    const head = await headManifest(`${registry().host}/acme/multi:latest`, { credentials });
    assert.equal(head.digest, `sha256:${createHash('sha256').update(index).digest('hex')}`);
    assert.equal(head.mediaType, 'application/vnd.oci.image.index.v1+json');
  });

  it('checks a login like docker login does', async () => {
    await checkLogin(registry().host, { credentials });
    await assert.rejects(checkLogin(registry().host, { credentials: wrong }), RegistryUnauthorizedError);
  });

  it('says "unauthorized" for a wrong password or none, "not found" for a missing tag, and which is retryable', async () => {
    const image = `${registry().host}/acme/hello:abc123`;
    await pushImage(image, { credentials, files: { a: 'b' } });
    await assert.rejects(pushImage(image, { credentials: wrong, files: { a: 'b' } }), (err: unknown) => {
      assert.ok(err instanceof RegistryUnauthorizedError);
      assert.equal(err.status, 401);
      assert.equal(err.kind, 'unauthorized');
      assert.equal(err.retryable, false);
      assert.match(err.message, /refused the credentials \(401 unauthorized\)/);
      assert.ok(!err.message.includes('wrong'), 'the password is never in the message');
      return true;
    });
    await assert.rejects(headManifest(`${registry().host}/acme/hello:nope`, { credentials }), (err: unknown) => {
      assert.ok(err instanceof RegistryNotFoundError);
      assert.equal(err.kind, 'not-found');
      assert.match(err.message, /not found/);
      return true;
    });

    const { resolveImage } = createRegistryActivities({ registry: { auths: {}, insecureHosts: ['127.0.0.1'] } });
    await assert.rejects(resolveImage({ image }), (err: unknown) => {
      assert.ok(err instanceof ApplicationFailure);
      assert.equal(err.type, 'Unauthorized');
      assert.match(err.message, /refused anonymous access \(401 unauthorized\).*REGISTRY_USERNAME/);
      return true;
    });
    const missing = createRegistryActivities({
      registry: { auths: { [registry().host]: { ...credentials, realms: [] } }, insecureHosts: ['127.0.0.1'] },
    });
    await assert.rejects(missing.resolveImage({ image: `${registry().host}/acme/hello:nope` }), (err: unknown) => {
      assert.ok(err instanceof ApplicationFailure);
      assert.equal(err.type, 'NotFound');
      assert.equal(err.nonRetryable, true);
      return true;
    });
  });

  it('stops when aborted', async () => {
    const abort = new AbortController();
    abort.abort();
    await assert.rejects(
      pushImage(`${registry().host}/acme/aborted:x`, { credentials, files: { a: 'a' }, signal: abort.signal }),
      (err: unknown) => err instanceof RegistryError && err.aborted && !err.retryable,
    );
  });

  it('treats an unreachable registry as retryable', async () => {
    const closed = `127.0.0.1:${await freePort()}`;
    await assert.rejects(headManifest(`${closed}/acme/hello:x`), (err: unknown) => {
      assert.ok(err instanceof RegistryError);
      assert.equal(err.kind, 'unavailable');
      assert.equal(err.retryable, true);
      assert.match(err.message, /unreachable.*ECONNREFUSED/);
      return true;
    });
    const { resolveImage } = createRegistryActivities({ registry: { auths: {}, insecureHosts: ['127.0.0.1'] } });
    await assert.rejects(resolveImage({ image: '127.0.0.1:1/acme/hello:x' }), (err: unknown) => {
      assert.ok(err instanceof ApplicationFailure);
      assert.equal(err.nonRetryable, false);
      assert.match(err.message, /unreachable/);
      return true;
    });
  });
});

describe('OCI client against a token-auth registry (the Bearer challenge flow)', () => {
  const registry = useTokenRegistry(credentials);
  /** The token service listens on its own port: another origin, trusted with the credentials only when configured. */
  const realms = () => [new URL(registry().realm).origin];

  it('earns Bearer tokens with the credentials to push, resolve and log in', async () => {
    const image = `${registry().host}/acme/tokened:v1`;
    const before = registry().tokens.issued;
    const pushed = await pushImage(image, {
      credentials,
      trustedRealms: realms(),
      files: { 'index.html': '<h1>hi</h1>\n' },
    });
    assert.equal((await headManifest(image, { credentials, trustedRealms: realms() })).digest, pushed.digest);
    await checkLogin(registry().host, { credentials, trustedRealms: realms() });
    assert.ok(registry().tokens.issued > before, 'the client went through the token service');
  });

  it('is unauthorized with a wrong password (the token service refuses) or without credentials (no access)', async () => {
    const image = `${registry().host}/acme/tokened:v1`;
    await assert.rejects(headManifest(image, { credentials: wrong, trustedRealms: realms() }), (err: unknown) => {
      assert.ok(err instanceof RegistryUnauthorizedError);
      assert.match(err.message, /refused the credentials \(401 unauthorized\) for a token/);
      return true;
    });
    assert.ok(registry().tokens.refused >= 1);
    await assert.rejects(headManifest(image), (err: unknown) => {
      assert.ok(err instanceof RegistryUnauthorizedError);
      assert.match(err.message, /refused anonymous access \(401 unauthorized\)/);
      return true;
    });
    await assert.rejects(
      checkLogin(registry().host, { credentials: wrong, trustedRealms: realms() }),
      RegistryUnauthorizedError,
    );
  });

  it('treats a token service outage as retryable', async () => {
    registry().failTokens(1);
    await assert.rejects(
      headManifest(`${registry().host}/acme/tokened:v1`, { credentials, trustedRealms: realms() }),
      (err: unknown) => err instanceof RegistryError && err.status === 503 && err.retryable,
    );
    assert.ok(
      (await headManifest(`${registry().host}/acme/tokened:v1`, { credentials, trustedRealms: realms() })).digest,
    );
  });

  it('asks a token realm it is not configured to trust without the credentials, and says so when refused', async () => {
    const image = `${registry().host}/acme/tokened:v1`;
    const refusedBefore = registry().tokens.refused;
    await assert.rejects(headManifest(image, { credentials }), (err: unknown) => {
      assert.ok(err instanceof RegistryUnauthorizedError);
      assert.match(err.message, /token realm http:\/\/127\.0\.0\.1:\d+ was asked without credentials/);
      return true;
    });
    assert.equal(registry().tokens.refused, refusedBefore, 'no credentials reached the realm, so none were refused');
  });
});
