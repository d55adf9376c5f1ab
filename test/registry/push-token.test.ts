/**
 * The push tokens Flui mints (src/registry/push-token.ts), against a real registry in token mode (Debian's
 * docker-registry) that trusts Flui's certificate: a token pushes to its app's repository and nowhere else, and not
 * after it expires; a token the registry cannot trust is refused. No token service is asked: the token is the
 * credential, sent as `Bearer` from the first request, as docker and buildx send a config's `registrytoken`.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { pushImage } from '@flui/github-emulator/registry-push';
import { makeTempDir } from '../../dev/process.ts';
import { headManifest, RegistryUnauthorizedError } from '../../src/registry/oci.ts';
import { mintPushToken, tokenSigner, type TokenSigner } from '../../src/registry/push-token.ts';
import { makeSigningFiles, useTokenRegistry } from '../helpers/token-registry.ts';

const dir = await makeTempDir('push-token');
const flui = await makeSigningFiles(dir, 'flui-push', 'rsa');
const fluiEc = await makeSigningFiles(dir, 'flui-push-ec', 'ec');
const stranger = await makeSigningFiles(dir, 'stranger', 'rsa');
const files = { 'server.js': 'console.log("pushed with a minted token")\n' };

function refused(err: unknown): boolean {
  assert.ok(err instanceof RegistryUnauthorizedError, String(err));
  assert.match(err.message, /refused the token/);
  return true;
}

describe('push tokens Flui mints, against a real registry in token mode', () => {
  const registry = useTokenRegistry(
    { username: 'someone', password: 'unused' },
    { trust: () => [flui.certificateFile, fluiEc.certificateFile] },
  );
  const signer = async (
    keys: { keyFile: string; certificateFile: string },
    claims: { issuer?: string; service?: string } = {},
  ): Promise<TokenSigner> =>
    tokenSigner({
      issuer: claims.issuer ?? registry().issuer,
      service: claims.service ?? registry().service,
      keyPem: await readFile(keys.keyFile, 'utf8'),
      certificatePem: await readFile(keys.certificateFile, 'utf8'),
    });
  const mint = (s: TokenSigner, repository: string, more: { ttlSeconds?: number; now?: number } = {}) =>
    mintPushToken(s, { repository, subject: `flui:default.${repository.split('/')[1]}`, ttlSeconds: 600, ...more });

  it("pushes and pulls its app's repository, and is refused for another app's, without a token service", async () => {
    const issuedBefore = registry().tokens.issued;
    const { token, expiresAt } = mint(await signer(flui), 'acme/app-a');
    assert.ok(Date.parse(expiresAt) - Date.now() > 590_000 && Date.parse(expiresAt) - Date.now() <= 600_000);
    const pushed = await pushImage(`${registry().host}/acme/app-a:flui-1`, { files, bearerToken: token });
    const pulled = await headManifest(`${registry().host}/acme/app-a:flui-1`, { bearerToken: token });
    assert.equal(pulled.digest, pushed.digest);

    await assert.rejects(pushImage(`${registry().host}/acme/app-b:flui-1`, { files, bearerToken: token }), refused);
    await assert.rejects(headManifest(`${registry().host}/acme/app-a-other:x`, { bearerToken: token }), refused);
    assert.equal(registry().tokens.issued, issuedBefore, 'the token service was never asked');
  });

  it('is refused once it has expired', async () => {
    const s = await signer(flui);
    const fresh = mint(s, 'acme/app-c');
    await pushImage(`${registry().host}/acme/app-c:flui-1`, { files, bearerToken: fresh.token });
    // Minted ten minutes ago for one minute: expired nine minutes ago, well past any clock leeway.
    const expired = mint(s, 'acme/app-c', { now: Date.now() - 600_000, ttlSeconds: 60 });
    assert.ok(Date.parse(expired.expiresAt) < Date.now());
    await assert.rejects(
      pushImage(`${registry().host}/acme/app-c:flui-2`, { files, bearerToken: expired.token }),
      refused,
    );
  });

  it('works with an EC P-256 key too (ES256)', async () => {
    const s = await signer(fluiEc);
    assert.equal(s.alg, 'ES256');
    const { token } = mint(s, 'acme/app-ec');
    await pushImage(`${registry().host}/acme/app-ec:flui-1`, { files, bearerToken: token });
  });

  it('is a check that can fail: an untrusted key, another issuer or another service is refused', async () => {
    for (const s of [
      await signer(stranger),
      await signer(flui, { issuer: 'someone-else' }),
      await signer(flui, { service: 'another-registry' }),
    ]) {
      const { token } = mint(s, 'acme/app-d');
      await assert.rejects(pushImage(`${registry().host}/acme/app-d:flui-1`, { files, bearerToken: token }), refused);
    }
  });
});
