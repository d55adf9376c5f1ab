/**
 * FLUI_REGISTRY_PUSH: how each registry's CI pushes. Nothing long-lived by default, nothing sent to a host that was
 * not configured, and a human sentence for every bad setting.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { makeTempDir } from '../../dev/process.ts';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { ServiceError } from '../../src/errors.ts';
import { parseRegistryPushSettings, pushAccessFor, pushTokenIssuer } from '../../src/registry/push-access.ts';
import { makeSigningFiles } from '../helpers/token-registry.ts';

const dir = await makeTempDir('push-access');
const rsa = await makeSigningFiles(dir, 'flui-rsa', 'rsa');
const ec = await makeSigningFiles(dir, 'flui-ec', 'ec');

const ECR = '123456789012.dkr.ecr.eu-west-1.amazonaws.com';
const settings = (value: unknown, more: NodeJS.ProcessEnv = {}) =>
  parseRegistryPushSettings({ FLUI_REGISTRY_PUSH: JSON.stringify(value), ...more });

function misconfigured(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ServiceError, String(err));
    assert.equal(err.kind, 'misconfigured');
    assert.equal(err.retryable, false);
    assert.match(err.message, pattern);
    return true;
  });
}

describe('registry push access (FLUI_REGISTRY_PUSH)', () => {
  it('gives ghcr.io the job token by default, and refuses every other unconfigured host, naming the variable', () => {
    const none = parseRegistryPushSettings({}).value;
    assert.deepEqual(pushAccessFor(none, 'ghcr.io/acme/web'), { method: 'github-token', registry: 'ghcr.io' });
    misconfigured(() => pushAccessFor(none, `${ECR}/acme/web`), /Amazon ECR.*FLUI_REGISTRY_PUSH=.*"aws-oidc"/);
    misconfigured(
      () => pushAccessFor(none, 'europe-west1-docker.pkg.dev/p/r/web'),
      /Artifact Registry.*FLUI_REGISTRY_PUSH=.*"gcp-oidc"/,
    );
    misconfigured(() => pushAccessFor(none, 'acmeprod.azurecr.io/web'), /Azure Container Registry.*"azure-oidc"/);
    misconfigured(
      () => pushAccessFor(none, 'registry.example.com/acme/web'),
      /no push method for the registry registry\.example\.com.*FLUI_REGISTRY_PUSH.*"method":"static"/,
    );
    misconfigured(() => pushAccessFor(undefined, '127.0.0.1:5000/acme/web'), /no push method/);
  });

  it('reads each method with its identifiers, by host (case-insensitive, port included)', () => {
    const { value, problems } = settings(
      {
        [ECR]: { method: 'aws-oidc', roleArn: 'arn:aws:iam::123456789012:role/flui-push' },
        'europe-west1-docker.pkg.dev': {
          method: 'gcp-oidc',
          workloadIdentityProvider: 'projects/123456789/locations/global/workloadIdentityPools/github/providers/github',
          serviceAccount: 'flui-push@acme-prod.iam.gserviceaccount.com',
        },
        'AcmeProd.azurecr.io': {
          method: 'azure-oidc',
          clientId: '11111111-2222-3333-4444-555555555555',
          tenantId: '66666666-7777-8888-9999-000000000000',
          subscriptionId: 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee',
        },
        'ghcr.io': { method: 'static' },
        '127.0.0.1:5000': {
          method: 'minted-token',
          issuer: 'flui',
          service: 'local',
          keyFile: rsa.keyFile,
          certificateFile: rsa.certificateFile,
        },
      },
      { REGISTRY_USERNAME: 'u', REGISTRY_PASSWORD: 'p' },
    );
    assert.deepEqual(problems, []);
    assert.deepEqual(pushAccessFor(value, `${ECR}/acme/web`), {
      method: 'aws-oidc',
      registry: ECR,
      roleArn: 'arn:aws:iam::123456789012:role/flui-push',
      region: 'eu-west-1',
      accountId: '123456789012',
    });
    assert.equal(pushAccessFor(value, 'europe-west1-docker.pkg.dev/p/r/web').method, 'gcp-oidc');
    assert.deepEqual(pushAccessFor(value, 'acmeprod.azurecr.io/web'), {
      method: 'azure-oidc',
      registry: 'acmeprod.azurecr.io',
      clientId: '11111111-2222-3333-4444-555555555555',
      tenantId: '66666666-7777-8888-9999-000000000000',
      subscriptionId: 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee',
      registryName: 'acmeprod',
    });
    assert.deepEqual(pushAccessFor(value, 'ghcr.io/acme/web'), { method: 'static', registry: 'ghcr.io' }, 'opted in');
    const minted = pushAccessFor(value, '127.0.0.1:5000/acme/web');
    assert.deepEqual(minted, { method: 'minted-token', registry: '127.0.0.1:5000' }, 'no key in what the file sees');
    assert.equal(pushTokenIssuer(value, '127.0.0.1:5000').maxTokenMinutes, 360);
    assert.equal(pushTokenIssuer(value, '127.0.0.1:5000').signer.alg, 'RS256');
    misconfigured(() => pushAccessFor(value, '127.0.0.1:5001/acme/web'), /127\.0\.0\.1:5001/);
  });

  it('says what is wrong with each bad setting, in one sentence each', () => {
    const cases: [unknown, RegExp, NodeJS.ProcessEnv?][] = [
      [['ghcr.io'], /must be a JSON object from registry host to push method/],
      [{ 'not a host!': { method: 'static' } }, /"not a host!" is not a registry host/],
      [{ 'r.example.com': { method: 'magic' } }, /r\.example\.com: "method" must be one of github-token, aws-oidc/],
      [{ 'r.example.com': { method: 'aws-oidc', roleArn: 'arn:aws:iam::1:role/x' } }, /"roleArn" must look like/],
      [
        { 'r.example.com': { method: 'aws-oidc', roleArn: 'arn:aws:iam::123456789012:role/x' } },
        /r\.example\.com: aws-oidc works with Amazon ECR hosts/,
      ],
      [{ 'r.azurecr.io': { method: 'azure-oidc', clientId: 'x' } }, /"clientId" must look like a GUID/],
      [{ 'r.example.com': { method: 'static', password: 'x' } }, /r\.example\.com: .*password/],
      [
        {
          'r.example.com': {
            method: 'minted-token',
            issuer: 'i',
            service: 's',
            keyFile: join(dir, 'nope'),
            certificateFile: rsa.certificateFile,
          },
        },
        /r\.example\.com: cannot read the token signing files: .*nope/,
      ],
      [
        {
          'r.example.com': {
            method: 'minted-token',
            issuer: 'i',
            service: 's',
            keyFile: ec.keyFile,
            certificateFile: rsa.certificateFile,
          },
        },
        /cannot sign tokens: the first certificate is not the signing key's/,
      ],
      [
        {
          'r.example.com': {
            method: 'minted-token',
            issuer: 'i',
            service: 's',
            keyFile: ec.keyFile,
            certificateFile: ec.certificateFile,
            maxTokenMinutes: 1.5,
          },
        },
        /"maxTokenMinutes" must be a whole number of minutes/,
      ],
    ];
    for (const [value, pattern, env] of cases) {
      const { problems } = settings(value, env);
      assert.equal(problems.length, 1, `${JSON.stringify(value)}: ${problems.join(' / ')}`);
      assert.match(problems[0]!, /^FLUI_REGISTRY_PUSH: /);
      assert.match(problems[0]!, pattern);
    }
    assert.match(parseRegistryPushSettings({ FLUI_REGISTRY_PUSH: '{' }).problems[0]!, /not valid JSON/);
  });

  it('stops the worker at startup on a bad setting, and accepts an EC key', async () => {
    assert.throws(
      () => loadConfig({ FLUI_REGISTRY_PUSH: '{"r.example.com":{"method":"static"}}' }),
      (err: unknown) => err instanceof ConfigError && /FLUI_REGISTRY_PUSH: .*REGISTRY_USERNAME/.test(err.message),
    );
    // A static host needs a credential of its own: one bound to another host does not count.
    const other = { REGISTRY_USERNAME: 'u', REGISTRY_PASSWORD: 'p', REGISTRY_HOST: 'elsewhere.example.com' };
    assert.throws(
      () => loadConfig({ ...other, FLUI_REGISTRY_PUSH: '{"r.example.com":{"method":"static"}}' }),
      (err: unknown) => err instanceof ConfigError && /r\.example\.com has "method": "static" but/.test(err.message),
    );
    assert.ok(
      loadConfig({
        ...other,
        REGISTRY_HOST: 'r.example.com',
        FLUI_REGISTRY_PUSH: '{"r.example.com":{"method":"static"}}',
      }),
    );
    assert.throws(
      () => loadConfig({ FLUI_GITHUB_ENVIRONMENT: 'a\nb' }),
      (err: unknown) =>
        err instanceof ConfigError && /FLUI_GITHUB_ENVIRONMENT must be a GitHub Environment/.test(err.message),
    );
    const config = loadConfig({
      FLUI_GITHUB_ENVIRONMENT: 'registry push',
      FLUI_REGISTRY_PUSH: JSON.stringify({
        'r.example.com': { method: 'minted-token', issuer: 'i', service: 's', ...ec, maxTokenMinutes: 30 },
      }),
    });
    assert.equal(config.github.environment, 'registry push');
    assert.equal(pushTokenIssuer(config.registry.push, 'r.example.com').signer.alg, 'ES256');
    assert.equal(pushTokenIssuer(config.registry.push, 'r.example.com').maxTokenMinutes, 30);
    await writeFile(join(dir, 'empty.pem'), '');
    const { problems } = settings({
      'r.example.com': {
        method: 'minted-token',
        issuer: 'i',
        service: 's',
        keyFile: ec.keyFile,
        certificateFile: join(dir, 'empty.pem'),
      },
    });
    assert.match(problems[0]!, /holds no PEM certificate/);
  });
});
