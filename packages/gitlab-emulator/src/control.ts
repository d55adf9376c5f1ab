/**
 * The emulator's control API, for people and for processes that did not start it (the in-process object does the
 * same for tests and the sandbox). JSON in and out, under `/_emulator/`, never under GitLab's own paths:
 *
 *   GET  /_emulator/                                what is here
 *   POST /_emulator/projects                        {path, defaultBranch?, files?, pipelineVariablesRole?}  → 201 {id, path}
 *   POST /_emulator/projects/{path}/commits         {branch, files, message?}                              → 201 {sha}
 *   GET  /_emulator/projects/{path}/pipelines                                                               → 200 [pipeline]
 *   GET  /_emulator/projects/{path}/merge-requests                                                          → 200 [mr]
 *   GET  /_emulator/projects/{path}/variables                                                               → 200 [{key, masked, hidden, ...}]
 *   POST /_emulator/tokens                          {scopes?, projects?, role?, expiresInMs?}              → 201 {token}
 *   POST /_emulator/faults/outage                   {mode?, forMs?, requests?}
 *   POST /_emulator/faults/latency                  {ms}
 *   POST /_emulator/faults/exhaust-rate-limit       {forMs, token?, retryAfter?}
 *   POST /_emulator/faults/secondary-limit          {count, retryAfterSeconds?}
 *   POST /_emulator/faults/keep-pending             {on}
 *   POST /_emulator/faults/runner-capacity          {count}
 *   POST /_emulator/faults/fail-builds              {count}
 *   POST /_emulator/faults/webhooks                 {drop?, duplicate?}
 *   POST /_emulator/faults/lose-responses           {count, operation?, method?}
 *   POST /_emulator/faults/reset
 *   GET  /_emulator/records                         → {records, contract: {operations, responses, violations}}
 *
 * `{path}` is the project's full path, URL-encoded (`acme%2Fweb`).
 */
import type { ServerResponse } from 'node:http';
import { z } from 'zod';
import type { GitLabEmulator } from './api.ts';

class BadRequest extends Error {
  readonly status: number;
  constructor(message: string, status = 422) {
    super(message);
    this.status = status;
  }
}

const says = (phrase: string) => ({ error: (issue: z.core.$ZodRawIssue) => `"${String(issue.path?.[0])}" ${phrase}` });
const text = z.string(says('must be a non-empty string')).min(1, says('must be a non-empty string'));
const count = z.number(says('must be a number ≥ 0')).min(0, says('must be a number ≥ 0'));
const on = z.boolean(says('must be true or false'));
const files = z.record(z.string(), z.string(says('must map paths to strings')), says('must map paths to strings'));
const role = z.enum(['guest', 'reporter', 'developer', 'maintainer', 'owner'], says('names a role'));

const bodies = {
  project: z.object({
    path: text,
    defaultBranch: text.optional(),
    files: files.optional(),
    pipelineVariablesRole: z
      .enum(['no_one_allowed', 'developer', 'maintainer', 'owner'], says('names a role'))
      .optional(),
  }),
  commit: z.object({
    branch: text,
    files: z.record(z.string(), z.string().nullable(), says('must map paths to strings or null')),
    message: text.optional(),
  }),
  token: z.object({
    scopes: z.array(text, says('must be a list of scopes')).optional(),
    projects: z.array(text, says('must be a list of project paths')).optional(),
    role: role.optional(),
    expiresInMs: count.optional(),
  }),
  outage: z.object({
    mode: z.enum(['502', '503', 'reset'], says('is 502, 503 or reset')).optional(),
    forMs: count.optional(),
    requests: count.optional(),
  }),
  latency: z.object({ ms: count }),
  exhaust: z.object({ forMs: count, token: text.optional(), retryAfter: on.optional() }),
  secondary: z.object({ count, retryAfterSeconds: count.optional() }),
  on: z.object({ on }),
  count: z.object({ count }),
  webhooks: z.object({ drop: count.optional(), duplicate: count.optional() }),
  lose: z.object({ count, operation: text.optional(), method: text.optional() }),
};

function parse<S extends z.ZodType>(schema: S, body: unknown): z.output<S> {
  const parsed = schema.safeParse(body);
  if (!parsed.success) throw new BadRequest(parsed.error.issues[0]!.message);
  return parsed.data;
}

export async function handleControl(
  emulator: GitLabEmulator,
  projectPaths: () => string[],
  url: URL,
  method: string,
  raw: Buffer,
  res: ServerResponse,
): Promise<void> {
  const json = (code: number, body: unknown): void => {
    res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  };
  const path = url.pathname.replace(/\/+$/, '') || '/';
  try {
    let body: Record<string, unknown> = {};
    if (raw.length) {
      try {
        body = JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
      } catch {
        throw new BadRequest('the body is not JSON', 400);
      }
      if (!body || typeof body !== 'object' || Array.isArray(body)) throw new BadRequest('expected a JSON object', 400);
    }
    const project = /^\/_emulator\/projects\/([^/]+)\/(commits|pipelines|merge-requests|variables)$/.exec(path);
    const fullPath = project ? decodeURIComponent(project[1]!) : '';
    if (project && !projectPaths().some((p) => p.toLowerCase() === fullPath.toLowerCase())) {
      throw new BadRequest(`no project ${fullPath}`, 404);
    }
    const key = `${method} ${project ? `projects/*/${project[2]}` : path.slice('/_emulator'.length) || '/'}`;
    const f = emulator.faults;
    const ok = () => json(200, { ok: true });
    switch (key) {
      case 'GET /':
        return json(200, {
          url: emulator.url,
          api: `${emulator.url}/api/v4`,
          version: emulator.version,
          projects: projectPaths(),
        });
      case 'POST /projects': {
        const { files: content, ...spec } = parse(bodies.project, body);
        return json(201, await emulator.createProject({ ...spec, ...(content ? { files: content } : {}) }));
      }
      case 'POST projects/*/commits': {
        const c = parse(bodies.commit, body);
        return json(201, { sha: emulator.push(fullPath, c.branch, c.files, c.message) });
      }
      case 'GET projects/*/pipelines':
        return json(200, emulator.pipelines(fullPath));
      case 'GET projects/*/merge-requests':
        return json(200, emulator.mergeRequests(fullPath));
      case 'GET projects/*/variables':
        return json(200, emulator.variables(fullPath));
      case 'POST /tokens':
        return json(201, { token: emulator.createToken(parse(bodies.token, body)) });
      case 'POST /faults/outage':
        f.outage(parse(bodies.outage, body));
        return ok();
      case 'POST /faults/latency':
        f.latency(parse(bodies.latency, body).ms);
        return ok();
      case 'POST /faults/exhaust-rate-limit':
        f.exhaustRateLimit(parse(bodies.exhaust, body));
        return ok();
      case 'POST /faults/secondary-limit':
        f.secondaryLimit(parse(bodies.secondary, body));
        return ok();
      case 'POST /faults/keep-pending':
        f.keepPending(parse(bodies.on, body).on);
        return ok();
      case 'POST /faults/runner-capacity':
        f.runnerCapacity(parse(bodies.count, body).count);
        return ok();
      case 'POST /faults/fail-builds':
        f.failBuilds(parse(bodies.count, body).count);
        return ok();
      case 'POST /faults/webhooks':
        f.webhooks(parse(bodies.webhooks, body));
        return ok();
      case 'POST /faults/lose-responses':
        f.loseResponses(parse(bodies.lose, body));
        return ok();
      case 'POST /faults/reset':
        f.reset();
        return ok();
      case 'GET /records':
        return json(200, { records: emulator.records, contract: emulator.contract.summary() });
      default:
        throw new BadRequest(`no control operation ${method} ${path} (GET /_emulator/ lists them in control.ts)`, 404);
    }
  } catch (err) {
    if (err instanceof BadRequest) return json(err.status, { error: err.message });
    return json(500, { error: (err as Error).message });
  }
}
