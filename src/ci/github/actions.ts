/**
 * GitHub Actions as Flui's CI backend. Every method is idempotent; the key that makes it so is on each method.
 * Requests are spent carefully: unchanged files and runs are checked with conditional requests (a 304 costs no
 * rate limit), and a steady-state deploy spends about five rate-limited requests whatever the build length.
 */
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { ApplicationFailure } from '@temporalio/activity';
import sodium from 'libsodium-wrappers';
import type {
  CiBackend,
  CredentialResult,
  PipelineResult,
  RegistryCredential,
  RunState,
  RunStatusResponse,
} from '../backend.ts';
import type { Config } from '../../config.ts';
import type { Application } from '../../manifest/schema.ts';
import { CI_RUN_NAME_PREFIX, type CiRunRef, type CiRunResult } from '../../workflows/api.ts';
import { FailureType } from '../../activities/types.ts';
import { createGitHubClient, githubFailure, hasStatus, type GitHubClient } from './octokit.ts';
import {
  pipelinePath,
  REGISTRY_PASSWORD_SECRET,
  REGISTRY_USERNAME_SECRET,
  renderPipelineFile,
} from './pipeline-file.ts';

export const FINGERPRINT_VARIABLE = 'FLUI_REGISTRY_FINGERPRINT';

/** Git's blob id of `content`: what the contents API reports as `sha`. */
export function gitBlobSha(content: string): string {
  const body = Buffer.from(content, 'utf8');
  return createHash('sha1').update(`blob ${body.length}\0`).update(body).digest('hex');
}

/** Non-reversible fingerprint of the credential, stored beside the secret to know whether it must be rewritten. */
export function credentialFingerprint(c: RegistryCredential): string {
  return createHash('sha256')
    .update(`flui-registry-credential\0${c.registry}\0${c.username}\0${c.password}`)
    .digest('hex')
    .slice(0, 32);
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

export class GitHubActionsBackend implements CiBackend {
  readonly name = 'github-actions';
  readonly #gh: GitHubClient;
  readonly #mode: Config['github']['updateMode'];
  /** Conditional-request validators of pipeline files: an unchanged file costs a 304. */
  readonly #fileEtags = new Map<string, { etag: string; sha: string }>();

  constructor(github: Config['github'], client: GitHubClient = createGitHubClient(github)) {
    this.#gh = client;
    this.#mode = github.updateMode;
  }

  /** Blob SHA of `path` on `ref`, or undefined when absent; conditional on the last ETag seen. */
  async #currentSha(owner: string, repo: string, path: string, ref: string): Promise<string | undefined> {
    const key = `${owner}/${repo}/${ref}/${path}`;
    const cached = this.#fileEtags.get(key);
    try {
      const res = await this.#gh.request('GET /repos/{owner}/{repo}/contents/{path}', {
        owner,
        repo,
        path,
        ref,
        headers: cached ? { 'if-none-match': cached.etag } : {},
      });
      const sha = Array.isArray(res.data) ? undefined : res.data.sha;
      if (sha && res.headers.etag) this.#fileEtags.set(key, { etag: res.headers.etag, sha });
      return sha;
    } catch (err) {
      if (hasStatus(err, 304) && cached) return cached.sha;
      if (hasStatus(err, 404)) return undefined;
      throw err;
    }
  }

  /** Key: the file's blob SHA. Writes (with the current `sha`, so a concurrent change is never lost) only when it differs. */
  async ensurePipeline(app: Application): Promise<PipelineResult> {
    const { owner, repo } = repoOf(app);
    const path = pipelinePath(app);
    const content = renderPipelineFile(app);
    const want = gitBlobSha(content);
    const base = app.spec.source.branch;
    try {
      const onBase = await this.#currentSha(owner, repo, path, base);
      if (onBase === want) return { path, changed: false };
      const branch = this.#mode === 'pull-request' ? await this.#ensureProposalBranch(owner, repo, app) : base;
      const commitSha = await this.#writeFile(owner, repo, path, branch, content, want);
      if (this.#mode === 'commit') return { path, changed: commitSha !== undefined, commitSha };
      const pullRequestUrl = await this.#ensurePullRequest(owner, repo, app, branch);
      throw ApplicationFailure.nonRetryable(
        `the build pipeline for ${app.metadata.name} changed and is proposed in ${pullRequestUrl}: merge it, then run \`flui retry ${app.metadata.name}\``,
        FailureType.Invalid,
        { pullRequestUrl },
      );
    } catch (err) {
      throw githubFailure(err, `writing ${path} to ${owner}/${repo}`);
    }
  }

  /** PUT with optimistic concurrency; a stale `sha` (409, or 422 when another writer created the file) re-reads. */
  async #writeFile(owner: string, repo: string, path: string, branch: string, content: string, want: string) {
    for (let attempt = 0; ; attempt++) {
      const current = await this.#currentSha(owner, repo, path, branch);
      if (current === want) return undefined;
      try {
        const res = await this.#gh.request('PUT /repos/{owner}/{repo}/contents/{path}', {
          owner,
          repo,
          path,
          branch,
          message: `Update Flui build pipeline (${path})`,
          content: Buffer.from(content).toString('base64'),
          ...(current ? { sha: current } : {}),
        });
        return res.data.commit.sha;
      } catch (err) {
        if (attempt < 3 && hasStatus(err, 409, 422)) continue;
        throw err;
      }
    }
  }

  async #ensureProposalBranch(owner: string, repo: string, app: Application): Promise<string> {
    const branch = `flui/pipeline-${app.metadata.name}`;
    try {
      await this.#gh.request('GET /repos/{owner}/{repo}/git/ref/{ref}', { owner, repo, ref: `heads/${branch}` });
    } catch (err) {
      if (!hasStatus(err, 404)) throw err;
      const base = await this.#gh.request('GET /repos/{owner}/{repo}/git/ref/{ref}', {
        owner,
        repo,
        ref: `heads/${app.spec.source.branch}`,
      });
      try {
        await this.#gh.request('POST /repos/{owner}/{repo}/git/refs', {
          owner,
          repo,
          ref: `refs/heads/${branch}`,
          sha: base.data.object.sha,
        });
      } catch (createErr) {
        if (!hasStatus(createErr, 422)) throw createErr; // created concurrently: fine
      }
    }
    return branch;
  }

  async #ensurePullRequest(owner: string, repo: string, app: Application, branch: string): Promise<string> {
    const open = await this.#gh.request('GET /repos/{owner}/{repo}/pulls', {
      owner,
      repo,
      head: `${owner}:${branch}`,
      state: 'open',
    });
    if (open.data[0]) return open.data[0].html_url;
    const created = await this.#gh.request('POST /repos/{owner}/{repo}/pulls', {
      owner,
      repo,
      head: branch,
      base: app.spec.source.branch,
      title: `Flui build pipeline for ${app.metadata.name}`,
      body: `Flui builds ${app.metadata.name} with this workflow. Merge it, then run \`flui retry ${app.metadata.name}\`.`,
    });
    return created.data.html_url;
  }

  /** Key: the credential fingerprint in the repository variable FLUI_REGISTRY_FINGERPRINT (written after the secrets). */
  async ensureCredential(app: Application, credential: RegistryCredential): Promise<CredentialResult> {
    const { owner, repo } = repoOf(app);
    const fingerprint = credentialFingerprint(credential);
    const result = { secretName: REGISTRY_PASSWORD_SECRET, fingerprint };
    try {
      let stored: string | undefined;
      try {
        const res = await this.#gh.request('GET /repos/{owner}/{repo}/actions/variables/{name}', {
          owner,
          repo,
          name: FINGERPRINT_VARIABLE,
        });
        stored = res.data.value;
      } catch (err) {
        if (!hasStatus(err, 404)) throw err;
      }
      if (stored === fingerprint) return { ...result, changed: false };

      const key = await this.#gh.request('GET /repos/{owner}/{repo}/actions/secrets/public-key', { owner, repo });
      await sodium.ready;
      const seal = (value: string) =>
        sodium.to_base64(
          sodium.crypto_box_seal(
            sodium.from_string(value),
            sodium.from_base64(key.data.key, sodium.base64_variants.ORIGINAL),
          ),
          sodium.base64_variants.ORIGINAL,
        );
      for (const [name, value] of [
        [REGISTRY_USERNAME_SECRET, credential.username],
        [REGISTRY_PASSWORD_SECRET, credential.password],
      ] as const) {
        await this.#gh.request('PUT /repos/{owner}/{repo}/actions/secrets/{secret_name}', {
          owner,
          repo,
          secret_name: name,
          encrypted_value: seal(value),
          key_id: key.data.key_id,
        });
      }
      if (stored === undefined) {
        try {
          await this.#gh.request('POST /repos/{owner}/{repo}/actions/variables', {
            owner,
            repo,
            name: FINGERPRINT_VARIABLE,
            value: fingerprint,
          });
          return { ...result, changed: true };
        } catch (err) {
          if (!hasStatus(err, 409, 422)) throw err; // created meanwhile: update it below
        }
      }
      await this.#gh.request('PATCH /repos/{owner}/{repo}/actions/variables/{name}', {
        owner,
        repo,
        name: FINGERPRINT_VARIABLE,
        value: fingerprint,
      });
      return { ...result, changed: true };
    } catch (err) {
      throw githubFailure(err, `storing the registry credential in ${owner}/${repo}`);
    }
  }

  /** Key: the run's name `flui <runKey>`. Looks through recent dispatched runs of the pipeline on the branch. */
  async findRun(app: Application, runKey: string): Promise<CiRunRef | undefined> {
    const { owner, repo } = repoOf(app);
    const title = `${CI_RUN_NAME_PREFIX}${runKey}`;
    try {
      for (let page = 1; page <= 3; page++) {
        const res = await this.#gh.request('GET /repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs', {
          owner,
          repo,
          workflow_id: pipelinePath(app).split('/').pop()!,
          branch: app.spec.source.branch,
          event: 'workflow_dispatch',
          per_page: 100,
          page,
        });
        const run = (res.data.workflow_runs as RunObject[]).find((r) => r.display_title === title || r.name === title);
        if (run) return { id: String(run.id), htmlUrl: run.html_url };
        if (res.data.workflow_runs.length < 100) return undefined;
      }
      return undefined;
    } catch (err) {
      if (hasStatus(err, 404)) return undefined; // the workflow is not on the branch yet: nothing was dispatched
      throw githubFailure(err, `looking for the CI run "${title}" in ${owner}/${repo}`);
    }
  }

  async trigger(app: Application, runKey: string): Promise<CiRunRef> {
    const { owner, repo } = repoOf(app);
    const workflowFile = pipelinePath(app).split('/').pop()!;
    try {
      const res = await this.#gh.request('POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches', {
        owner,
        repo,
        workflow_id: workflowFile,
        ref: app.spec.source.branch,
        inputs: { deploy_id: runKey },
        return_run_details: true,
      } as never);
      const details = res.data as { workflow_run_id?: number; html_url?: string } | undefined;
      if (res.status === 200 && details?.workflow_run_id) {
        return { id: String(details.workflow_run_id), htmlUrl: details.html_url ?? '' };
      }
      // 204: an older server (GHES) without run details. The run appears in the list within seconds.
      for (let i = 0; i < 10; i++) {
        const run = await this.findRun(app, runKey);
        if (run) return run;
        await sleep(1000);
      }
      throw ApplicationFailure.retryable(`dispatched "flui ${runKey}" but the run is not listed yet`, 'RunNotVisible');
    } catch (err) {
      throw githubFailure(err, `starting the CI run for ${app.metadata.name} in ${owner}/${repo}`);
    }
  }

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
      throw githubFailure(err, `checking CI run ${run.id} in ${owner}/${repo}`);
    }
  }

  /** Idempotent: 409 means the run already finished. */
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
      throw githubFailure(err, `cancelling CI run ${run.id} in ${owner}/${repo}`);
    }
  }

  async logsUrl(_app: Application, run: CiRunRef): Promise<string> {
    return run.htmlUrl;
  }
}
