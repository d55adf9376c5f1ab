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
    ensurePipeline: (app) => get().ensurePipeline(app),
    ensureCredential: (app, credential) => get().ensureCredential(app, credential),
    findRun: (app, key) => get().findRun(app, key),
    trigger: (app, key) => get().trigger(app, key),
    status: (app, run, etag) => get().status(app, run, etag),
    cancel: (app, run) => get().cancel(app, run),
    logsUrl: (app, run) => get().logsUrl(app, run),
  };
}
