/**
 * Chooses the CI backend from the worker's configuration. GitHub Actions today; GitLab CI and a self-hosted builder
 * are added here, behind the same interface, without the workflow or the manifest changing.
 */
import type { Config } from '../config.ts';
import type { CiBackend } from './backend.ts';
import { GitHubActionsBackend } from './github/actions.ts';

export function createCiBackend(config: Config): CiBackend {
  let backend: CiBackend | undefined;
  // Built on first use, so a worker without GitHub credentials still serves CatalogApp deploys.
  const get = () => (backend ??= new GitHubActionsBackend(config.github));
  return {
    name: 'github-actions',
    // async: a missing credential rejects the call like any other failure instead of throwing synchronously.
    ensurePipeline: async (app, settings) => get().ensurePipeline(app, settings),
    ensureCredential: async (app, credential) => get().ensureCredential(app, credential),
    findRun: async (app, key) => get().findRun(app, key),
    trigger: async (app, key) => get().trigger(app, key),
    status: async (app, run, etag) => get().status(app, run, etag),
    cancel: async (app, run) => get().cancel(app, run),
    logsUrl: async (app, run) => get().logsUrl(app, run),
  };
}
