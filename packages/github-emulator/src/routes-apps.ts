/**
 * GitHub App operations (authenticated with the app's JWT): an installation's access token, the installation of a
 * repository; and GET /rate_limit, which costs nothing.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { Emulation } from './context.ts';
import { error, invalid, parseBody } from './http.ts';
import { user } from './shapes.ts';
import type { App, Permissions } from './store.ts';

/** What an installation may do when the app's settings say nothing narrower. */
const APP_PERMISSIONS: Permissions = {
  actions: 'write',
  contents: 'write',
  secrets: 'write',
  variables: 'write',
  pull_requests: 'write',
  metadata: 'read',
};

/** An installation token's request: a subset of the installation's repositories (by name) and permissions. */
const accessTokenBody = z.object({
  repositories: z.array(z.string(), { error: 'repositories must be an array of names' }).optional(),
  permissions: z.record(z.string(), z.enum(['read', 'write'])).optional(),
});

export function registerAppRoutes(env: Emulation, rateOverview: (token: string) => unknown): void {
  const { store, router } = env;

  const installation = (appId: string, app: App) => ({
    id: app.installationId,
    account: user(env.api(), 'acme', 2),
    repository_selection: app.repos ? 'selected' : 'all',
    access_tokens_url: `${env.api()}/app/installations/${app.installationId}/access_tokens`,
    repositories_url: `${env.api()}/installation/repositories`,
    html_url: `${env.api()}/_html/settings/installations/${app.installationId}`,
    app_id: Number(appId),
    app_slug: `flui-app-${appId}`,
    target_id: 2,
    target_type: 'Organization',
    permissions: { ...APP_PERMISSIONS, ...app.permissions },
    events: ['workflow_run'],
    created_at: '2025-01-01T00:00:00Z',
    updated_at: '2025-01-01T00:00:00Z',
    single_file_name: null,
    suspended_by: null,
    suspended_at: null,
  });

  router.add(
    'POST',
    '/app/installations/{installation_id}/access_tokens',
    ({ appId, params, body }) => {
      const app = store.state.apps[appId!]!;
      if (String(app.installationId) !== params.installation_id) return error(404, 'Not Found');
      const input = parseBody(accessTokenBody, body);
      let repos = app.repos;
      if (input.repositories !== undefined) {
        const owner = app.repos?.[0]?.split('/')[0];
        const wanted = input.repositories.map((name) => name.toLowerCase());
        const known = Object.values(store.state.repos).filter(
          (r) => wanted.includes(r.name.toLowerCase()) && (!owner || r.owner === owner),
        );
        const allowed = known.filter((r) => !app.repos || app.repos.includes(`${r.owner}/${r.name}`));
        if (allowed.length !== wanted.length) {
          return invalid(
            'There is at least one repository that does not exist or is not accessible to the parent installation.',
          );
        }
        repos = allowed.map((r) => `${r.owner}/${r.name}`);
      }
      const permissions: Permissions = { ...APP_PERMISSIONS, ...app.permissions, ...input.permissions };
      const token = `ghs_${randomBytes(18).toString('hex')}`;
      const expiresAt = new Date(Date.now() + 3600_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
      store.state.tokens[token] = { kind: 'installation', expiresAt, repos, permissions };
      store.save();
      return {
        status: 201,
        body: { token, expires_at: expiresAt, permissions, repository_selection: repos ? 'selected' : 'all' },
      };
    },
    { auth: 'jwt' },
  );

  router.add(
    'GET',
    '/repos/{owner}/{repo}/installation',
    ({ appId, params }) => {
      const app = store.state.apps[appId!]!;
      const full = `${params.owner}/${params.repo}`;
      if (!store.repo(full) || (app.repos && !app.repos.some((r) => r.toLowerCase() === full.toLowerCase()))) {
        return error(404, 'Not Found');
      }
      return { status: 200, body: installation(appId!, app) };
    },
    { auth: 'jwt' },
  );

  router.add('GET', '/rate_limit', ({ token }) => ({ status: 200, body: rateOverview(token!) }), { auth: 'none' });
}
