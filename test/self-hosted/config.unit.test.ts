/** The self-hosted build settings (FLUI_BUILD_*, FLUI_BASE_REGISTRY, FLUI_GIT_URL_TEMPLATE, FLUI_PULL_SECRET_REGISTRIES). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { builderSettings } from '../../src/ci/self-hosted/settings.ts';
import { gitUrl } from '../../src/ci/self-hosted/backend.ts';
import { ConfigError, loadConfig } from '../../src/config.ts';

const base = { FLUI_DATA_DIR: '/var/lib/flui' };

describe('self-hosted build configuration', () => {
  it('has defaults that need nothing set', () => {
    const c = loadConfig(base);
    assert.equal(c.ci.backend, 'github-actions');
    assert.deepEqual(
      { ...c.build },
      {
        taskQueue: 'flui-build',
        workDir: '/var/lib/flui/build/work',
        cacheDir: '/var/lib/flui/build/cache',
        cacheBudgetBytes: 10_240 * 1024 * 1024,
        network: 'none',
        timeoutMinutes: 60,
        baseRegistry: undefined,
        source: 'github',
        gitUrlTemplate: undefined,
        gitAuth: {},
        concurrency: 1,
        pullSecretRegistries: [],
      },
    );
  });

  it('reads every setting, and hands the engine only what it needs', () => {
    const c = loadConfig({
      ...base,
      FLUI_CI: 'self-hosted',
      FLUI_BUILD_TASK_QUEUE: 'builds-eu',
      FLUI_BUILD_CACHE_MB: '512',
      FLUI_BUILD_NETWORK: 'host',
      FLUI_BUILD_TIMEOUT_MINUTES: '15',
      FLUI_BASE_REGISTRY: 'mirror.internal:5000',
      FLUI_BUILD_SOURCE: 'git',
      FLUI_GIT_URL_TEMPLATE: 'http://git.internal/{repository}.git',
      FLUI_BUILD_CONCURRENCY: '3',
      FLUI_BUILD_USER_NAMESPACE: 'false',
      FLUI_PULL_SECRET_REGISTRIES: 'Registry.Internal:5000, other.internal',
    });
    assert.equal(c.ci.backend, 'self-hosted');
    assert.equal(c.build.taskQueue, 'builds-eu');
    assert.equal(c.build.timeoutMinutes, 15);
    assert.deepEqual(c.build.pullSecretRegistries, ['registry.internal:5000', 'other.internal']);
    assert.equal(gitUrl(c.build.gitUrlTemplate!, 'acme/hello'), 'http://git.internal/acme/hello.git');
    const settings = builderSettings(c);
    assert.equal(settings.cacheBudgetBytes, 512 * 1024 * 1024);
    assert.equal(settings.network, 'host');
    assert.equal(settings.baseRegistry, 'mirror.internal:5000');
    assert.equal(settings.userNamespace, false);
    assert.equal(settings.github, undefined, 'no GitHub credential configured, none handed over');
  });

  it('names every bad variable in one error', () => {
    assert.throws(
      () =>
        loadConfig({
          ...base,
          FLUI_BUILD_SOURCE: 'git',
          FLUI_BUILD_NETWORK: 'bridge',
          FLUI_BUILD_CACHE_MB: '0',
          FLUI_BASE_REGISTRY: 'https://mirror',
          FLUI_BUILD_TIMEOUT_MINUTES: '9999',
        }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        for (const name of [
          'FLUI_BUILD_SOURCE=git needs FLUI_GIT_URL_TEMPLATE',
          'FLUI_BUILD_NETWORK must be none or host',
          'FLUI_BUILD_CACHE_MB must be',
          'FLUI_BASE_REGISTRY must be',
          'FLUI_BUILD_TIMEOUT_MINUTES must be',
        ]) {
          assert.ok(err.message.includes(name), `${name} in ${err.message}`);
        }
        return true;
      },
    );
    assert.throws(
      () => loadConfig({ ...base, FLUI_GIT_URL_TEMPLATE: 'http://git.internal/repo.git' }),
      /must be an http\(s\) or git:\/\/ URL containing \{repository\}/,
    );
  });
});
