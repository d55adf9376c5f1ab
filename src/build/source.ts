/**
 * Getting the source at an exact commit: GitHub's tarball endpoint through the same Octokit clients the GitHub
 * backend uses, or a plain git server with real `git` (init, shallow fetch of the one commit, checkout). Branches
 * are resolved to a commit once (`resolveCommit`), before a build: a build never reads a moving branch.
 *
 * Git credentials go to their own host only: as an `http.<origin>/.extraHeader` in the environment
 * (GIT_CONFIG_COUNT/KEY/VALUE: not in argv, so not in `ps`), with redirects off so the header cannot follow one.
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { createGitHubClients, type GitHubClients } from '../ci/github/clients.ts';
import { githubError, hasStatus } from '../ci/github/octokit.ts';
import { ServiceError } from '../errors.ts';
import { extractTarGz, UnsafeArchive, DEFAULT_LIMITS } from './extract.ts';
import { BuildLog } from './logs.ts';
import { runCommand } from './process.ts';
import type { BuilderSettings, BuildSource } from './types.ts';

const SHA = /^[0-9a-f]{40}$/;
const REPOSITORY = /^[A-Za-z0-9_.-]{1,100}\/[A-Za-z0-9_.-]{1,100}$/;
const BRANCH = /^(?!.*\.\.)(?!.*\/\/)(?!\/)(?!.*\/$)(?!.*\.lock$)[A-Za-z0-9._/-]{1,255}$/;

function invalid(message: string, service = 'Builder'): ServiceError {
  return new ServiceError({ service, kind: 'invalid', message });
}

/** Checks a source from the manifest; throws `invalid` with what is wrong. */
export function checkSource(source: BuildSource): void {
  if (!SHA.test(source.commit)) throw invalid(`the commit to build must be a 40-hex sha, not "${source.commit}"`);
  if (source.kind === 'github') {
    if (!REPOSITORY.test(source.repository)) throw invalid(`"${source.repository}" is not an owner/name repository`);
  } else gitUrl(source.url);
}

/** A git URL we fetch from: http(s) or git://, no credentials in it, no options disguised as URLs. */
export function gitUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw invalid(`"${raw}" is not a git URL (http://, https:// or git://)`, 'Git');
  }
  if (!['http:', 'https:', 'git:'].includes(url.protocol)) {
    throw invalid(`git URL ${url.protocol}// is not allowed: use http://, https:// or git://`, 'Git');
  }
  if (url.username || url.password) {
    throw invalid('a git URL must not carry credentials: configure them for the host on the builder', 'Git');
  }
  return url;
}

let clientsCache: { key: unknown; clients: GitHubClients } | undefined;

function githubClients(settings: BuilderSettings): GitHubClients {
  if (!settings.github) {
    throw new ServiceError({
      service: 'GitHub',
      kind: 'misconfigured',
      message: 'the builder has no GitHub credentials to read the source with',
      hint: 'set GITHUB_TOKEN (or the GitHub App variables) on the builder',
    });
  }
  if (clientsCache?.key !== settings.github) {
    const config = { apiUrl: settings.github.apiUrl, auth: settings.github.auth } as Parameters<
      typeof createGitHubClients
    >[0];
    clientsCache = { key: settings.github, clients: createGitHubClients(config, { contents: 'read' }) };
  }
  return clientsCache.clients;
}

/** The environment that makes git use `auth` for `url`'s origin only, and nothing interactive. */
function gitEnv(url: URL, settings: BuilderSettings): { env: NodeJS.ProcessEnv; secrets: string[] } {
  const config: [string, string][] = [
    ['http.followRedirects', 'false'],
    ['protocol.allow', 'never'],
    ['protocol.http.allow', 'always'],
    ['protocol.https.allow', 'always'],
    ['protocol.git.allow', 'always'],
    ['credential.helper', ''],
    ['core.hooksPath', '/dev/null'],
  ];
  const secrets: string[] = [];
  const host = url.host.toLowerCase();
  const auth = settings.gitAuth && Object.hasOwn(settings.gitAuth, host) ? settings.gitAuth[host] : undefined;
  // Over its own protocol only: a credential configured for https:// never travels in clear to http:// on that host.
  if (auth && url.protocol === auth.protocol) {
    const basic = Buffer.from(`${auth.username}:${auth.password}`).toString('base64');
    config.push([`http.${url.origin}/.extraHeader`, `Authorization: Basic ${basic}`]);
    secrets.push(auth.password, basic);
  }
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: '/nonexistent',
    GIT_TERMINAL_PROMPT: '0',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_CONFIG_COUNT: String(config.length),
  };
  config.forEach(([k, v], i) => {
    env[`GIT_CONFIG_KEY_${i}`] = k;
    env[`GIT_CONFIG_VALUE_${i}`] = v;
  });
  return { env, secrets };
}

/** Secrets the source step may show (so the build log can blank them). */
export function sourceSecrets(settings: BuilderSettings): string[] {
  const out: string[] = [];
  for (const a of Object.values(settings.gitAuth ?? {})) {
    out.push(a.password, Buffer.from(`${a.username}:${a.password}`).toString('base64'));
  }
  const gh = settings.github?.auth;
  if (gh?.kind === 'token') out.push(gh.token);
  return out;
}

function gitFailure(stderrTail: string, url: URL, doing: string): ServiceError {
  const where = `${url.origin}${url.pathname}`;
  if (
    /not found|repository .* does not exist|404|not our ref|couldn't find remote ref|no such remote ref/i.test(
      stderrTail,
    )
  ) {
    return new ServiceError({ service: 'Git', kind: 'not-found', message: `${doing} ${where}: ${stderrTail}` });
  }
  if (/authentication failed|401|403|could not read Username/i.test(stderrTail)) {
    return new ServiceError({
      service: 'Git',
      kind: 'unauthorized',
      message: `${doing} ${where}: the git server refused the credentials`,
      hint: `check the builder's git credentials for ${url.host}`,
    });
  }
  return new ServiceError({ service: 'Git', kind: 'unavailable', message: `${doing} ${where}: ${stderrTail}` });
}

/** Puts the source at its commit into `dest` (created). */
export async function fetchSource(
  source: BuildSource,
  dest: string,
  settings: BuilderSettings,
  log: BuildLog,
  signal?: AbortSignal,
): Promise<void> {
  checkSource(source);
  await mkdir(dest, { recursive: true });
  if (source.kind === 'github') return fetchGitHub(source, dest, settings, log, signal);
  return fetchGit(source, dest, settings, log, signal);
}

async function fetchGitHub(
  source: Extract<BuildSource, { kind: 'github' }>,
  dest: string,
  settings: BuilderSettings,
  log: BuildLog,
  signal?: AbortSignal,
): Promise<void> {
  const [owner, repo] = source.repository.split('/') as [string, string];
  const doing = `downloading ${source.repository} at ${source.commit}`;
  log.line(`Fetching ${source.repository}@${source.commit} from GitHub`);
  let body: unknown;
  try {
    const res = await githubClients(settings).request('GET /repos/{owner}/{repo}/tarball/{ref}', {
      owner,
      repo,
      ref: source.commit,
      request: { parseSuccessResponseBody: false, signal },
    });
    body = res.data;
  } catch (err) {
    if (signal?.aborted) throw err;
    if (hasStatus(err, 404)) {
      throw new ServiceError({
        service: 'GitHub',
        kind: 'not-found',
        message: `${source.repository} has no commit ${source.commit}, or the builder's credentials cannot see it`,
      });
    }
    throw githubError(err, doing);
  }
  const stream = toReadable(body);
  try {
    const { entries, bytes, comment } = await extractTarGz(stream, dest, DEFAULT_LIMITS);
    if (comment && SHA.test(comment) && comment !== source.commit) {
      throw invalid(`GitHub served commit ${comment} when asked for ${source.commit}`, 'GitHub');
    }
    log.line(`Unpacked ${entries} entries (${bytes} bytes)`);
  } catch (err) {
    if (err instanceof UnsafeArchive) throw invalid(`the source archive was refused: ${err.message}`, 'GitHub');
    if (err instanceof ServiceError || signal?.aborted) throw err;
    throw new ServiceError({ service: 'GitHub', kind: 'unavailable', message: `${doing}: ${(err as Error).message}` });
  }
}

function toReadable(body: unknown): Readable {
  if (body instanceof Readable) return body;
  if (body instanceof ArrayBuffer) return Readable.from([Buffer.from(body)]);
  if (Buffer.isBuffer(body)) return Readable.from([body]);
  if (body && typeof (body as WebReadableStream).getReader === 'function') {
    return Readable.fromWeb(body as WebReadableStream);
  }
  throw new ServiceError({ service: 'GitHub', kind: 'unavailable', message: 'GitHub sent no archive body' });
}

async function git(
  args: string[],
  opts: { cwd?: string; url: URL; settings: BuilderSettings; log: BuildLog; signal?: AbortSignal; doing: string },
): Promise<string> {
  const { env } = gitEnv(opts.url, opts.settings);
  const res = await runCommand('git', args, { cwd: opts.cwd, env, log: opts.log, signal: opts.signal });
  if (res.code !== 0) throw gitFailure(opts.log.tail().split('\n').slice(-3).join(' | '), opts.url, opts.doing);
  return res.stdout;
}

async function fetchGit(
  source: Extract<BuildSource, { kind: 'git' }>,
  dest: string,
  settings: BuilderSettings,
  log: BuildLog,
  signal?: AbortSignal,
): Promise<void> {
  const url = gitUrl(source.url);
  const common = { cwd: dest, url, settings, log, signal };
  log.line(`Fetching ${url.origin}${url.pathname} at ${source.commit}`);
  await git(['init', '--quiet', '.'], { ...common, doing: 'preparing a checkout for' });
  // `--` ends the options: the URL and sha can never be taken for one.
  await git(['fetch', '--quiet', '--depth', '1', '--no-tags', '--', url.href, source.commit], {
    ...common,
    doing: `fetching ${source.commit} from`,
  });
  await git(['-c', 'advice.detachedHead=false', 'checkout', '--quiet', '--detach', 'FETCH_HEAD'], {
    ...common,
    doing: 'checking out the source of',
  });
  const head = (await git(['rev-parse', 'HEAD'], { ...common, doing: 'reading the commit of' })).trim();
  if (head !== source.commit) throw invalid(`the git server served ${head} when asked for ${source.commit}`, 'Git');
  // The build context is the tree at the commit, as GitHub's tarball is: no .git (its fetch state differs on every
  // checkout, and would defeat the layer cache of any `COPY .`).
  await rm(join(dest, '.git'), { recursive: true, force: true });
}

/** A branch's current commit (40-hex), resolved once, before a build. */
export async function resolveCommit(
  source: { kind: 'github'; repository: string; branch: string } | { kind: 'git'; url: string; branch: string },
  settings: BuilderSettings,
): Promise<string> {
  if (!BRANCH.test(source.branch)) throw invalid(`"${source.branch}" is not a branch name`);
  if (source.kind === 'github') {
    if (!REPOSITORY.test(source.repository)) throw invalid(`"${source.repository}" is not an owner/name repository`);
    const [owner, repo] = source.repository.split('/') as [string, string];
    try {
      const res = await githubClients(settings).request('GET /repos/{owner}/{repo}/git/ref/{ref}', {
        owner,
        repo,
        ref: `heads/${source.branch}`,
      });
      const sha = (res.data as { object?: { sha?: string } }).object?.sha ?? '';
      if (!SHA.test(sha))
        throw invalid(`GitHub answered no commit for ${source.repository}@${source.branch}`, 'GitHub');
      return sha;
    } catch (err) {
      if (hasStatus(err, 404)) {
        throw new ServiceError({
          service: 'GitHub',
          kind: 'not-found',
          message: `${source.repository} has no branch ${source.branch}, or the builder's credentials cannot see it`,
        });
      }
      throw githubError(err, `resolving ${source.repository}@${source.branch}`);
    }
  }
  const url = gitUrl(source.url);
  const log = new BuildLog(sourceSecrets(settings));
  const out = await git(['ls-remote', '--', url.href, `refs/heads/${source.branch}`], {
    url,
    settings,
    log,
    doing: `resolving ${source.branch} of`,
  });
  const sha = out.split(/\s+/)[0] ?? '';
  if (!SHA.test(sha)) {
    throw new ServiceError({
      service: 'Git',
      kind: 'not-found',
      message: `${url.origin}${url.pathname} has no branch ${source.branch}`,
    });
  }
  return sha;
}
