/**
 * GitHub Actions as Flui's CI backend. Every method is idempotent; the key that makes it so is on each method.
 *
 * Requests are spent carefully: every read that can be repeated is a conditional request against the last ETag this
 * worker saw (a 304 costs no rate limit), and whatever this worker writes it reads back once, so that the next check
 * of it is a 304 too. A steady-state deploy (file current, credential unchanged) therefore spends four rate-limited
 * requests whatever the build length, from the deploy right after the first on: the dispatch and one status read per
 * state the run goes through (queued, in progress, completed). Measured against the emulator, polling to completion:
 * 15 for an app's first deploy, 4 from the second on, 7 for the first deploy after a worker restart (no ETags yet: one
 * full read each of the file, the fingerprint variable and the list of secrets). That is with a static credential;
 * with a token minted per deploy, the token's write adds one (4 to 5 in steady state), and with the job's token or
 * OIDC nothing is stored at all. The ETags only save requests: a 304 means GitHub's answer is the one remembered, and
 * every decision is made on GitHub's answer.
 *
 * Secrets are per app (`pushSecretNames`), in the configured GitHub Environment when there is one
 * (FLUI_GITHUB_ENVIRONMENT), so two apps of one repository never overwrite each other's credential, and only jobs
 * running in that environment, under its protection rules, can read it.
 *
 * Pull-request mode (`FLUI_PIPELINE_UPDATE_MODE=pull-request`): when the pipeline on the app's branch differs from
 * the manifest, Flui commits it to `flui/pipeline-<namespace>.<name>-<blob sha>` (a fresh branch from the app's
 * branch per file content, so a branch left over from a squash-merged proposal never drags old changes along),
 * opens (or reuses) the pull request of that branch, and reports it (`pullRequestUrl`) instead of a commit: the
 * deploy then stops until it is merged (a workflow that is not on the branch cannot be dispatched, and running the
 * old one would build with a stale definition). Merge it, then `flui retry`.
 *
 * Errors are service errors (src/errors.ts), made from GitHub's answers by `githubError`; no Temporal here.
 */
import { createHash, scrypt } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import sodium from 'libsodium-wrappers';
import type {
  LogChunk,
  CiBackend,
  CredentialResult,
  PipelineResult,
  PipelineSettings,
  NoStoredCredential,
  RegistryCredential,
  RegistryToken,
  RunState,
  RunStatusResponse,
} from '../backend.ts';
import type { Config } from '../../config.ts';
import type { Application } from '../../manifest/schema.ts';
import { ServiceError } from '../../errors.ts';
import { ciImageTag, ciRunName, type CiRunRef, type CiRunResult } from '../../workflows/contract.ts';
import { createGitHubClients, singleClient, type GitHubClients, type TokenPermissions } from './clients.ts';
import { authHint, githubError, hasStatus, isRequestError, type GitHubClient } from './octokit.ts';
import {
  appKey,
  DISPATCH_INPUTS,
  pipelineFileName,
  pipelinePath,
  pushSecretNames,
  renderPipelineFile,
} from './pipeline-file.ts';
import { MAX_JOBS, nextChunk, parseCursor, type JobSummary } from './job-logs.ts';

/** Stale-`sha` conflicts re-read and retried this many times before giving the attempt back to Temporal. */
const MAX_WRITE_CONFLICTS = 3;
/** `findRun` looks through this many pages of 100 runs; a run Flui dispatched is minutes old, so on page 1. */
const MAX_RUN_PAGES = 3;
/** `findRun` only considers runs created this recently (rounded to a day so the conditional request stays cached). */
const RUN_LOOKBACK_DAYS = 3;
/** After a dispatch answered 204 (no run details), how long to wait for the run to be listed. */
const RUN_VISIBLE_WAIT = { attempts: 10, intervalMs: 1000 };
/** A job's log download (from GitHub's signed link) gives up after this long; the activity's retry tries again. */
const LOG_DOWNLOAD_TIMEOUT_MS = 30_000;
/** Conditional-request cache entries kept per backend (a few per app). */
const MAX_CACHED = 2000;
/** Secrets per page of the list `ensureCredential` checks (GitHub's maximum). */
const SECRETS_PER_PAGE = 100;
/**
 * What Flui stored before secrets were per app: one long-lived password in every app repository, readable by every
 * workflow of it. Removed when seen.
 */
const LEGACY_SECRETS = ['FLUI_REGISTRY_USERNAME', 'FLUI_REGISTRY_PASSWORD'];

const scryptAsync = promisify(scrypt) as (
  password: string,
  salt: string,
  keylen: number,
  opts: object,
) => Promise<Buffer>;

/** Git's blob id of `content`: what the contents API reports as `sha`. */
export function gitBlobSha(content: string): string {
  const body = Buffer.from(content, 'utf8');
  return createHash('sha1').update(`blob ${body.length}\0`).update(body).digest('hex');
}

/** Fingerprints computed in this process, by a hash of the credential they were computed from. */
const fingerprints = new Map<string, Promise<string>>();

/**
 * Fingerprint of the credential, stored in a repository variable that anyone who can read the repository sees.
 * So it is a salted, deliberately slow hash (scrypt, salt = registry and username): it tells whether the stored
 * credential is the current one without making a weak password cheap to guess.
 */
export async function credentialFingerprint(c: RegistryCredential): Promise<string> {
  // The worker's credential is the same for every deploy: hash it once per process, not once per deploy (~40 ms).
  const memoKey = createHash('sha256').update(`${c.registry}\0${c.username}\0${c.password}`).digest('hex');
  let fingerprint = fingerprints.get(memoKey);
  if (!fingerprint) {
    fingerprint = scryptAsync(c.password, `flui-registry-credential\0${c.registry}\0${c.username}`, 16, {
      N: 2 ** 14,
      r: 8,
      p: 1,
    }).then((key) => `scrypt:${key.toString('hex')}`);
    fingerprints.set(memoKey, fingerprint);
    fingerprint.catch(() => fingerprints.delete(memoKey));
    if (fingerprints.size > 100) fingerprints.delete(fingerprints.keys().next().value!);
  }
  return fingerprint;
}

/**
 * What an app's fingerprint variable (`pushSecretNames(app).fingerprint`, a repository variable, not a secret) holds:
 * the fingerprint, then each secret's `updated_at` as GitHub reported it right after Flui wrote it,
 * `scrypt:<hex>;<username secret>=<time>;<password secret>=<time>`. Timestamps, not values: nothing in it is secret.
 * A value in an older format (the fingerprint alone) parses with no timestamps, so the secrets are written once more.
 */
function formatStoredCredential(fingerprint: string, names: string[], updatedAt: Record<string, string>): string {
  return [fingerprint, ...names.filter((n) => updatedAt[n]).map((n) => `${n}=${updatedAt[n]}`)].join(';');
}

function parseStoredCredential(value: string): { fingerprint: string; updatedAt: Record<string, string> } {
  const [fingerprint = '', ...pairs] = value.split(';');
  const updatedAt: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at > 0) updatedAt[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return { fingerprint, updatedAt };
}

function repoOf(app: Application): { owner: string; repo: string } {
  const [owner, repo] = app.spec.source.repository.split('/') as [string, string];
  return { owner, repo };
}

interface RunObject {
  id: number;
  name?: string | null;
  display_title?: string;
  status: string | null;
  conclusion: string | null;
  html_url: string;
  head_sha: string;
  created_at: string;
}

function toRunState(run: RunObject): RunState {
  if (run.status === 'completed') {
    return {
      state: 'completed',
      result: {
        conclusion: (run.conclusion ?? 'failure') as CiRunResult['conclusion'],
        htmlUrl: run.html_url,
        headSha: run.head_sha,
      },
    };
  }
  const state = run.status === 'in_progress' ? 'in_progress' : 'queued';
  return { state, createdAt: run.created_at, htmlUrl: run.html_url, headSha: run.head_sha };
}

/** The routes of one place secrets are kept (a repository, or one of its environments). */
interface SecretsScope {
  /** For messages. */
  where: string;
  publicKey: string;
  list: string;
  one: string;
  put: string;
  remove: string;
  params: Record<string, string>;
}

export interface GitHubActionsOptions {
  /** Octokit client to use for every repository instead of those built from `github` (tests add hooks to it). */
  client?: GitHubClient;
}

/**
 * What the backend's GitHub App installation tokens may do, each narrowed to one repository: write the pipeline file
 * (contents), store the credential (secrets, and the fingerprint variable), dispatch, read and cancel runs (actions);
 * propose the file in pull-request mode only (pull requests).
 */
export function tokenPermissions(mode: Config['github']['updateMode']): TokenPermissions {
  return {
    contents: 'write',
    actions: 'write',
    secrets: 'write',
    variables: 'write',
    ...(mode === 'pull-request' ? { pull_requests: 'write' as const } : {}),
  };
}

export class GitHubActionsBackend implements CiBackend {
  readonly name = 'github-actions';
  /** Sends each request with the client and credentials of its repository (one per GitHub App installation). */
  readonly #gh: GitHubClients;
  readonly #mode: Config['github']['updateMode'];
  readonly #hint: string;
  /** GitHub Environment the build job runs in and whose secrets hold the push credential (FLUI_GITHUB_ENVIRONMENT). */
  readonly #environment: string | undefined;
  /** Last ETag and body per GET (route and parameters): repeating an unchanged read costs a free 304. */
  readonly #cache = new Map<string, { etag: string; data: unknown }>();
  /** Apps whose earlier passwords this worker has already removed (see ensureCredential). */
  readonly #cleaned = new Set<string>();

  constructor(github: Config['github'], options: GitHubActionsOptions = {}) {
    this.#gh = options.client
      ? singleClient(options.client)
      : createGitHubClients(github, tokenPermissions(github.updateMode));
    this.#mode = github.updateMode;
    this.#hint = authHint(github);
    this.#environment = github.environment;
  }

  #failure(err: unknown, doing: string): ServiceError {
    return githubError(err, doing, this.#hint);
  }

  /** GET with `If-None-Match` from the last answer to the same request; a 304 returns the remembered body. */
  async #get<T>(route: string, params: Record<string, string | number>): Promise<T> {
    const key = `${route} ${JSON.stringify(params)}`;
    const cached = this.#cache.get(key);
    try {
      const res = await this.#gh.request(route, {
        ...params,
        headers: cached ? { 'if-none-match': cached.etag } : {},
      });
      this.#cache.delete(key);
      if (res.headers.etag) {
        this.#cache.set(key, { etag: res.headers.etag, data: res.data });
        if (this.#cache.size > MAX_CACHED) this.#cache.delete(this.#cache.keys().next().value!);
      }
      return res.data as T;
    } catch (err) {
      if (cached && hasStatus(err, 304)) return cached.data as T;
      throw err;
    }
  }

  /** Undefined for 404, the body otherwise. */
  async #getIfExists<T>(route: string, params: Record<string, string | number>): Promise<T | undefined> {
    try {
      return await this.#get<T>(route, params);
    } catch (err) {
      if (hasStatus(err, 404)) return undefined;
      throw err;
    }
  }

  /** Blob SHA of `path` on `ref`, or undefined when absent. */
  async #fileSha(owner: string, repo: string, path: string, ref: string): Promise<string | undefined> {
    const file = await this.#getIfExists<{ sha?: string } | unknown[]>('GET /repos/{owner}/{repo}/contents/{path}', {
      owner,
      repo,
      path,
      ref,
    });
    return file && !Array.isArray(file) ? file.sha : undefined;
  }

  /**
   * Key: the file's blob SHA on the branch. Writes only when it differs from the rendered file, with the current
   * `sha` so a concurrent change is never silently lost.
   */
  async ensurePipeline(app: Application, settings: PipelineSettings): Promise<PipelineResult> {
    const { owner, repo } = repoOf(app);
    const path = pipelinePath(app);
    const content = renderPipelineFile(app, { push: settings.push, environment: this.#environment });
    const want = gitBlobSha(content);
    const base = app.spec.source.branch;
    try {
      const onBase = await this.#fileSha(owner, repo, path, base);
      if (onBase === want) return { path, changed: false };
      if (this.#mode === 'commit') {
        const commitSha = await this.#writeFile(owner, repo, path, base, content, want, { sha: onBase });
        // Read back what was written, so the next deploy checks the file with a free conditional request.
        if (commitSha) await this.#prime(() => this.#fileSha(owner, repo, path, base));
        return { path, changed: commitSha !== undefined, ...(commitSha ? { commitSha } : {}) };
      }
      const branch = await this.#ensureProposalBranch(
        owner,
        repo,
        app,
        `flui/pipeline-${appKey(app)}-${want.slice(0, 7)}`,
      );
      const commitSha = await this.#writeFile(owner, repo, path, branch, content, want);
      const pullRequestUrl = await this.#ensurePullRequest(owner, repo, app, branch);
      return { path, changed: commitSha !== undefined, ...(commitSha ? { commitSha } : {}), pullRequestUrl };
    } catch (err) {
      throw this.#failure(err, `writing ${path} to ${owner}/${repo}@${base}`);
    }
  }

  /**
   * PUT with optimistic concurrency. A 409/422 after which the file has changed was a stale `sha` (someone else
   * wrote meanwhile): re-read and retry. One after which the file is unchanged is a refusal (a protected branch,
   * a ruleset), which retrying cannot fix. `known`: the blob SHA the caller has just read on `branch`, which the first
   * attempt writes against instead of reading it again.
   */
  async #writeFile(
    owner: string,
    repo: string,
    path: string,
    branch: string,
    content: string,
    want: string,
    known?: { sha: string | undefined },
  ) {
    let refused: { sha: string | undefined; err: unknown } | undefined;
    for (let attempt = 0; attempt <= MAX_WRITE_CONFLICTS; attempt++) {
      const current = attempt === 0 && known ? known.sha : await this.#fileSha(owner, repo, path, branch);
      if (current === want) return undefined;
      if (refused && refused.sha === current && isRequestError(refused.err)) {
        const { status } = refused.err;
        throw new ServiceError({
          service: 'GitHub',
          kind: 'invalid',
          status,
          message: `GitHub refused to commit ${path} to ${branch} of ${owner}/${repo} (${status} ${refused.err.message.split(' - ')[0]})`,
          hint: 'if the branch is protected, set FLUI_PIPELINE_UPDATE_MODE=pull-request so Flui proposes the change instead',
        });
      }
      try {
        const res = await this.#gh.request('PUT /repos/{owner}/{repo}/contents/{path}', {
          owner,
          repo,
          path,
          branch,
          message: `Update the Flui build pipeline (${path})`,
          content: Buffer.from(content).toString('base64'),
          ...(current ? { sha: current } : {}),
        });
        return res.data.commit.sha;
      } catch (err) {
        if (!hasStatus(err, 409, 422)) throw err;
        refused = { sha: current, err };
      }
    }
    throw new ServiceError({
      service: 'GitHub',
      kind: 'conflict',
      message: `${path} in ${owner}/${repo}@${branch} kept changing while Flui wrote it (${MAX_WRITE_CONFLICTS + 1} conflicts)`,
    });
  }

  /** Key: the branch name (content-addressed by the caller); created from the app's branch when absent. */
  async #ensureProposalBranch(owner: string, repo: string, app: Application, branch: string): Promise<string> {
    const ref = (name: string) =>
      this.#getIfExists<{ object: { sha: string } }>('GET /repos/{owner}/{repo}/git/ref/{ref}', {
        owner,
        repo,
        ref: `heads/${name}`,
      });
    if (await ref(branch)) return branch;
    const base = await ref(app.spec.source.branch);
    if (!base) {
      throw new ServiceError({
        service: 'GitHub',
        kind: 'not-found',
        message: `the branch ${app.spec.source.branch} of ${owner}/${repo} does not exist`,
        hint: 'check spec.source.branch',
      });
    }
    try {
      await this.#gh.request('POST /repos/{owner}/{repo}/git/refs', {
        owner,
        repo,
        ref: `refs/heads/${branch}`,
        sha: base.object.sha,
      });
    } catch (err) {
      if (!hasStatus(err, 422)) throw err; // created concurrently: fine
    }
    return branch;
  }

  /** Key: the head branch; one open pull request per app is reused. */
  async #ensurePullRequest(owner: string, repo: string, app: Application, branch: string): Promise<string> {
    const open = await this.#gh.request('GET /repos/{owner}/{repo}/pulls', {
      owner,
      repo,
      head: `${owner}:${branch}`,
      base: app.spec.source.branch,
      state: 'open',
    });
    if (open.data[0]) return open.data[0].html_url;
    const created = await this.#gh.request('POST /repos/{owner}/{repo}/pulls', {
      owner,
      repo,
      head: branch,
      base: app.spec.source.branch,
      title: `Flui build pipeline for ${appKey(app)}`,
      body:
        `Flui builds ${appKey(app)} with ${pipelinePath(app)}, generated from the app's manifest. ` +
        `Merge this, then run \`flui retry ${app.metadata.name}\` or deploy again.`,
    });
    return created.data.html_url;
  }

  /**
   * Where this backend stores secrets: the configured GitHub Environment's (readable only by jobs that run in it,
   * under its protection rules), else the repository's. Routes and parameters for each operation.
   */
  #secretsScope(owner: string, repo: string, environment_name = this.#environment): SecretsScope {
    const base: { prefix: string; params: Record<string, string> } = environment_name
      ? {
          prefix: '/repos/{owner}/{repo}/environments/{environment_name}/secrets',
          params: { owner, repo, environment_name },
        }
      : { prefix: '/repos/{owner}/{repo}/actions/secrets', params: { owner, repo } };
    return {
      where: environment_name ? `the GitHub Environment "${environment_name}" of ${owner}/${repo}` : `${owner}/${repo}`,
      publicKey: `GET ${base.prefix}/public-key`,
      list: `GET ${base.prefix}`,
      one: `GET ${base.prefix}/{secret_name}`,
      put: `PUT ${base.prefix}/{secret_name}`,
      remove: `DELETE ${base.prefix}/{secret_name}`,
      params: base.params,
    };
  }

  #repositoryScope(owner: string, repo: string): SecretsScope {
    return this.#secretsScope(owner, repo, '');
  }

  /**
   * Makes `credential` this app's push secret(s), in the configured environment if any.
   *
   * A static credential (username and password). Key: its fingerprint in the app's fingerprint variable, written
   * after both secrets together with the `updated_at` GitHub then reported for each. Skips the write when the
   * fingerprint matches and both secrets still carry those timestamps: a secret deleted, or rewritten by anyone else,
   * is written again. Two conditional requests (the variable, the list of secrets), both free while nothing changed.
   *
   * A minted token (one per deploy). Written every time, just before the dispatch; a retry writes a fresh one. One
   * rate-limited request (the key is read conditionally).
   */
  async ensureCredential(
    app: Application,
    credential: RegistryCredential | RegistryToken | NoStoredCredential,
  ): Promise<CredentialResult> {
    const { owner, repo } = repoOf(app);
    const scope = this.#secretsScope(owner, repo);
    const names = pushSecretNames(app);
    try {
      if ('token' in credential) {
        await this.#putSecrets(scope, { [names.token]: credential.token });
        return { method: 'minted-token', secretName: names.token, changed: true };
      }
      if ('none' in credential) {
        // The job's token, OIDC, or a token at dispatch: a password this app (or an older Flui) stored must go. Once
        // per app and worker: the list of secrets changes with every minted token, so checking it each deploy would
        // cost a full read each time.
        const key = `${scope.where}\0${names.password}`;
        if (this.#cleaned.has(key)) return { changed: false };
        const removed = await this.#removeSecrets(scope, [names.username, names.password]);
        const legacy = await this.#removeSecrets(this.#repositoryScope(owner, repo), LEGACY_SECRETS);
        this.#cleaned.add(key);
        if (this.#cleaned.size > MAX_CACHED) this.#cleaned.delete(this.#cleaned.values().next().value!);
        return { changed: removed + legacy > 0 };
      }
      return await this.#ensureStaticCredential(owner, repo, scope, names, credential);
    } catch (err) {
      const failure = this.#failure(err, `storing the registry credential as secrets of ${scope.where}`);
      if (this.#environment && hasStatus(err, 404)) {
        throw new ServiceError({
          service: 'GitHub',
          kind: 'misconfigured',
          status: 404,
          message: `${failure.problem}: the GitHub Environment "${this.#environment}" does not exist in ${owner}/${repo} (or the token cannot see it)`,
          hint: `create it in the repository's settings (Environments), or unset FLUI_GITHUB_ENVIRONMENT`,
        });
      }
      throw failure;
    }
  }

  /**
   * Deletes those of `names` the scope's first page of secrets lists (best effort beyond it: looking absent names
   * up one by one would cost requests on every deploy). The list is read conditionally, so this is free while
   * nothing changed. Returns how many were deleted.
   */
  async #removeSecrets(scope: SecretsScope, names: string[]): Promise<number> {
    const present = Object.keys(await this.#secretsUpdatedAt(scope, names, []));
    for (const secret_name of present) {
      try {
        await this.#gh.request(scope.remove, { ...scope.params, secret_name });
      } catch (err) {
        if (!hasStatus(err, 404)) throw err;
      }
    }
    if (present.length) await this.#prime(() => this.#secretsUpdatedAt(scope, names, []));
    return present.length;
  }

  async #ensureStaticCredential(
    owner: string,
    repo: string,
    scope: SecretsScope,
    names: ReturnType<typeof pushSecretNames>,
    credential: RegistryCredential,
  ): Promise<CredentialResult> {
    const secretNames = [names.username, names.password];
    const readVariable = () =>
      this.#getIfExists<{ value: string }>('GET /repos/{owner}/{repo}/actions/variables/{name}', {
        owner,
        repo,
        name: names.fingerprint,
      });
    // The (deliberately slow) fingerprint and both reads at once; in steady state the reads are free 304s.
    // The repository's list also shows whether an older Flui's shared secrets are still there (no extra request).
    const legacy = this.#environment ? [] : LEGACY_SECRETS;
    const checks = Promise.all([
      readVariable(),
      this.#secretsUpdatedAt(scope, [...secretNames, ...legacy], secretNames),
    ]);
    checks.catch(() => undefined); // observed below, after the fingerprint
    const fingerprint = await credentialFingerprint(credential);
    const result = { method: 'static' as const, secretName: names.password, fingerprint };
    const [variable, current] = await checks;
    if (legacy.some((name) => current[name] !== undefined)) await this.#removeSecrets(scope, legacy);
    const stored = variable ? parseStoredCredential(variable.value) : undefined;
    if (
      stored?.fingerprint === fingerprint &&
      secretNames.every((name) => current[name] !== undefined && current[name] === stored.updatedAt[name])
    ) {
      return { ...result, changed: false };
    }
    await this.#putSecrets(scope, { [names.username]: credential.username, [names.password]: credential.password });
    // The timestamps of this write, as GitHub reports them (this read also leaves the list's new ETag cached).
    const written = await this.#secretsUpdatedAt(scope, secretNames);
    await this.#storeFingerprint(
      owner,
      repo,
      names.fingerprint,
      formatStoredCredential(fingerprint, secretNames, written),
      variable !== undefined,
    );
    await this.#prime(readVariable);
    return { ...result, changed: true };
  }

  /** Seals each value with the scope's public key (read conditionally: free while it is unchanged) and writes it. */
  async #putSecrets(scope: SecretsScope, values: Record<string, string>) {
    const key = await this.#get<{ key_id: string; key: string }>(scope.publicKey, scope.params);
    await sodium.ready;
    const publicKey = sodium.from_base64(key.key, sodium.base64_variants.ORIGINAL);
    for (const [secret_name, value] of Object.entries(values)) {
      const encrypted_value = sodium.to_base64(
        sodium.crypto_box_seal(sodium.from_string(value), publicKey),
        sodium.base64_variants.ORIGINAL,
      );
      await this.#gh.request(scope.put, { ...scope.params, secret_name, encrypted_value, key_id: key.key_id });
    }
  }

  /**
   * `updated_at` of the named secrets that exist (no values: GitHub never returns them). One conditional request for
   * the scope's list; those of `byName` not on its first page are looked up by name.
   */
  async #secretsUpdatedAt(
    scope: SecretsScope,
    names: string[],
    byName: string[] = names,
  ): Promise<Record<string, string>> {
    const list = await this.#get<{ total_count: number; secrets: { name: string; updated_at: string }[] }>(scope.list, {
      ...scope.params,
      per_page: SECRETS_PER_PAGE,
    });
    const found: Record<string, string> = {};
    for (const s of list.secrets) if (names.includes(s.name)) found[s.name] = s.updated_at;
    if (list.total_count > list.secrets.length) {
      for (const secret_name of byName.filter((name) => found[name] === undefined)) {
        const one = await this.#getIfExists<{ updated_at: string }>(scope.one, { ...scope.params, secret_name });
        if (one) found[secret_name] = one.updated_at;
      }
    }
    return found;
  }

  async #storeFingerprint(owner: string, repo: string, name: string, value: string, exists: boolean): Promise<void> {
    if (!exists) {
      try {
        await this.#gh.request('POST /repos/{owner}/{repo}/actions/variables', { owner, repo, name, value });
        return;
      } catch (err) {
        if (!hasStatus(err, 409, 422)) throw err; // created meanwhile: update it instead
      }
    }
    await this.#gh.request('PATCH /repos/{owner}/{repo}/actions/variables/{name}', { owner, repo, name, value });
  }

  /**
   * Best effort, right after this worker wrote a resource: read it once so that its new ETag is cached and the next
   * deploy's check of it is a free 304 rather than a full read. Nothing is decided on this answer (the next check
   * reads again, conditionally, and a cold cache simply reads in full), so a failure is ignored.
   */
  async #prime(read: () => Promise<unknown>): Promise<void> {
    await read().catch(() => undefined);
  }

  /**
   * Key: the run's name, `ciRunName(runKey)` (the workflow's `run-name`). Looks through recent dispatched runs of the
   * app's pipeline on its branch, a bounded number of pages.
   */
  async findRun(app: Application, runKey: string): Promise<CiRunRef | undefined> {
    const { owner, repo } = repoOf(app);
    const title = ciRunName(runKey);
    const since = new Date(Date.now() - RUN_LOOKBACK_DAYS * 86_400_000).toISOString().slice(0, 10);
    try {
      for (let page = 1; page <= MAX_RUN_PAGES; page++) {
        const list = await this.#get<{ workflow_runs: RunObject[] }>(
          'GET /repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs',
          {
            owner,
            repo,
            workflow_id: pipelineFileName(app),
            branch: app.spec.source.branch,
            event: 'workflow_dispatch',
            created: `>=${since}`,
            per_page: 100,
            page,
          },
        );
        const run = list.workflow_runs.find((r) => r.display_title === title || r.name === title);
        if (run) return { id: String(run.id), htmlUrl: run.html_url };
        if (list.workflow_runs.length < 100) return undefined;
      }
      return undefined;
    } catch (err) {
      if (hasStatus(err, 404)) return undefined; // the workflow is not on the branch yet: nothing was dispatched
      throw this.#failure(err, `looking for the CI run "${title}" in ${owner}/${repo}`);
    }
  }

  /**
   * Dispatches the pipeline with `deploy_id = runKey`. Not idempotent by itself: the caller looks the run up with
   * `findRun` first when an earlier attempt may have dispatched (the key is the run name).
   */
  async trigger(app: Application, runKey: string): Promise<CiRunRef> {
    const { owner, repo } = repoOf(app);
    const dispatch = (details: boolean) =>
      this.#gh.request('POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches', {
        owner,
        repo,
        workflow_id: pipelineFileName(app),
        ref: app.spec.source.branch,
        inputs: { [DISPATCH_INPUTS.deployId]: runKey, [DISPATCH_INPUTS.imageTag]: ciImageTag(runKey) },
        ...(details ? { return_run_details: true } : {}),
      } as never);
    try {
      let res;
      try {
        res = await dispatch(true);
      } catch (err) {
        // A server that predates run details and validates its parameters refuses the request; nothing started.
        if (!(hasStatus(err, 422) && /return_run_details/.test((err as Error).message))) throw err;
        res = await dispatch(false);
      }
      const details = res.data as { workflow_run_id?: number; html_url?: string } | undefined;
      if (res.status === 200 && details?.workflow_run_id) {
        return { id: String(details.workflow_run_id), htmlUrl: details.html_url ?? '' };
      }
      // 204 (older servers, GHES): the run appears in the list within seconds.
      for (let i = 0; i < RUN_VISIBLE_WAIT.attempts; i++) {
        if (i > 0) await sleep(RUN_VISIBLE_WAIT.intervalMs);
        const run = await this.findRun(app, runKey);
        if (run) return run;
      }
      // The next attempt's findRun picks it up instead of dispatching again.
      throw new ServiceError({
        service: 'GitHub',
        kind: 'unavailable',
        message: `dispatched "${ciRunName(runKey)}" in ${owner}/${repo} but the run is not listed yet`,
      });
    } catch (err) {
      throw this.#failure(err, `starting the CI run for ${appKey(app)} in ${owner}/${repo}`);
    }
  }

  /** Read-only; conditional on `etag`, so an unchanged run costs a 304 and no rate limit. */
  async status(app: Application, run: CiRunRef, etag?: string): Promise<RunStatusResponse> {
    const { owner, repo } = repoOf(app);
    try {
      const res = await this.#gh.request('GET /repos/{owner}/{repo}/actions/runs/{run_id}', {
        owner,
        repo,
        run_id: Number(run.id),
        headers: etag ? { 'if-none-match': etag } : {},
      });
      return { status: toRunState(res.data as RunObject), etag: res.headers.etag };
    } catch (err) {
      if (hasStatus(err, 304)) return { etag };
      throw this.#failure(err, `checking CI run ${run.id} in ${owner}/${repo}`);
    }
  }

  /** Key: the run id. A 409 means the run already finished, which is what cancelling wants. */
  async cancel(app: Application, run: CiRunRef): Promise<void> {
    const { owner, repo } = repoOf(app);
    try {
      await this.#gh.request('POST /repos/{owner}/{repo}/actions/runs/{run_id}/cancel', {
        owner,
        repo,
        run_id: Number(run.id),
      });
    } catch (err) {
      if (hasStatus(err, 409)) return;
      throw this.#failure(err, `cancelling CI run ${run.id} in ${owner}/${repo}`);
    }
  }

  /** The run's page, where GitHub shows the logs to anyone allowed to read the repository (no token needed). */
  async logsUrl(_app: Application, run: CiRunRef): Promise<string> {
    return run.htmlUrl;
  }

  /**
   * Read-only. The run's jobs, and the log of each finished job not printed yet (src/ci/github/job-logs.ts says what a
   * chunk holds and what the cursor remembers). The run and its job list are conditional reads, so a reader polling
   * an unchanged run costs 304s; a job's log is fetched once, from the short-lived link GitHub redirects to, which is
   * sent no credential.
   */
  async readLogs(app: Application, run: CiRunRef, cursor?: string): Promise<LogChunk> {
    const { owner, repo } = repoOf(app);
    const position = parseCursor(cursor);
    try {
      // The run first: once it reads completed, the job list read after it is final.
      const runObject = await this.#get<RunObject>('GET /repos/{owner}/{repo}/actions/runs/{run_id}', {
        owner,
        repo,
        run_id: Number(run.id),
      });
      const jobs: JobSummary[] = [];
      for (let page = 1; jobs.length < MAX_JOBS; page++) {
        const list = await this.#get<{ total_count: number; jobs: JobSummary[] }>(
          'GET /repos/{owner}/{repo}/actions/runs/{run_id}/jobs',
          { owner, repo, run_id: Number(run.id), filter: 'latest', per_page: 100, page },
        );
        jobs.push(...list.jobs);
        if (list.jobs.length < 100 || jobs.length >= list.total_count) break;
      }
      return await nextChunk({
        runCompleted: runObject.status === 'completed',
        htmlUrl: runObject.html_url || run.htmlUrl,
        jobs,
        cursor: position,
        read: (job) => this.#jobLog(owner, repo, job.id),
      });
    } catch (err) {
      throw this.#failure(err, `reading the log of CI run ${run.id} in ${owner}/${repo}`);
    }
  }

  /** A finished job's log: GitHub answers with a redirect to a signed link, fetched without the token. */
  async #jobLog(owner: string, repo: string, jobId: number): Promise<string | undefined> {
    let location: string | undefined;
    try {
      const res = await this.#gh.request('GET /repos/{owner}/{repo}/actions/jobs/{job_id}/logs', {
        owner,
        repo,
        job_id: jobId,
        request: { redirect: 'manual' },
      });
      location = typeof res.headers.location === 'string' ? res.headers.location : undefined;
    } catch (err) {
      if (hasStatus(err, 404, 410)) return undefined;
      throw err;
    }
    if (!location) {
      throw new ServiceError({
        service: 'GitHub',
        kind: 'unavailable',
        message: `GitHub answered the log of job ${jobId} without saying where it is (no Location)`,
      });
    }
    let res: Response;
    try {
      res = await fetch(location, { redirect: 'follow', signal: AbortSignal.timeout(LOG_DOWNLOAD_TIMEOUT_MS) });
    } catch (err) {
      throw new ServiceError({
        service: 'GitHub',
        kind: 'unavailable',
        message: `downloading the log of job ${jobId} failed: ${(err as Error).message}`,
        cause: err,
      });
    }
    if (res.status === 404 || res.status === 410) return undefined;
    if (!res.ok) {
      throw new ServiceError({
        service: 'GitHub',
        kind: 'unavailable',
        message: `downloading the log of job ${jobId} answered ${res.status}`,
      });
    }
    return res.text();
  }
}
