import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/activity';
import { createRegistryActivities } from '../../src/activities/registry.ts';
import { headManifest, pushImage, RegistryError } from '../../src/registry/oci.ts';
import { REGISTRY_PASSWORD, REGISTRY_USER, useRegistry } from '../helpers/registry.ts';

const credentials = { username: REGISTRY_USER, password: REGISTRY_PASSWORD };

describe('OCI client and resolveImage against docker-registry', () => {
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

    const { resolveImage } = createRegistryActivities({ registry: { ...credentials, insecureHosts: ['127.0.0.1'] } });
    const resolved = await resolveImage({ image });
    assert.deepEqual(resolved, { digest: pushed.digest, pinned: `${registry().host}/acme/hello@${pushed.digest}` });
  });

  it('refuses a wrong password with the registry 401, and says what is missing', async () => {
    const image = `${registry().host}/acme/hello:abc123`;
    await assert.rejects(
      pushImage(image, { credentials: { ...credentials, password: 'wrong' }, files: { a: 'b' } }),
      (err: unknown) => {
        assert.ok(err instanceof RegistryError);
        assert.equal(err.status, 401);
        assert.equal(err.retryable, false);
        return true;
      },
    );
    const { resolveImage } = createRegistryActivities({ registry: { insecureHosts: ['127.0.0.1'] } });
    await assert.rejects(resolveImage({ image }), (err: unknown) => {
      assert.ok(err instanceof ApplicationFailure);
      assert.equal(err.type, 'Unauthorized');
      assert.match(err.message, /refused anonymous access \(401 unauthorized\).*REGISTRY_USERNAME/);
      return true;
    });
    const missing = createRegistryActivities({ registry: { ...credentials, insecureHosts: ['127.0.0.1'] } });
    await assert.rejects(missing.resolveImage({ image: `${registry().host}/acme/hello:nope` }), (err: unknown) => {
      assert.ok(err instanceof ApplicationFailure);
      assert.equal(err.type, 'NotFound');
      assert.equal(err.nonRetryable, true);
      return true;
    });
  });

  it('treats an unreachable registry as retryable', async () => {
    const { resolveImage } = createRegistryActivities({ registry: { insecureHosts: ['127.0.0.1'] } });
    await assert.rejects(resolveImage({ image: '127.0.0.1:1/acme/hello:x' }), (err: unknown) => {
      assert.ok(err instanceof ApplicationFailure);
      assert.equal(err.nonRetryable, false);
      assert.match(err.message, /unreachable/);
      return true;
    });
  });
});
