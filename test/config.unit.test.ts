import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../src/config.ts';

function configError(env: NodeJS.ProcessEnv): string {
  try {
    loadConfig(env);
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
    assert.equal(config.github.apiUrl, 'https://api.github.com');
    assert.equal(config.github.auth, undefined);
    assert.deepEqual(config.registry.insecureHosts, ['127.0.0.1', 'localhost']);
  });

  it('names every bad variable', () => {
    const message = configError({ TEMPORAL_ADDRESS: 'http://nope', FLUI_WEBHOOK_PORT: '70000', GITHUB_API_URL: 'x' });
    assert.match(message, /TEMPORAL_ADDRESS: must be host:port/);
    assert.match(message, /FLUI_WEBHOOK_PORT: /);
    assert.match(message, /GITHUB_API_URL: /);
  });

  it('requires paired settings together', () => {
    assert.match(
      configError({ REGISTRY_USERNAME: 'u' }),
      /REGISTRY_USERNAME and REGISTRY_PASSWORD must be set together/,
    );
    assert.match(configError({ TEMPORAL_TLS_CERT: 'c' }), /TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY/);
    assert.match(configError({ GITHUB_APP_ID: '1' }), /GITHUB_APP_ID needs GITHUB_APP_PRIVATE_KEY/);
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
    assert.match(message, /FLUI_PIPELINE_UPDATE_MODE/);
  });
});
