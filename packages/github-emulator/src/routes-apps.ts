/**
 * GitHub App operations (authenticated with the app's JWT): an installation's access token, the installation of a
 * repository; and GET /rate_limit, which costs nothing.
 */
import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { Emulation } from './context.ts';
import { error, invalid, parseBody } from './http.ts';
import { user } from './shapes.ts';
import {
  covers,
  PERMISSION_AREAS,
  type Installation,
  type Permission,
  type PermissionArea,
  type Permissions,
} from './store.ts';

/** What an installation may do when the app's settings say nothing narrower. */
const APP_PERMISSIONS: Permissions = {
  actions: 'write',
  contents: 'write',
  secrets: 'write',
  variables: 'write',
  pull_requests: 'write',
  metadata: 'read',
};

/**
 * An installation token's request: a subset of the installation's repositories (by name) and of its permissions. A
 * token asked for with `permissions` gets those and nothing else, as on GitHub.
 */
const accessTokenBody = z.object({
  repositories: z.array(z.string(), { error: 'repositories must be an array of names' }).optional(),
  permissions: z.record(z.string(), z.enum(['read', 'write'])).optional(),
});

/** A stable id for an account name (the emulator keeps no users): what `account.id` and `target_id` report. */
function accountId(login: string): number {
  return 1 + (parseInt(createHash('sha1').update(login.toLowerCase()).digest('hex').slice(0, 6), 16) % 9_000_000);
}

/** What a token may be given: the app's default, overridden by what the account granted; never `none`. */
function granted(installation: Installation): Permissions {
  const all: Permissions = { ...APP_PERMISSIONS, ...installation.permissions };
  return Object.fromEntries(Object.entries(all).filter(([, level]) => level !== 'none'));
}

/** Whether `have` (read or write, or absent) includes `want`. */
const includes = (have: Permission | undefined, want: Permission) =>
  have === 'write' || (have === 'read' && want === 'read');

export function registerAppRoutes(env: Emulation, rateOverview: (token: string) => unknown): void {
  const { store, router } = env;

  const installationBody = (appId: string, installation: Installation) => {
    const login = installation.account ?? 'acme';
    return {
      id: installation.id,
      account: user(env.api(), login, accountId(login)),
      repository_selection: installation.repos ? 'selected' : 'all',
      access_tokens_url: `${env.api()}/app/installations/${installation.id}/access_tokens`,
      repositories_url: `${env.api()}/installation/repositories`,
      html_url: `${env.api()}/_html/settings/installations/${installation.id}`,
      app_id: Number(appId),
      app_slug: `flui-app-${appId}`,
      target_id: accountId(login),
      target_type: 'Organization',
      permissions: granted(installation),
      events: ['workflow_run'],
      created_at: '2025-01-01T00:00:00Z',
      updated_at: '2025-01-01T00:00:00Z',
      single_file_name: null,
      suspended_by: null,
      suspended_at: null,
    };
  };

  router.add(
    'POST',
    '/app/installations/{installation_id}/access_tokens',
    ({ appId, params, body }) => {
      const installation = store.state.apps[appId!]!.installations.find((i) => String(i.id) === params.installation_id);
      if (!installation) return error(404, 'Not Found');
      const input = parseBody(accessTokenBody, body);
      const owner = installation.account ?? installation.repos?.[0]?.split('/')[0];
      let repos = installation.repos;
      if (input.repositories !== undefined) {
        // Names, not `owner/name`: an installation is on one account, and its tokens only reach that account.
        const wanted = input.repositories.map((name) => name.toLowerCase());
        const known = Object.values(store.state.repos).filter(
          (r) => wanted.includes(r.name.toLowerCase()) && (!owner || r.owner.toLowerCase() === owner.toLowerCase()),
        );
        const allowed = known.filter((r) => covers(installation, `${r.owner}/${r.name}`));
        if (allowed.length !== wanted.length) {
          return invalid(
            'There is at least one repository that does not exist or is not accessible to the parent installation.',
          );
        }
        repos = allowed.map((r) => `${r.owner}/${r.name}`);
      }
      const grant = granted(installation);
      let permissions = grant;
      if (input.permissions !== undefined) {
        const asked = Object.entries(input.permissions);
        if (asked.some(([area, level]) => !includes(grant[area as PermissionArea], level))) {
          return invalid('The permissions requested are not granted to this installation.');
        }
        // Only what was asked for (and metadata, which every installation token can read).
        permissions = { metadata: 'read', ...(input.permissions as Permissions) };
      }
      const token = `ghs_${randomBytes(18).toString('hex')}`;
      const lifetime = store.state.apps[appId!]!.tokenExpiresInMs ?? 3600_000;
      const expiresAt = new Date(Date.now() + lifetime).toISOString().replace(/\.\d{3}Z$/, 'Z');
      store.state.tokens[token] = {
        kind: 'installation',
        installationId: installation.id,
        owner: installation.account,
        expiresAt,
        repos,
        // Every area spelled out: an area the token was not given is `none`, not the fine-grained default.
        permissions: Object.fromEntries(PERMISSION_AREAS.map((area) => [area, permissions[area] ?? 'none'])),
      };
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
      const full = `${params.owner}/${params.repo}`;
      const installation = store.state.apps[appId!]!.installations.find((i) => covers(i, full));
      if (!store.repo(full) || !installation) return error(404, 'Not Found');
      return { status: 200, body: installationBody(appId!, installation) };
    },
    { auth: 'jwt' },
  );

  router.add('GET', '/rate_limit', ({ token }) => ({ status: 200, body: rateOverview(token!) }), { auth: 'none' });
}
