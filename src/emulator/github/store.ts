/**
 * The emulator's state: repositories (files by commit, branches), Actions secrets with a per-repository key pair,
 * variables, runs; tokens and GitHub Apps. Everything it acknowledges is on disk first when a data dir is given
 * (write to a temp file, then rename), so an emulator restart loses no run or secret.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sodium from 'libsodium-wrappers';

export interface Commit {
  tree: Record<string, string>; // path -> blob sha
  parents: string[];
  message: string;
  date: string;
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
  status: 'queued' | 'in_progress' | 'completed';
  conclusion: 'success' | 'failure' | 'cancelled' | null;
  createdAt: string;
  updatedAt: string;
  startedAt?: string;
  completedAt?: string;
  attempt: number;
  inputs: Record<string, string>;
  log: string[];
  digest?: string;
  /** The image the run pushed, `repo:tag`. */
  image?: string;
}

export interface Repo {
  id: number;
  owner: string;
  name: string;
  defaultBranch: string;
  branches: Record<string, string>;
  commits: Record<string, Commit>;
  blobs: Record<string, string>; // sha -> base64 content
  secrets: Record<string, { encrypted: string; createdAt: string; updatedAt: string }>;
  variables: Record<string, { value: string; createdAt: string; updatedAt: string }>;
  keyPair: { keyId: string; publicKey: string; privateKey: string };
  workflows: Record<string, number>; // path -> workflow id
  runs: Run[];
}

export interface Token {
  /** `owner/name` the token can see; all when undefined. */
  repos?: string[];
  kind: 'fine-grained' | 'installation';
  expiresAt?: string;
}

export interface State {
  nextId: number;
  repos: Record<string, Repo>;
  tokens: Record<string, Token>;
  apps: Record<string, { publicKeyPem: string; installationId: number }>;
}

export const now = () => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');

/** Git's blob id. */
export function blobSha(content: Buffer): string {
  return createHash('sha1').update(`blob ${content.length}\0`).update(content).digest('hex');
}

export class Store {
  state: State;
  readonly #file: string | undefined;

  constructor(dataDir?: string) {
    this.#file = dataDir ? join(dataDir, 'github-emulator.json') : undefined;
    if (dataDir) mkdirSync(dataDir, { recursive: true });
    let loaded: State | undefined;
    if (this.#file) {
      try {
        loaded = JSON.parse(readFileSync(this.#file, 'utf8')) as State;
      } catch {
        loaded = undefined;
      }
    }
    this.state = loaded ?? { nextId: 1000, repos: {}, tokens: {}, apps: {} };
  }

  /** Persist before acknowledging: callers save, then answer. */
  save(): void {
    if (!this.#file) return;
    const tmp = `${this.#file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(this.state));
    renameSync(tmp, this.#file);
  }

  id(): number {
    return this.state.nextId++;
  }

  repo(fullName: string): Repo | undefined {
    return this.state.repos[fullName.toLowerCase()];
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
      branches: {},
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
    };
    this.state.repos[`${owner}/${name}`.toLowerCase()] = repo;
    this.commit(repo, defaultBranch, files, 'Initial commit');
    this.save();
    return repo;
  }

  /** Writes `files` on top of the branch head as one commit; returns its sha. */
  commit(repo: Repo, branch: string, files: Record<string, string | Buffer>, message: string): string {
    const parent = repo.branches[branch];
    const tree = { ...(parent ? repo.commits[parent]?.tree : {}) };
    for (const [path, content] of Object.entries(files)) {
      const body = Buffer.isBuffer(content) ? content : Buffer.from(content);
      const sha = blobSha(body);
      repo.blobs[sha] = body.toString('base64');
      tree[path] = sha;
    }
    const date = now();
    const sha = createHash('sha1')
      .update(JSON.stringify({ tree, parent, message, date, n: this.id() }))
      .digest('hex');
    repo.commits[sha] = { tree, parents: parent ? [parent] : [], message, date };
    repo.branches[branch] = sha;
    return sha;
  }

  /** File content at a ref (branch name or commit sha). */
  file(repo: Repo, ref: string, path: string): { sha: string; content: Buffer } | undefined {
    const commit = repo.commits[repo.branches[ref] ?? ref];
    const sha = commit?.tree[path];
    if (!sha) return undefined;
    return { sha, content: Buffer.from(repo.blobs[sha] ?? '', 'base64') };
  }

  /** All files of a commit under `dir` (relative paths). */
  files(repo: Repo, sha: string, dir = '.'): Record<string, Buffer> {
    const prefix = dir === '.' || dir === '' ? '' : `${dir.replace(/\/+$/, '')}/`;
    const out: Record<string, Buffer> = {};
    for (const [path, blob] of Object.entries(repo.commits[sha]?.tree ?? {})) {
      if (path.startsWith(prefix)) out[path.slice(prefix.length)] = Buffer.from(repo.blobs[blob] ?? '', 'base64');
    }
    return out;
  }
}
