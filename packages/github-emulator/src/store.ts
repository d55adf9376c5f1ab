/**
 * The emulator's state: repositories (files by commit, branches, pull requests), Actions secrets with a
 * per-repository key pair, variables, workflows and runs; tokens and GitHub Apps.
 *
 * With a data dir, everything the emulator acknowledges is on disk before the answer leaves (the whole state as JSON,
 * written to a temp file and renamed over the old one), so a restarted emulator has every run and secret it ever
 * confirmed. After `close()` nothing is written any more: a build still finishing in a stopped emulator cannot
 * overwrite what a new emulator on the same data dir wrote.
 */
import { createHash, randomBytes } from 'node:crypto';
import { gitBlobId, StateFile } from '@flui/emulator-kit/state-file';
import sodium from 'libsodium-wrappers';

export interface Commit {
  tree: Record<string, string>; // path -> blob sha
  parents: string[];
  message: string;
  date: string;
}

export type RunStatus = 'queued' | 'in_progress' | 'completed';
export type Conclusion = 'success' | 'failure' | 'cancelled';

export interface RunStep {
  number: number;
  name: string;
  status: RunStatus;
  conclusion: Conclusion | 'skipped' | null;
  startedAt?: string;
  completedAt?: string;
  log: string[];
}

export interface Run {
  id: number;
  runNumber: number;
  workflowId: number;
  workflowPath: string;
  workflowName: string;
  displayTitle: string;
  headBranch: string;
  headSha: string;
  event: string;
  status: RunStatus;
  conclusion: Conclusion | null;
  createdAt: string;
  updatedAt: string;
  startedAt?: string;
  completedAt?: string;
  attempt: number;
  inputs: Record<string, string>;
  /** The whole job log, line by line (what the log archive holds). */
  log: string[];
  /** The job's steps of the current attempt. */
  steps?: RunStep[];
  digest?: string;
  /** The image the run pushed, `repo:tag`. */
  image?: string;
  /** When it was created and completed, in ms since the epoch: GitHub's timestamps are whole seconds, too coarse to measure with. */
  createdAtMs?: number;
  completedAtMs?: number;
}

export interface PullRequest {
  number: number;
  id: number;
  title: string;
  body: string | null;
  head: string;
  base: string;
  state: 'open' | 'closed';
  merged: boolean;
  mergeCommitSha: string | null;
  createdAt: string;
  updatedAt: string;
  closedAt: string | null;
  mergedAt: string | null;
}

export interface Repo {
  id: number;
  owner: string;
  name: string;
  defaultBranch: string;
  createdAt: string;
  pushedAt: string;
  branches: Record<string, string>;
  /** Branches that only accept changes through a merged pull request (a ruleset). */
  protectedBranches: string[];
  commits: Record<string, Commit>;
  blobs: Record<string, string>; // sha -> base64 content
  secrets: Record<string, { encrypted: string; createdAt: string; updatedAt: string }>;
  variables: Record<string, { value: string; createdAt: string; updatedAt: string }>;
  keyPair: { keyId: string; publicKey: string; privateKey: string };
  /** Tags: name → the object it points at (a commit, or an annotated tag object of `tagObjects`). */
  tags?: Record<string, string>;
  /** Annotated tag objects by their sha. */
  tagObjects?: Record<string, TagObject>;
  /** GitHub Environments by name as created (looked up case-insensitively), each with its own secrets and key. */
  environments?: Record<string, Environment>;
  workflows: Record<string, number>; // path -> workflow id
  runs: Run[];
  pulls: PullRequest[];
}

export interface TagObject {
  tag: string;
  message: string;
  /** What the tag points at: a commit, or another tag object. */
  object: { sha: string; type: 'commit' | 'tag' };
  tagger: { name: string; email: string; date: string };
}

export interface Environment {
  id: number;
  name: string;
  createdAt: string;
  updatedAt: string;
  secrets: Record<string, { encrypted: string; createdAt: string; updatedAt: string }>;
  keyPair: { keyId: string; publicKey: string; privateKey: string };
}

export type Permission = 'read' | 'write' | 'none';
/** Fine-grained permission areas the emulated operations need. Absent: write. */
export const PERMISSION_AREAS = ['contents', 'actions', 'secrets', 'variables', 'pull_requests', 'metadata'] as const;
export type PermissionArea = (typeof PERMISSION_AREAS)[number];
export type Permissions = Partial<Record<PermissionArea, Permission>>;

export interface Token {
  /** `owner/name` the token can see; all when undefined. */
  repos?: string[];
  /** An installation token sees only the repositories of the account its installation is on. */
  owner?: string;
  kind: 'fine-grained' | 'installation';
  /** The installation an installation token was issued for: its requests count against that installation's limit. */
  installationId?: number;
  expiresAt?: string;
  permissions?: Permissions;
}

/** One installation of a GitHub App, on one account (a user or an organization). */
export interface Installation {
  id: number;
  /** The account the app is installed on; undefined: every account (an emulator shortcut, not GitHub's model). */
  account?: string;
  /** The repositories it covers (`owner/name`, "selected"); all of the account's when undefined. */
  repos?: string[];
  /** What the account granted; an area absent from it gets the app's default. */
  permissions?: Permissions;
}

export interface App {
  publicKeyPem: string;
  installations: Installation[];
  /** How long installation tokens live; an hour (GitHub's) when undefined. */
  tokenExpiresInMs?: number;
}

/** Whether `installation` covers the repository `fullName` (names ignore case, as GitHub's do). */
export function covers(installation: Installation, fullName: string): boolean {
  const full = fullName.toLowerCase();
  const owner = full.split('/')[0];
  if (installation.account !== undefined && installation.account.toLowerCase() !== owner) return false;
  return !installation.repos || installation.repos.some((r) => r.toLowerCase() === full);
}

export interface State {
  nextId: number;
  repos: Record<string, Repo>;
  tokens: Record<string, Token>;
  apps: Record<string, App>;
}

export const now = () => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');

/** Git's blob id. */
export const blobSha = gitBlobId;

export class Store {
  state: State;
  readonly #file: StateFile<State>;

  constructor(dataDir?: string) {
    this.#file = new StateFile<State>(dataDir, 'github-emulator.json');
    // A missing file is a fresh start; an unreadable one must not be silently replaced by an empty state.
    const loaded = this.#file.load((file, err) => {
      throw new Error(`GitHub emulator: cannot read its state ${file}: ${err.message}`, { cause: err });
    });
    this.state = loaded ?? { nextId: 1000, repos: {}, tokens: {}, apps: {} };
    for (const repo of Object.values(this.state.repos)) upgrade(repo);
    for (const app of Object.values(this.state.apps)) upgradeApp(app);
  }

  /** Persist before acknowledging: callers save, then answer. */
  save(): void {
    this.#file.save(this.state);
  }

  /** Writes the state one last time and never again. */
  close(): void {
    this.save();
    this.#file.close();
  }

  id(): number {
    return this.state.nextId++;
  }

  repo(fullName: string): Repo | undefined {
    return this.state.repos[fullName.toLowerCase()];
  }

  /** The repository's environment of that name (case-insensitive), created when `create` and absent. */
  environment(repo: Repo, name: string, create = true): Environment | undefined {
    const found = Object.values(repo.environments ?? {}).find((e) => e.name.toLowerCase() === name.toLowerCase());
    if (found || !create) return found;
    const kp = sodium.crypto_box_keypair();
    const environment: Environment = {
      id: this.id(),
      name,
      createdAt: now(),
      updatedAt: now(),
      secrets: {},
      keyPair: {
        keyId: String(this.id()) + randomBytes(4).toString('hex'),
        publicKey: sodium.to_base64(kp.publicKey, sodium.base64_variants.ORIGINAL),
        privateKey: sodium.to_base64(kp.privateKey, sodium.base64_variants.ORIGINAL),
      },
    };
    (repo.environments ??= {})[name] = environment;
    this.save();
    return environment;
  }

  async createRepo(
    owner: string,
    name: string,
    defaultBranch: string,
    files: Record<string, string | Buffer>,
  ): Promise<Repo> {
    await sodium.ready;
    const kp = sodium.crypto_box_keypair();
    const repo: Repo = {
      id: this.id(),
      owner,
      name,
      defaultBranch,
      createdAt: now(),
      pushedAt: now(),
      branches: {},
      protectedBranches: [],
      commits: {},
      blobs: {},
      secrets: {},
      variables: {},
      keyPair: {
        keyId: String(this.id()) + randomBytes(4).toString('hex'),
        publicKey: sodium.to_base64(kp.publicKey, sodium.base64_variants.ORIGINAL),
        privateKey: sodium.to_base64(kp.privateKey, sodium.base64_variants.ORIGINAL),
      },
      workflows: {},
      runs: [],
      pulls: [],
    };
    this.state.repos[`${owner}/${name}`.toLowerCase()] = repo;
    this.commit(repo, defaultBranch, files, 'Initial commit');
    this.save();
    return repo;
  }

  /**
   * Writes `files` on top of the branch head as one commit and moves the branch; returns the commit's sha. A `null`
   * content deletes the file. `parents` overrides the parent list (merge commits).
   */
  commit(
    repo: Repo,
    branch: string,
    files: Record<string, string | Buffer | null>,
    message: string,
    parents?: string[],
  ): string {
    const parent = repo.branches[branch];
    const tree = { ...(parent ? repo.commits[parent]?.tree : {}) };
    for (const [path, content] of Object.entries(files)) {
      if (content === null) {
        delete tree[path];
        continue;
      }
      const body = Buffer.isBuffer(content) ? content : Buffer.from(content);
      const sha = blobSha(body);
      repo.blobs[sha] = body.toString('base64');
      tree[path] = sha;
    }
    const date = now();
    const sha = createHash('sha1')
      .update(JSON.stringify({ tree, parent, message, date, n: this.id() }))
      .digest('hex');
    repo.commits[sha] = { tree, parents: parents ?? (parent ? [parent] : []), message, date };
    repo.branches[branch] = sha;
    repo.pushedAt = date;
    return sha;
  }

  /** The commit a ref names: a branch, `refs/heads/<branch>`, or a commit sha. */
  resolve(repo: Repo, ref: string): string | undefined {
    const branch = ref.replace(/^refs\/heads\//, '');
    const sha = repo.branches[branch] ?? ref;
    return repo.commits[sha] ? sha : undefined;
  }

  /** File content at a ref (branch name or commit sha). */
  file(repo: Repo, ref: string, path: string): { sha: string; content: Buffer } | undefined {
    const commit = repo.commits[this.resolve(repo, ref) ?? ''];
    const sha = commit?.tree[path];
    if (!sha) return undefined;
    return { sha, content: Buffer.from(repo.blobs[sha] ?? '', 'base64') };
  }

  /** The entries directly under directory `dir` at a ref: files and subdirectories. */
  list(repo: Repo, ref: string, dir: string): { name: string; path: string; sha?: string; type: 'file' | 'dir' }[] {
    const tree = repo.commits[this.resolve(repo, ref) ?? '']?.tree ?? {};
    const prefix = dir ? `${dir.replace(/\/+$/, '')}/` : '';
    const seen = new Map<string, { name: string; path: string; sha?: string; type: 'file' | 'dir' }>();
    for (const [path, sha] of Object.entries(tree)) {
      if (!path.startsWith(prefix)) continue;
      const [name, ...rest] = path.slice(prefix.length).split('/');
      if (!name || seen.has(name)) continue;
      seen.set(name, rest.length ? { name, path: prefix + name, type: 'dir' } : { name, path, sha, type: 'file' });
    }
    return [...seen.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  /** All files of a commit under `dir` (relative paths). */
  files(repo: Repo, sha: string, dir = '.'): Record<string, Buffer> {
    const prefix = dir === '.' || dir === '' ? '' : `${dir.replace(/^\.\//, '').replace(/\/+$/, '')}/`;
    const out: Record<string, Buffer> = {};
    for (const [path, blob] of Object.entries(repo.commits[sha]?.tree ?? {})) {
      if (path.startsWith(prefix)) out[path.slice(prefix.length)] = Buffer.from(repo.blobs[blob] ?? '', 'base64');
    }
    return out;
  }

  /** Every commit reachable from `sha`, itself included. */
  ancestors(repo: Repo, sha: string): Set<string> {
    const seen = new Set<string>();
    const todo = [sha];
    while (todo.length) {
      const next = todo.pop()!;
      if (seen.has(next) || !repo.commits[next]) continue;
      seen.add(next);
      todo.push(...repo.commits[next]!.parents);
    }
    return seen;
  }

  /** The nearest common ancestor of two commits (breadth first from `a`). */
  mergeBase(repo: Repo, a: string, b: string): string | undefined {
    const ofB = this.ancestors(repo, b);
    const queue = [a];
    const seen = new Set<string>();
    while (queue.length) {
      const next = queue.shift()!;
      if (seen.has(next)) continue;
      seen.add(next);
      if (ofB.has(next)) return next;
      queue.push(...(repo.commits[next]?.parents ?? []));
    }
    return undefined;
  }
}

/** An app as older emulators stored it: exactly one installation, its fields on the app. */
type AppOfOlderState = Partial<App> & { installationId?: number; repos?: string[]; permissions?: Permissions };

/** Folds the one installation of an app stored by an older emulator into `installations`. */
function upgradeApp(app: AppOfOlderState): void {
  if (app.installations || app.installationId === undefined) return;
  app.installations = [{ id: app.installationId, repos: app.repos, permissions: app.permissions }];
  delete app.installationId;
  delete app.repos;
  delete app.permissions;
}

/** Fills in fields that state files written by older emulators lack. */
function upgrade(repo: Repo): void {
  repo.pulls ??= [];
  repo.protectedBranches ??= [];
  repo.createdAt ??= now();
  repo.pushedAt ??= repo.createdAt;
}
