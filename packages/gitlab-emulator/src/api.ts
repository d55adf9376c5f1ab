/** What the emulator offers its users (tests, the dev stack): its options and its control object. */
import type { ContractChecker } from './contract.ts';
import type { Faults } from './faults.ts';
import type { Records } from './records.ts';
import type { MergeRequest, Pipeline, PipelineVariablesRole, Role } from './store.ts';

/** A pipeline as the emulator keeps it (live: it changes as the pipeline proceeds), plus its `web_url`. */
export type EmulatedPipeline = Pipeline & { readonly webUrl: string };

export interface GitLabEmulatorOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0: a free port. */
  port?: number;
  /** Persist state here (survives a restart: projects, tokens, variables, pipelines). */
  dataDir?: string;
  /**
   * Registries the runner speaks plain HTTP to (default 127.0.0.1 and localhost), and optionally a real registry
   * standing in for GitLab's container registry: jobs then get `CI_REGISTRY`, `CI_REGISTRY_IMAGE`,
   * `CI_REGISTRY_USER` and `CI_REGISTRY_PASSWORD` (this static credential, where GitLab gives a per-job one).
   */
  registry?: { insecureHosts?: string[]; ciRegistry?: { host: string; username: string; password: string } };
  /**
   * The project hook every project has: Pipeline events to `url`, with `token` as `X-Gitlab-Token`; optionally
   * signed with `signingToken`, and auto-disabled after failures like gitlab.com's (`autoDisable`; webhooks.ts).
   */
  webhook?: { url: string; token: string; signingToken?: string; autoDisable?: boolean; autoDisableBaseMs?: number };
  /** Simulated durations: time pending before a runner picks the pipeline up, and the least time a job takes. */
  runner?: { pendingMs?: number; buildMs?: number };
  /** Requests per minute per token (gitlab.com's authenticated API limit: 2000). */
  rateLimit?: number;
  /** Validate every response against the JSON Schemas of contract.ts (default true). */
  contract?: boolean;
  /**
   * The GitLab version emulated (default `17.10.0`): `masked_and_hidden`/`hidden` need 17.4, pipeline `inputs` 17.10,
   * the pipelines list's `name` filter 16.9, `ci_pipeline_variables_minimum_override_role` as a role name 17.1.
   * An older version ignores the newer parameters, as GitLab's API ignores parameters it does not know.
   */
  version?: string;
}

export interface RequestInfo {
  method: string;
  /** The documented path of the operation, e.g. `/projects/:id/pipelines/:pipeline_id`. */
  operation: string;
  /** The project's full path, when the request names one. */
  project?: string;
  status?: number;
  credential?: { token: string; scopes: string[]; role: Role; projects?: string[] };
}

export interface GitLabEmulator {
  /** The base URL; the API is at `${url}/api/v4` (gitbeaker's `host`). */
  url: string;
  /** The GitLab version it emulates. */
  version: string;
  /**
   * A personal/project access token (`glpat-…`): `scopes` (default `['api']`; `read_api` reads only), limited to
   * `projects` (full paths; absent: all), acting with `role` (default maintainer), expiring after `expiresInMs`.
   */
  createToken(spec?: { scopes?: string[]; projects?: string[]; expiresInMs?: number; role?: Role }): string;
  /** Creates a project (idempotent: an existing one is left as it is) with one initial commit of `files`. */
  createProject(spec: {
    path: string;
    defaultBranch?: string;
    files?: Record<string, string | Buffer>;
    pipelineVariablesRole?: PipelineVariablesRole;
    ciConfigPath?: string;
  }): Promise<{ id: number; path: string }>;
  /** Commits files as a person would (moves the branch; a new one starts from the default branch; null deletes). */
  push(path: string, branch: string, files: Record<string, string | Buffer | null>, message?: string): string;
  /** A file's content at a branch or commit (default: the default branch). */
  file(path: string, filePath: string, ref?: string): string | undefined;
  /** The project's pipelines, oldest first: the live records. */
  pipelines(path: string): EmulatedPipeline[];
  mergeRequests(path: string): MergeRequest[];
  /** The project's CI/CD variables without their values. */
  variables(path: string): { key: string; masked: boolean; hidden: boolean; protected: boolean; raw: boolean }[];
  /** A variable's value (what a job would see), hidden or not. */
  variableValue(path: string, key: string): string | undefined;
  /** A job's trace (the whole log). */
  trace(path: string, jobId: number): string | undefined;
  faults: Faults;
  records: Records;
  contract: ContractChecker;
  /** Called before a request's handler runs and after it changed state, before the response is sent. */
  hooks: { before?: (info: RequestInfo) => void | Promise<void>; after?: (info: RequestInfo) => void | Promise<void> };
  stop(): Promise<void>;
}
