/**
 * GitHub Environments of a repository, as far as a build needs them: an environment itself (get, create or update)
 * and its Actions secrets, sealed with the environment's own libsodium key. A job that names an environment reads its
 * secrets before the repository's (src/runner.ts), and GitHub creates an environment a job names on its first run.
 */
import { z } from 'zod';
import type { Emulation } from './context.ts';
import { error, parseBody, type Ctx, type Reply } from './http.ts';
import { registerSecretRoutes } from './routes-secrets.ts';
import { now, type Environment, type Repo } from './store.ts';

const bodies = {
  // Protection rules are not emulated: accepted, not enforced.
  putEnvironment: z.object({}).passthrough(),
};

function shape(env: Emulation, repo: Repo, e: Environment) {
  const url = `${env.api()}/repos/${repo.owner}/${repo.name}/environments/${encodeURIComponent(e.name)}`;
  return {
    id: e.id,
    node_id: Buffer.from(`Environment:${e.id}`).toString('base64'),
    name: e.name,
    url,
    html_url: `${env.api()}/_html/${repo.owner}/${repo.name}/deployments/activity_log?environments_filter=${encodeURIComponent(e.name)}`,
    created_at: e.createdAt,
    updated_at: e.updatedAt,
    protection_rules: [],
    deployment_branch_policy: null,
  };
}

export function registerEnvironmentRoutes(env: Emulation): void {
  const { store, router } = env;
  /** The environment the path names, or GitHub's 404. */
  const named = (ctx: Ctx): Environment | Reply =>
    store.environment(ctx.repo!, ctx.params.environment_name!, false) ?? error(404, 'Not Found');
  const isReply = (x: Environment | Reply): x is Reply => 'status' in x && !('keyPair' in x);

  router.add('GET', '/repos/{owner}/{repo}/environments/{environment_name}', (ctx) => {
    const e = named(ctx);
    return isReply(e) ? e : { status: 200, body: shape(env, ctx.repo!, e) };
  });

  // GitHub asks for administration rights here; the emulator's tokens have no such area, so any token may.
  router.add('PUT', '/repos/{owner}/{repo}/environments/{environment_name}', (ctx) => {
    parseBody(bodies.putEnvironment, ctx.body);
    const e = store.environment(ctx.repo!, ctx.params.environment_name!)!;
    e.updatedAt = now();
    store.save();
    return { status: 200, body: shape(env, ctx.repo!, e) };
  });

  registerSecretRoutes(env, '/repos/{owner}/{repo}/environments/{environment_name}', named, 'environment');
}
