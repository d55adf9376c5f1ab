/**
 * The emulator's control API, for people and for processes that did not start it (the in-process object does the
 * same for tests and the sandbox). JSON in and out, under `/_emulator/`, never under GitHub's own paths:
 *
 *   GET  /_emulator/                              what is here
 *   POST /_emulator/repos                         {owner, name, defaultBranch?, files?}     → 201 {fullName}
 *   POST /_emulator/repos/{owner}/{name}/commits  {branch, files, message?}                 → 201 {sha}
 *   POST /_emulator/repos/{owner}/{name}/protection {branch, on?}                           → 200
 *   GET  /_emulator/repos/{owner}/{name}/runs                                               → 200 [run]
 *   GET  /_emulator/repos/{owner}/{name}/pulls                                              → 200 [pull]
 *   POST /_emulator/tokens                        {repos?, permissions?, expiresInMs?}      → 201 {token}
 *   POST /_emulator/apps                          {repos?, permissions?, tokenExpiresInMs?,
 *                                                  installations?: [{account, repos?, permissions?}]}
 *                                                 → 201 {appId, privateKey, installationId, installations: [{id, account}]}
 *   POST /_emulator/apps/{appId}/installations    {account, repos?, permissions?}           → 201 {installationId}
 *   DELETE /_emulator/apps/{appId}/installations/{id}                                       → 200 (uninstalled)
 *   POST /_emulator/faults/outage                 {mode?, forMs?, requests?}
 *   POST /_emulator/faults/latency                {ms}
 *   POST /_emulator/faults/exhaust-rate-limit     {forMs, token?, installationId?, status?}
 *   POST /_emulator/faults/secondary-limit        {count, retryAfterSeconds?, status?}  (none: no retry-after)
 *   POST /_emulator/faults/keep-queued            {on}
 *   POST /_emulator/faults/runner-capacity        {count}
 *   POST /_emulator/faults/fail-builds            {count}
 *   POST /_emulator/faults/webhooks               {drop?, duplicate?}
 *   POST /_emulator/faults/reset
 *   GET  /_emulator/records                       → {records, contract: {operations, responses, violations}}
 *   GET  /_emulator/logs/{id}.zip                 a run's log archive (where the logs API redirects)
 *   GET  /_emulator/logs/{id}.txt                 a job's log, plain text (where the job logs API redirects)
 *
 * Plus `/_html/...`: minimal pages for the `html_url`s the API hands out (a run with its log, a pull request), so
 * a link the CLI prints opens something useful.
 */
import type { ServerResponse } from 'node:http';
import { zipSync } from 'fflate';
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
import type { Emulation } from './context.ts';
import { DOCS } from './http.ts';
import type { GitHubEmulator } from './api.ts';
import { PERMISSION_AREAS } from './store.ts';

const names = z.array(z.string(says('must be strings')), says('must be strings'));
const limitStatus = z.literal([403, 429], says('must be 403 or 429'));
const permissions = z.partialRecord(
  z.enum(PERMISSION_AREAS, says(`names permission areas: ${PERMISSION_AREAS.join(', ')}`)),
  z.enum(['read', 'write', 'none'], says('must map areas to read, write or none')),
  says('must map areas to read, write or none'),
);

const installation = z.object(
  { account: text, repos: names.optional(), permissions: permissions.optional() },
  says('must be a list of {account, repos?, permissions?}'),
);

/** The body of each control request that takes one. */
const bodies = {
  repo: z.object({ owner: text, name: text, defaultBranch: text.optional(), files: files.optional() }),
  commit: z.object({ branch: text, files, message: text.optional() }),
  protection: z.object({ branch: text, on: on.optional() }),
  token: z.object({ repos: names.optional(), permissions: permissions.optional(), expiresInMs: count.optional() }),
  installation,
  app: z.object({
    tokenExpiresInMs: count.optional(),
    repos: names.optional(),
    permissions: permissions.optional(),
    installations: z.array(installation, says('must be a list of {account, repos?, permissions?}')).optional(),
  }),
  outage: z.object({
    mode: z.enum(['503', 'reset'], says('is 503 or reset')).optional(),
    forMs: count.optional(),
    requests: count.optional(),
  }),
  exhaustRateLimit: z.object({
    forMs: count,
    token: text.optional(),
    installationId: count.optional(),
    status: limitStatus.optional(),
  }),
  secondaryLimit: z.object({ count, retryAfterSeconds: count.optional(), status: limitStatus.optional() }),
  keepQueued: z.object({ on }),
};

/** The fault operations, by `METHOD /faults/name`: the kit's and GitHub's own. */
const faultOperations = (f: GitHubEmulator['faults']): Record<string, (body: unknown) => void> => ({
  ...commonFaultOperations(f),
  'POST /faults/outage': (body) => f.outage(parse(bodies.outage, body)),
  'POST /faults/exhaust-rate-limit': (body) => f.exhaustRateLimit(parse(bodies.exhaustRateLimit, body)),
  'POST /faults/secondary-limit': (body) => f.secondaryLimit(parse(bodies.secondaryLimit, body)),
  'POST /faults/keep-queued': (body) => f.keepQueued(parse(bodies.keepQueued, body).on),
});

export async function handleControl(
  emulator: GitHubEmulator,
  env: Emulation,
  url: URL,
  method: string,
  raw: Buffer,
  res: ServerResponse,
): Promise<void> {
  const json = (code: number, body: unknown): void => {
    res.writeHead(code, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(body));
  };
  const path = url.pathname.replace(/\/+$/, '') || '/';
  try {
    const body = jsonObject(raw, 'Problems parsing JSON');

    const jobLog = /^\/_emulator\/logs\/([a-f0-9]+)\.txt$/.exec(path);
    if (jobLog && method === 'GET') {
      const link = env.logs.get(jobLog[1]!);
      if (!link) throw new BadRequest('Not Found (job log links expire after a minute)', 404);
      const text = Buffer.from(`${link.run.log.join('\n')}\n`);
      res
        .writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': String(text.length) })
        .end(text);
      return;
    }

    const logs = /^\/_emulator\/logs\/([a-f0-9]+)\.zip$/.exec(path);
    if (logs && method === 'GET') {
      const link = env.logs.get(logs[1]!);
      if (!link) throw new BadRequest('Not Found (log links expire after five minutes)', 404);
      const { run } = link;
      const files: Record<string, Uint8Array> = { '0_build.txt': Buffer.from(`${run.log.join('\n')}\n`) };
      for (const step of run.steps ?? []) {
        files[`build/${step.number}_${step.name.replace(/[/\\:*?"<>|]/g, '')}.txt`] = Buffer.from(
          `${step.log.join('\n')}\n`,
        );
      }
      // Stored, not deflated: the logs are small, and a reader can find their text in the archive as it is.
      const zip = zipSync(files, { level: 0 });
      res.writeHead(200, { 'content-type': 'application/zip', 'content-length': String(zip.length) }).end(zip);
      return;
    }

    const repo = /^\/_emulator\/repos\/([^/]+)\/([^/]+)\/(commits|protection|runs|pulls)$/.exec(path);
    const app = /^\/_emulator\/apps\/([^/]+)\/installations(?:\/([0-9]+))?$/.exec(path);
    const appPath = app && (app[2] ? 'apps/*/installations/*' : 'apps/*/installations');
    const key = `${method} ${repo ? `repos/*/${repo[3]}` : (appPath ?? (path.slice('/_emulator'.length) || '/'))}`;
    const fullName = repo ? `${decodeURIComponent(repo[1]!)}/${decodeURIComponent(repo[2]!)}` : '';
    if (repo && !env.store.repo(fullName)) throw new BadRequest(`no repository ${fullName}`, 404);
    const f = emulator.faults;
    const fault = faultOperations(f)[key];
    if (fault) {
      fault(body);
      return json(200, { ok: true });
    }
    switch (key) {
      case 'GET /':
        return json(200, {
          url: emulator.url,
          docs: 'see packages/github-emulator/src/control.ts',
          repos: Object.values(env.store.state.repos).map((r) => `${r.owner}/${r.name}`),
        });
      case 'POST /repos': {
        const { files, ...repo } = parse(bodies.repo, body);
        return json(201, await emulator.createRepo({ ...repo, ...(files ? { files } : {}) }));
      }
      case 'POST repos/*/commits': {
        const commit = parse(bodies.commit, body);
        return json(201, { sha: emulator.push(fullName, commit.branch, commit.files, commit.message) });
      }
      case 'POST repos/*/protection': {
        const protection = parse(bodies.protection, body);
        emulator.protectBranch(fullName, protection.branch, protection.on !== false);
        return json(200, { ok: true });
      }
      case 'GET repos/*/runs':
        return json(200, emulator.runs(fullName));
      case 'GET repos/*/pulls':
        return json(200, emulator.pulls(fullName));
      case 'POST /tokens':
        return json(201, { token: emulator.createToken(parse(bodies.token, body)) });
      case 'POST /apps':
        return json(201, emulator.createApp(parse(bodies.app, body)));
      case 'POST apps/*/installations': {
        const appId = decodeURIComponent(app![1]!);
        if (!env.store.state.apps[appId]) throw new BadRequest(`no GitHub App ${appId}`, 404);
        return json(201, emulator.addInstallation(appId, parse(bodies.installation, body)));
      }
      case 'DELETE apps/*/installations/*': {
        const appId = decodeURIComponent(app![1]!);
        const id = Number(app![2]);
        if (!env.store.state.apps[appId]?.installations.some((i) => i.id === id)) {
          throw new BadRequest(`no installation ${id} of GitHub App ${appId}`, 404);
        }
        emulator.removeInstallation(appId, id);
        return json(200, { ok: true });
      }
      case 'GET /records':
        return json(200, { records: emulator.records, contract: emulator.contract.summary() });
      default:
        throw new BadRequest('Not Found', 404);
    }
  } catch (err) {
    if (err instanceof BadRequest) return json(err.status, { message: err.message, documentation_url: DOCS });
    return json(500, { message: `Server Error: ${(err as Error).message}`, documentation_url: DOCS });
  }
}

const escape = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** Minimal pages behind the `html_url`s of runs and pull requests. */
export function handleHtml(env: Emulation, url: URL, res: ServerResponse): void {
  const page = (code: number, title: string, body: string) => {
    res
      .writeHead(code, { 'content-type': 'text/html; charset=utf-8' })
      .end(
        `<!doctype html><html><head><meta charset="utf-8"><title>${escape(title)}</title></head>` +
          `<body><h1>${escape(title)}</h1>${body}</body></html>`,
      );
  };
  let parts: string[];
  try {
    parts = url.pathname.split('/').slice(2).map(decodeURIComponent);
  } catch {
    return page(400, 'Bad Request', '');
  }
  const [owner, name, kind, id] = parts;
  const repo = owner && name ? env.store.repo(`${owner}/${name}`) : undefined;
  if (repo && kind === 'actions' && id === 'runs') {
    const run = repo.runs.find((r) => String(r.id) === parts[4]);
    if (run) {
      const state = run.conclusion ?? run.status;
      return page(
        200,
        `${run.displayTitle} · ${owner}/${name}`,
        `<p>${escape(run.workflowName)} #${run.runNumber} (attempt ${run.attempt}) on ${escape(run.headBranch)} ` +
          `at <code>${run.headSha}</code>: <strong>${escape(state)}</strong></p>` +
          (run.image ? `<p>Image: <code>${escape(run.image)}@${escape(run.digest ?? '')}</code></p>` : '') +
          `<pre>${escape(run.log.join('\n'))}</pre>`,
      );
    }
  }
  if (repo && kind === 'pull') {
    const pr = repo.pulls.find((p) => String(p.number) === id);
    if (pr) {
      return page(
        200,
        `${pr.title} #${pr.number} · ${owner}/${name}`,
        `<p>${escape(pr.head)} → ${escape(pr.base)}: <strong>${pr.merged ? 'merged' : pr.state}</strong></p>` +
          `<pre>${escape(pr.body ?? '')}</pre>`,
      );
    }
  }
  page(404, 'Not Found', '<p>The GitHub emulator has no page here.</p>');
}
