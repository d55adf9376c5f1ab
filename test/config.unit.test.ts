import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, loadClientConfig, loadConfig } from '../src/config.ts';

function configError(env: NodeJS.ProcessEnv, load: (env: NodeJS.ProcessEnv) => unknown = loadConfig): string {
  try {
    load(env);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.message;
  }
  assert.fail('configuration was accepted');
}

describe('worker configuration', () => {
  it('has local defaults for everything', () => {
    const config = loadConfig({});
    assert.equal(config.temporal.address, '127.0.0.1:7233');
    assert.equal(config.temporal.addressIsDefault, true);
    assert.equal(config.temporal.namespace, 'default');
    assert.equal(config.temporal.taskQueue, 'flui-deploy');
    assert.equal(config.temporal.tls, undefined);
    assert.equal(config.github.apiUrl, 'https://api.github.com');
    assert.equal(config.github.auth, undefined);
    assert.deepEqual(config.registry.insecureHosts, ['127.0.0.1', 'localhost']);
    assert.equal(config.worker.maxCachedWorkflows, 250);
    assert.equal(loadConfig({ TEMPORAL_ADDRESS: 'temporal:7233' }).temporal.addressIsDefault, false);
  });

  it('names every bad variable', () => {
    const message = configError({ TEMPORAL_ADDRESS: 'http://nope', FLUI_WEBHOOK_PORT: '70000', GITHUB_API_URL: 'x' });
    assert.match(message, /TEMPORAL_ADDRESS must be host:port/);
    assert.match(message, /FLUI_WEBHOOK_PORT /);
    assert.match(message, /GITHUB_API_URL /);
  });

  it('says what a number must be in a sentence, with the value given', () => {
    assert.equal(
      configError({ FLUI_MAX_CACHED_WORKFLOWS: 'abc' }),
      'invalid configuration:\n  FLUI_MAX_CACHED_WORKFLOWS must be a whole number between 0 and 100000, not "abc"',
    );
    for (const bad of ['-1', '1.5', '1e3', '100001', ' ']) {
      if (bad.trim() === '') continue; // blank means unset
      assert.match(
        configError({ FLUI_MAX_CACHED_WORKFLOWS: bad }),
        new RegExp(`FLUI_MAX_CACHED_WORKFLOWS must be a whole number between 0 and 100000, not "${bad}"`),
      );
    }
    assert.match(
      configError({ TEMPORAL_CONNECT_TIMEOUT_MS: '5s' }, loadClientConfig),
      /TEMPORAL_CONNECT_TIMEOUT_MS must be a whole number between 100 and 120000, not "5s"/,
    );
    assert.doesNotMatch(configError({ GITHUB_WRITE_INTERVAL_MS: 'soon' }), /NaN|expected/);
    assert.equal(loadConfig({ FLUI_MAX_CACHED_WORKFLOWS: '0' }).worker.maxCachedWorkflows, 0);
    assert.equal(loadConfig({ FLUI_MAX_CACHED_WORKFLOWS: '' }).worker.maxCachedWorkflows, 250);
  });

  it('requires paired settings together', () => {
    assert.match(
      configError({ REGISTRY_USERNAME: 'u' }),
      /REGISTRY_USERNAME and REGISTRY_PASSWORD must be set together/,
    );
    assert.match(configError({ GITHUB_APP_ID: '1' }), /GITHUB_APP_ID needs GITHUB_APP_PRIVATE_KEY/);
    assert.match(
      configError({ GITHUB_APP_ID: '1', GITHUB_APP_PRIVATE_KEY_FILE: '/nonexistent/key.pem' }),
      /GITHUB_APP_PRIVATE_KEY_FILE cannot be read \(\/nonexistent\/key\.pem\): ENOENT/,
    );
  });

  it('prefers a GitHub App over a token and never echoes secrets in errors', () => {
    const config = loadConfig({
      GITHUB_TOKEN: 'ghp_secret',
      GITHUB_APP_ID: '42',
      GITHUB_APP_PRIVATE_KEY: 'PEM',
      GITHUB_APP_INSTALLATION_ID: '7',
    });
    assert.equal(config.github.auth?.kind, 'app');
    const message = configError({ GITHUB_TOKEN: 'ghp_secret', FLUI_PIPELINE_UPDATE_MODE: 'yolo' });
    assert.doesNotMatch(message, /ghp_secret/);
    assert.match(message, /FLUI_PIPELINE_UPDATE_MODE must be commit or pull-request, not "yolo"/);
  });
});

describe('client configuration', () => {
  it('reads only what a client needs: a bad worker-only variable does not concern it', () => {
    const workerOnly = {
      GITHUB_APP_ID: '1',
      GITHUB_APP_PRIVATE_KEY_FILE: '/nonexistent/key.pem',
      FLUI_MAX_CACHED_WORKFLOWS: 'abc',
      GITHUB_API_URL: 'not a url',
      REGISTRY_USERNAME: 'only-half',
    };
    const client = loadClientConfig({ ...workerOnly, TEMPORAL_ADDRESS: 'temporal.example:7233', KUBECONFIG: '/k' });
    assert.equal(client.temporal.address, 'temporal.example:7233');
    assert.equal(client.kubeconfig, '/k');
    assert.ok(!('github' in client) && !('worker' in client) && !('registry' in client));
    // The worker reads both parts, so it still refuses them.
    const message = configError({ ...workerOnly });
    for (const name of [
      'GITHUB_APP_PRIVATE_KEY_FILE',
      'FLUI_MAX_CACHED_WORKFLOWS',
      'GITHUB_API_URL',
      'REGISTRY_USERNAME',
    ])
      assert.match(message, new RegExp(`^  ${name} `, 'm'));
  });

  it('reads TLS, API key, profiles and gRPC headers as the Temporal CLI does', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'flui-config-'));
    const ca = join(dir, 'ca.pem');
    await writeFile(ca, 'CA PEM');
    const tls = loadClientConfig({
      TEMPORAL_ADDRESS: 'temporal.example:7233',
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: ca,
      TEMPORAL_TLS_SERVER_NAME: 'temporal.internal',
      TEMPORAL_TLS_CLIENT_CERT_DATA: 'CERT PEM',
      TEMPORAL_TLS_CLIENT_KEY_DATA: 'KEY PEM',
      TEMPORAL_GRPC_META_X_TENANT: 'acme',
    }).temporal;
    assert.ok(typeof tls.tls === 'object');
    assert.equal(tls.tls.serverNameOverride, 'temporal.internal');
    assert.equal(Buffer.from(tls.tls.serverRootCACertificate!).toString(), 'CA PEM');
    assert.equal(Buffer.from(tls.tls.clientCertPair!.crt).toString(), 'CERT PEM');
    assert.equal(Buffer.from(tls.tls.clientCertPair!.key).toString(), 'KEY PEM');
    assert.deepEqual(tls.metadata, { 'x-tenant': 'acme' });

    // An API key alone turns TLS on (Temporal Cloud).
    const cloud = loadClientConfig({ TEMPORAL_ADDRESS: 'ns.acct.tmprl.cloud:7233', TEMPORAL_API_KEY: 'key' }).temporal;
    assert.equal(cloud.tls, true);
    assert.equal(cloud.apiKey, 'key');

    // A profile of the Temporal CLI's config file; variables still win over it.
    const file = join(dir, 'temporal.toml');
    await writeFile(
      file,
      '[profile.default]\naddress = "a.example:7233"\n\n[profile.prod]\naddress = "prod.example:7233"\nnamespace = "deploys"\n',
    );
    const prod = loadClientConfig({ TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'prod' }).temporal;
    assert.equal(prod.address, 'prod.example:7233');
    assert.equal(prod.addressIsDefault, false);
    assert.equal(prod.namespace, 'deploys');
    assert.equal(loadClientConfig({ TEMPORAL_CONFIG_FILE: file }).temporal.address, 'a.example:7233');
    assert.equal(
      loadClientConfig({ TEMPORAL_CONFIG_FILE: file, TEMPORAL_ADDRESS: 'env.example:7233' }).temporal.address,
      'env.example:7233',
    );
    assert.match(
      configError({ TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'staging' }, loadClientConfig),
      /profile "staging" of .*temporal\.toml.*Profile 'staging' not found/,
    );
    assert.match(
      configError({ TEMPORAL_TLS_SERVER_CA_CERT_PATH: join(dir, 'missing.pem') }, loadClientConfig),
      /Temporal connection settings .*missing\.pem/,
    );
  });

  it('names the variables that replaced the old TLS ones', () => {
    const message = configError({ TEMPORAL_TLS_CERT: 'c', TEMPORAL_TLS_KEY: 'k' }, loadClientConfig);
    assert.match(message, /TEMPORAL_TLS_CERT is no longer read: set TEMPORAL_TLS_CLIENT_CERT_DATA/);
    assert.match(message, /TEMPORAL_TLS_KEY is no longer read: set TEMPORAL_TLS_CLIENT_KEY_DATA/);
  });
});
