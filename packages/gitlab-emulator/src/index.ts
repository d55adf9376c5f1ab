/**
 * A GitLab emulator for the part of the REST API (v4) Flui's pipeline uses, faithful enough that the production
 * client (`@gitbeaker/rest`, `host: emulator.url`) runs against it unchanged, and hostile enough to prove the pipeline
 * survives what GitLab does: no conditional requests (every poll is charged), per-minute rate limits with and
 * without `Retry-After`, bad and expired tokens, invisible projects, missing scopes and roles, outages, pipelines
 * that stay pending, limited runners, failing builds, lost and duplicated webhooks.
 *
 * Served (routes.ts): project get; repository files get/head/raw/create/update (with `last_commit_id` conflicts);
 * commits with `actions[]`; branch get; merge requests list/create; project CI/CD variables list/get/create/update/
 * delete (`masked`, `masked_and_hidden`, `protected`, `raw`; masked-value rules); pipeline create with `ref`,
 * `inputs` (checked against the root file's `spec:inputs`) and `variables` (refused per
 * `ci_pipeline_variables_minimum_override_role`); pipelines list (`name`, `source`, `ref`, `status`, `sha`,
 * `scope`, `order_by`, `sort`, pages), get, cancel, jobs; job trace (plain text).
 *
 * Auth: `PRIVATE-TOKEN: <token>` or `Authorization: Bearer <token>` with a token from
 * {@link GitLabEmulator.createToken}. As GitLab answers: no or unknown token 401 `{"message":"401 Unauthorized"}`,
 * expired 401 `invalid_token`, a project the token cannot see 404 `{"message":"404 Project Not Found"}`, a
 * `read_api` token writing 403 `insufficient_scope`, a role too low 403 `{"message":"403 Forbidden"}`.
 *
 * Every response (and webhook payload) is checked against the JSON Schemas of contract.ts; the test helper fails the
 * test that caused a violation. With `dataDir`, state is persisted before each acknowledgement, and a restarted
 * emulator resumes unfinished pipelines. *
 * Facts checked against GitLab's documentation (doc/ in gitlabhq/gitlabhq, read for this emulator):
 * - pipelines.md: `POST /projects/:id/pipeline` takes `ref`, `variables` (array of hashes) and `inputs` (a hash;
 *   17.10 behind a default-on flag, generally available in 18.1); the list's `name` filter is GA in 16.9 (`name` in
 *   responses 16.3); `order_by` is `id`, `status`, `ref`, `updated_at` or `user_id`, `sort` `asc`/`desc`.
 * - repository_files.md: `ref` is required on GET (`HEAD` means the default branch), optional on `/raw`; HEAD returns
 *   the `X-Gitlab-*` metadata headers; create answers 201 `{file_path, branch}`, update 200; an update with identical
 *   content is one of the documented causes of its 400.
 * - project_level_variables.md: `masked_and_hidden` and `hidden` since 17.4; a duplicate key needs another
 *   `environment_scope`; `filter[environment_scope]` picks among duplicates; PUT requires `value`.
 * - `Ci::Maskable`: masked values match `[a-zA-Z0-9_+=/@:.~-]{8,}`, or any `\S{8,}` when raw; else `value is invalid`.
 * - "Insufficient permissions to set pipeline variables" (400, `message.base`) per
 *   `ci_pipeline_variables_minimum_override_role` (`no_one_allowed` the default for new gitlab.com projects, 17.7).
 * - inputs' errors ("`x` input: required value has not been provided", "provided value is not a number", "cannot be
 *   used because it is not in the list of the allowed options") from GitLab's specs.
 * - project_webhooks.md and webhooks.md: delivery headers; auto-disabling after 4 consecutive failures.
 * - GitLab's merge requests adding webhook signing tokens (!230944, !231325): the signed string, `webhook-id` equal
 *   to the Idempotency-Key, `whsec_` + base64 of a 32-byte key (webhooks.ts).
 * Not confirmed here (plausible, kept visible in comments where used): "unknown input arguments" wording, the files
 * API's 400 texts, the 409 text for a second merge request, the GitLab version that signs webhooks, that the Commits
 * API commits even when nothing changes.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { readBody, serve } from '@flui/emulator-kit/server';
import type { EmulatedPipeline, GitLabEmulator, GitLabEmulatorOptions, RequestInfo } from './api.ts';
import { ContractChecker } from './contract.ts';
import { handleControl } from './control.ts';
import { FaultState, RateLimits } from './faults.ts';
import { message, Refusal, Router, type Ctx, type Reply, type Route } from './http.ts';
import { bump, createRecords } from './records.ts';
import { registerRoutes, type Emulation } from './routes.ts';
import { Runner } from './runner.ts';
import { now, Store, type Project } from './store.ts';
import { Webhooks } from './webhooks.ts';

export type { EmulatedPipeline, GitLabEmulator, GitLabEmulatorOptions, RequestInfo } from './api.ts';
export type { Faults } from './faults.ts';
export type { Records } from './records.ts';
export type { Job, MergeRequest, Pipeline, PipelineVariablesRole, Role } from './store.ts';
export { ContractChecker } from './contract.ts';
export { MASKABLE, MASKABLE_RAW } from './routes.ts';

export const DEFAULT_VERSION = '17.10.0';

export async function startGitLabEmulator(opts: GitLabEmulatorOptions = {}): Promise<GitLabEmulator> {
  const version = opts.version ?? DEFAULT_VERSION;
  const store = new Store(opts.dataDir);
  let base = '';
  const runner = new Runner(store, {
    pendingMs: opts.runner?.pendingMs ?? 200,
    buildMs: opts.runner?.buildMs ?? 1000,
    insecureHosts: opts.registry?.insecureHosts ?? ['127.0.0.1', 'localhost'],
    ciRegistry: opts.registry?.ciRegistry,
    base: () => base,
  });
  const contract = new ContractChecker();
  const contractOn = opts.contract ?? true;
  const records = createRecords();
  const limits = new RateLimits(opts.rateLimit ?? 2000);
  const fault = new FaultState();
  const webhooks = new Webhooks(opts.webhook, fault, records, version, contractOn ? contract : undefined);
  const hooks: GitLabEmulator['hooks'] = {};
  const router = new Router();
  const env: Emulation = {
    store,
    runner,
    records,
    router,
    base: () => base,
    version,
    hookAutoDisable: opts.webhook?.autoDisable ?? false,
  };
  runner.onChange = (project, pipeline) => webhooks.pipelineChanged(base, project, pipeline);
  registerRoutes(env);

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://emulator');
    const method = req.method ?? 'GET';
    const raw = await readBody(req);
    if (!raw) return send(res, req, undefined, message(413, '413 Request Entity Too Large'));

    if (url.pathname.startsWith('/_emulator/') || url.pathname === '/_emulator') {
      return handleControl(
        emulator,
        () => Object.values(store.state.projects).map((p) => p.path),
        url,
        method,
        raw,
        res,
      );
    }
    records.requests++;
    if (fault.latencyMs) {
      records.delayed++;
      await sleep(fault.latencyMs);
    }
    const outage = fault.takeOutage();
    if (outage) {
      records.outageFailures++;
      if (outage === 'reset') {
        req.socket.resetAndDestroy();
        return;
      }
      if (outage === '502') {
        // The front end's answer when the application is down: an HTML page, not JSON.
        res
          .writeHead(502, { 'content-type': 'text/html' })
          .end('<html><body><h1>502</h1><p>Whoops, GitLab is taking too much time to respond.</p></body></html>');
        return;
      }
      return send(res, req, undefined, message(503, '503 Service Unavailable'));
    }

    const match = router.match(method, url.pathname);
    if (match === 'malformed') return send(res, req, undefined, message(400, '400 Bad request'));
    if (!match) return send(res, req, undefined, { status: 404, body: { error: '404 Not Found' } });
    const { route, params } = match;
    bump(records.operations, `${route.method} ${route.operation}`);

    // Grape reads parameters from the query string and the body (JSON or form), the body winning.
    const body: Record<string, unknown> = Object.fromEntries(url.searchParams);
    if (raw.length) {
      const type = String(req.headers['content-type'] ?? '');
      if (type.includes('application/x-www-form-urlencoded')) {
        Object.assign(body, Object.fromEntries(new URLSearchParams(raw.toString('utf8'))));
      } else {
        let parsed: unknown;
        try {
          parsed = JSON.parse(raw.toString('utf8'));
        } catch {
          return send(res, req, route, message(400, '400 Bad request - JSON parse error'));
        }
        if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
          return send(res, req, route, message(400, '400 Bad request'));
        }
        Object.assign(body, parsed);
      }
    }
    const ctx: Ctx = { method, params, query: url.searchParams, body, headers: req.headers, url };

    const header = req.headers['private-token'];
    const token =
      (Array.isArray(header) ? header[0] : header) ?? /^bearer (\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
    const grant = token ? store.state.tokens[token] : undefined;
    if (!token || !grant) return send(res, req, route, message(401, '401 Unauthorized'));
    if (grant.expiresAt !== undefined && grant.expiresAt < Date.now()) {
      return send(res, req, route, {
        status: 401,
        body: {
          error: 'invalid_token',
          error_description: 'Token is expired. You can either do re-authorization or token refresh.',
        },
      });
    }
    const limit = limits.state(token);
    const secondary = fault.takeSecondary();
    if (limit.remaining === 0 || secondary) {
      if (limit.remaining === 0) records.requestsOverLimit++;
      bump(records.limitRefusals, token);
      const retryAfter = secondary
        ? secondary.retryAfter
        : limit.retryAfter
          ? Math.max(1, Math.ceil((limit.reset - Date.now()) / 1000))
          : undefined;
      // Rack::Attack's throttled answer: plain text, `Retry-After` (when announced) and the RateLimit headers.
      return send(
        res,
        req,
        route,
        {
          status: 429,
          raw: { contentType: 'text/plain', data: Buffer.from('Retry later\n') },
          headers: retryAfter === undefined ? {} : { 'retry-after': String(retryAfter) },
        },
        secondary ? undefined : token,
      );
    }
    limits.charge(token);
    bump(records.rateLimited, token);
    ctx.token = token;
    ctx.grant = grant;

    if (params.id !== undefined) {
      const project = store.project(params.id);
      const visible =
        project && (!grant.projects || grant.projects.some((p) => p.toLowerCase() === project.path.toLowerCase()));
      if (!visible) return send(res, req, route, message(404, '404 Project Not Found'), token);
      ctx.project = project;
    }
    const write = route.access === 'write';
    const scoped = grant.scopes.includes('api') || (!write && grant.scopes.includes('read_api'));
    if (!scoped) {
      return send(
        res,
        req,
        route,
        {
          status: 403,
          body: {
            error: 'insufficient_scope',
            error_description: 'The request requires higher privileges than provided by the access token.',
            scope: write ? 'api' : 'api read_api',
          },
        },
        token,
      );
    }

    const info: RequestInfo = {
      method,
      operation: route.operation,
      project: ctx.project?.path,
      credential: { token, scopes: grant.scopes, role: grant.role, projects: grant.projects },
    };
    await hooks.before?.(info);
    const reply = await run(route, ctx);
    info.status = reply.status;
    await hooks.after?.(info);
    if (fault.takeLostResponse(route.method, route.operation)) {
      records.responsesLost++;
      req.socket.resetAndDestroy();
      return;
    }
    return send(res, req, route, reply, token);
  }

  async function run(route: Route, ctx: Ctx): Promise<Reply> {
    try {
      return await route.handler(ctx);
    } catch (err) {
      if (err instanceof Refusal) return err.reply;
      contract.violations.push(`${ctx.method} ${route.operation}: handler threw ${(err as Error).stack}`);
      return message(500, '500 Internal Server Error');
    }
  }

  function send(
    res: ServerResponse,
    req: IncomingMessage,
    route: Route | undefined,
    reply: Reply,
    token?: string,
  ): void {
    let body = reply.body;
    const headers: Record<string, string> = {
      'x-request-id': randomUUID().replace(/-/g, '').slice(0, 26).toUpperCase(),
      'x-runtime': '0.012345',
      'cache-control': 'max-age=0, private, must-revalidate',
      vary: 'Origin, Accept-Encoding',
      'x-content-type-options': 'nosniff',
      'x-frame-options': 'SAMEORIGIN',
      'x-gitlab-meta': JSON.stringify({ correlation_id: randomUUID().replace(/-/g, ''), version: '1' }),
      ...reply.headers,
    };
    let payload: Buffer | undefined;
    if (body !== undefined) {
      const corrupt = route
        ? fault.takeCorruption(req.method === 'HEAD' ? 'GET' : (req.method ?? 'GET'), route.operation)
        : undefined;
      if (corrupt) body = corrupt(structuredClone(body)) ?? body;
      payload = Buffer.from(JSON.stringify(body));
      headers['content-type'] = 'application/json';
    } else if (reply.raw) {
      payload = reply.raw.data;
      headers['content-type'] = reply.raw.contentType;
    }
    // No ETag and no 304 on /api/v4: GitLab's ETag caching covers only some web routes, so every poll costs.
    if (token) Object.assign(headers, limits.headers(token));
    if (contractOn && route && !reply.raw) {
      try {
        contract.check(route.method, route.operation, reply.status, body);
      } catch (err) {
        contract.violations.push(
          `${route.method} ${route.operation} -> ${reply.status}: cannot check: ${(err as Error).message}`,
        );
      }
    }
    if (payload) headers['content-length'] = String(payload.length);
    res.writeHead(reply.status, headers).end(req.method === 'HEAD' ? undefined : payload);
  }

  const server = await serve(
    handle,
    (err) => ({ contentType: 'application/json', body: { message: `500 Internal Server Error: ${err.message}` } }),
    opts,
  );
  base = server.url;

  // Pipelines acknowledged before a restart carry on.
  for (const project of Object.values(store.state.projects))
    for (const pl of project.pipelines) runner.schedule(project, pl);

  const projectOf = (path: string): Project => {
    const p = store.project(path);
    if (!p) throw new Error(`GitLab emulator: no project ${path}`);
    return p;
  };

  const emulator: GitLabEmulator = {
    url: base,
    version,
    createToken(spec = {}) {
      const token = `glpat-${randomBytes(15).toString('base64url')}`;
      store.state.tokens[token] = {
        scopes: spec.scopes ?? ['api'],
        ...(spec.projects ? { projects: spec.projects } : {}),
        role: spec.role ?? 'maintainer',
        ...(spec.expiresInMs !== undefined ? { expiresAt: Date.now() + spec.expiresInMs } : {}),
      };
      store.save();
      return token;
    },
    async createProject(spec) {
      const existing = store.project(spec.path);
      if (existing) return { id: existing.id, path: existing.path };
      if (!/^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)+$/.test(spec.path)) {
        throw new Error(
          `GitLab emulator: a project path is group[/subgroup...]/name, not ${JSON.stringify(spec.path)}`,
        );
      }
      const t = now();
      const project: Project = {
        id: store.id(),
        path: spec.path,
        defaultBranch: spec.defaultBranch ?? 'main',
        createdAt: t,
        lastActivityAt: t,
        branches: {},
        commits: {},
        blobs: {},
        variables: [],
        pipelines: [],
        mergeRequests: [],
        pipelineVariablesRole: spec.pipelineVariablesRole ?? 'developer',
        ciConfigPath: spec.ciConfigPath ?? '.gitlab-ci.yml',
      };
      store.state.projects[spec.path.toLowerCase()] = project;
      const files = Object.fromEntries(
        Object.entries(spec.files ?? { 'README.md': `# ${spec.path}\n` }).map(([k, v]) => [
          k,
          Buffer.isBuffer(v) ? v : Buffer.from(v),
        ]),
      );
      store.commit(project, project.defaultBranch, files, 'Initial commit');
      store.save();
      return { id: project.id, path: project.path };
    },
    push(path, branch, files, msg = 'Update files') {
      const project = projectOf(path);
      const changes = Object.fromEntries(
        Object.entries(files).map(([k, v]) => [k, v === null ? null : Buffer.isBuffer(v) ? v : Buffer.from(v)]),
      );
      const c = store.commit(project, branch, changes, msg, project.defaultBranch);
      store.save();
      return c.id;
    },
    file(path, filePath, ref) {
      return store.file(projectOf(path), ref, filePath)?.content.toString('utf8');
    },
    pipelines(path) {
      const project = projectOf(path);
      return project.pipelines.map((pl) =>
        Object.defineProperty(pl, 'webUrl', {
          value: `${base}/${project.path}/-/pipelines/${pl.id}`,
          configurable: true,
        }),
      ) as EmulatedPipeline[];
    },
    mergeRequests(path) {
      return projectOf(path).mergeRequests;
    },
    variables(path) {
      return projectOf(path).variables.map((v) => ({
        key: v.key,
        masked: v.masked,
        hidden: v.hidden,
        protected: v.protected,
        raw: v.raw,
      }));
    },
    variableValue(path, key) {
      return projectOf(path).variables.find((v) => v.key === key)?.value;
    },
    trace(path, jobId) {
      for (const pl of projectOf(path).pipelines) {
        const j = pl.jobs.find((x) => x.id === jobId);
        if (j) return j.trace.join('\n');
      }
      return undefined;
    },
    faults: {
      ...fault.controls(),
      exhaustRateLimit: ({ forMs, token, retryAfter = true }) => limits.exhaust(forMs, token, retryAfter),
      secondaryLimit: ({ count, retryAfterSeconds }) => fault.setSecondary(count, retryAfterSeconds),
      keepPending: (on) => void (runner.faults.keepPending = on),
      keepQueued: (on) => void (runner.faults.keepPending = on),
      runnerCapacity: (count) => void (runner.faults.maxRunning = Math.max(1, count)),
      failBuilds: (count) => void (runner.faults.failBuilds = Math.max(0, count)),
      loseResponses: (opts) => fault.setLoseResponses(opts),
      reset() {
        fault.reset();
        limits.clearFaults();
        runner.faults.keepPending = false;
        runner.faults.maxRunning = Infinity;
        runner.faults.failBuilds = 0;
      },
    },
    records,
    contract,
    hooks,
    async stop() {
      runner.stop();
      store.close();
      await server.close();
      await webhooks.settle();
    },
  };
  return emulator;
}
