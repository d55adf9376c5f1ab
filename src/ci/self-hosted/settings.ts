/**
 * The build engine's settings (src/build/) from the installation's configuration: the builder's directories, cache
 * budget, network policy and base registry (FLUI_BUILD_*), and the credentials it may use, each for its own host
 * (registry auths; GitHub for sources fetched through its API).
 */
import { defaultUserNamespace, type BuilderSettings } from '../../build/index.ts';
import type { Config } from '../../config.ts';

export function builderSettings(config: Pick<Config, 'build' | 'registry' | 'github'>): BuilderSettings {
  const { build, registry, github } = config;
  return {
    workDir: build.workDir,
    cacheDir: build.cacheDir,
    cacheBudgetBytes: build.cacheBudgetBytes,
    network: build.network,
    ...(build.baseRegistry ? { baseRegistry: build.baseRegistry } : {}),
    registryAuths: registry.auths,
    insecureHosts: registry.insecureHosts,
    ...(github.auth ? { github: { apiUrl: github.apiUrl, auth: github.auth } } : {}),
    gitAuth: build.gitAuth,
    userNamespace: build.userNamespace ?? defaultUserNamespace(),
  };
}
