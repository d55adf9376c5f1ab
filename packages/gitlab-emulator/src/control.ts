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
import {
  BadRequest,
  commonFaultOperations,
  count,
  files,
  jsonObject,
  on,
  parse,
  says,
  text,
} from '@flui/emulator-kit/control';
import { z } from 'zod';
import type { GitLabEmulator } from './api.ts';

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
  exhaust: z.object({ forMs: count, token: text.optional(), retryAfter: on.optional() }),
  secondary: z.object({ count, retryAfterSeconds: count.optional() }),
  on: z.object({ on }),
  lose: z.object({ count, operation: text.optional(), method: text.optional() }),
};

/** The fault operations, by `METHOD /faults/name`: the kit's and GitLab's own. */
const faultOperations = (f: GitLabEmulator['faults']): Record<string, (body: unknown) => void> => ({
  ...commonFaultOperations(f),
  'POST /faults/outage': (body) => f.outage(parse(bodies.outage, body)),
  'POST /faults/exhaust-rate-limit': (body) => f.exhaustRateLimit(parse(bodies.exhaust, body)),
  'POST /faults/secondary-limit': (body) => f.secondaryLimit(parse(bodies.secondary, body)),
  'POST /faults/keep-pending': (body) => f.keepPending(parse(bodies.on, body).on),
  'POST /faults/lose-responses': (body) => f.loseResponses(parse(bodies.lose, body)),
});

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
    const body = jsonObject(raw, 'the body is not JSON');
    const project = /^\/_emulator\/projects\/([^/]+)\/(commits|pipelines|merge-requests|variables)$/.exec(path);
    const fullPath = project ? decodeURIComponent(project[1]!) : '';
    if (project && !projectPaths().some((p) => p.toLowerCase() === fullPath.toLowerCase())) {
      throw new BadRequest(`no project ${fullPath}`, 404);
    }
    const key = `${method} ${project ? `projects/*/${project[2]}` : path.slice('/_emulator'.length) || '/'}`;
    const fault = faultOperations(emulator.faults)[key];
    if (fault) {
      fault(body);
      return json(200, { ok: true });
    }
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
