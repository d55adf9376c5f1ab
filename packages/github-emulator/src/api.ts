/** What the emulator offers its users (tests, the dev stack): its options and its control object. */
import type { ContractChecker } from './contract.ts';
import type { Faults } from './faults.ts';
import type { Records } from './records.ts';
import type { Permissions, PullRequest, Run } from './store.ts';

/** A run as the emulator keeps it, plus the `html_url` the API reports for it. */
export type EmulatedRun = Run & { readonly htmlUrl: string };

export interface GitHubEmulatorOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0: a free port. */
  port?: number;
  /** Persist state here (survives a restart: repositories, tokens, apps, secrets, runs). */
  dataDir?: string;
  /** Registries the runner speaks plain HTTP to (default 127.0.0.1 and localhost). */
  registry?: { insecureHosts?: string[] };
  /** Where `workflow_run` webhooks go, and the secret they are signed with. */
  webhook?: { url: string; secret: string };
  /** Simulated durations: time in the queue, and the least time a build takes. */
  runner?: { queuedMs?: number; buildMs?: number };
  /** Validate every response against GitHub's OpenAPI description (default true). */
  contract?: boolean;
  /** Primary rate limit per token (per installation for its tokens) per hour (GitHub: 5000 for most). */
  rateLimit?: number;
}

/** An installation of a GitHub App on `account`: all its repositories, or the `repos` (`owner/name`) selected. */
export interface InstallationSpec {
  account: string;
  repos?: string[];
  permissions?: Permissions;
}

export interface RequestInfo {
  method: string;
  /** OpenAPI path template of the operation, e.g. `/repos/{owner}/{repo}/actions/runs/{run_id}`. */
  operation: string;
  repo?: string;
  status?: number;
  /** The token the request carried and what it grants (an emulator's view: tests check what a client sent). */
  credential?: {
    token: string;
    kind: 'fine-grained' | 'installation';
    installationId?: number;
    repos?: string[];
    permissions?: Permissions;
  };
}

export interface GitHubEmulator {
  /** Octokit's `baseUrl`, e.g. `http://127.0.0.1:PORT`. */
  url: string;
  /** Creates a repository (idempotent: an existing one is left as it is) with one initial commit of `files`. */
  createRepo(spec: {
    owner: string;
    name: string;
    defaultBranch?: string;
    files?: Record<string, string | Buffer>;
  }): Promise<{ fullName: string }>;
  /**
   * Commits files to a branch as a person would (moves the branch; a new one starts from the default branch;
   * `null` deletes a file). Returns the commit's sha.
   */
  push(fullName: string, branch: string, files: Record<string, string | Buffer | null>, message?: string): string;
  /** A protected branch takes changes only through merged pull requests (the contents API gets a 409). */
  protectBranch(fullName: string, branch: string, on?: boolean): void;
  /** A file's content at a branch or commit (default: the default branch). */
  file(fullName: string, path: string, ref?: string): string | undefined;
  /** The repository's runs, oldest first: the live records (they change as the runs proceed). */
  runs(fullName: string): EmulatedRun[];
  pulls(fullName: string): PullRequest[];
  /** Names of the repository's secrets, or of one of its environments' (undefined environment: the repository's). */
  secretNames(fullName: string, environment?: string): string[];
  /** A secret's plain value, opened with the repository's (or environment's) private key (what a run would see). */
  secretValue(fullName: string, name: string, environment?: string): string | undefined;
  /** A fine-grained token, optionally limited to repositories (`owner/name`) and permissions (absent: write). */
  createToken(spec?: { repos?: string[]; permissions?: Permissions; expiresInMs?: number }): string;
  /**
   * A GitHub App with its installations: `installations`, one per account (each optionally limited to repositories
   * of its account and to permissions), or one installation on every account limited by `repos` and `permissions`.
   * `installationId` is the first installation's.
   */
  createApp(spec?: {
    repos?: string[];
    permissions?: Permissions;
    installations?: InstallationSpec[];
    /** How long its installation tokens live (GitHub: an hour), for tests of renewal. */
    tokenExpiresInMs?: number;
  }): {
    appId: string;
    privateKey: string;
    installationId: number;
    installations: { id: number; account?: string }[];
  };
  /** Installs an existing app on one more account. */
  addInstallation(appId: string, spec: InstallationSpec): { installationId: number };
  /** Uninstalls: the installation is gone, and its tokens with it. */
  removeInstallation(appId: string, installationId: number): void;
  faults: Faults;
  records: Records;
  /** Contract check results: operations and responses checked, violations found. */
  contract: ContractChecker;
  /** Called before a request's handler runs and after it changed state, before the response is sent. */
  hooks: { before?: (info: RequestInfo) => void | Promise<void>; after?: (info: RequestInfo) => void | Promise<void> };
  stop(): Promise<void>;
}
