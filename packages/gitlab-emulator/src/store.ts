/**
 * The emulator's state: projects (in nested groups) with their commits, branches, merge requests, CI/CD variables,
 * pipelines and jobs; tokens. Git objects are kept as GitLab shows them: a commit is a 40-hex SHA-1 over its tree and
 * parents, a blob id is git's own blob hash, so `blob_id`/`last_commit_id` behave like GitLab's.
 *
 * With a data dir, everything the emulator acknowledges is on disk before the answer leaves (the whole state as JSON,
 * written to a temp file and renamed over the old one), so a restarted emulator has every pipeline and variable it
 * confirmed. After `close()` nothing is written any more.
 */
import { createHash } from 'node:crypto';
import { gitBlobId, StateFile } from '@flui/emulator-kit/state-file';

export interface Commit {
  id: string;
  tree: Record<string, string>; // path -> blob id
  parents: string[];
  message: string;
  date: string;
}

/** GitLab's pipeline statuses (the subset the emulator reaches). */
export type PipelineStatus = 'created' | 'pending' | 'running' | 'success' | 'failed' | 'canceled' | 'skipped';
export type JobStatus = PipelineStatus;

export interface Job {
  id: number;
  name: string;
  stage: string;
  status: JobStatus;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  failureReason?: string;
  /** The job's log (what `/jobs/:id/trace` answers), line by line. */
  trace: string[];
  /** Whether the emulated runner pushed an image in this job. */
  build: boolean;
  /** The job's script (before_script then script), variables and image, from the YAML after interpolation. */
  script: string[];
  variables: Record<string, string>;
  image?: string;
}

export interface Pipeline {
  id: number;
  iid: number;
  projectId: number;
  /** `workflow:name` after interpolation, or null when the file names none. */
  name: string | null;
  status: PipelineStatus;
  ref: string;
  sha: string;
  beforeSha: string;
  source: string;
  inputs: Record<string, string | number | boolean | string[]>;
  /** Pipeline variables (`variables` of the create request). */
  variables: { key: string; value: string; variable_type: string }[];
  createdAt: string;
  updatedAt: string;
  startedAt?: string;
  finishedAt?: string;
  createdAtMs: number;
  finishedAtMs?: number;
  jobs: Job[];
  /** The stages of the pipeline's jobs, in order. */
  stages: string[];
  /** The image the build job pushed (`host/repo:tag`) and its digest. */
  image?: string;
  digest?: string;
  /** Bumped on every status change: webhook delivery ids derive from it. */
  revision: number;
}

export interface Variable {
  key: string;
  value: string;
  variableType: 'env_var' | 'file';
  protected: boolean;
  masked: boolean;
  hidden: boolean;
  raw: boolean;
  environmentScope: string;
  description: string | null;
}

export interface MergeRequest {
  id: number;
  iid: number;
  title: string;
  description: string | null;
  sourceBranch: string;
  targetBranch: string;
  state: 'opened' | 'closed' | 'merged';
  createdAt: string;
  updatedAt: string;
  sha: string;
}

/** A project hook added through the API (`POST /projects/:id/hooks`). */
export interface Hook {
  id: number;
  url: string;
  /** The secret token, sent as `X-Gitlab-Token`, never returned by the API. */
  token?: string;
  name: string;
  description: string;
  pushEvents: boolean;
  pipelineEvents: boolean;
  jobEvents: boolean;
  mergeRequestsEvents: boolean;
  enableSslVerification: boolean;
  createdAt: string;
  health: { failures: number; disabledUntil: number };
}

export type PipelineVariablesRole = 'no_one_allowed' | 'developer' | 'maintainer' | 'owner';

export interface Project {
  id: number;
  /** Full path, `group/sub/name`. */
  path: string;
  defaultBranch: string;
  createdAt: string;
  lastActivityAt: string;
  branches: Record<string, string>;
  commits: Record<string, Commit>;
  blobs: Record<string, string>; // blob id -> base64 content
  variables: Variable[];
  pipelines: Pipeline[];
  mergeRequests: MergeRequest[];
  /** Hooks added through the API (absent in state written before hooks existed). */
  hooks?: Hook[];
  pipelineVariablesRole: PipelineVariablesRole;
  /** The project's CI config path (GitLab's `ci_config_path`; default `.gitlab-ci.yml`). */
  ciConfigPath: string;
}

export type Role = 'guest' | 'reporter' | 'developer' | 'maintainer' | 'owner';
export const ROLE_LEVEL: Record<Role, number> = { guest: 10, reporter: 20, developer: 30, maintainer: 40, owner: 50 };

export interface Token {
  scopes: string[];
  /** Full paths of the projects it reaches (absent: every project). */
  projects?: string[];
  role: Role;
  expiresAt?: number;
}

export interface State {
  nextId: number;
  projects: Record<string, Project>; // by full path (lower case)
  tokens: Record<string, Token>;
}

export const now = (): string => new Date().toISOString();

/**
 * `record[key]` when `key` is the record's own: names from requests (paths, branches, tokens) must not find what every
 * object inherits (`toString`, `constructor`, `__proto__`).
 */
export function own<T>(record: Record<string, T>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}

export const blobId = gitBlobId;

export class Store {
  state: State;
  readonly #file: StateFile<State>;

  constructor(dataDir?: string) {
    this.#file = new StateFile<State>(dataDir, 'gitlab-emulator.json');
    // An unreadable file counts as a fresh data dir.
    this.state = this.#file.load(() => undefined) ?? { nextId: 1, projects: {}, tokens: {} };
  }

  id(): number {
    return this.state.nextId++;
  }

  save(): void {
    this.#file.save(this.state);
  }

  close(): void {
    this.#file.close();
  }

  /** A project by numeric id or full path (case-insensitive, as GitLab routes are). */
  project(idOrPath: string): Project | undefined {
    if (/^\d+$/.test(idOrPath)) {
      const id = Number(idOrPath);
      return Object.values(this.state.projects).find((p) => p.id === id);
    }
    return own(this.state.projects, idOrPath.toLowerCase());
  }

  /** Resolves a ref (branch or commit SHA, full or at least 7 characters) to a commit id. */
  resolve(project: Project, ref: string | undefined): string | undefined {
    const r = ref ?? project.defaultBranch;
    const branch = own(project.branches, r);
    if (branch) return branch;
    if (/^[0-9a-f]{7,40}$/.test(r)) return Object.keys(project.commits).find((c) => c.startsWith(r));
    return undefined;
  }

  file(project: Project, ref: string | undefined, path: string): { content: Buffer; blobId: string } | undefined {
    const sha = this.resolve(project, ref);
    const tree = sha ? own(project.commits, sha)?.tree : undefined;
    const blob = tree ? own(tree, path) : undefined;
    return blob ? { content: Buffer.from(own(project.blobs, blob)!, 'base64'), blobId: blob } : undefined;
  }

  /** Every file of a commit under `dir` (relative to it), as the build context sees them. */
  files(project: Project, sha: string, dir = '.'): Record<string, Buffer> {
    const prefix = dir.replace(/^\.\/?/, '').replace(/\/?$/, '/');
    const out: Record<string, Buffer> = {};
    for (const [path, blob] of Object.entries(project.commits[sha]?.tree ?? {})) {
      if (prefix === '/' || path.startsWith(prefix)) {
        out[prefix === '/' ? path : path.slice(prefix.length)] = Buffer.from(project.blobs[blob]!, 'base64');
      }
    }
    return out;
  }

  /** The last commit on `ref`'s history that changed `path` (GitLab's `last_commit_id`). */
  lastCommitOf(project: Project, head: string, path: string): string {
    let current = project.commits[head]!;
    for (;;) {
      const parent = current.parents[0] ? project.commits[current.parents[0]] : undefined;
      if (!parent || parent.tree[path] !== current.tree[path]) return current.id;
      current = parent;
    }
  }

  /**
   * Commits `changes` on `branch` (created from `start` or the default branch when new); `null` deletes a file.
   * Every call makes a commit, even one that changes nothing, as GitLab's Commits API does.
   */
  commit(
    project: Project,
    branch: string,
    changes: Record<string, Buffer | null>,
    message: string,
    start?: string,
  ): Commit {
    const parent = project.branches[branch] ?? (start ? this.resolve(project, start) : undefined);
    // No prototype: a file may be named `__proto__` or `toString`.
    const tree: Record<string, string> = Object.assign(
      Object.create(null),
      parent ? project.commits[parent]!.tree : {},
    );
    for (const [path, content] of Object.entries(changes)) {
      if (content === null) {
        delete tree[path];
        continue;
      }
      const id = blobId(content);
      project.blobs[id] = content.toString('base64');
      tree[path] = id;
    }
    const date = now();
    const parents = parent ? [parent] : [];
    const id = createHash('sha1')
      .update(JSON.stringify({ tree, parents, message, date, n: Object.keys(project.commits).length }))
      .digest('hex');
    const commit: Commit = { id, tree, parents, message, date };
    project.commits[id] = commit;
    project.branches[branch] = id;
    project.lastActivityAt = date;
    return commit;
  }
}
