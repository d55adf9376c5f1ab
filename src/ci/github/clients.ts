/**
 * Which GitHub client sends a request about a repository, and with which credentials.
 *
 * - A token (GITHUB_TOKEN): one client for every repository; its writes are paced together.
 * - A GitHub App: a platform's app is installed by many accounts, each installation with its own rate limit. So there
 *   is one client per installation, each with its own write pacing and rate-limit retries (see `clientOptions`), and
 *   one tenant's busy hour never slows another's deploys. The installation of a repository is the one
 *   GITHUB_APP_INSTALLATION_ID pins, or else the one GitHub names (`GET /repos/{owner}/{repo}/installation`, asked
 *   with the app's JWT) and remembered for {@link INSTALLATION_TTL_MS}. Every request carries an installation token
 *   narrowed to the one repository it is about and to the permissions the backend asked for, remembered until
 *   {@link TOKEN_RENEWAL_MARGIN_MS} before it expires: in steady state neither costs a request, and a token that leaks
 *   or a bug that names the wrong repository reaches nothing beyond that repository.
 *
 * A repository's installation may change (the repository moved to another account, the app was removed from it), so
 * a token GitHub refuses sends the repository to a fresh lookup once, and a remembered token GitHub no longer takes
 * (401) is replaced once. Failures to find the installation or to get a token are service errors (they carry no
 * request status, so a backend reading "404" as "absent" never mistakes them for an answer about the repository).
 */
import { createAppAuth } from '@octokit/auth-app';
import type { Config, GitHubAuth } from '../../config.ts';
import { ServiceError } from '../../errors.ts';
import {
  authHint,
  clientOptions,
  createGitHubClient,
  FluiOctokit,
  githubError,
  hasStatus,
  isRateLimited,
  isRequestError,
  noCredentials,
  type GitHubClient,
} from './octokit.ts';

/** What an installation token may do, in GitHub's permission names (metadata: read comes with every token). */
export type TokenPermissions = Partial<
  Record<'actions' | 'contents' | 'secrets' | 'variables' | 'pull_requests', 'read' | 'write'>
>;

/** Sends each request with the client (and credentials) that serve the repository its `owner`/`repo` name. */
export interface GitHubClients {
  request: GitHubClient['request'];
}

/** How long the installation GitHub named for a repository is trusted before it is asked again. */
export const INSTALLATION_TTL_MS = 3600_000;
/** A token is renewed this long before it expires (GitHub's last an hour), so no request carries a dying one. */
export const TOKEN_RENEWAL_MARGIN_MS = 5 * 60_000;
/** Installations with a client kept (least recently used dropped first): each holds only queues and no secret. */
const MAX_INSTALLATION_CLIENTS = 500;
/** Repositories whose installation and token are remembered. */
const MAX_REMEMBERED = 10_000;

/** The clients for the worker's credentials; throws a `misconfigured` service error when it has none. */
export function createGitHubClients(github: Config['github'], permissions: TokenPermissions): GitHubClients {
  if (!github.auth) throw noCredentials();
  if (github.auth.kind === 'token') return singleClient(createGitHubClient(github));
  return new AppClients(github, github.auth, permissions);
}

/** Every request through one client: a token's, or one a test built. */
export function singleClient(client: GitHubClient): GitHubClients {
  return { request: client.request };
}

/** Adds `key` to a map used as a bounded cache, dropping the oldest entries beyond `max`. */
function remember<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  map.delete(key);
  map.set(key, value);
  while (map.size > max) map.delete(map.keys().next().value!);
}

/** A refusal of a token (not a rate limit, not an outage): the installation may not cover the repository any more. */
function refusedToken(err: unknown): boolean {
  return isRequestError(err) && [401, 403, 404, 422].includes(err.status) && !isRateLimited(err);
}

/** The installation GitHub named for a repository: asked until `until`; `known` once GitHub answered. */
interface InstallationEntry {
  id: Promise<number>;
  until: number;
  known?: number;
}

interface Credentials {
  installation: number;
  token: string;
}

class AppClients implements GitHubClients {
  readonly request: GitHubClient['request'];
  readonly #github: Config['github'];
  /** Authenticates as the app itself (its JWT): installation lookups and token requests. */
  readonly #app: GitHubClient;
  readonly #pinned: number | undefined;
  readonly #permissions: TokenPermissions;
  readonly #hint: string;
  /** By `owner/repo` (lower case). */
  readonly #installations = new Map<string, InstallationEntry>();
  readonly #clients = new Map<number, GitHubClient>();
  /** By `installation/repo` (lower case): the token and when to renew it. */
  readonly #tokens = new Map<string, Promise<{ token: string; renewAt: number }>>();

  constructor(github: Config['github'], auth: Extract<GitHubAuth, { kind: 'app' }>, permissions: TokenPermissions) {
    this.#github = github;
    this.#permissions = permissions;
    this.#hint = authHint(github);
    if (auth.installationId !== undefined) {
      const id = Number(auth.installationId);
      if (!Number.isSafeInteger(id) || id <= 0) {
        throw new ServiceError({
          service: 'GitHub',
          kind: 'misconfigured',
          message: `GITHUB_APP_INSTALLATION_ID must be the installation's number, not "${auth.installationId}"`,
          hint: 'or leave it unset, and Flui finds the installation of each repository',
        });
      }
      this.#pinned = id;
    }
    this.#app = new FluiOctokit({
      ...clientOptions(github, `app-${auth.appId}`),
      authStrategy: createAppAuth,
      auth: { appId: auth.appId, privateKey: auth.privateKey },
    });
    this.request = ((route: string, params: Record<string, unknown> = {}) =>
      this.#send(route, params)) as unknown as GitHubClient['request'];
  }

  async #send(route: string, params: Record<string, unknown>): Promise<unknown> {
    const { owner, repo } = params;
    if (typeof owner !== 'string' || typeof repo !== 'string') {
      throw new Error(`with GitHub App credentials every request names its repository; ${route} does not`);
    }
    const send = ({ installation, token }: Credentials) =>
      this.#client(installation).request(route, {
        ...params,
        headers: { ...(params.headers as Record<string, string> | undefined), authorization: `token ${token}` },
      });
    const credentials = await this.#credentials(owner, repo);
    try {
      return await send(credentials);
    } catch (err) {
      if (!hasStatus(err, 401)) throw err;
      // GitHub no longer takes the remembered token (revoked; the app reinstalled): look again, once.
      this.#forget(owner, repo, credentials.installation);
      return send(await this.#credentials(owner, repo, credentials.token));
    }
  }

  /** The repository's installation and a token for it; `stale`: a token GitHub refused, not to be used again. */
  async #credentials(owner: string, repo: string, stale?: string): Promise<Credentials> {
    let installation = await this.#installationOf(owner, repo);
    const doing = () => `getting a token of GitHub App installation ${installation} for ${owner}/${repo}`;
    try {
      try {
        return { installation, token: await this.#token(installation, repo, stale) };
      } catch (err) {
        if (this.#pinned !== undefined || !refusedToken(err)) throw err;
        // The repository may have left that installation since it was looked up: look again, once.
        this.#forget(owner, repo, installation);
        const again = await this.#installationOf(owner, repo);
        if (again === installation) throw err;
        installation = again;
        return { installation, token: await this.#token(installation, repo, stale) };
      }
    } catch (err) {
      throw githubError(err, doing(), this.#hint);
    }
  }

  /** Forgets that `installation` serves the repository, unless a concurrent call has already looked it up again. */
  #forget(owner: string, repo: string, installation: number): void {
    const key = `${owner}/${repo}`.toLowerCase();
    if (this.#installations.get(key)?.known === installation) this.#installations.delete(key);
  }

  /** Key: `owner/repo`; asked of GitHub at most once per {@link INSTALLATION_TTL_MS} (at once for concurrent calls). */
  #installationOf(owner: string, repo: string): Promise<number> {
    if (this.#pinned !== undefined) return Promise.resolve(this.#pinned);
    const key = `${owner}/${repo}`.toLowerCase();
    const known = this.#installations.get(key);
    if (known && known.until > Date.now()) return known.id;
    const entry: Partial<InstallationEntry> & { until: number } = { until: Date.now() + INSTALLATION_TTL_MS };
    const id = this.#app.request('GET /repos/{owner}/{repo}/installation', { owner, repo }).then(
      (res) => (entry.known = res.data.id),
      (err: unknown) => {
        if (!hasStatus(err, 404)) {
          throw githubError(err, `finding the GitHub App's installation for ${owner}/${repo}`, this.#hint);
        }
        throw new ServiceError({
          service: 'GitHub',
          kind: 'not-found',
          message: `the GitHub App is not installed on ${owner}/${repo}, or the repository does not exist`,
          hint: "install the app on the repository's account (or add the repository to its installation), and check spec.source.repository",
        });
      },
    );
    entry.id = id;
    remember(this.#installations, key, entry as InstallationEntry, MAX_REMEMBERED);
    id.catch(() => {
      if (this.#installations.get(key)?.id === id) this.#installations.delete(key); // failures are not remembered
    });
    return id;
  }

  /**
   * A token of `installation` for the one repository `repo` (a name: an installation is on one account) with the
   * backend's permissions; never `stale`. Errors are Octokit's, for the caller to tell a refusal from an outage.
   */
  async #token(installation: number, repo: string, stale?: string): Promise<string> {
    const key = `${installation}/${repo.toLowerCase()}`;
    const known = this.#tokens.get(key);
    const current = known && (await known.catch(() => undefined));
    if (current && current.token !== stale && current.renewAt > Date.now()) return current.token;
    // Renewed by a concurrent call meanwhile: that one will do.
    if (this.#tokens.get(key) !== known) return this.#token(installation, repo, stale);
    const pending = this.#app
      .request('POST /app/installations/{installation_id}/access_tokens', {
        installation_id: installation,
        repositories: [repo],
        permissions: this.#permissions,
      })
      .then((res) => ({ token: res.data.token, renewAt: Date.parse(res.data.expires_at) - TOKEN_RENEWAL_MARGIN_MS }));
    remember(this.#tokens, key, pending, MAX_REMEMBERED);
    pending.catch(() => {
      if (this.#tokens.get(key) === pending) this.#tokens.delete(key);
    });
    return (await pending).token;
  }

  /** The installation's own client: its own write pacing and rate-limit retries. */
  #client(installation: number): GitHubClient {
    let client = this.#clients.get(installation);
    if (!client) client = new FluiOctokit(clientOptions(this.#github, `installation-${installation}`));
    remember(this.#clients, installation, client, MAX_INSTALLATION_CLIENTS);
    return client;
  }
}
