/**
 * Actions operations: secrets (sealed with the repository's libsodium key), variables, workflows, dispatch, runs
 * (list with GitHub's filters, get, cancel, re-run), jobs, log archives and job logs.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { Emulation } from './context.ts';
import { error, invalid, paginate, parseBody, type Ctx, type Reply } from './http.ts';
import { bump } from './records.ts';
import { checkDispatchInputs, readWorkflow } from './runner.ts';
import { registerSecretRoutes } from './routes-secrets.ts';
import { job, jobId, workflow, workflowRun } from './shapes.ts';
import { now, type Repo, type Run } from './store.ts';

/** A secret's or variable's name, upper-cased as GitHub stores it; `GITHUB_` is GitHub's own. */
const NAME = /^(?!GITHUB_)[A-Z_][A-Z0-9_]*$/;

const VARIABLE_REQUIRED = 'Invalid request: name and value are required';
const REF_REQUIRED = 'Invalid request.\n\n"ref" wasn\'t supplied.';

/** The request bodies of the operations, with GitHub's words for what they refuse. */
const bodies = {
  createVariable: z.object({
    name: z
      .string({ error: VARIABLE_REQUIRED })
      .overwrite((name) => name.toUpperCase())
      .regex(NAME, { error: VARIABLE_REQUIRED }),
    value: z.string({ error: VARIABLE_REQUIRED }),
  }),
  updateVariable: z.object({ value: z.string({ error: 'value must be a string' }).optional() }),
  dispatch: z.object({
    ref: z.string({ error: REF_REQUIRED }).min(1, { error: REF_REQUIRED }),
    inputs: z.record(z.string(), z.unknown()).optional(),
    return_run_details: z.boolean().optional(),
  }),
};

export function registerActionsRoutes(env: Emulation): void {
  const { store, router, records, runner } = env;
  const perm = (area: 'secrets' | 'variables' | 'actions', level: 'read' | 'write') => ({
    permission: { area, level },
  });

  // ---- secrets ----
  registerSecretRoutes(env, '/repos/{owner}/{repo}/actions', (ctx) => ctx.repo!, 'repository');

  // ---- variables ----
  router.add(
    'GET',
    '/repos/{owner}/{repo}/actions/variables/{name}',
    ({ repo, params }) => {
      const name = params.name!.toUpperCase();
      const v = repo!.variables[name];
      if (!v) return error(404, 'Not Found');
      return { status: 200, body: { name, value: v.value, created_at: v.createdAt, updated_at: v.updatedAt } };
    },
    perm('variables', 'read'),
  );

  router.add(
    'POST',
    '/repos/{owner}/{repo}/actions/variables',
    ({ repo, body }) => {
      const { name, value } = parseBody(bodies.createVariable, body);
      if (repo!.variables[name]) return error(409, 'Already exists - Variable already exists');
      repo!.variables[name] = { value, createdAt: now(), updatedAt: now() };
      store.save();
      return { status: 201, body: {} };
    },
    perm('variables', 'write'),
  );

  router.add(
    'PATCH',
    '/repos/{owner}/{repo}/actions/variables/{name}',
    ({ repo, params, body }) => {
      const v = repo!.variables[params.name!.toUpperCase()];
      if (!v) return error(404, 'Not Found');
      const { value } = parseBody(bodies.updateVariable, body);
      if (value !== undefined) v.value = value;
      v.updatedAt = now();
      store.save();
      return { status: 204 };
    },
    perm('variables', 'write'),
  );

  // ---- workflows ----
  /** Workflow files on the default branch, with ids assigned on first sight (and kept). */
  const workflows = (r: Repo) => {
    const found = store
      .list(r, r.defaultBranch, '.github/workflows')
      .filter((e) => e.type === 'file' && /\.ya?ml$/.test(e.name))
      .map((e) => e.path);
    for (const path of [...found, ...Object.keys(r.workflows)]) r.workflows[path] ??= store.id();
    return Object.entries(r.workflows)
      .sort(([, a], [, b]) => a - b)
      .map(([path, id]) => {
        const file = store.file(r, r.defaultBranch, path);
        const name = (file && readWorkflow(file.content.toString('utf8')).name) ?? path;
        return workflow(env.api(), r, id, path, name);
      });
  };
  /** A workflow id or file name → its path. */
  const workflowPath = (r: Repo, id: string): string | undefined => {
    if (/^\d+$/.test(id)) return Object.entries(r.workflows).find(([, wid]) => String(wid) === id)?.[0];
    return `.github/workflows/${id}`;
  };

  router.add(
    'GET',
    '/repos/{owner}/{repo}/actions/workflows',
    (ctx) => {
      const all = workflows(ctx.repo!);
      store.save();
      const page = paginate(all, ctx, env.api());
      return { status: 200, body: { total_count: all.length, workflows: page.items }, headers: page.headers };
    },
    perm('actions', 'read'),
  );

  router.add(
    'GET',
    '/repos/{owner}/{repo}/actions/workflows/{workflow_id}',
    ({ repo, params }) => {
      const r = repo!;
      const all = workflows(r);
      store.save();
      const path = workflowPath(r, params.workflow_id!);
      const found = all.find((w) => w.path === path);
      return found ? { status: 200, body: found } : error(404, 'Not Found');
    },
    perm('actions', 'read'),
  );

  router.add(
    'POST',
    '/repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches',
    ({ repo, params, body }) => {
      const r = repo!;
      const input = parseBody(bodies.dispatch, body);
      const path = workflowPath(r, params.workflow_id!);
      const ref = input.ref.replace(/^refs\/heads\//, '');
      const headSha = r.branches[ref];
      const file = path && headSha ? store.file(r, headSha, path) : undefined;
      // An unknown workflow is 404; a known one is read at the ref, where it may lack the trigger (or be absent).
      if (!path || (!file && !store.file(r, r.defaultBranch, path) && !r.workflows[path])) {
        return error(404, 'Not Found');
      }
      if (!headSha) return invalid(`No ref found for: ${input.ref}`);
      const wf = readWorkflow(file ? file.content.toString('utf8') : '');
      if (!wf.dispatchInputs) return invalid("Workflow does not have 'workflow_dispatch' trigger");
      const inputs = input.inputs ?? {};
      const problem = checkDispatchInputs(wf.dispatchInputs, inputs);
      if (problem) return invalid(problem);
      const values: Record<string, string> = {};
      for (const [k, spec] of Object.entries(wf.dispatchInputs)) {
        const v = inputs[k] ?? spec.default;
        if (v !== undefined) values[k] = String(v);
      }
      const workflowId = (r.workflows[path] ??= store.id());
      const run: Run = {
        id: store.id(),
        runNumber: r.runs.filter((x) => x.workflowPath === path).length + 1,
        workflowId,
        workflowPath: path,
        workflowName: wf.name ?? path,
        displayTitle: (wf.runName ?? wf.name ?? path).replace(
          /\$\{\{\s*inputs\.([A-Za-z0-9_-]+)\s*\}\}/g,
          (_m, k: string) => values[k] ?? '',
        ),
        headBranch: ref,
        headSha,
        event: 'workflow_dispatch',
        status: 'queued',
        conclusion: null,
        createdAt: now(),
        updatedAt: now(),
        createdAtMs: Date.now(),
        attempt: 1,
        inputs: values,
        log: [],
      };
      r.runs.push(run);
      bump(records.dispatches, `${r.owner}/${r.name}`);
      store.save(); // the run exists on disk before anyone hears of it
      runner.schedule(r, run);
      if (input.return_run_details !== true) return { status: 204 };
      const shape = workflowRun(env.api(), r, run);
      return { status: 200, body: { workflow_run_id: run.id, run_url: shape.url, html_url: shape.html_url } };
    },
    perm('actions', 'write'),
  );

  // ---- runs ----
  const listRuns = (ctx: Ctx): Reply => {
    const { query, params } = ctx;
    const r = ctx.repo!;
    let runs = [...r.runs].reverse();
    if (params.workflow_id) {
      workflows(r);
      const path = workflowPath(r, params.workflow_id);
      if (!path || !r.workflows[path]) return error(404, 'Not Found');
      runs = runs.filter((x) => x.workflowPath === path);
    }
    const filters: [string, (x: Run) => string | null][] = [
      ['branch', (x) => x.headBranch],
      ['event', (x) => x.event],
      ['head_sha', (x) => x.headSha],
      ['actor', () => 'flui-bot'],
    ];
    for (const [name, get] of filters) {
      const want = query.get(name);
      if (want) runs = runs.filter((x) => get(x) === want);
    }
    const status = query.get('status');
    if (status) runs = runs.filter((x) => x.status === status || x.conclusion === status);
    const created = query.get('created');
    if (created) {
      const within = createdFilter(created);
      if (!within) return invalid(`Invalid created date range: ${created}`);
      runs = runs.filter((x) => within(Date.parse(x.createdAt)));
    }
    const page = paginate(runs, ctx, env.api());
    return {
      status: 200,
      body: { total_count: runs.length, workflow_runs: page.items.map((x) => workflowRun(env.api(), r, x)) },
      headers: page.headers,
    };
  };
  router.add('GET', '/repos/{owner}/{repo}/actions/runs', listRuns, perm('actions', 'read'));
  router.add('GET', '/repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs', listRuns, perm('actions', 'read'));

  const findRun = (repo: Repo, id: string) => repo.runs.find((x) => String(x.id) === id);

  router.add(
    'GET',
    '/repos/{owner}/{repo}/actions/runs/{run_id}',
    ({ repo, params }) => {
      const run = findRun(repo!, params.run_id!);
      return run ? { status: 200, body: workflowRun(env.api(), repo!, run) } : error(404, 'Not Found');
    },
    perm('actions', 'read'),
  );

  router.add(
    'POST',
    '/repos/{owner}/{repo}/actions/runs/{run_id}/cancel',
    ({ repo, params }) => {
      const run = findRun(repo!, params.run_id!);
      if (!run) return error(404, 'Not Found');
      if (run.status === 'completed') return error(409, 'Cannot cancel a workflow run that is completed.');
      records.cancels++;
      runner.complete(repo!, run, 'cancelled'); // saved before the 202
      return { status: 202, body: {} };
    },
    perm('actions', 'write'),
  );

  const rerun =
    (failedOnly: boolean) =>
    ({ repo, params }: Ctx): Reply => {
      const run = findRun(repo!, params.run_id!);
      if (!run) return error(404, 'Not Found');
      if (run.status !== 'completed') return error(403, 'This workflow is already running');
      if (failedOnly && run.conclusion === 'success') return error(403, 'There are no failed jobs to re-run');
      Object.assign(run, {
        status: 'queued',
        conclusion: null,
        attempt: run.attempt + 1,
        updatedAt: now(),
        startedAt: undefined,
        completedAt: undefined,
        completedAtMs: undefined,
        digest: undefined,
        image: undefined,
      });
      run.log.push(`Re-run: attempt ${run.attempt}`);
      records.reruns++;
      store.save();
      runner.schedule(repo!, run);
      return { status: 201, body: {} };
    };
  router.add('POST', '/repos/{owner}/{repo}/actions/runs/{run_id}/rerun', rerun(false), perm('actions', 'write'));
  router.add(
    'POST',
    '/repos/{owner}/{repo}/actions/runs/{run_id}/rerun-failed-jobs',
    rerun(true),
    perm('actions', 'write'),
  );

  router.add(
    'GET',
    '/repos/{owner}/{repo}/actions/runs/{run_id}/jobs',
    ({ repo, params }) => {
      const run = findRun(repo!, params.run_id!);
      if (!run) return error(404, 'Not Found');
      return { status: 200, body: { total_count: 1, jobs: [job(env.api(), repo!, run)] } };
    },
    perm('actions', 'read'),
  );

  router.add(
    'GET',
    '/repos/{owner}/{repo}/actions/runs/{run_id}/logs',
    ({ repo, params }) => {
      const run = findRun(repo!, params.run_id!);
      if (!run) return error(404, 'Not Found');
      const id = randomBytes(12).toString('hex');
      env.logs.add(id, repo!, run);
      return { status: 302, headers: { location: `${env.api()}/_emulator/logs/${id}.zip` } };
    },
    perm('actions', 'read'),
  );

  router.add(
    'GET',
    '/repos/{owner}/{repo}/actions/jobs/{job_id}',
    ({ repo, params }) => {
      const run = repo!.runs.find((x) => String(jobId(x)) === params.job_id);
      return run ? { status: 200, body: job(env.api(), repo!, run) } : error(404, 'Not Found');
    },
    perm('actions', 'read'),
  );

  // A job's log as plain text, from a link that lives a minute (GitHub's signed URL). A run here has one job; GitHub
  // serves a job's log once the job has finished, so an unfinished one is not found.
  router.add(
    'GET',
    '/repos/{owner}/{repo}/actions/jobs/{job_id}/logs',
    ({ repo, params }) => {
      const run = repo!.runs.find((x) => String(jobId(x)) === params.job_id);
      if (!run || run.status !== 'completed') return error(404, 'Not Found');
      const id = randomBytes(12).toString('hex');
      env.logs.add(id, repo!, run, 60_000);
      return { status: 302, headers: { location: `${env.api()}/_emulator/logs/${id}.txt` } };
    },
    perm('actions', 'read'),
  );
}

/**
 * GitHub's `created` search qualifier: `2024-01-01`, `>=2024-01-01`, `<2024-01-01T10:00:00Z`,
 * `2024-01-01..2024-01-31`, `2024-01-01..*`. A bare date matches that whole (UTC) day. Undefined when malformed.
 */
export function createdFilter(q: string): ((t: number) => boolean) | undefined {
  const parse = (s: string, end: boolean): number | undefined => {
    if (s === '*') return end ? Infinity : -Infinity;
    const t = Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(s) ? `${s}T00:00:00Z` : s);
    if (Number.isNaN(t)) return undefined;
    return end && /^\d{4}-\d{2}-\d{2}$/.test(s) ? t + 86_400_000 - 1 : t;
  };
  const range = /^(.+)\.\.(.+)$/.exec(q);
  if (range) {
    const [from, to] = [parse(range[1]!, false), parse(range[2]!, true)];
    return from === undefined || to === undefined ? undefined : (t) => t >= from && t <= to;
  }
  const m = /^(>=|<=|>|<)?(.+)$/.exec(q)!;
  const op = m[1];
  const [start, end] = [parse(m[2]!, false), parse(m[2]!, true)];
  if (start === undefined || end === undefined) return undefined;
  if (op === '>=') return (t) => t >= start;
  if (op === '>') return (t) => t > end;
  if (op === '<=') return (t) => t <= end;
  if (op === '<') return (t) => t < start;
  return (t) => t >= start && t <= end;
}
