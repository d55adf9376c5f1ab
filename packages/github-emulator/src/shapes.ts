/** GitHub's response objects, built from the emulator's state with every field GitHub's schemas require. */
import type { PullRequest, Repo, Run } from './store.ts';

export function user(api: string, login: string, id: number) {
  const u = `${api}/users/${login}`;
  return {
    login,
    id,
    node_id: Buffer.from(`User:${id}`).toString('base64'),
    avatar_url: `${api}/avatars/${login}`,
    gravatar_id: '',
    url: u,
    html_url: `${api.replace('/api/v3', '')}/${login}`,
    followers_url: `${u}/followers`,
    following_url: `${u}/following{/other_user}`,
    gists_url: `${u}/gists{/gist_id}`,
    starred_url: `${u}/starred{/owner}{/repo}`,
    subscriptions_url: `${u}/subscriptions`,
    organizations_url: `${u}/orgs`,
    repos_url: `${u}/repos`,
    events_url: `${u}/events{/privacy}`,
    received_events_url: `${u}/received_events`,
    type: 'Organization',
    site_admin: false,
  };
}

export function htmlBase(api: string): string {
  return `${api}/_html`;
}

export function minimalRepo(api: string, repo: Repo) {
  const full = `${repo.owner}/${repo.name}`;
  const u = `${api}/repos/${full}`;
  const urls = Object.fromEntries(
    [
      ['archive_url', '/{archive_format}{/ref}'],
      ['assignees_url', '/assignees{/user}'],
      ['blobs_url', '/git/blobs{/sha}'],
      ['branches_url', '/branches{/branch}'],
      ['collaborators_url', '/collaborators{/collaborator}'],
      ['comments_url', '/comments{/number}'],
      ['commits_url', '/commits{/sha}'],
      ['compare_url', '/compare/{base}...{head}'],
      ['contents_url', '/contents/{+path}'],
      ['contributors_url', '/contributors'],
      ['deployments_url', '/deployments'],
      ['downloads_url', '/downloads'],
      ['events_url', '/events'],
      ['forks_url', '/forks'],
      ['git_commits_url', '/git/commits{/sha}'],
      ['git_refs_url', '/git/refs{/sha}'],
      ['git_tags_url', '/git/tags{/sha}'],
      ['hooks_url', '/hooks'],
      ['issue_comment_url', '/issues/comments{/number}'],
      ['issue_events_url', '/issues/events{/number}'],
      ['issues_url', '/issues{/number}'],
      ['keys_url', '/keys{/key_id}'],
      ['labels_url', '/labels{/name}'],
      ['languages_url', '/languages'],
      ['merges_url', '/merges'],
      ['milestones_url', '/milestones{/number}'],
      ['notifications_url', '/notifications{?since,all,participating}'],
      ['pulls_url', '/pulls{/number}'],
      ['releases_url', '/releases{/id}'],
      ['stargazers_url', '/stargazers'],
      ['statuses_url', '/statuses/{sha}'],
      ['subscribers_url', '/subscribers'],
      ['subscription_url', '/subscription'],
      ['tags_url', '/tags'],
      ['teams_url', '/teams'],
      ['trees_url', '/git/trees{/sha}'],
    ].map(([k, v]) => [k!, `${u}${v}`]),
  );
  return {
    id: repo.id,
    node_id: Buffer.from(`Repository:${repo.id}`).toString('base64'),
    name: repo.name,
    full_name: full,
    owner: user(api, repo.owner, repo.id + 1),
    private: true,
    html_url: `${htmlBase(api)}/${full}`,
    description: null,
    fork: false,
    url: u,
    ...urls,
  };
}

/**
 * The repository as GET /repos/{owner}/{repo} returns it; also what pull requests and webhooks embed (their schemas
 * require a few fields the REST one does not, e.g. `has_downloads`).
 */
export function fullRepo(api: string, repo: Repo) {
  const full = `${repo.owner}/${repo.name}`;
  const html = `${htmlBase(api)}/${full}`;
  const openPulls = repo.pulls.filter((p) => p.state === 'open').length;
  return {
    ...minimalRepo(api, repo),
    clone_url: `${html}.git`,
    git_url: `${html.replace(/^https?:/, 'git:')}.git`,
    ssh_url: `git@emulator:${full}.git`,
    svn_url: html,
    mirror_url: null,
    homepage: null,
    language: null,
    license: null,
    default_branch: repo.defaultBranch,
    forks: 0,
    forks_count: 0,
    stargazers_count: 0,
    watchers: 0,
    watchers_count: 0,
    open_issues: openPulls,
    open_issues_count: openPulls,
    size: Object.keys(repo.blobs).length,
    has_issues: true,
    has_projects: false,
    has_wiki: false,
    has_pages: false,
    has_downloads: true,
    has_discussions: false,
    archived: false,
    disabled: false,
    visibility: 'private',
    pushed_at: repo.pushedAt,
    created_at: repo.createdAt,
    updated_at: repo.pushedAt,
    permissions: { admin: true, maintain: true, push: true, triage: true, pull: true },
    allow_forking: false,
    is_template: false,
    web_commit_signoff_required: false,
    topics: [],
    network_count: 0,
    subscribers_count: 0,
  };
}

export function workflow(api: string, repo: Repo, id: number, path: string, name: string) {
  const full = `${repo.owner}/${repo.name}`;
  return {
    id,
    node_id: Buffer.from(`Workflow:${id}`).toString('base64'),
    name,
    path,
    state: 'active',
    created_at: repo.createdAt,
    updated_at: repo.pushedAt,
    url: `${api}/repos/${full}/actions/workflows/${id}`,
    html_url: `${htmlBase(api)}/${full}/blob/${repo.defaultBranch}/${path}`,
    badge_url: `${htmlBase(api)}/${full}/workflows/${encodeURIComponent(name)}/badge.svg`,
  };
}

export function pullRequest(api: string, repo: Repo, pr: PullRequest, heads: { head: string; base: string }) {
  const full = `${repo.owner}/${repo.name}`;
  const u = `${api}/repos/${full}/pulls/${pr.number}`;
  const issue = `${api}/repos/${full}/issues/${pr.number}`;
  const html = `${htmlBase(api)}/${full}/pull/${pr.number}`;
  const r = fullRepo(api, repo);
  const owner = user(api, repo.owner, repo.id + 1);
  const side = (ref: string, sha: string) => ({ label: `${repo.owner}:${ref}`, ref, sha, user: owner, repo: r });
  return {
    url: u,
    id: pr.id,
    node_id: Buffer.from(`PullRequest:${pr.id}`).toString('base64'),
    html_url: html,
    diff_url: `${html}.diff`,
    patch_url: `${html}.patch`,
    issue_url: issue,
    commits_url: `${u}/commits`,
    review_comments_url: `${u}/comments`,
    review_comment_url: `${api}/repos/${full}/pulls/comments{/number}`,
    comments_url: `${issue}/comments`,
    statuses_url: `${api}/repos/${full}/statuses/${heads.head}`,
    number: pr.number,
    state: pr.state,
    locked: false,
    title: pr.title,
    user: user(api, 'flui-bot', 1),
    body: pr.body,
    labels: [],
    milestone: null,
    active_lock_reason: null,
    created_at: pr.createdAt,
    updated_at: pr.updatedAt,
    closed_at: pr.closedAt,
    merged_at: pr.mergedAt,
    merge_commit_sha: pr.mergeCommitSha,
    assignee: null,
    assignees: [],
    requested_reviewers: [],
    requested_teams: [],
    head: side(pr.head, heads.head),
    base: side(pr.base, heads.base),
    _links: {
      self: { href: u },
      html: { href: html },
      issue: { href: issue },
      comments: { href: `${issue}/comments` },
      review_comments: { href: `${u}/comments` },
      review_comment: { href: `${api}/repos/${full}/pulls/comments{/number}` },
      commits: { href: `${u}/commits` },
      statuses: { href: `${api}/repos/${full}/statuses/${heads.head}` },
    },
    author_association: 'MEMBER',
    auto_merge: null,
    draft: false,
  };
}

/** The extra detail of a single pull request (GET one, POST) over the list's entries. */
export function pullRequestDetail(api: string, repo: Repo, pr: PullRequest, heads: { head: string; base: string }) {
  return {
    ...pullRequest(api, repo, pr, heads),
    merged: pr.merged,
    mergeable: pr.state === 'open' ? true : null,
    rebaseable: pr.state === 'open' ? true : null,
    mergeable_state: pr.state === 'open' ? 'clean' : 'unknown',
    merged_by: pr.merged ? user(api, 'flui-bot', 1) : null,
    comments: 0,
    review_comments: 0,
    maintainer_can_modify: false,
    commits: 1,
    additions: 0,
    deletions: 0,
    changed_files: 1,
  };
}

/** The fields a `workflow_run` webhook's run carries beyond the REST object. */
export function webhookRun(api: string, repo: Repo, run: Run) {
  const bot = user(api, 'flui-bot', 1);
  const rest = workflowRun(api, repo, run);
  return {
    ...rest,
    head_repository: fullRepo(api, repo),
    repository: fullRepo(api, repo),
    actor: bot,
    triggering_actor: bot,
    check_suite_node_id: Buffer.from(`CheckSuite:${run.id + 1}`).toString('base64'),
    previous_attempt_url: run.attempt > 1 ? `${rest.url}/attempts/${run.attempt - 1}` : null,
    referenced_workflows: [],
  };
}

export function workflowRun(api: string, repo: Repo, run: Run) {
  const full = `${repo.owner}/${repo.name}`;
  const u = `${api}/repos/${full}/actions/runs/${run.id}`;
  const commit = repo.commits[run.headSha];
  const r = minimalRepo(api, repo);
  return {
    id: run.id,
    name: run.workflowName,
    node_id: Buffer.from(`WorkflowRun:${run.id}`).toString('base64'),
    head_branch: run.headBranch,
    head_sha: run.headSha,
    path: run.workflowPath,
    display_title: run.displayTitle,
    run_number: run.runNumber,
    run_attempt: run.attempt,
    event: run.event,
    status: run.status,
    conclusion: run.conclusion,
    workflow_id: run.workflowId,
    check_suite_id: run.id + 1,
    url: u,
    html_url: `${htmlBase(api)}/${full}/actions/runs/${run.id}`,
    pull_requests: [],
    created_at: run.createdAt,
    updated_at: run.updatedAt,
    run_started_at: run.startedAt ?? run.createdAt,
    actor: user(api, 'flui-bot', 1),
    triggering_actor: user(api, 'flui-bot', 1),
    previous_attempt_url: run.attempt > 1 ? `${u}/attempts/${run.attempt - 1}` : null,
    jobs_url: `${u}/jobs`,
    logs_url: `${u}/logs`,
    check_suite_url: `${api}/repos/${full}/check-suites/${run.id + 1}`,
    artifacts_url: `${u}/artifacts`,
    cancel_url: `${u}/cancel`,
    rerun_url: `${u}/rerun`,
    workflow_url: `${api}/repos/${full}/actions/workflows/${run.workflowId}`,
    head_commit: commit
      ? {
          id: run.headSha,
          tree_id: run.headSha,
          message: commit.message,
          timestamp: commit.date,
          author: { name: 'flui', email: 'flui@example.invalid' },
          committer: { name: 'flui', email: 'flui@example.invalid' },
        }
      : null,
    repository: r,
    head_repository: r,
  };
}

/** The id of a run's one job (`build`). */
export const jobId = (run: Run): number => run.id * 10 + 1;

export function job(api: string, repo: Repo, run: Run) {
  const full = `${repo.owner}/${repo.name}`;
  return {
    id: jobId(run),
    run_id: run.id,
    run_url: `${api}/repos/${full}/actions/runs/${run.id}`,
    run_attempt: run.attempt,
    node_id: Buffer.from(`Job:${run.id}`).toString('base64'),
    head_sha: run.headSha,
    url: `${api}/repos/${full}/actions/jobs/${jobId(run)}`,
    html_url: `${htmlBase(api)}/${full}/actions/runs/${run.id}/job/${jobId(run)}`,
    status: run.status,
    conclusion: run.conclusion,
    created_at: run.createdAt,
    started_at: run.startedAt ?? run.createdAt,
    completed_at: run.completedAt ?? null,
    name: 'build',
    steps: (run.steps ?? []).map((s) => ({
      name: s.name,
      status: s.status,
      conclusion: s.conclusion,
      number: s.number,
      started_at: s.startedAt ?? null,
      completed_at: s.completedAt ?? null,
    })),
    check_run_url: `${api}/repos/${full}/check-runs/${jobId(run)}`,
    labels: ['ubuntu-latest'],
    runner_id: run.startedAt ? 1 : null,
    runner_name: run.startedAt ? 'flui-emulated-runner' : null,
    runner_group_id: run.startedAt ? 1 : null,
    runner_group_name: run.startedAt ? 'Default' : null,
    workflow_name: run.workflowName,
    head_branch: run.headBranch,
  };
}

export function contentFile(api: string, repo: Repo, path: string, ref: string, sha: string, content: Buffer) {
  const full = `${repo.owner}/${repo.name}`;
  const url = `${api}/repos/${full}/contents/${path}?ref=${ref}`;
  const git = `${api}/repos/${full}/git/blobs/${sha}`;
  const html = `${htmlBase(api)}/${full}/blob/${ref}/${path}`;
  return {
    type: 'file',
    encoding: 'base64',
    size: content.length,
    name: path.split('/').pop()!,
    path,
    content: content.toString('base64'),
    sha,
    url,
    git_url: git,
    html_url: html,
    download_url: `${htmlBase(api)}/raw/${full}/${ref}/${path}`,
    _links: { self: url, git, html },
  };
}

export function fileCommit(
  api: string,
  repo: Repo,
  path: string,
  branch: string,
  blob: string,
  size: number,
  commitSha: string,
  message: string,
  date: string,
  parents: string[] = [],
) {
  const full = `${repo.owner}/${repo.name}`;
  const person = { name: 'flui', email: 'flui@example.invalid', date };
  return {
    content: {
      name: path.split('/').pop()!,
      path,
      sha: blob,
      size,
      url: `${api}/repos/${full}/contents/${path}?ref=${branch}`,
      html_url: `${htmlBase(api)}/${full}/blob/${branch}/${path}`,
      git_url: `${api}/repos/${full}/git/blobs/${blob}`,
      download_url: `${htmlBase(api)}/raw/${full}/${branch}/${path}`,
      type: 'file',
      _links: {
        self: `${api}/repos/${full}/contents/${path}?ref=${branch}`,
        git: `${api}/repos/${full}/git/blobs/${blob}`,
        html: `${htmlBase(api)}/${full}/blob/${branch}/${path}`,
      },
    },
    commit: {
      sha: commitSha,
      node_id: Buffer.from(`Commit:${commitSha}`).toString('base64'),
      url: `${api}/repos/${full}/git/commits/${commitSha}`,
      html_url: `${htmlBase(api)}/${full}/commit/${commitSha}`,
      author: person,
      committer: person,
      message,
      tree: { url: `${api}/repos/${full}/git/trees/${commitSha}`, sha: commitSha },
      parents: parents.map((sha) => ({
        sha,
        url: `${api}/repos/${full}/git/commits/${sha}`,
        html_url: `${htmlBase(api)}/${full}/commit/${sha}`,
      })),
      verification: { verified: false, reason: 'unsigned', signature: null, payload: null, verified_at: null },
    },
  };
}
