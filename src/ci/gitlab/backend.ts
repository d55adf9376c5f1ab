/**
 * GitLab CI as Flui's CI backend (FLUI_CI=gitlab). Every method is idempotent; the key that makes it so is on each.
 *
 * GitLab's REST API has no conditional requests (ETags cover only the web UI's `.json` routes), so every read is
 * charged against the rate limit. The design spends them sparingly:
 * - the pipeline files are checked only when the app's branch has moved since this worker last found them current
 *   (one branch read per deploy; two file reads more when it moved);
 * - the static credential is checked with one list of the project's variables (its fingerprint is a plain
 *   variable); nothing is stored at all for the instance's own registry (the job's CI_REGISTRY_* credential); a token
 *   minted per deploy costs one write (an update of the app's variable) right before the pipeline is created;
 * - the webhook comes first, and polling backs off with the pipeline's age (`pollAfterSeconds`), so a long build
 *   costs tens of status reads, not hundreds.
 *
 * Projects may live in nested groups (`group/sub/project`): GitLab takes the URL-encoded path wherever it takes an id.
 * Errors are service errors (./client.ts `gitlabError`); no Temporal here.
 */
import { createHash } from 'node:crypto';
import type {
  CiBackend,
  CredentialResult,
  LogChunk,
  NoStoredCredential,
  PipelineResult,
  PipelineSettings,
  RegistryCredential,
  RegistryToken,
  RunState,
  RunStatusResponse,
} from '../backend.ts';
import { ServiceError } from '../../errors.ts';
import type { Application } from '../../manifest/schema.ts';
import { ciImageTag, ciRunName, type CiRunRef, type CiRunResult } from '../../workflows/contract.ts';
import { credentialFingerprint } from '../github/actions.ts';
import { createGitLabClient, gitlabError, hasStatus, projectId, type GitLabClient } from './client.ts';
import {
  appKey,
  DEFAULT_ENTRY_PATH,
  jobFilePath,
  jobName,
  PIPELINE_INPUTS,
  plannedFiles,
  pushVariableNames,
} from './pipeline-file.ts';
import type { GitLabSettings } from './settings.ts';

/** Entries kept in each in-process cache. */
const MAX_CACHED = 2000;
/** How long a project's settings (CI config path, web URL) are trusted before being read again. */
const PROJECT_TTL_MS = 10 * 60_000;
/** Commit attempts when the branch moved under a commit (GitLab answers 400 when a file appeared meanwhile). */
const MAX_WRITE_ATTEMPTS = 3;

export interface GitLabBackendOptions {
  /** The commit-or-merge-request mode shared with GitHub (FLUI_PIPELINE_UPDATE_MODE). */
  updateMode: 'commit' | 'pull-request';
  /** A webhook receiver is configured: polling is only the safety net, so it can be slower. */
  webhook: boolean;
  /** A client to use instead of one built from the settings (tests count its requests). */
  client?: GitLabClient;
}

interface ProjectInfo {
  id: number;
  web_url: string;
  ci_config_path: string | null;
}

interface PipelineObject {
  id: number;
  status: string;
  ref: string;
  sha: string;
  web_url: string;
  name?: string | null;
  created_at: string;
}

/**
 * GitLab's pipeline statuses (docs, Pipelines API) in Flui's terms: created, waiting_for_resource, preparing, pending,
 * scheduled and manual wait for something; running runs; the rest are final.
 */
export function toRunState(p: PipelineObject): RunState {
  const conclusions: Record<string, CiRunResult['conclusion']> = {
    success: 'success',
    failed: 'failure',
    canceled: 'cancelled',
    canceling: 'cancelled',
    skipped: 'skipped',
  };
  const conclusion = conclusions[p.status];
  if (conclusion) return { state: 'completed', result: { conclusion, htmlUrl: p.web_url, headSha: p.sha } };
  const state = p.status === 'running' ? 'in_progress' : 'queued';
  return { state, createdAt: p.created_at, htmlUrl: p.web_url, headSha: p.sha };
}

/**
 * Seconds until the next status read of a pipeline waited on for `ageSeconds`. Without a webhook: every 10 s for the first
 * two minutes, then a tenth of the age, at most a minute. With one: the webhook normally reports the end, so a
 * quarter of the age, between 30 s and 5 minutes, only to cover a lost delivery.
 */
export function pollAfterSeconds(ageSeconds: number, webhook: boolean): number {
  const age = Math.max(0, ageSeconds);
  if (webhook) return Math.round(Math.min(300, Math.max(30, age / 4)));
  return Math.round(age < 120 ? 10 : Math.min(60, Math.max(10, age / 10)));
}

export class GitLabBackend implements CiBackend {
  readonly name = 'gitlab';
  readonly #settings: GitLabSettings;
  readonly #options: GitLabBackendOptions;
  #client: GitLabClient | undefined;
  readonly #projects = new Map<string, { at: number; info: ProjectInfo }>();
  /** `<project>@<branch>` → the branch head at which this worker last found the app's files current. */
  readonly #current = new Map<string, string>();
  /** Apps whose stored passwords this worker has already removed. */
  readonly #cleaned = new Set<string>();

  constructor(settings: GitLabSettings, options: GitLabBackendOptions) {
    this.#settings = settings;
    this.#options = options;
    this.#client = options.client;
  }

  get #gl(): GitLabClient {
    return (this.#client ??= createGitLabClient(this.#settings));
  }

  #remember<K, V>(map: Map<K, V>, key: K, value: V) {
    map.delete(key);
    map.set(key, value);
    if (map.size > MAX_CACHED) map.delete(map.keys().next().value!);
  }

  async #project(path: string): Promise<ProjectInfo> {
    const cached = this.#projects.get(path);
    if (cached && Date.now() - cached.at < PROJECT_TTL_MS) return cached.info;
    const { body } = await this.#gl.request<ProjectInfo>('GET', `projects/${projectId(path)}`);
    this.#remember(this.#projects, path, { at: Date.now(), info: body });
    return body;
  }

  /** The file's text on `ref` and the last commit that changed it, or undefined when it does not exist. */
  async #file(project: string, path: string, ref: string): Promise<{ text: string; lastCommitId: string } | undefined> {
    try {
      const file = await this.#gl.api.RepositoryFiles.show(project, path, ref);
      const text = Buffer.from(String(file.content), (file.encoding as BufferEncoding) || 'base64').toString('utf8');
      return { text, lastCommitId: String(file.last_commit_id) };
    } catch (err) {
      if (hasStatus(err, 404)) return undefined;
      throw err;
    }
  }

  async #branchHead(project: string, branch: string): Promise<string | undefined> {
    try {
      const b = await this.#gl.api.Branches.show(project, branch);
      return String((b.commit as { id: string }).id);
    } catch (err) {
      if (hasStatus(err, 404)) return undefined;
      throw err;
    }
  }

  /** The project's CI entry file (ci_config_path), which must be a file in the project itself. */
  #entryPath(app: Application, info: ProjectInfo): string {
    const configured = info.ci_config_path?.trim();
    if (!configured) return DEFAULT_ENTRY_PATH;
    if (configured.includes('@') || /^[a-z]+:\/\//i.test(configured) || configured.includes('..')) {
      throw new ServiceError({
        service: 'GitLab',
        kind: 'invalid',
        message: `${appKey(app)}: the project's CI configuration (${configured}) lives outside the project, where Flui cannot add its pipeline inputs`,
        hint: 'use a CI configuration file inside the project (Settings > CI/CD > General pipelines)',
      });
    }
    return configured.replace(/^\/+/, '');
  }

  /**
   * Key: the content of the app's job file and of the entry file on the branch; one commit (Commits API with
   * `actions[]`) writes whatever differs, none when both are current. The branch head this worker last verified is
   * remembered, so an unchanged branch costs one request.
   */
  async ensurePipeline(app: Application, settings: PipelineSettings): Promise<PipelineResult> {
    const repo = app.spec.source.repository;
    const project = projectId(repo);
    const branch = app.spec.source.branch;
    const options = {
      push: settings.push,
      builderImage: this.#settings.builderImage,
      ...(this.#settings.registryHost ? { registryHost: this.#settings.registryHost } : {}),
    };
    const path = jobFilePath(app);
    try {
      const info = await this.#project(repo);
      const entryPath = this.#entryPath(app, info);
      const rendered = createHash('sha256')
        .update(JSON.stringify([options, app.spec.source, app.spec.image, app.spec.deploy.buildTimeoutMinutes]))
        .digest('hex');
      const cacheKey = `${repo}@${branch}\0${appKey(app)}\0${rendered}`;
      for (let attempt = 1; ; attempt++) {
        const head = await this.#branchHead(repo, branch);
        if (head === undefined) {
          throw new ServiceError({
            service: 'GitLab',
            kind: 'not-found',
            status: 404,
            message: `${appKey(app)}: the branch ${branch} does not exist in ${repo}`,
            hint: 'check spec.source.branch',
          });
        }
        if (this.#current.get(cacheKey) === head) return { path, changed: false };
        const [entry, job] = await Promise.all([this.#file(repo, entryPath, head), this.#file(repo, path, head)]);
        const plan = plannedFiles(app, options, {
          entryPath,
          ...(entry ? { entry: entry.text } : {}),
          ...(job ? { job: job.text } : {}),
        });
        const lastCommit: Record<string, string | undefined> = {
          [entryPath]: entry?.lastCommitId,
          [path]: job?.lastCommitId,
        };
        if (!plan.files.length) {
          this.#remember(this.#current, cacheKey, head);
          return { path, changed: false };
        }
        const message = `Flui: build pipeline of ${appKey(app)}\n\n${plan.changes.map((c) => `- ${c}`).join('\n')}`;
        // An update names the commit its content was planned on: if the user changed the file meanwhile, GitLab
        // refuses (400) instead of Flui overwriting their change, and the next attempt plans on the new content.
        const actions = plan.files.map((f) => ({
          action: f.create ? ('create' as const) : ('update' as const),
          filePath: f.path,
          content: f.content,
          ...(!f.create && lastCommit[f.path] ? { lastCommitId: lastCommit[f.path] } : {}),
        }));
        if (this.#options.updateMode === 'pull-request') {
          return await this.#propose(app, repo, branch, head, actions, message, path, plan.changes);
        }
        try {
          // `start_sha` would not stop a lost race; a stale `create`/`update` fails with 400 instead, and is re-planned.
          const commit = await this.#gl.api.Commits.create(repo, branch, message, actions);
          // Written right on the head that was read: the new head holds exactly the planned files, so the next
          // deploy finds them current from the branch read alone.
          if ((commit.parent_ids as string[] | undefined)?.[0] === head) {
            this.#remember(this.#current, cacheKey, String(commit.id));
          }
          return { path, changed: true, commitSha: String(commit.id), changes: plan.changes };
        } catch (err) {
          // 400: a file appeared or vanished since it was read (someone pushed meanwhile): read again and re-plan.
          if (!hasStatus(err, 400) || attempt >= MAX_WRITE_ATTEMPTS) throw err;
        }
      }
    } catch (err) {
      throw gitlabError(
        err,
        `writing the build pipeline of ${appKey(app)} to ${decodeURIComponent(project)}@${branch}`,
      );
    }
  }

  /**
   * Merge-request mode: the change goes to `flui/pipeline-<app>-<content hash>` (a fresh branch per content) and a
   * merge request into the app's branch, reused when already open. The deploy stops until it is merged.
   */
  async #propose(
    app: Application,
    repo: string,
    target: string,
    head: string,
    actions: { action: 'create' | 'update'; filePath: string; content: string; lastCommitId?: string }[],
    message: string,
    path: string,
    changes: string[],
  ): Promise<PipelineResult> {
    const digest = createHash('sha256').update(JSON.stringify(actions)).digest('hex').slice(0, 8);
    const source = `flui/pipeline-${appKey(app)}-${digest}`;
    let commitSha: string | undefined;
    if ((await this.#branchHead(repo, source)) === undefined) {
      const commit = await this.#gl.api.Commits.create(repo, source, message, actions, {
        startBranch: target,
      } as never);
      commitSha = String(commit.id);
    }
    const open = (await this.#gl.api.MergeRequests.all({
      projectId: repo,
      sourceBranch: source,
      targetBranch: target,
      state: 'opened',
    } as never)) as unknown as { web_url: string }[];
    const url =
      open[0]?.web_url ??
      (
        (await this.#gl.api.MergeRequests.create(repo, source, target, `Flui: build pipeline of ${appKey(app)}`, {
          description: `${changes.map((c) => `- ${c}`).join('\n')}\n\nFlui proposes this because the branch ${target} (at ${head.slice(0, 8)}) does not hold the pipeline the app's manifest needs. Merge it, then run \`flui retry ${app.metadata.name}\` or deploy again.`,
          removeSourceBranch: true,
        } as never)) as unknown as { web_url: string }
      ).web_url;
    return {
      path,
      changed: commitSha !== undefined,
      ...(commitSha ? { commitSha } : {}),
      pullRequestUrl: url,
      changes,
    };
  }

  /**
   * A static credential: key, its fingerprint in a plain CI/CD variable beside the masked password; one list of the
   * project's variables tells whether both are current. The instance's registry (job token) and "none": a password
   * stored before is removed, once per app and worker.
   *
   * A minted token (one per deploy), called right before the pipeline is created: written every time (a retry writes
   * a fresh one) into this app's own variable, masked and hidden. Key: the variable's name (the app's): the write
   * replaces its value whatever it was, and only the pipeline created next reads it, so repeating it is harmless.
   * One request (an update) once the variable exists.
   */
  async ensureCredential(
    app: Application,
    credential: RegistryCredential | RegistryToken | NoStoredCredential,
  ): Promise<CredentialResult> {
    const repo = app.spec.source.repository;
    const names = pushVariableNames(app);
    if ('token' in credential) {
      // A JWT is base64url parts joined by dots, which GitLab can mask as it is; anything else would be refused.
      if (!/^[A-Za-z0-9_.-]{8,}$/.test(credential.token)) {
        throw new ServiceError({
          service: 'GitLab',
          kind: 'invalid',
          message: `the registry token for ${credential.registry} holds characters GitLab cannot mask`,
        });
      }
      try {
        await this.#putVariable(repo, true, names.token, credential.token, { masked: true, masked_and_hidden: true });
      } catch (err) {
        throw gitlabError(err, `storing the registry token as a CI/CD variable of ${repo}`);
      }
      return { method: 'minted-token', secretName: names.token, changed: true };
    }
    try {
      const list = async () =>
        (await this.#gl.api.ProjectVariables.all(repo, { perPage: 100 } as never)) as unknown as {
          key: string;
          value: string | null;
        }[];
      if ('none' in credential) {
        const key = `${repo}\0${appKey(app)}`;
        if (this.#cleaned.has(key)) return { changed: false };
        // The stored password, not the token: the token is written again right before each dispatch anyway.
        const stored = [names.username, names.password, names.fingerprint];
        const present = (await list()).filter((v) => stored.includes(v.key));
        for (const v of present) {
          await this.#gl.api.ProjectVariables.remove(repo, v.key).catch((err: unknown) => {
            if (!hasStatus(err, 404)) throw err;
          });
        }
        this.#cleaned.add(key);
        if (this.#cleaned.size > MAX_CACHED) this.#cleaned.delete(this.#cleaned.values().next().value!);
        return { changed: present.length > 0 };
      }
      const fingerprint = await credentialFingerprint(credential);
      const result = { method: 'static' as const, secretName: names.password, fingerprint };
      const current = new Map((await list()).map((v) => [v.key, v.value]));
      if (
        current.get(names.fingerprint) === fingerprint &&
        current.has(names.password) &&
        current.has(names.username)
      ) {
        return { ...result, changed: false };
      }
      // A masked value must be at least 8 characters of the Base64 alphabet (plus `@:.~`): the password goes encoded.
      const encoded = Buffer.from(credential.password, 'utf8').toString('base64');
      if (encoded.length < 8) {
        throw new ServiceError({
          service: 'GitLab',
          kind: 'invalid',
          message: `the registry password for ${credential.registry} is too short for GitLab to mask (under 4 bytes)`,
        });
      }
      await this.#putVariable(repo, current.has(names.username), names.username, credential.username, {});
      // masked_and_hidden (GitLab 17.4+): never shown again, not even to maintainers; older servers ignore it and
      // keep the variable masked.
      await this.#putVariable(repo, current.has(names.password), names.password, encoded, {
        masked: true,
        masked_and_hidden: true,
      });
      await this.#putVariable(repo, current.has(names.fingerprint), names.fingerprint, fingerprint, {});
      return { ...result, changed: true };
    } catch (err) {
      throw gitlabError(err, `storing the registry credential as CI/CD variables of ${repo}`);
    }
  }

  /**
   * Writes the variable `key`: an update when it is believed to exist, a creation otherwise; when that belief is
   * wrong (deleted meanwhile: 404; created meanwhile: 400 "has already been taken"), the other, once.
   */
  async #putVariable(
    repo: string,
    exists: boolean,
    key: string,
    value: string,
    extra: Record<string, boolean>,
    retry = true,
  ): Promise<void> {
    // raw: the value is never expanded (a `$` in it stays a `$`); not protected: the app's branch may not be.
    const body = { value, raw: true, protected: false, description: 'Managed by Flui', ...extra };
    try {
      if (exists) {
        const { masked_and_hidden: _hidden, ...update } = body as typeof body & { masked_and_hidden?: boolean };
        await this.#gl.request('PUT', `projects/${projectId(repo)}/variables/${encodeURIComponent(key)}`, {
          body: update,
        });
      } else {
        await this.#gl.request('POST', `projects/${projectId(repo)}/variables`, { body: { key, ...body } });
      }
    } catch (err) {
      if (!retry || !hasStatus(err, exists ? 404 : 400)) throw err;
      await this.#putVariable(repo, !exists, key, value, extra, false);
    }
  }

  /**
   * Key: the pipeline's name, `ciRunName(runKey)` (the job file's `workflow:name`), among the project's API-started
   * pipelines on the app's branch (GitLab 16.9+ filters by name).
   */
  async findRun(app: Application, runKey: string): Promise<CiRunRef | undefined> {
    const repo = app.spec.source.repository;
    const name = ciRunName(runKey);
    try {
      const { body } = await this.#gl.request<PipelineObject[]>('GET', `projects/${projectId(repo)}/pipelines`, {
        query: { name, source: 'api', ref: app.spec.source.branch, order_by: 'id', sort: 'desc', per_page: 20 },
      });
      const found = body.find((p) => p.name === undefined || p.name === null || p.name === name);
      return found ? { id: String(found.id), htmlUrl: found.web_url } : undefined;
    } catch (err) {
      throw gitlabError(err, `looking for the pipeline "${name}" in ${repo}`);
    }
  }

  /**
   * Creates the pipeline with the run key in its inputs (GitLab 17.10+; pipeline variables may be refused by the
   * project's `pipeline_variables_minimum_override_role`, inputs are not). Not idempotent by itself: the caller looks
   * the run up with `findRun` first when an earlier attempt may have created it.
   */
  async trigger(app: Application, runKey: string): Promise<CiRunRef> {
    const repo = app.spec.source.repository;
    try {
      const { body } = await this.#gl.request<PipelineObject>('POST', `projects/${projectId(repo)}/pipeline`, {
        body: {
          ref: app.spec.source.branch,
          inputs: {
            [PIPELINE_INPUTS.app]: appKey(app),
            [PIPELINE_INPUTS.deployId]: runKey,
            [PIPELINE_INPUTS.imageTag]: ciImageTag(runKey),
            [PIPELINE_INPUTS.runName]: ciRunName(runKey),
          },
        },
      });
      return { id: String(body.id), htmlUrl: body.web_url };
    } catch (err) {
      const failure = gitlabError(err, `starting the pipeline for ${appKey(app)} in ${repo}`);
      if (failure.status === 400) {
        throw failure.withHint(
          'GitLab refused the pipeline (its configuration or inputs): run it once from the project\'s "Run pipeline" page to see why',
        );
      }
      throw failure;
    }
  }

  /**
   * One read per call (GitLab has no conditional requests); `pollAfterSeconds` spaces the next read by how long the
   * deploy has been waiting for the pipeline.
   */
  async status(app: Application, run: CiRunRef): Promise<RunStatusResponse> {
    const repo = app.spec.source.repository;
    try {
      const { body } = await this.#gl.request<PipelineObject>('GET', `projects/${projectId(repo)}/pipelines/${run.id}`);
      const webhook = this.#options.webhook;
      return { status: toRunState(body), pollAfterSeconds: (waited) => pollAfterSeconds(waited, webhook) };
    } catch (err) {
      throw gitlabError(err, `checking pipeline ${run.id} in ${repo}`);
    }
  }

  /** Key: the pipeline id. Cancelling a finished pipeline changes nothing. */
  async cancel(app: Application, run: CiRunRef): Promise<void> {
    const repo = app.spec.source.repository;
    try {
      await this.#gl.request('POST', `projects/${projectId(repo)}/pipelines/${run.id}/cancel`);
    } catch (err) {
      if (hasStatus(err, 400, 409)) return;
      throw gitlabError(err, `cancelling pipeline ${run.id} in ${repo}`);
    }
  }

  async logsUrl(_app: Application, run: CiRunRef): Promise<string> {
    return run.htmlUrl;
  }

  /**
   * The build job's log (`GET /projects/:id/jobs/:job_id/trace`, plain text; masked variables stay masked). The cursor
   * is `<job id>:<byte offset>`: GitLab returns the whole trace, from which only the bytes after the offset are given.
   */
  async readLogs(app: Application, run: CiRunRef, cursor?: string): Promise<LogChunk> {
    const repo = app.spec.source.repository;
    try {
      const [jobPart, offsetPart] = (cursor ?? '').split(':');
      let jobId = jobPart ? Number(jobPart) : undefined;
      const pipeline = (
        await this.#gl.request<PipelineObject>('GET', `projects/${projectId(repo)}/pipelines/${run.id}`)
      ).body;
      const finished = toRunState(pipeline).state === 'completed';
      let jobFinished = finished;
      if (!jobId) {
        const { body: jobs } = await this.#gl.request<{ id: number; name: string; status: string }[]>(
          'GET',
          `projects/${projectId(repo)}/pipelines/${run.id}/jobs`,
          { query: { per_page: 100 } },
        );
        const job = jobs.find((j) => j.name === jobName(app));
        if (!job) return { text: '', cursor: '', done: finished };
        jobId = job.id;
        jobFinished = ['success', 'failed', 'canceled', 'skipped'].includes(job.status) || finished;
      }
      const { body } = await this.#gl.request<string>('GET', `projects/${projectId(repo)}/jobs/${jobId}/trace`, {
        text: true,
      });
      const bytes = Buffer.from(body ?? '', 'utf8');
      const offset = Math.min(Number(offsetPart) || 0, bytes.length);
      return {
        text: bytes.subarray(offset).toString('utf8'),
        cursor: `${jobId}:${bytes.length}`,
        done: jobFinished && finished,
      };
    } catch (err) {
      throw gitlabError(err, `reading the log of pipeline ${run.id} in ${repo}`);
    }
  }
}
