/**
 * Response bodies as GitLab's REST API documentation shows them (each page's "Example response" and attribute
 * table), built from the emulator's state. Each builder is checked at compile time against `@gitbeaker/rest`'s
 * response type for the endpoint (`satisfies Pick<GitbeakerType, fields>`: every field the emulator sends that
 * gitbeaker knows must have gitbeaker's type), so the production client's view and the emulator cannot drift. Where
 * gitbeaker lacks a field or types it wrongly, the builder's type extends gitbeaker's and says so. At run time every
 * body is validated against the JSON Schemas in contract.ts.
 */
import type {
  BranchSchema,
  CommitSchema,
  ExpandedHookSchema,
  ExpandedCommitSchema,
  ExpandedPipelineSchema,
  JobSchema,
  MergeRequestSchema,
  PipelineSchema,
  ProjectSchema,
  ProjectVariableSchema,
  RepositoryFileExpandedSchema,
  RepositoryFileSchema,
  SimpleUserSchema,
  WebhookPipelineEventSchema,
} from '@gitbeaker/rest';
import type { Commit, Hook, Job, MergeRequest, Pipeline, Project, Variable } from './store.ts';

/** gitbeaker's `MappedOmit<SimpleUserSchema, 'created_at'>` (a plain `Omit` loses the keys of an index-signature type). */
type User = { [K in keyof SimpleUserSchema as K extends 'created_at' ? never : K]: SimpleUserSchema[K] };

/** The one user every emulated token acts as (a project bot, as project access tokens are on GitLab). */
export function user(base: string): User {
  return {
    id: 1,
    username: 'flui-bot',
    name: 'Flui bot',
    state: 'active',
    avatar_url: `${base}/uploads/-/system/user/avatar/1/avatar.png`,
    web_url: `${base}/flui-bot`,
  } satisfies User;
}

const name = (p: Project) => p.path.split('/').at(-1)!;
const namespace = (p: Project) => p.path.split('/').slice(0, -1).join('/');

/** `GET /projects/:id`. gitbeaker types `ci_pipeline_variables_minimum_override_role` as boolean; GitLab sends a role name. */
export function project(base: string, p: Project, version: string) {
  const ns = namespace(p);
  const body = {
    id: p.id,
    description: null,
    name: name(p),
    name_with_namespace: p.path.split('/').join(' / '),
    path: name(p),
    path_with_namespace: p.path,
    created_at: p.createdAt,
    default_branch: p.defaultBranch,
    topics: [],
    ssh_url_to_repo: `git@${new URL(base).host}:${p.path}.git`,
    http_url_to_repo: `${base}/${p.path}.git`,
    web_url: `${base}/${p.path}`,
    readme_url: null,
    forks_count: 0,
    avatar_url: null,
    star_count: 0,
    last_activity_at: p.lastActivityAt,
    namespace: {
      id: 1000 + p.id,
      name: ns.split('/').at(-1)!,
      path: ns.split('/').at(-1)!,
      kind: 'group',
      full_path: ns,
      parent_id: null,
      avatar_url: null,
      web_url: `${base}/groups/${ns}`,
    },
    visibility: 'private' as const,
    empty_repo: Object.keys(p.commits).length === 0,
    archived: false,
    updated_at: p.lastActivityAt,
    jobs_enabled: true,
    merge_requests_enabled: true,
  } satisfies Pick<
    ProjectSchema,
    | 'id'
    | 'description'
    | 'name'
    | 'name_with_namespace'
    | 'path'
    | 'path_with_namespace'
    | 'created_at'
    | 'default_branch'
    | 'topics'
    | 'ssh_url_to_repo'
    | 'http_url_to_repo'
    | 'web_url'
    | 'readme_url'
    | 'forks_count'
    | 'avatar_url'
    | 'star_count'
    | 'last_activity_at'
    | 'namespace'
    | 'visibility'
    | 'empty_repo'
    | 'archived'
    | 'updated_at'
    | 'jobs_enabled'
    | 'merge_requests_enabled'
  >;
  return {
    ...body,
    ci_config_path: p.ciConfigPath === '.gitlab-ci.yml' ? null : p.ciConfigPath,
    // A string role since GitLab 17.1 (`no_one_allowed`, `developer`, `maintainer`, `owner`); gitbeaker: boolean.
    ...(atLeast(version, '17.1') ? { ci_pipeline_variables_minimum_override_role: p.pipelineVariablesRole } : {}),
  };
}

function commitBase(base: string, p: Project, c: Commit) {
  const [title] = c.message.split('\n');
  return {
    id: c.id,
    short_id: c.id.slice(0, 8),
    created_at: c.date,
    parent_ids: c.parents,
    title: title!,
    message: c.message,
    author_name: 'Flui bot',
    author_email: 'flui-bot@example.invalid',
    authored_date: c.date,
    committer_name: 'Flui bot',
    committer_email: 'flui-bot@example.invalid',
    committed_date: c.date,
    web_url: `${base}/${p.path}/-/commit/${c.id}`,
  } satisfies Pick<
    CommitSchema,
    | 'id'
    | 'short_id'
    | 'created_at'
    | 'parent_ids'
    | 'title'
    | 'message'
    | 'author_name'
    | 'author_email'
    | 'authored_date'
    | 'committer_name'
    | 'committer_email'
    | 'committed_date'
    | 'web_url'
  >;
}

/** `POST /projects/:id/repository/commits` (201): the commit with `stats`, `status` and `last_pipeline`. */
export function commit(base: string, p: Project, c: Commit, stats: { additions: number; deletions: number }) {
  return {
    ...commitBase(base, p, c),
    stats: { ...stats, total: stats.additions + stats.deletions },
    status: null,
    last_pipeline: null,
    project_id: p.id,
    trailers: {},
    extended_trailers: {},
  } satisfies Pick<ExpandedCommitSchema, 'stats'> & Record<string, unknown>;
}

/** `GET /projects/:id/repository/branches/:branch`. */
export function branch(base: string, p: Project, nameOf: string) {
  const c = p.commits[p.branches[nameOf]!]!;
  const { web_url: _w, ...rest } = commitBase(base, p, c);
  return {
    name: nameOf,
    merged: false,
    protected: nameOf === p.defaultBranch,
    default: nameOf === p.defaultBranch,
    developers_can_push: false,
    developers_can_merge: false,
    can_push: true,
    web_url: `${base}/${p.path}/-/tree/${encodeURIComponent(nameOf)}`,
    commit: { ...rest, trailers: {}, extended_trailers: {}, web_url: _w },
  } satisfies Pick<
    BranchSchema,
    | 'name'
    | 'merged'
    | 'protected'
    | 'default'
    | 'developers_can_push'
    | 'developers_can_merge'
    | 'can_push'
    | 'web_url'
  > & {
    commit: Pick<BranchSchema['commit'], 'id' | 'short_id' | 'title' | 'message' | 'parent_ids'> &
      Record<string, unknown>;
  };
}

/** `GET /projects/:id/repository/files/:file_path`. */
export function file(
  filePath: string,
  ref: string,
  content: Buffer,
  ids: { blob: string; commit: string; lastCommit: string; sha256: string },
) {
  return {
    file_name: filePath.split('/').at(-1)!,
    file_path: filePath,
    size: content.length,
    encoding: 'base64',
    content: content.toString('base64'),
    content_sha256: ids.sha256,
    ref,
    blob_id: ids.blob,
    commit_id: ids.commit,
    last_commit_id: ids.lastCommit,
    execute_filemode: false,
  } satisfies RepositoryFileExpandedSchema;
}

/** `POST`/`PUT /projects/:id/repository/files/:file_path`. */
export const fileWritten = (filePath: string, branchName: string) =>
  ({ file_path: filePath, branch: branchName }) satisfies RepositoryFileSchema;

/**
 * A CI/CD variable. `hidden` exists since GitLab 17.4 (gitbeaker lacks it); a hidden variable's `value` is null
 * ("the value is never shown": project_level_variables docs), where gitbeaker's type says string.
 */
export function variable(v: Variable, version: string) {
  const body = {
    variable_type: v.variableType,
    key: v.key,
    protected: v.protected,
    masked: v.masked,
    environment_scope: v.environmentScope,
  } satisfies Pick<ProjectVariableSchema, 'variable_type' | 'key' | 'protected' | 'masked' | 'environment_scope'>;
  return {
    ...body,
    value: v.hidden ? null : v.value,
    ...(atLeast(version, '17.4') ? { hidden: v.hidden } : {}),
    raw: v.raw,
    description: v.description,
  };
}

const finished = (s: string) => ['success', 'failed', 'canceled', 'skipped'].includes(s);

/** `detailed_status` as the pipelines docs show it, per status. */
function detailedStatus(p: Project, pl: Pipeline) {
  const text = {
    success: 'passed',
    failed: 'failed',
    canceled: 'canceled',
    running: 'running',
    pending: 'pending',
    created: 'created',
    skipped: 'skipped',
  }[pl.status];
  return {
    icon: `status_${pl.status}`,
    text,
    label: text,
    group: pl.status,
    tooltip: text,
    has_details: true,
    details_path: `/${p.path}/-/pipelines/${pl.id}`,
    illustration: null,
    favicon: `/assets/ci_favicons/favicon_status_${pl.status}.png`,
  };
}

/**
 * A pipeline in lists (`GET /projects/:id/pipelines`). `name` (`workflow:name`, 16.3+ in responses) is missing from
 * gitbeaker's `PipelineSchema`: the type extends it.
 */
export function pipelineSummary(base: string, p: Project, pl: Pipeline) {
  return { ...pipelineRef(base, p, pl), name: pl.name } satisfies PipelineSchema & { name: string | null };
}

/** A pipeline as a job shows it: the list's fields but `name`. */
function pipelineRef(base: string, p: Project, pl: Pipeline) {
  return {
    id: pl.id,
    iid: pl.iid,
    project_id: p.id,
    sha: pl.sha,
    ref: pl.ref,
    status: pl.status,
    source: pl.source,
    created_at: pl.createdAt,
    updated_at: pl.updatedAt,
    web_url: `${base}/${p.path}/-/pipelines/${pl.id}`,
  };
}

/** A single pipeline (`GET /projects/:id/pipelines/:pipeline_id`, create, cancel). */
export function pipeline(base: string, p: Project, pl: Pipeline) {
  const started = pl.startedAt ? Date.parse(pl.startedAt) : undefined;
  const ended = pl.finishedAt ? Date.parse(pl.finishedAt) : undefined;
  return {
    ...pipelineSummary(base, p, pl),
    before_sha: pl.beforeSha,
    tag: false,
    yaml_errors: null,
    user: user(base),
    started_at: pl.startedAt ?? null,
    finished_at: pl.finishedAt ?? null,
    committed_at: null,
    duration: started !== undefined && ended !== undefined ? Math.round((ended - started) / 1000) : null,
    queued_duration: started !== undefined ? Math.round((started - Date.parse(pl.createdAt)) / 1000) : null,
    coverage: null,
    detailed_status: detailedStatus(p, pl),
  } satisfies Pick<ExpandedPipelineSchema, 'before_sha' | 'tag' | 'user' | 'detailed_status'> & Record<string, unknown>;
}

/** A job (`GET /projects/:id/pipelines/:pipeline_id/jobs`). */
export function job(base: string, p: Project, pl: Pipeline, j: Job) {
  const c = p.commits[pl.sha]!;
  const started = j.startedAt ? Date.parse(j.startedAt) : undefined;
  const ended = j.finishedAt ? Date.parse(j.finishedAt) : undefined;
  const body = {
    id: j.id,
    status: j.status,
    stage: j.stage,
    name: j.name,
    ref: pl.ref,
    tag: false,
    allow_failure: false,
    created_at: j.createdAt,
    web_url: `${base}/${p.path}/-/jobs/${j.id}`,
    tag_list: [],
    pipeline: pipelineRef(base, p, pl),
    commit: { ...commitBase(base, p, c) },
  } satisfies Pick<
    JobSchema,
    | 'id'
    | 'status'
    | 'stage'
    | 'name'
    | 'ref'
    | 'tag'
    | 'allow_failure'
    | 'created_at'
    | 'web_url'
    | 'tag_list'
    | 'pipeline'
  > & {
    commit: Pick<JobSchema['commit'], 'id' | 'short_id' | 'title' | 'message'>;
  };
  return {
    ...body,
    coverage: null,
    started_at: j.startedAt ?? null,
    finished_at: j.finishedAt ?? null,
    erased_at: null,
    duration: started !== undefined ? ((ended ?? Date.now()) - started) / 1000 : null,
    queued_duration: started !== undefined ? (started - Date.parse(j.createdAt)) / 1000 : null,
    user: user(base),
    artifacts: [],
    artifacts_expire_at: null,
    runner: j.startedAt
      ? {
          id: 1,
          description: 'flui-emulated-runner',
          ip_address: null,
          active: true,
          paused: false,
          is_shared: true,
          runner_type: 'instance_type',
          name: 'gitlab-runner',
          online: true,
          status: 'online',
        }
      : null,
    project: { ci_job_token_scope_enabled: false },
    archived: false,
    ...(j.failureReason ? { failure_reason: j.failureReason } : {}),
  };
}

/** A merge request (create, list). */
export function mergeRequest(base: string, p: Project, mr: MergeRequest) {
  const u = user(base);
  return {
    id: mr.id,
    iid: mr.iid,
    project_id: p.id,
    title: mr.title,
    description: mr.description,
    state: mr.state,
    created_at: mr.createdAt,
    updated_at: mr.updatedAt,
    web_url: `${base}/${p.path}/-/merge_requests/${mr.iid}`,
    merged_by: null,
    merged_at: null,
    closed_by: null,
    closed_at: null,
    target_branch: mr.targetBranch,
    source_branch: mr.sourceBranch,
    user_notes_count: 0,
    upvotes: 0,
    downvotes: 0,
    author: u,
    assignees: [],
    assignee: null,
    reviewers: [],
    source_project_id: p.id,
    target_project_id: p.id,
    labels: [],
    draft: false,
    work_in_progress: false,
    milestone: null,
    merge_when_pipeline_succeeds: false,
    merge_status: 'can_be_merged' as const,
    detailed_merge_status: 'mergeable' as const,
    sha: mr.sha,
    merge_commit_sha: null,
    squash_commit_sha: null,
    discussion_locked: null,
    should_remove_source_branch: null,
    force_remove_source_branch: false,
    reference: `!${mr.iid}`,
    references: { short: `!${mr.iid}`, relative: `!${mr.iid}`, full: `${p.path}!${mr.iid}` },
    squash: false,
    has_conflicts: false,
    blocking_discussions_resolved: true,
    prepared_at: mr.createdAt,
  } satisfies Pick<
    MergeRequestSchema,
    | 'id'
    | 'iid'
    | 'project_id'
    | 'title'
    | 'description'
    | 'state'
    | 'created_at'
    | 'updated_at'
    | 'web_url'
    | 'merged_by'
    | 'merged_at'
    | 'closed_by'
    | 'closed_at'
    | 'target_branch'
    | 'source_branch'
    | 'user_notes_count'
    | 'upvotes'
    | 'downvotes'
    | 'author'
    | 'assignees'
    | 'assignee'
    | 'reviewers'
    | 'source_project_id'
    | 'target_project_id'
    | 'labels'
    | 'draft'
    | 'work_in_progress'
    | 'milestone'
    | 'merge_when_pipeline_succeeds'
    | 'merge_status'
    | 'detailed_merge_status'
    | 'sha'
    | 'merge_commit_sha'
    | 'squash_commit_sha'
    | 'discussion_locked'
    | 'should_remove_source_branch'
    | 'force_remove_source_branch'
    | 'reference'
    | 'squash'
    | 'has_conflicts'
    | 'blocking_discussions_resolved'
    | 'prepared_at'
  > & { references: { short: string; relative: string; full: string } };
}

/**
 * The Pipeline Hook payload ("Pipeline events" in GitLab's webhook events docs). `object_attributes.name` since
 * 16.1, `url` since 16.1; gitbeaker's `WebhookPipelineEventSchema` has both.
 */
export function pipelineEvent(base: string, p: Project, pl: Pipeline) {
  const c = p.commits[pl.sha]!;
  const started = pl.startedAt ? Date.parse(pl.startedAt) : undefined;
  const ended = pl.finishedAt ? Date.parse(pl.finishedAt) : undefined;
  const u = user(base);
  const body = {
    object_kind: 'pipeline' as const,
    object_attributes: {
      id: pl.id,
      iid: pl.iid,
      name: pl.name ?? '',
      ref: pl.ref,
      tag: false,
      sha: pl.sha,
      before_sha: pl.beforeSha,
      source: pl.source,
      status: pl.status,
      detailed_status: detailedStatus(p, pl).text,
      stages: pl.stages,
      created_at: gitlabTime(pl.createdAt),
      finished_at: pl.finishedAt ? gitlabTime(pl.finishedAt) : (null as unknown as string),
      duration:
        started !== undefined && ended !== undefined
          ? Math.round((ended - started) / 1000)
          : (null as unknown as number),
      variables: pl.variables.map((v) => ({ key: v.key, value: v.value })),
      url: `${base}/${p.path}/-/pipelines/${pl.id}`,
    },
    merge_request: null,
    user: u,
    project: {
      id: p.id,
      name: name(p),
      description: '',
      web_url: `${base}/${p.path}`,
      avatar_url: null,
      git_ssh_url: `git@${new URL(base).host}:${p.path}.git`,
      git_http_url: `${base}/${p.path}.git`,
      namespace: namespace(p).split('/').at(-1)!,
      visibility_level: 0,
      path_with_namespace: p.path,
      default_branch: p.defaultBranch,
      homepage: `${base}/${p.path}`,
      url: `git@${new URL(base).host}:${p.path}.git`,
      ssh_url: `git@${new URL(base).host}:${p.path}.git`,
      http_url: `${base}/${p.path}.git`,
    },
    commit: {
      id: c.id,
      message: c.message,
      timestamp: c.date,
      url: `${base}/${p.path}/-/commit/${c.id}`,
      author: { name: 'Flui bot', email: 'flui-bot@example.invalid' },
    },
  } satisfies Pick<
    WebhookPipelineEventSchema,
    'object_kind' | 'object_attributes' | 'merge_request' | 'user' | 'project' | 'commit'
  >;
  return {
    ...body,
    source_pipeline: null,
    builds: pl.jobs.map((j) => ({
      id: j.id,
      stage: j.stage,
      name: j.name,
      status: j.status,
      created_at: gitlabTime(j.createdAt),
      started_at: j.startedAt ? gitlabTime(j.startedAt) : null,
      finished_at: j.finishedAt ? gitlabTime(j.finishedAt) : null,
      duration: j.startedAt && j.finishedAt ? (Date.parse(j.finishedAt) - Date.parse(j.startedAt)) / 1000 : null,
      queued_duration: j.startedAt ? (Date.parse(j.startedAt) - Date.parse(j.createdAt)) / 1000 : null,
      failure_reason: j.failureReason ?? null,
      when: 'on_success',
      manual: false,
      allow_failure: false,
      user: u,
      runner: j.startedAt
        ? {
            id: 1,
            description: 'flui-emulated-runner',
            active: true,
            runner_type: 'instance_type',
            is_shared: true,
            tags: [],
          }
        : null,
      artifacts_file: { filename: null, size: null },
      environment: null,
    })),
  };
}

/**
 * A project hook (project_webhooks.md). The secret token is never returned. gitbeaker's `ProjectHookSchema` names
 * the project `projectId` where GitLab sends `project_id`, so the check is against `ExpandedHookSchema`.
 */
export function hook(base: string, p: Project, h: Hook, alert: string) {
  const body = {
    id: h.id,
    url: h.url,
    created_at: h.createdAt,
    push_events: h.pushEvents,
    tag_push_events: false,
    merge_requests_events: h.mergeRequestsEvents,
    repository_update_events: false,
    enable_ssl_verification: h.enableSslVerification,
    push_events_branch_filter: '',
    issues_events: false,
    confidential_issues_events: false,
    note_events: false,
    confidential_note_events: false,
    job_events: h.jobEvents,
    pipeline_events: h.pipelineEvents,
    wiki_page_events: false,
    deployment_events: false,
    releases_events: false,
    alert_status: alert,
    url_variables: [],
  } satisfies ExpandedHookSchema;
  return {
    ...body,
    name: h.name,
    description: h.description,
    project_id: p.id,
    disabled_until: alert === 'temporarily_disabled' ? new Date(h.health.disabledUntil).toISOString() : null,
  };
}

/** GitLab's webhook timestamps: `2016-08-12 15:23:28 UTC`. */
export function gitlabTime(iso: string): string {
  return `${iso.slice(0, 19).replace('T', ' ')} UTC`;
}

/** `a >= b` for dotted versions (`17.10.0` ≥ `17.4`). */
export function atLeast(version: string, min: string): boolean {
  const a = version.split('.').map(Number);
  const b = min.split('.').map(Number);
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    if (x !== y) return x > y;
  }
  return true;
}

export { finished };
