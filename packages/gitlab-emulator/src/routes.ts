/**
 * The REST API routes Flui uses, as GitLab documents them (doc/api/*.md in GitLab's repository, read for this:
 * projects, repository_files, commits, branches, merge_requests, project_level_variables, pipelines, jobs). Projects
 * are addressed by numeric id or URL-encoded full path (`group%2Fsub%2Fname`); a file path is URL-encoded too.
 */
import { createHash } from 'node:crypto';
import { CiError, loadConfig } from './ci-yaml.ts';
import { badParam, invalid, message, notFound, paginate, Refusal, type Ctx, type Reply, type Router } from './http.ts';
import { bump, type Records } from './records.ts';
import type { Runner } from './runner.ts';
import * as shape from './shapes.ts';
import {
  now,
  ROLE_LEVEL,
  type Hook,
  type Job,
  type Pipeline,
  type Project,
  type Store,
  type Variable,
  own,
} from './store.ts';
import { alertStatus } from './webhooks.ts';

export interface Emulation {
  store: Store;
  runner: Runner;
  records: Records;
  router: Router;
  base(): string;
  version: string;
  /** Whether hooks are auto-disabled after failures (the `webhook.autoDisable` option), for `alert_status`. */
  hookAutoDisable: boolean;
}

/**
 * GitLab's rules for masked values (docs "Mask a CI/CD variable"; `Ci::Maskable::REGEX` and `MASK_AND_RAW_REGEX`,
 * checked): a value that expands variables uses ≥ 8 characters of the Base64 alphabet plus `@ : . ~ - _`; a raw one
 * any ≥ 8 non-whitespace characters. Otherwise `400 {"message":{"value":["is invalid"]}}`.
 */
export const MASKABLE = /^[a-zA-Z0-9_+=/@:.~-]{8,}$/;
export const MASKABLE_RAW = /^\S{8,}$/;
const KEY = /^[A-Za-z0-9_]{1,255}$/;

const project = (ctx: Ctx): Project => ctx.project!;
const bool = (v: unknown, fallback = false): boolean =>
  v === undefined || v === null ? fallback : v === true || v === 'true' || v === '1' || v === 1;
const str = (v: unknown): string | undefined => (v === undefined || v === null ? undefined : String(v));
const required = (ctx: Ctx, name: string): string => {
  const v = str(ctx.body[name]);
  if (v === undefined || v === '') throw new Refusal(badParam(`${name} is missing`));
  return v;
};
const needRole = (ctx: Ctx, role: keyof typeof ROLE_LEVEL) => {
  if (ROLE_LEVEL[ctx.grant!.role] < ROLE_LEVEL[role]) throw new Refusal(message(403, '403 Forbidden'));
};
const decode = (content: string, encoding: unknown): Buffer =>
  encoding === 'base64' ? Buffer.from(content, 'base64') : Buffer.from(content, 'utf8');

export function registerRoutes(env: Emulation): void {
  const { router, store, records, runner } = env;
  const base = () => env.base();

  // ---- projects ----
  router.add('GET', '/projects/:id', (ctx) => ({
    status: 200,
    body: shape.project(base(), project(ctx), env.version),
  }));

  // ---- repository files ----
  const fileReply = (ctx: Ctx, raw: boolean): Reply => {
    const p = project(ctx);
    const path = ctx.params.file_path!;
    const ref = str(ctx.query.get('ref')) ?? (raw ? p.defaultBranch : undefined);
    if (!ref) return badParam('ref is missing');
    // `ref=HEAD` names the default branch (repository_files docs).
    const sha = store.resolve(p, ref === 'HEAD' ? p.defaultBranch : ref);
    const f = sha ? store.file(p, sha, path) : undefined;
    if (!sha || !f) return notFound('File');
    const ids = {
      blob: f.blobId,
      commit: sha,
      lastCommit: store.lastCommitOf(p, sha, path),
      sha256: createHash('sha256').update(f.content).digest('hex'),
    };
    const headers = {
      'x-gitlab-blob-id': ids.blob,
      'x-gitlab-commit-id': ids.commit,
      'x-gitlab-content-sha256': ids.sha256,
      'x-gitlab-encoding': 'base64',
      'x-gitlab-file-name': path.split('/').at(-1)!,
      'x-gitlab-file-path': path,
      'x-gitlab-last-commit-id': ids.lastCommit,
      'x-gitlab-ref': ref,
      'x-gitlab-size': String(f.content.length),
      'x-gitlab-execute-filemode': 'false',
    };
    if (raw) return { status: 200, raw: { contentType: 'text/plain; charset=utf-8', data: f.content }, headers };
    return { status: 200, body: shape.file(path, ref, f.content, ids), headers };
  };
  router.add('GET', '/projects/:id/repository/files/:file_path', (ctx) => fileReply(ctx, false));
  router.add('GET', '/projects/:id/repository/files/:file_path/raw', (ctx) => fileReply(ctx, true));

  /** The branch a write goes to: existing, or new from `start_branch`; GitLab's words otherwise. */
  const writeBranch = (ctx: Ctx): { branch: string; start?: string } => {
    const p = project(ctx);
    const branch = required(ctx, 'branch');
    const start = str(ctx.body.start_branch);
    if (!own(p.branches, branch) && !(start && store.resolve(p, start)) && Object.keys(p.commits).length) {
      throw new Refusal(message(400, 'You can only create or edit files when you are on a branch'));
    }
    return { branch, start };
  };
  /** What creating and updating a file both read, in GitLab's order of refusals. */
  const fileWrite = (ctx: Ctx) => {
    needRole(ctx, 'developer');
    const p = project(ctx);
    const path = ctx.params.file_path!;
    const { branch, start } = writeBranch(ctx);
    const content = str(ctx.body.content);
    if (content === undefined) throw new Refusal(badParam('content is missing'));
    return { p, path, branch, start, content, msg: required(ctx, 'commit_message') };
  };
  const commitDone = (p: Project) => {
    bump(records.commits, p.path);
    store.save();
  };

  router.add(
    'POST',
    '/projects/:id/repository/files/:file_path',
    (ctx) => {
      const { p, path, branch, start, content, msg } = fileWrite(ctx);
      if (store.file(p, own(p.branches, branch) ?? start, path))
        return message(400, 'A file with this name already exists');
      store.commit(p, branch, { [path]: decode(content, ctx.body.encoding) }, msg, start);
      commitDone(p);
      return { status: 201, body: shape.fileWritten(path, branch) };
    },
    'write',
  );
  router.add(
    'PUT',
    '/projects/:id/repository/files/:file_path',
    (ctx) => {
      const { p, path, branch, start, content, msg } = fileWrite(ctx);
      const head = own(p.branches, branch) ?? store.resolve(p, start ?? p.defaultBranch);
      if (!head || !store.file(p, head, path)) return message(400, "A file with this name doesn't exist");
      const last = str(ctx.body.last_commit_id);
      if (last && last !== store.lastCommitOf(p, head, path)) {
        return message(400, 'You are attempting to update a file that has changed since you started editing it.');
      }
      const bytes = decode(content, ctx.body.encoding);
      // "The commit was empty: new file contents were identical to the current file contents" is one of the
      // causes the docs list for this endpoint's non-specific 400.
      if (store.file(p, head, path)!.content.equals(bytes)) return message(400, 'A commit with no changes was refused');
      store.commit(p, branch, { [path]: bytes }, msg, start);
      commitDone(p);
      return { status: 200, body: shape.fileWritten(path, branch) };
    },
    'write',
  );

  // ---- commits with actions ----
  router.add(
    'POST',
    '/projects/:id/repository/commits',
    (ctx) => {
      needRole(ctx, 'developer');
      const p = project(ctx);
      const { branch, start } = writeBranch(ctx);
      const msg = required(ctx, 'commit_message');
      const actions = ctx.body.actions;
      if (!Array.isArray(actions) || !actions.length) return badParam('actions is missing');
      const head = own(p.branches, branch) ?? (start ? store.resolve(p, start) : undefined);
      const changes: Record<string, Buffer | null> = {};
      let additions = 0;
      let deletions = 0;
      const lineCount = (b: Buffer | undefined) => (b ? b.toString('utf8').split('\n').filter(Boolean).length : 0);
      for (const a of actions as Record<string, unknown>[]) {
        const kind = str(a?.action);
        const path = str(a?.file_path);
        if (!kind || !['create', 'update', 'delete', 'move', 'chmod'].includes(kind)) {
          return badParam('actions[action] does not have a valid value');
        }
        if (!path) return badParam('actions[file_path] is missing');
        const existing = head ? store.file(p, head, path) : undefined;
        const last = str(a.last_commit_id);
        if (last && head && existing && last !== store.lastCommitOf(p, head, path)) {
          return message(400, `The file has changed since you started editing it: ${path}`);
        }
        if (kind === 'create') {
          if (existing) return message(400, 'A file with this name already exists');
          changes[path] = decode(str(a.content) ?? '', a.encoding);
          additions += lineCount(changes[path]!);
        } else if (kind === 'update') {
          if (!existing) return message(400, "A file with this name doesn't exist");
          changes[path] = decode(str(a.content) ?? '', a.encoding);
          additions += lineCount(changes[path]!);
          deletions += lineCount(existing.content);
        } else if (kind === 'delete') {
          if (!existing) return message(400, "A file with this name doesn't exist");
          changes[path] = null;
          deletions += lineCount(existing.content);
        } else {
          return message(400, `The GitLab emulator does not implement the ${kind} action`);
        }
      }
      const c = store.commit(p, branch, changes, msg, start);
      commitDone(p);
      return { status: 201, body: shape.commit(base(), p, c, { additions, deletions }) };
    },
    'write',
  );

  // ---- branches ----
  router.add('GET', '/projects/:id/repository/branches/:branch', (ctx) => {
    const p = project(ctx);
    if (!own(p.branches, ctx.params.branch!)) return notFound('Branch');
    return { status: 200, body: shape.branch(base(), p, ctx.params.branch!) };
  });

  // ---- merge requests ----
  router.add('GET', '/projects/:id/merge_requests', (ctx) => {
    const p = project(ctx);
    const state = ctx.query.get('state') ?? 'all';
    const source = ctx.query.get('source_branch');
    const target = ctx.query.get('target_branch');
    const list = p.mergeRequests
      .filter(
        (m) =>
          (state === 'all' || m.state === state) &&
          (!source || m.sourceBranch === source) &&
          (!target || m.targetBranch === target),
      )
      .sort((a, b) => b.id - a.id);
    const page = paginate(list, ctx, base());
    return { status: 200, body: page.items.map((m) => shape.mergeRequest(base(), p, m)), headers: page.headers };
  });
  router.add(
    'POST',
    '/projects/:id/merge_requests',
    (ctx) => {
      needRole(ctx, 'developer');
      const p = project(ctx);
      const source = required(ctx, 'source_branch');
      const target = required(ctx, 'target_branch');
      const title = required(ctx, 'title');
      if (!own(p.branches, source))
        return { status: 400, body: { message: [`Source branch "${source}" does not exist`] } };
      if (!own(p.branches, target))
        return { status: 400, body: { message: [`Target branch "${target}" does not exist`] } };
      const open = p.mergeRequests.find(
        (m) => m.state === 'opened' && m.sourceBranch === source && m.targetBranch === target,
      );
      if (open) {
        return {
          status: 409,
          body: { message: [`Another open merge request already exists for this source branch: !${open.iid}`] },
        };
      }
      const t = now();
      const mr = {
        id: store.id(),
        iid: p.mergeRequests.length + 1,
        title,
        description: str(ctx.body.description) ?? null,
        sourceBranch: source,
        targetBranch: target,
        state: 'opened' as const,
        createdAt: t,
        updatedAt: t,
        sha: own(p.branches, source)!,
      };
      p.mergeRequests.push(mr);
      bump(records.mergeRequestsOpened, p.path);
      store.save();
      return { status: 201, body: shape.mergeRequest(base(), p, mr) };
    },
    'write',
  );

  // ---- CI/CD variables ----
  const hiddenSupported = () => shape.atLeast(env.version, '17.4');
  /** The variable `key` (in `scope`); several with that key and no scope is GitLab's 409, as its docs say. */
  const findVar = (p: Project, key: string, scope?: string | null) => {
    const found = p.variables.filter((v) => v.key === key && (!scope || v.environmentScope === scope));
    if (found.length > 1) {
      throw new Refusal(
        message(409, "There are multiple variables with provided parameters. Please use 'filter[environment_scope]'."),
      );
    }
    return found[0];
  };
  const checkMasked = (v: Pick<Variable, 'masked' | 'value' | 'raw'>) => {
    if (v.masked && !(v.raw ? MASKABLE_RAW : MASKABLE).test(v.value)) throw new Refusal(invalid('value', 'is invalid'));
  };

  const variableWritten = (p: Project) => {
    bump(records.variableWrites, p.path);
    store.save();
  };

  router.add('GET', '/projects/:id/variables', (ctx) => {
    needRole(ctx, 'maintainer');
    const p = project(ctx);
    const page = paginate(p.variables, ctx, base());
    return { status: 200, body: page.items.map((v) => shape.variable(v, env.version)), headers: page.headers };
  });
  router.add('GET', '/projects/:id/variables/:key', (ctx) => {
    needRole(ctx, 'maintainer');
    const v = findVar(project(ctx), ctx.params.key!, ctx.query.get('filter[environment_scope]'));
    return v ? { status: 200, body: shape.variable(v, env.version) } : notFound('Variable');
  });
  router.add(
    'POST',
    '/projects/:id/variables',
    (ctx) => {
      needRole(ctx, 'maintainer');
      const p = project(ctx);
      const key = required(ctx, 'key');
      const value = str(ctx.body.value);
      if (value === undefined) return badParam('value is missing');
      if (!KEY.test(key)) return invalid('key', "can contain only letters, digits and '_'.");
      const scope = str(ctx.body.environment_scope) ?? '*';
      if (findVar(p, key, scope)) return invalid('key', `(${key}) has already been taken`);
      // `masked_and_hidden` (17.4+): masked, and the value never shown again. Older servers ignore the unknown
      // parameter, as Grape does, and store a plain variable: a client must read `hidden` back.
      const hidden = hiddenSupported() && bool(ctx.body.masked_and_hidden);
      const variableType = str(ctx.body.variable_type) ?? 'env_var';
      if (variableType !== 'env_var' && variableType !== 'file')
        return badParam('variable_type does not have a valid value');
      const v: Variable = {
        key,
        value,
        variableType,
        protected: bool(ctx.body.protected),
        masked: hidden || bool(ctx.body.masked),
        hidden,
        raw: bool(ctx.body.raw),
        environmentScope: scope,
        description: str(ctx.body.description) ?? null,
      };
      checkMasked(v);
      p.variables.push(v);
      variableWritten(p);
      return { status: 201, body: shape.variable(v, env.version) };
    },
    'write',
  );
  router.add(
    'PUT',
    '/projects/:id/variables/:key',
    (ctx) => {
      needRole(ctx, 'maintainer');
      const p = project(ctx);
      const v = findVar(
        p,
        ctx.params.key!,
        ctx.query.get('filter[environment_scope]') ??
          str((ctx.body.filter as Record<string, unknown> | undefined)?.environment_scope),
      );
      if (!v) return notFound('Variable');
      const next = { ...v, value: required(ctx, 'value') };
      if (ctx.body.protected !== undefined) next.protected = bool(ctx.body.protected);
      if (ctx.body.raw !== undefined) next.raw = bool(ctx.body.raw);
      if (ctx.body.description !== undefined) next.description = str(ctx.body.description) ?? null;
      if (ctx.body.variable_type !== undefined)
        next.variableType = str(ctx.body.variable_type) === 'file' ? 'file' : 'env_var';
      if (ctx.body.masked !== undefined) {
        const masked = bool(ctx.body.masked);
        // A hidden variable stays masked (GitLab: "hidden attribute ... disallows to change of the masked attribute").
        if (v.hidden && !masked) return invalid('masked', 'cannot be changed for a hidden variable');
        next.masked = masked;
      }
      checkMasked(next);
      Object.assign(v, next);
      variableWritten(p);
      return { status: 200, body: shape.variable(v, env.version) };
    },
    'write',
  );
  router.add(
    'DELETE',
    '/projects/:id/variables/:key',
    (ctx) => {
      needRole(ctx, 'maintainer');
      const p = project(ctx);
      const v = findVar(p, ctx.params.key!, ctx.query.get('filter[environment_scope]'));
      if (!v) return notFound('Variable');
      p.variables = p.variables.filter((x) => x !== v);
      variableWritten(p);
      return { status: 204 };
    },
    'write',
  );

  // ---- pipelines ----
  router.add(
    'POST',
    '/projects/:id/pipeline',
    (ctx) => {
      needRole(ctx, 'developer');
      const p = project(ctx);
      const ref = required(ctx, 'ref');
      const base400 = (...reasons: string[]) => invalid('base', ...reasons);
      const rawVars = ctx.body.variables;
      if (rawVars !== undefined && !Array.isArray(rawVars)) return badParam('variables is invalid');
      const variables = ((rawVars ?? []) as Record<string, unknown>[]).map((v) => ({
        key: str(v?.key) ?? '',
        value: str(v?.value) ?? '',
        variable_type: str(v?.variable_type) ?? 'env_var',
      }));
      if (variables.some((v) => !v.key)) return badParam('variables[key] is missing');
      // `inputs` (17.10+, a hash). An older server ignores the unknown parameter, as Grape does.
      const inputsSupported = shape.atLeast(env.version, '17.10');
      const rawInputs = inputsSupported ? ctx.body.inputs : undefined;
      if (
        rawInputs !== undefined &&
        (typeof rawInputs !== 'object' || rawInputs === null || Array.isArray(rawInputs))
      ) {
        return badParam('inputs is invalid');
      }
      const sha = own(p.branches, ref) ? own(p.branches, ref) : undefined;
      if (!sha) return base400('Reference not found');
      if (variables.length) {
        const role = p.pipelineVariablesRole;
        const allowed = role !== 'no_one_allowed' && ROLE_LEVEL[ctx.grant!.role] >= ROLE_LEVEL[role];
        if (!allowed) return base400('Insufficient permissions to set pipeline variables');
      }
      const read = (path: string) => store.file(p, sha, path)?.content.toString('utf8');
      const vars: Record<string, string> = {
        ...Object.fromEntries(
          p.variables.filter((v) => !v.protected || ref === p.defaultBranch).map((v) => [v.key, v.value]),
        ),
        ...Object.fromEntries(variables.map((v) => [v.key, v.value])),
        CI_PIPELINE_SOURCE: 'api',
        CI_COMMIT_REF_NAME: ref,
        CI_COMMIT_BRANCH: ref,
        CI_DEFAULT_BRANCH: p.defaultBranch,
        CI_COMMIT_SHA: sha,
        CI_PROJECT_PATH: p.path,
      };
      let config;
      try {
        config = loadConfig(read, p.ciConfigPath, (rawInputs as Record<string, unknown>) ?? {}, vars);
      } catch (err) {
        if (err instanceof CiError) return base400(err.message);
        throw err;
      }
      const t = now();
      const pipeline: Pipeline = {
        id: store.id(),
        iid: p.pipelines.length + 1,
        projectId: p.id,
        name: config.name,
        status: 'pending',
        ref,
        sha,
        beforeSha: '0000000000000000000000000000000000000000',
        source: 'api',
        inputs: (rawInputs as Pipeline['inputs']) ?? {},
        variables,
        createdAt: t,
        updatedAt: t,
        createdAtMs: Date.now(),
        jobs: config.jobs.map((j): Job => ({
          id: store.id(),
          name: j.name,
          stage: j.stage,
          status: 'pending',
          createdAt: t,
          trace: [],
          build: false,
          script: j.script,
          variables: j.variables,
          ...(j.image ? { image: j.image } : {}),
        })),
        stages: config.stages,
        revision: 0,
      };
      p.pipelines.push(pipeline);
      bump(records.pipelinesCreated, p.path);
      store.save();
      runner.onChange(p, pipeline);
      runner.schedule(p, pipeline);
      return { status: 201, body: shape.pipeline(base(), p, pipeline) };
    },
    'write',
  );

  const ORDER = ['id', 'status', 'ref', 'updated_at', 'user_id'];
  router.add('GET', '/projects/:id/pipelines', (ctx) => {
    const p = project(ctx);
    const q = ctx.query;
    const orderBy = q.get('order_by') ?? 'id';
    const sort = q.get('sort') ?? 'desc';
    if (!ORDER.includes(orderBy)) return badParam('order_by does not have a valid value');
    if (sort !== 'asc' && sort !== 'desc') return badParam('sort does not have a valid value');
    // `name` filters since 16.9; an older server ignores it (and would list every pipeline).
    const name = shape.atLeast(env.version, '16.9') ? q.get('name') : null;
    const scope = q.get('scope');
    const list = p.pipelines.filter(
      (pl) =>
        (name === null || pl.name === name) &&
        (!q.get('source') || pl.source === q.get('source')) &&
        (!q.get('ref') || pl.ref === q.get('ref')) &&
        (!q.get('sha') || pl.sha === q.get('sha')) &&
        (!q.get('status') || pl.status === q.get('status')) &&
        (!scope ||
          (scope === 'running' && pl.status === 'running') ||
          (scope === 'pending' && pl.status === 'pending') ||
          (scope === 'finished' && shape.finished(pl.status)) ||
          scope === 'branches'),
    );
    const key = (pl: Pipeline): string | number =>
      orderBy === 'status' ? pl.status : orderBy === 'ref' ? pl.ref : orderBy === 'updated_at' ? pl.updatedAt : pl.id;
    list.sort((a, b) => {
      const x = key(a);
      const y = key(b);
      const c = x < y ? -1 : x > y ? 1 : a.id - b.id;
      return sort === 'asc' ? c : -c;
    });
    const page = paginate(list, ctx, base());
    return { status: 200, body: page.items.map((pl) => shape.pipelineSummary(base(), p, pl)), headers: page.headers };
  });

  const findPipeline = (ctx: Ctx): Pipeline => {
    const id = Number(ctx.params.pipeline_id);
    const pl = project(ctx).pipelines.find((x) => x.id === id);
    if (!pl) throw new Refusal(message(404, '404 Not found'));
    return pl;
  };
  router.add('GET', '/projects/:id/pipelines/:pipeline_id', (ctx) => ({
    status: 200,
    body: shape.pipeline(base(), project(ctx), findPipeline(ctx)),
  }));
  router.add(
    'POST',
    '/projects/:id/pipelines/:pipeline_id/cancel',
    (ctx) => {
      needRole(ctx, 'developer');
      const p = project(ctx);
      const pl = findPipeline(ctx);
      if (!shape.finished(pl.status)) records.cancels++;
      runner.cancel(p, pl);
      return { status: 200, body: shape.pipeline(base(), p, pl) };
    },
    'write',
  );
  router.add('GET', '/projects/:id/pipelines/:pipeline_id/jobs', (ctx) => {
    const p = project(ctx);
    const pl = findPipeline(ctx);
    const scopes = ctx.query.getAll('scope[]').concat(ctx.query.getAll('scope'));
    const jobs = pl.jobs.filter((j) => !scopes.length || scopes.includes(j.status)).sort((a, b) => b.id - a.id);
    const page = paginate(jobs, ctx, base());
    return { status: 200, body: page.items.map((j) => shape.job(base(), p, pl, j)), headers: page.headers };
  });
  router.add('GET', '/projects/:id/jobs/:job_id/trace', (ctx) => {
    const p = project(ctx);
    const id = Number(ctx.params.job_id);
    for (const pl of p.pipelines) {
      const j = pl.jobs.find((x) => x.id === id);
      if (j) {
        const text = j.trace.length ? `${j.trace.join('\n')}\n` : '';
        return { status: 200, raw: { contentType: 'text/plain', data: Buffer.from(text) } };
      }
    }
    return message(404, '404 Not found');
  });

  // ---- project hooks (project_webhooks.md; Maintainer role) ----
  const hookBody = (p: Project, h: Hook) =>
    shape.hook(base(), p, h, alertStatus({ autoDisable: env.hookAutoDisable }, h.health));
  const findHook = (ctx: Ctx): Hook => {
    const id = Number(ctx.params.hook_id);
    const hook = (project(ctx).hooks ?? []).find((h) => h.id === id);
    if (!hook) throw new Refusal(notFound('Hook'));
    return hook;
  };
  const hookUrl = (ctx: Ctx): string => {
    const url = required(ctx, 'url');
    // GitLab refuses schemes other than http(s); it also blocks local-network URLs unless an administrator allows
    // them, which the emulator does (its tests' receivers listen on 127.0.0.1).
    if (!/^https?:\/\/[^\s/]+/.test(url))
      throw new Refusal(invalid('url', 'is blocked: Only allowed schemes are http, https'));
    return url;
  };
  const applyHook = (ctx: Ctx, h: Hook) => {
    const b = ctx.body;
    if (b.token !== undefined) h.token = str(b.token) || undefined;
    if (b.name !== undefined) h.name = str(b.name) ?? '';
    if (b.description !== undefined) h.description = str(b.description) ?? '';
    if (b.push_events !== undefined) h.pushEvents = bool(b.push_events);
    if (b.pipeline_events !== undefined) h.pipelineEvents = bool(b.pipeline_events);
    if (b.job_events !== undefined) h.jobEvents = bool(b.job_events);
    if (b.merge_requests_events !== undefined) h.mergeRequestsEvents = bool(b.merge_requests_events);
    if (b.enable_ssl_verification !== undefined) h.enableSslVerification = bool(b.enable_ssl_verification);
  };
  router.add('GET', '/projects/:id/hooks', (ctx) => {
    needRole(ctx, 'maintainer');
    const p = project(ctx);
    const page = paginate(p.hooks ?? [], ctx, base());
    return { status: 200, body: page.items.map((h) => hookBody(p, h)), headers: page.headers };
  });
  router.add('GET', '/projects/:id/hooks/:hook_id', (ctx) => {
    needRole(ctx, 'maintainer');
    return { status: 200, body: hookBody(project(ctx), findHook(ctx)) };
  });
  router.add(
    'POST',
    '/projects/:id/hooks',
    (ctx) => {
      needRole(ctx, 'maintainer');
      const p = project(ctx);
      const hook: Hook = {
        id: store.id(),
        url: hookUrl(ctx),
        name: '',
        description: '',
        pushEvents: true,
        pipelineEvents: false,
        jobEvents: false,
        mergeRequestsEvents: false,
        enableSslVerification: true,
        createdAt: now(),
        health: { failures: 0, disabledUntil: 0 },
      };
      applyHook(ctx, hook);
      (p.hooks ??= []).push(hook);
      store.save();
      return { status: 201, body: hookBody(p, hook) };
    },
    'write',
  );
  router.add(
    'PUT',
    '/projects/:id/hooks/:hook_id',
    (ctx) => {
      needRole(ctx, 'maintainer');
      const p = project(ctx);
      const hook = findHook(ctx);
      hook.url = hookUrl(ctx);
      applyHook(ctx, hook);
      store.save();
      return { status: 200, body: hookBody(p, hook) };
    },
    'write',
  );
  router.add(
    'DELETE',
    '/projects/:id/hooks/:hook_id',
    (ctx) => {
      needRole(ctx, 'maintainer');
      const p = project(ctx);
      const hook = findHook(ctx);
      p.hooks = (p.hooks ?? []).filter((h) => h !== hook);
      store.save();
      return { status: 204 };
    },
    'write',
  );
}
