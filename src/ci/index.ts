/**
 * Chooses the CI backend from the worker's configuration (FLUI_CI): GitHub Actions, GitLab CI or the self-hosted
 * builder, behind the same interface, without the workflow or the manifest changing.
 */
import type { Config } from '../config.ts';
import { ServiceError } from '../errors.ts';
import type { CiBackend } from './backend.ts';
import { GitHubActionsBackend } from './github/actions.ts';
import { GitLabBackend } from './gitlab/backend.ts';
import { resolveCommit } from '../build/index.ts';
import { SelfHostedBackend, type SelfHostedOptions } from './self-hosted/backend.ts';
import { builderSettings } from './self-hosted/settings.ts';

export interface CiBackendOptions {
  /** The Temporal client of the calling activity (the self-hosted backend's builds are Temporal workflows). */
  temporalClient?: SelfHostedOptions['client'];
}

function build(config: Config, options: CiBackendOptions): CiBackend {
  switch (config.ci.backend) {
    case 'github-actions':
      return new GitHubActionsBackend(config.github);
    case 'gitlab':
      return new GitLabBackend(config.gitlab, {
        updateMode: config.github.updateMode,
        webhook: Boolean(config.webhook && (config.gitlab.webhookSecret || config.gitlab.webhookSigningToken)),
      });
    case 'self-hosted': {
      const settings = builderSettings(config);
      return new SelfHostedBackend(config, {
        client: options.temporalClient,
        resolveCommit: (source) => resolveCommit(source, settings),
      });
    }
    default:
      throw new ServiceError({
        service: 'CI',
        kind: 'misconfigured',
        message: `the CI backend "${config.ci.backend}" is not available in this build`,
        hint: 'set FLUI_CI to github, gitlab or self-hosted',
      });
  }
}

export function createCiBackend(config: Config, options: CiBackendOptions = {}): CiBackend {
  let backend: CiBackend | undefined;
  // Built on first use, so a worker without CI credentials still serves CatalogApp deploys.
  const get = () => (backend ??= build(config, options));
  return {
    name: config.ci.backend,
    // async: a missing credential rejects the call like any other failure instead of throwing synchronously.
    ensurePipeline: async (app, settings) => get().ensurePipeline(app, settings),
    ensureCredential: async (app, credential) => get().ensureCredential(app, credential),
    findRun: async (app, key) => get().findRun(app, key),
    trigger: async (app, key) => get().trigger(app, key),
    status: async (app, run, etag) => get().status(app, run, etag),
    cancel: async (app, run) => get().cancel(app, run),
    logsUrl: async (app, run) => get().logsUrl(app, run),
    readLogs: async (app, run, cursor) => get().readLogs(app, run, cursor),
  };
}
