/**
 * Repository operations: the repository itself, the contents API (blob SHAs, optimistic concurrency on `sha`),
 * git refs, and pull requests (the pull-request update mode proposes the pipeline file on a branch).
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { Emulation } from './context.ts';
import { error, invalid, paginate, parseBody, type Ctx, type Reply } from './http.ts';
import { bump } from './records.ts';
import { contentFile, fileCommit, fullRepo, htmlBase, pullRequest, pullRequestDetail } from './shapes.ts';
import { blobSha, now, type PullRequest, type Repo } from './store.ts';

const RULE_VIOLATION = 'Repository rule violations found\n\nChanges must be made through a pull request.\n\n';

const CONTENT_REQUIRED = 'Invalid request.\n\n"message" and "content" are required.';
const REF_REQUIRED = 'Invalid request.\n\n"ref" and "sha" are required.';

/** The request bodies of the operations, with GitHub's words (or its field codes) for what they refuse. */
const bodies = {
  putContent: z.object({
    message: z.string({ error: CONTENT_REQUIRED }),
    content: z
      .string({ error: CONTENT_REQUIRED })
      .regex(/^[A-Za-z0-9+/\r\n]*={0,2}[\r\n]*$/, { error: 'content is not valid Base64' }),
    branch: z.string().optional(),
    sha: z.string().optional(),
  }),
  createRef: z.object({
    ref: z.string({ error: REF_REQUIRED }).min(1, { error: REF_REQUIRED }),
    sha: z.string({ error: REF_REQUIRED }).min(1, { error: REF_REQUIRED }),
  }),
  createPull: z.object({
    title: z.string({ error: 'missing_field' }).min(1, { error: 'missing_field' }),
    head: z.string({ error: 'invalid' }),
    base: z.string({ error: 'invalid' }),
    body: z.string().nullish(),
  }),
  updatePull: z.object({
    title: z.string().optional(),
    body: z.string().nullish(),
    state: z.enum(['open', 'closed'], { error: 'invalid' }).optional(),
  }),
  mergePull: z.object({
    sha: z.string().optional(),
    merge_method: z.enum(['merge', 'squash', 'rebase'], { error: 'invalid' }).optional(),
    commit_title: z.string().optional(),
    commit_message: z.string().optional(),
  }),
};

export function registerRepoRoutes(env: Emulation): void {
  const { store, router, records } = env;
  const read = (area: 'contents' | 'pull_requests' | 'metadata') => ({ permission: { area, level: 'read' as const } });
  const write = (area: 'contents' | 'pull_requests') => ({ permission: { area, level: 'write' as const } });

  router.add(
    'GET',
    '/repos/{owner}/{repo}',
    ({ repo }) => ({ status: 200, body: fullRepo(env.api(), repo!) }),
    read('metadata'),
  );

  router.add(
    'GET',
    '/repos/{owner}/{repo}/contents/{path}',
    ({ repo, params, query, headers }) => {
      const r = repo!;
      const ref = query.get('ref') || r.defaultBranch;
      const sha = store.resolve(r, ref);
      if (!sha) return error(404, `No commit found for the ref ${ref}`);
      const path = params.path!.replace(/^\/+|\/+$/g, '');
      const file = store.file(r, sha, path);
      const accept = String(headers.accept ?? '');
      if (file && /application\/vnd\.github(\.v3)?\.raw/.test(accept)) {
        return { status: 200, raw: { contentType: 'application/vnd.github.raw; charset=utf-8', data: file.content } };
      }
      if (file) return { status: 200, body: contentFile(env.api(), r, path, ref, file.sha, file.content) };
      const entries = store.list(r, sha, path);
      if (!entries.length) return error(404, 'Not Found');
      return {
        status: 200,
        body: entries.map((e) => directoryEntry(env.api(), r, ref, e, store.files(r, sha, e.path))),
      };
    },
    read('contents'),
  );

  router.add(
    'PUT',
    '/repos/{owner}/{repo}/contents/{path}',
    ({ repo, params, body }) => {
      const r = repo!;
      const input = parseBody(bodies.putContent, body);
      const branch = input.branch ?? r.defaultBranch;
      if (!r.branches[branch]) {
        // GitHub creates a missing branch only from the default branch of an empty repository; otherwise 404.
        return error(404, `Branch ${branch} not found`);
      }
      const path = params.path!.replace(/^\/+|\/+$/g, '');
      const current = store.file(r, branch, path);
      if (current && input.sha === undefined) return invalid('Invalid request.\n\n"sha" wasn\'t supplied.');
      if ((current && input.sha !== current.sha) || (!current && input.sha !== undefined)) {
        return error(409, `${path} does not match ${String(input.sha)}`);
      }
      if (r.protectedBranches.includes(branch)) return error(409, RULE_VIOLATION);
      const content = Buffer.from(input.content, 'base64');
      const sha = store.commit(r, branch, { [path]: content }, input.message);
      bump(records.commits, `${r.owner}/${r.name}:${path}`);
      store.save();
      const c = r.commits[sha]!;
      const reply = fileCommit(
        env.api(),
        r,
        path,
        branch,
        blobSha(content),
        content.length,
        sha,
        c.message,
        c.date,
        c.parents,
      );
      return { status: current ? 200 : 201, body: reply };
    },
    write('contents'),
  );

  router.add(
    'GET',
    '/repos/{owner}/{repo}/git/ref/{ref}',
    ({ repo, params }) => {
      const tag = /^tags\/(.+)$/.exec(params.ref!)?.[1];
      if (tag !== undefined) {
        const target = repo!.tags?.[tag];
        return target ? { status: 200, body: tagRef(env.api(), repo!, tag, target) } : error(404, 'Not Found');
      }
      const m = /^heads\/(.+)$/.exec(params.ref!);
      const sha = m ? repo!.branches[m[1]!] : undefined;
      if (!m || !sha) return error(404, 'Not Found');
      return { status: 200, body: gitRef(env.api(), repo!, m[1]!, sha) };
    },
    read('contents'),
  );

  router.add(
    'POST',
    '/repos/{owner}/{repo}/git/refs',
    ({ repo, body }) => {
      const r = repo!;
      const { ref, sha } = parseBody(bodies.createRef, body);
      const tag = /^refs\/tags\/([A-Za-z0-9._-]+)$/.exec(ref)?.[1];
      if (tag !== undefined) {
        if (!r.commits[sha] && !r.tagObjects?.[sha]) return invalid('Object does not exist');
        if (r.tags?.[tag]) return invalid('Reference already exists');
        (r.tags ??= {})[tag] = sha;
        store.save();
        const reply = tagRef(env.api(), r, tag, sha);
        return { status: 201, body: reply, headers: { location: reply.url } };
      }
      const m = /^refs\/heads\/([A-Za-z0-9._/-]+)$/.exec(ref);
      if (!m || m[1]!.includes('..') || m[1]!.endsWith('/') || m[1]!.endsWith('.lock')) {
        return invalid('Reference name invalid');
      }
      if (!r.commits[sha]) return invalid('Object does not exist');
      const branch = m[1]!;
      if (r.branches[branch]) return invalid('Reference already exists');
      r.branches[branch] = sha;
      store.save();
      return {
        status: 201,
        body: gitRef(env.api(), r, branch, sha),
        headers: { location: gitRef(env.api(), r, branch, sha).url },
      };
    },
    write('contents'),
  );

  // ---- pull requests ----
  const heads = (r: Repo, pr: PullRequest) => ({
    head: r.branches[pr.head] ?? pr.mergeCommitSha ?? '',
    base: r.branches[pr.base] ?? '',
  });
  const findPull = (r: Repo, n: string) => r.pulls.find((p) => String(p.number) === n);
  /** `owner:branch` or `branch` → the branch, when it names this repository. */
  const headBranch = (r: Repo, head: string) => {
    const [owner, branch] = head.includes(':') ? head.split(/:(.*)/s) : [r.owner, head];
    return owner?.toLowerCase() === r.owner.toLowerCase() ? branch : undefined;
  };

  router.add(
    'GET',
    '/repos/{owner}/{repo}/pulls',
    (ctx) => {
      const r = ctx.repo!;
      const { query } = ctx;
      const state = query.get('state') ?? 'open';
      if (!['open', 'closed', 'all'].includes(state))
        return invalid('Validation Failed', [{ field: 'state', code: 'invalid' }]);
      let pulls = [...r.pulls];
      if (state !== 'all') pulls = pulls.filter((p) => p.state === state);
      const head = query.get('head');
      if (head) pulls = pulls.filter((p) => p.head === headBranch(r, head));
      const base = query.get('base');
      if (base) pulls = pulls.filter((p) => p.base === base);
      const sort = query.get('sort') ?? 'created';
      const key = (p: PullRequest) =>
        (sort === 'updated' ? p.updatedAt : p.createdAt) + String(p.number).padStart(9, '0');
      pulls.sort((a, b) => (key(a) < key(b) ? 1 : -1));
      if ((query.get('direction') ?? 'desc') === 'asc') pulls.reverse();
      const page = paginate(pulls, ctx, env.api());
      return {
        status: 200,
        body: page.items.map((p) => pullRequest(env.api(), r, p, heads(r, p))),
        headers: page.headers,
      };
    },
    read('pull_requests'),
  );

  router.add(
    'POST',
    '/repos/{owner}/{repo}/pulls',
    ({ repo, body }) => {
      const r = repo!;
      const input = parseBody(bodies.createPull, body, 'PullRequest');
      const head = headBranch(r, input.head);
      const { base } = input;
      if (!head || !r.branches[head]) {
        return invalid('Validation Failed', [{ resource: 'PullRequest', field: 'head', code: 'invalid' }]);
      }
      if (!r.branches[base]) {
        return invalid('Validation Failed', [{ resource: 'PullRequest', field: 'base', code: 'invalid' }]);
      }
      if (r.pulls.some((p) => p.state === 'open' && p.head === head && p.base === base)) {
        return invalid('Validation Failed', [
          { resource: 'PullRequest', code: 'custom', message: `A pull request already exists for ${r.owner}:${head}.` },
        ]);
      }
      if (store.ancestors(r, r.branches[base]!).has(r.branches[head]!)) {
        return invalid('Validation Failed', [
          { resource: 'PullRequest', code: 'custom', message: `No commits between ${base} and ${head}` },
        ]);
      }
      const t = now();
      const pr: PullRequest = {
        number: r.pulls.length + 1,
        id: store.id(),
        title: input.title,
        body: input.body ?? null,
        head,
        base,
        state: 'open',
        merged: false,
        mergeCommitSha: null,
        createdAt: t,
        updatedAt: t,
        closedAt: null,
        mergedAt: null,
      };
      r.pulls.push(pr);
      bump(records.pullsOpened, `${r.owner}/${r.name}`);
      store.save();
      const detail = pullRequestDetail(env.api(), r, pr, heads(r, pr));
      return { status: 201, body: detail, headers: { location: detail.url } };
    },
    write('pull_requests'),
  );

  router.add(
    'GET',
    '/repos/{owner}/{repo}/pulls/{pull_number}',
    ({ repo, params }) => {
      const pr = findPull(repo!, params.pull_number!);
      if (!pr) return error(404, 'Not Found');
      return { status: 200, body: pullRequestDetail(env.api(), repo!, pr, heads(repo!, pr)) };
    },
    read('pull_requests'),
  );

  router.add(
    'PATCH',
    '/repos/{owner}/{repo}/pulls/{pull_number}',
    ({ repo, params, body }) => {
      const r = repo!;
      const pr = findPull(r, params.pull_number!);
      if (!pr) return error(404, 'Not Found');
      const input = parseBody(bodies.updatePull, body, 'PullRequest');
      if (input.title !== undefined) pr.title = input.title;
      if (typeof input.body === 'string') pr.body = input.body;
      if (input.state && !pr.merged) {
        pr.state = input.state;
        pr.closedAt = pr.state === 'closed' ? now() : null;
      }
      pr.updatedAt = now();
      store.save();
      return { status: 200, body: pullRequestDetail(env.api(), r, pr, heads(r, pr)) };
    },
    write('pull_requests'),
  );

  router.add(
    'PUT',
    '/repos/{owner}/{repo}/pulls/{pull_number}/merge',
    ({ repo, params, body }) => merge(env, repo!, params.pull_number!, body),
    write('contents'),
  );
}

/** Merges a pull request: a three-way merge of files (head's changes since the merge base win where base kept them). */
function merge(env: Emulation, r: Repo, number: string, body: Ctx['body']): Reply {
  const { store } = env;
  const pr = r.pulls.find((p) => String(p.number) === number);
  if (!pr) return error(404, 'Not Found');
  if (pr.state !== 'open') return error(405, 'Pull Request is not mergeable');
  const head = r.branches[pr.head];
  const base = r.branches[pr.base];
  if (!head || !base) return error(405, 'Pull Request is not mergeable');
  const input = parseBody(bodies.mergePull, body, 'PullRequest');
  if (input.sha !== undefined && input.sha !== head) {
    return error(409, 'Head branch was modified. Review and try the merge again.');
  }
  const method = input.merge_method ?? 'merge';
  const ancestor = store.mergeBase(r, head, base);
  const treeOf = (sha: string | undefined) => (sha ? (r.commits[sha]?.tree ?? {}) : {});
  const [h, b, a] = [treeOf(head), treeOf(base), treeOf(ancestor)];
  const changes: Record<string, Buffer | null> = {};
  for (const path of new Set([...Object.keys(h), ...Object.keys(a)])) {
    if (h[path] === a[path]) continue; // head did not touch it
    if (b[path] !== a[path] && b[path] !== h[path]) return error(405, 'Pull Request is not mergeable');
    changes[path] = h[path] ? Buffer.from(r.blobs[h[path]!] ?? '', 'base64') : null;
  }
  const title = input.commit_title ?? `Merge pull request #${pr.number}`;
  const message = input.commit_message !== undefined ? `${title}\n\n${input.commit_message}` : title;
  const sha = store.commit(r, pr.base, changes, message, method === 'merge' ? [base, head] : undefined);
  const t = now();
  Object.assign(pr, { state: 'closed', merged: true, mergeCommitSha: sha, mergedAt: t, closedAt: t, updatedAt: t });
  store.save();
  return { status: 200, body: { sha, merged: true, message: 'Pull Request successfully merged' } };
}

export function gitRef(api: string, repo: Repo, branch: string, sha: string) {
  const full = `${repo.owner}/${repo.name}`;
  return {
    ref: `refs/heads/${branch}`,
    node_id: Buffer.from(`Ref:${full}:${branch}`).toString('base64'),
    url: `${api}/repos/${full}/git/refs/heads/${branch}`,
    object: { type: 'commit', sha, url: `${api}/repos/${full}/git/commits/${sha}` },
  };
}

/** A tag's ref: to a commit (lightweight) or to an annotated tag object. */
export function tagRef(api: string, repo: Repo, tag: string, sha: string) {
  const full = `${repo.owner}/${repo.name}`;
  const type = repo.tagObjects?.[sha] ? 'tag' : 'commit';
  return {
    ref: `refs/tags/${tag}`,
    node_id: Buffer.from(`Ref:${full}:tags/${tag}`).toString('base64'),
    url: `${api}/repos/${full}/git/refs/tags/${tag}`,
    object: { type, sha, url: `${api}/repos/${full}/git/${type === 'tag' ? 'tags' : 'commits'}/${sha}` },
  };
}

/** An entry of a directory listing; a subdirectory's `sha` stands in for its tree id. */
function directoryEntry(
  api: string,
  repo: Repo,
  ref: string,
  entry: { name: string; path: string; sha?: string; type: 'file' | 'dir' },
  below: Record<string, Buffer>,
) {
  const full = `${repo.owner}/${repo.name}`;
  const sha =
    entry.sha ??
    createHash('sha1')
      .update(JSON.stringify(Object.entries(below).map(([k, v]) => [k, blobSha(v)])))
      .digest('hex');
  const url = `${api}/repos/${full}/contents/${entry.path}?ref=${ref}`;
  const git = `${api}/repos/${full}/git/${entry.type === 'dir' ? 'trees' : 'blobs'}/${sha}`;
  const html = `${htmlBase(api)}/${full}/${entry.type === 'dir' ? 'tree' : 'blob'}/${ref}/${entry.path}`;
  return {
    type: entry.type,
    size: entry.sha ? Buffer.from(repo.blobs[entry.sha] ?? '', 'base64').length : 0,
    name: entry.name,
    path: entry.path,
    sha,
    url,
    git_url: git,
    html_url: html,
    download_url: entry.type === 'file' ? `${htmlBase(api)}/raw/${full}/${ref}/${entry.path}` : null,
    _links: { self: url, git, html },
  };
}
