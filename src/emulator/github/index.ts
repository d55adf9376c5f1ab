/**
 * A GitHub emulator for the part of the REST API Flui's pipeline uses, faithful enough that the production Octokit
 * client runs against it unchanged (`baseUrl`), and hostile enough to prove the pipeline survives what GitHub does:
 * conditional requests and ETags, primary and secondary rate limits, bad credentials, invisible repositories,
 * outages, slow responses, runs that stay queued, failing builds, lost and duplicated webhooks.
 *
 * Every response is checked against GitHub's published OpenAPI description (contract.ts); a test helper fails the
 * test that caused a violation. Runs are executed by a simulated runner that builds and pushes real images
 * (runner.ts). The registry credential travels as two Actions secrets, named by the workflow's docker/login-action
 * step (Flui uses FLUI_REGISTRY_USERNAME and FLUI_REGISTRY_PASSWORD).
 *
 * Control (tests use the object; people and other processes use HTTP under /_emulator/): repos, tokens, apps,
 * faults, records.
 */
import {
  createHash,
  createHmac,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  randomUUID,
  verify,
} from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import sodium from 'libsodium-wrappers';
import { ContractChecker } from './contract.ts';
import { readWorkflow, Runner } from './runner.ts';
import { contentFile, fileCommit, job, minimalRepo, user, workflowRun } from './shapes.ts';
import { blobSha, now, Store, type Repo, type Run } from './store.ts';
import { zipStored } from './zip.ts';

export interface GitHubEmulatorOptions {
  host?: string;
  port?: number;
  dataDir?: string;
  registry?: { insecureHosts?: string[] };
  webhook?: { url: string; secret: string };
  runner?: { queuedMs?: number; buildMs?: number };
  /** Validate every response against GitHub's OpenAPI description (default true). */
  contract?: boolean;
  /** Primary rate limit per token per hour (GitHub: 5000 for tokens and most installations). */
  rateLimit?: number;
}

export interface RequestInfo {
  method: string;
  /** OpenAPI path template of the operation, e.g. `/repos/{owner}/{repo}/actions/runs/{run_id}`. */
  operation: string;
  repo?: string;
  status?: number;
}

export interface Records {
  requests: number;
  /** Requests that counted against the primary rate limit, per token. */
  rateLimited: Record<string, number>;
  notModified: number;
  /** Commits written through the contents API, per `owner/name:path`. */
  commits: Record<string, number>;
  dispatches: Record<string, number>;
  secretWrites: Record<string, number>;
  cancels: number;
  webhooksSent: number;
  /** Largest number of requests a token made while its limit said 0 remaining (should stay 0). */
  requestsOverLimit: number;
}

export interface Faults {
  /** 503 (or connection resets) for every API request until `untilMs` (epoch ms) or `clear`. */
  outage(opts: { mode?: '503' | 'reset'; forMs?: number }): void;
  latency(ms: number): void;
  /** The primary limit of every token (or one) reads 0 until reset, `forMs` from now. */
  exhaustRateLimit(opts: { forMs: number; token?: string }): void;
  /** The next `count` requests get a secondary rate limit with `retry-after: seconds`. */
  secondaryLimit(opts: { count: number; retryAfterSeconds: number }): void;
  keepQueued(on: boolean): void;
  failBuilds(count: number): void;
  webhooks(opts: { drop?: number; duplicate?: number }): void;
  /** Mutate the next JSON response of `operation` (proves the contract check can fail). */
  corruptNextResponse(operation: string, mutate: (body: Record<string, unknown>) => unknown): void;
  reset(): void;
}

export interface GitHubEmulator {
  url: string;
  createRepo(spec: {
    owner: string;
    name: string;
    defaultBranch?: string;
    files?: Record<string, string | Buffer>;
  }): Promise<{ fullName: string }>;
  /** Commit files to a branch as a person would (moves the branch head). */
  push(fullName: string, branch: string, files: Record<string, string>, message?: string): string;
  file(fullName: string, path: string, ref?: string): string | undefined;
  runs(fullName: string): Run[];
  secretNames(fullName: string): string[];
  createToken(spec?: { repos?: string[] }): string;
  createApp(): { appId: string; privateKey: string; installationId: number };
  faults: Faults;
  records: Records;
  contract: ContractChecker;
  /** Called before a request's handler runs and after it changed state, before the response is sent. */
  hooks: { before?: (info: RequestInfo) => void | Promise<void>; after?: (info: RequestInfo) => void | Promise<void> };
  stop(): Promise<void>;
}

interface Ctx {
  method: string;
  params: Record<string, string>;
  query: URLSearchParams;
  body: Record<string, unknown>;
  repo?: Repo;
  token?: string;
  headers: IncomingMessage['headers'];
}

interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  raw?: Buffer;
}

interface Route {
  method: string;
  operation: string;
  pattern: RegExp;
  keys: string[];
  handler: (ctx: Ctx) => Reply | Promise<Reply>;
  auth: 'token' | 'jwt';
}

const DOCS = 'https://docs.github.com/rest';

function error(status: number, message: string, headers?: Record<string, string>): Reply {
  return { status, body: { message, documentation_url: DOCS, status: String(status) }, headers };
}

function compile(method: string, operation: string, handler: Route['handler'], auth: Route['auth'] = 'token'): Route {
  const keys: string[] = [];
  const source = operation.replace(/\{(\w+)\}/g, (_m, key: string) => {
    keys.push(key);
    // `path` in the contents API spans slashes.
    return key === 'path' ? '(.+)' : '([^/]+)';
  });
  return { method, operation, pattern: new RegExp(`^${source}$`), keys, handler, auth };
}

export async function startGitHubEmulator(opts: GitHubEmulatorOptions = {}): Promise<GitHubEmulator> {
  await sodium.ready;
  const store = new Store(opts.dataDir);
  const runner = new Runner(store, {
    queuedMs: opts.runner?.queuedMs ?? 200,
    buildMs: opts.runner?.buildMs ?? 1000,
    insecureHosts: opts.registry?.insecureHosts ?? ['127.0.0.1', 'localhost'],
  });
  const contract = new ContractChecker();
  const contractOn = opts.contract ?? true;
  const limit = opts.rateLimit ?? 5000;
  const records: Records = {
    requests: 0,
    rateLimited: {},
    notModified: 0,
    commits: {},
    dispatches: {},
    secretWrites: {},
    cancels: 0,
    webhooksSent: 0,
    requestsOverLimit: 0,
  };
  const budgets = new Map<string, { used: number; reset: number; exhaustedUntil?: number }>();
  const fault = {
    outageUntil: 0,
    outageMode: '503' as '503' | 'reset',
    latencyMs: 0,
    secondary: { count: 0, retryAfter: 0 },
    dropWebhooks: 0,
    duplicateWebhooks: 0,
    corrupt: new Map<string, (body: Record<string, unknown>) => unknown>(),
    exhaustAll: 0,
  };
  const hooks: GitHubEmulator['hooks'] = {};
  let api = '';

  // ---- webhooks ----
  const deliver = async (repo: Repo, run: Run) => {
    if (!opts.webhook) return;
    if (fault.dropWebhooks > 0) {
      fault.dropWebhooks--;
      return;
    }
    const body = JSON.stringify({
      action: 'completed',
      workflow_run: workflowRun(api, repo, run),
      workflow: { id: run.workflowId, name: run.workflowName, path: run.workflowPath },
      repository: minimalRepo(api, repo),
      sender: user(api, 'flui-bot', 1),
    });
    const signature = `sha256=${createHmac('sha256', opts.webhook.secret).update(body).digest('hex')}`;
    const times = fault.duplicateWebhooks > 0 ? (fault.duplicateWebhooks--, 2) : 1;
    for (let i = 0; i < times; i++) {
      records.webhooksSent++;
      await fetch(opts.webhook.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-github-event': 'workflow_run',
          // A duplicate is a redelivery of the same delivery id, as GitHub's "Redeliver" does.
          'x-github-delivery': `${run.id}-${run.attempt}`,
          'x-hub-signature-256': signature,
        },
        body,
        signal: AbortSignal.timeout(10_000),
      }).catch(() => undefined); // GitHub does not retry failed deliveries either
    }
  };
  runner.onCompleted = (repo, run) => void deliver(repo, run);

  // ---- routes ----
  const routes: Route[] = [];
  const route = (method: string, operation: string, handler: Route['handler'], auth?: Route['auth']) =>
    routes.push(compile(method, operation, handler, auth));

  route('GET', '/repos/{owner}/{repo}/contents/{path}', ({ repo, params, query }) => {
    const ref = query.get('ref') ?? repo!.defaultBranch;
    const file = store.file(repo!, ref, params.path!);
    if (!file) return error(404, 'Not Found');
    return { status: 200, body: contentFile(api, repo!, params.path!, ref, file.sha, file.content) };
  });

  route('PUT', '/repos/{owner}/{repo}/contents/{path}', ({ repo, params, body }) => {
    const branch = String(body.branch ?? repo!.defaultBranch);
    if (!repo!.branches[branch]) return error(404, `Branch ${branch} not found`);
    if (typeof body.message !== 'string' || typeof body.content !== 'string') {
      return error(422, 'Invalid request.\n\n"message" and "content" are required.');
    }
    const path = params.path!;
    const current = store.file(repo!, branch, path);
    if (current && body.sha === undefined) return error(422, 'Invalid request.\n\n"sha" wasn\'t supplied.');
    if (current && body.sha !== current.sha) return error(409, `${path} does not match ${String(body.sha)}`);
    if (!current && body.sha !== undefined) return error(409, `${path} does not match ${String(body.sha)}`);
    const content = Buffer.from(body.content, 'base64');
    const sha = store.commit(repo!, branch, { [path]: content }, body.message);
    const key = `${repo!.owner}/${repo!.name}:${path}`;
    records.commits[key] = (records.commits[key] ?? 0) + 1;
    store.save();
    const commit = repo!.commits[sha]!;
    return {
      status: current ? 200 : 201,
      body: fileCommit(api, repo!, path, branch, blobSha(content), content.length, sha, commit.message, commit.date),
    };
  });

  route('GET', '/repos/{owner}/{repo}/git/ref/{ref}', ({ repo, params }) => {
    const branch = params.ref!.replace(/^heads\//, '');
    const sha = repo!.branches[branch];
    if (!sha) return error(404, 'Not Found');
    return { status: 200, body: gitRef(repo!, branch, sha) };
  });

  route('POST', '/repos/{owner}/{repo}/git/refs', ({ repo, body }) => {
    const ref = String(body.ref ?? '');
    const sha = String(body.sha ?? '');
    if (!ref.startsWith('refs/heads/') || !repo!.commits[sha]) return error(422, 'Reference update failed');
    const branch = ref.slice('refs/heads/'.length);
    if (repo!.branches[branch]) return error(422, 'Reference already exists');
    repo!.branches[branch] = sha;
    store.save();
    return { status: 201, body: gitRef(repo!, branch, sha) };
  });

  route('GET', '/repos/{owner}/{repo}/actions/secrets/public-key', ({ repo }) => ({
    status: 200,
    body: { key_id: repo!.keyPair.keyId, key: repo!.keyPair.publicKey },
  }));

  route('GET', '/repos/{owner}/{repo}/actions/secrets/{secret_name}', ({ repo, params }) => {
    const s = repo!.secrets[params.secret_name!];
    if (!s) return error(404, 'Not Found');
    return { status: 200, body: { name: params.secret_name!, created_at: s.createdAt, updated_at: s.updatedAt } };
  });

  route('PUT', '/repos/{owner}/{repo}/actions/secrets/{secret_name}', ({ repo, params, body }) => {
    const name = params.secret_name!;
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) || /^GITHUB_/i.test(name))
      return error(
        422,
        'Secret names can only contain alphanumeric characters or underscores and must not start with GITHUB_',
      );
    if (body.key_id !== repo!.keyPair.keyId) return error(422, 'Bad key_id');
    try {
      const cipher = sodium.from_base64(String(body.encrypted_value ?? ''), sodium.base64_variants.ORIGINAL);
      sodium.crypto_box_seal_open(
        cipher,
        sodium.from_base64(repo!.keyPair.publicKey, sodium.base64_variants.ORIGINAL),
        sodium.from_base64(repo!.keyPair.privateKey, sodium.base64_variants.ORIGINAL),
      );
    } catch {
      return error(422, 'encrypted_value is not a valid sealed box for this repository key');
    }
    const existing = repo!.secrets[name];
    repo!.secrets[name] = {
      encrypted: String(body.encrypted_value),
      createdAt: existing?.createdAt ?? now(),
      updatedAt: now(),
    };
    const key = `${repo!.owner}/${repo!.name}`;
    records.secretWrites[key] = (records.secretWrites[key] ?? 0) + 1;
    store.save();
    return existing ? { status: 204 } : { status: 201, body: {} };
  });

  route('GET', '/repos/{owner}/{repo}/actions/variables/{name}', ({ repo, params }) => {
    const v = repo!.variables[params.name!];
    if (!v) return error(404, 'Not Found');
    return {
      status: 200,
      body: { name: params.name!, value: v.value, created_at: v.createdAt, updated_at: v.updatedAt },
    };
  });

  route('POST', '/repos/{owner}/{repo}/actions/variables', ({ repo, body }) => {
    const name = String(body.name ?? '');
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) || typeof body.value !== 'string')
      return error(422, 'Invalid request: name and value are required');
    if (repo!.variables[name]) return error(409, 'Already exists - Variable already exists');
    repo!.variables[name] = { value: body.value, createdAt: now(), updatedAt: now() };
    store.save();
    return { status: 201, body: {} };
  });

  route('PATCH', '/repos/{owner}/{repo}/actions/variables/{name}', ({ repo, params, body }) => {
    const v = repo!.variables[params.name!];
    if (!v) return error(404, 'Not Found');
    if (typeof body.value === 'string') v.value = body.value;
    v.updatedAt = now();
    store.save();
    return { status: 204 };
  });

  route('POST', '/repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches', ({ repo, params, body }) => {
    const r = repo!;
    const path = workflowPath(r, params.workflow_id!);
    const ref = String(body.ref ?? '').replace(/^refs\/heads\//, '');
    const headSha = r.branches[ref];
    if (!headSha) return error(422, `No ref found for: ${ref}`);
    const file = path ? store.file(r, headSha, path) : undefined;
    if (!path || !file) return error(404, 'Not Found');
    const wf = readWorkflow(file.content.toString('utf8'));
    if (!wf.dispatchInputs) return error(422, "Workflow does not have 'workflow_dispatch' trigger");
    const inputs = (body.inputs ?? {}) as Record<string, unknown>;
    const unexpected = Object.keys(inputs).filter((k) => !(k in wf.dispatchInputs!));
    if (unexpected.length) return error(422, `Unexpected inputs provided: ${JSON.stringify(unexpected)}`);
    const missing = Object.entries(wf.dispatchInputs).find(
      ([k, v]) => v?.required && (inputs[k] === undefined || inputs[k] === ''),
    );
    if (missing) return error(422, `Required input '${missing[0]}' not provided`);
    const workflowId = (r.workflows[path] ??= store.id());
    const run: Run = {
      id: store.id(),
      runNumber: r.runs.filter((x) => x.workflowPath === path).length + 1,
      workflowId,
      workflowPath: path,
      workflowName: wf.name ?? path,
      displayTitle: (wf.runName ?? wf.name ?? path).replace(
        /\$\{\{\s*inputs\.([A-Za-z0-9_-]+)\s*\}\}/g,
        (_m, k: string) => String(inputs[k] ?? ''),
      ),
      headBranch: ref,
      headSha,
      event: 'workflow_dispatch',
      status: 'queued',
      conclusion: null,
      createdAt: now(),
      updatedAt: now(),
      attempt: 1,
      inputs: Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, String(v)])),
      log: [],
    };
    r.runs.push(run);
    const key = `${r.owner}/${r.name}`;
    records.dispatches[key] = (records.dispatches[key] ?? 0) + 1;
    store.save();
    runner.schedule(r, run);
    if (body.return_run_details !== true) return { status: 204 };
    const full = `${r.owner}/${r.name}`;
    return {
      status: 200,
      body: {
        workflow_run_id: run.id,
        run_url: `${api}/repos/${full}/actions/runs/${run.id}`,
        html_url: workflowRun(api, r, run).html_url,
      },
    };
  });

  const listRuns = ({ repo, params, query }: Ctx): Reply => {
    const r = repo!;
    let runs = [...r.runs].reverse();
    if (params.workflow_id) {
      const path = workflowPath(r, params.workflow_id);
      if (!path || (!r.workflows[path] && !store.file(r, r.defaultBranch, path))) return error(404, 'Not Found');
      runs = runs.filter((x) => x.workflowPath === path);
    }
    const filters: [string, (x: Run) => string | null][] = [
      ['branch', (x) => x.headBranch],
      ['event', (x) => x.event],
      ['head_sha', (x) => x.headSha],
    ];
    for (const [name, get] of filters) {
      const want = query.get(name);
      if (want) runs = runs.filter((x) => get(x) === want);
    }
    const status = query.get('status');
    if (status) runs = runs.filter((x) => x.status === status || x.conclusion === status);
    const perPage = Math.min(100, Number(query.get('per_page') ?? 30));
    const page = Math.max(1, Number(query.get('page') ?? 1));
    return {
      status: 200,
      body: {
        total_count: runs.length,
        workflow_runs: runs.slice((page - 1) * perPage, page * perPage).map((x) => workflowRun(api, r, x)),
      },
    };
  };
  route('GET', '/repos/{owner}/{repo}/actions/runs', listRuns);
  route('GET', '/repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs', listRuns);

  const findRun = (repo: Repo, id: string) => repo.runs.find((x) => String(x.id) === id);
  route('GET', '/repos/{owner}/{repo}/actions/runs/{run_id}', ({ repo, params }) => {
    const run = findRun(repo!, params.run_id!);
    return run ? { status: 200, body: workflowRun(api, repo!, run) } : error(404, 'Not Found');
  });

  route('POST', '/repos/{owner}/{repo}/actions/runs/{run_id}/cancel', ({ repo, params }) => {
    const run = findRun(repo!, params.run_id!);
    if (!run) return error(404, 'Not Found');
    if (run.status === 'completed') return error(409, 'Cannot cancel a workflow run that is completed.');
    records.cancels++;
    runner.complete(repo!, run, 'cancelled');
    return { status: 202, body: {} };
  });

  const rerun = ({ repo, params }: Ctx): Reply => {
    const run = findRun(repo!, params.run_id!);
    if (!run) return error(404, 'Not Found');
    if (run.status !== 'completed') return error(403, 'This workflow is already running');
    Object.assign(run, {
      status: 'queued',
      conclusion: null,
      attempt: run.attempt + 1,
      updatedAt: now(),
      startedAt: undefined,
      completedAt: undefined,
    });
    run.log.push(`Re-run attempt ${run.attempt}`);
    store.save();
    runner.schedule(repo!, run);
    return { status: 201, body: {} };
  };
  route('POST', '/repos/{owner}/{repo}/actions/runs/{run_id}/rerun', rerun);
  route('POST', '/repos/{owner}/{repo}/actions/runs/{run_id}/rerun-failed-jobs', rerun);

  route('GET', '/repos/{owner}/{repo}/actions/runs/{run_id}/jobs', ({ repo, params }) => {
    const run = findRun(repo!, params.run_id!);
    if (!run) return error(404, 'Not Found');
    return { status: 200, body: { total_count: 1, jobs: [job(api, repo!, run)] } };
  });

  route('GET', '/repos/{owner}/{repo}/actions/runs/{run_id}/logs', ({ repo, params }) => {
    const run = findRun(repo!, params.run_id!);
    if (!run) return error(404, 'Not Found');
    const token = randomBytes(8).toString('hex');
    logLinks.set(token, { repo: repo!, run });
    return { status: 302, headers: { location: `${api}/_emulator/logs/${token}.zip` } };
  });

  route(
    'POST',
    '/app/installations/{installation_id}/access_tokens',
    ({ params }) => {
      const token = `ghs_${randomBytes(18).toString('hex')}`;
      const expiresAt = new Date(Date.now() + 3600_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
      store.state.tokens[token] = { kind: 'installation', expiresAt };
      store.save();
      void params;
      return {
        status: 201,
        body: {
          token,
          expires_at: expiresAt,
          permissions: { actions: 'write', contents: 'write', secrets: 'write', variables: 'write' },
          repository_selection: 'all',
        },
      };
    },
    'jwt',
  );

  function workflowPath(repo: Repo, id: string): string | undefined {
    if (/^\d+$/.test(id)) return Object.entries(repo.workflows).find(([, wid]) => String(wid) === id)?.[0];
    return `.github/workflows/${id}`;
  }

  function gitRef(repo: Repo, branch: string, sha: string) {
    const full = `${repo.owner}/${repo.name}`;
    return {
      ref: `refs/heads/${branch}`,
      node_id: Buffer.from(`Ref:${full}:${branch}`).toString('base64'),
      url: `${api}/repos/${full}/git/refs/heads/${branch}`,
      object: { type: 'commit', sha, url: `${api}/repos/${full}/git/commits/${sha}` },
    };
  }

  const logLinks = new Map<string, { repo: Repo; run: Run }>();

  // ---- auth and limits ----
  function verifyJwt(auth: string | undefined, installationId: string): string | undefined {
    const jwt = /^Bearer (.+)$/i.exec(auth ?? '')?.[1];
    const [h, p, s] = jwt?.split('.') ?? [];
    if (!h || !p || !s) return 'A JSON web token could not be decoded';
    let claims: { iss?: string | number; exp?: number; iat?: number };
    try {
      claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
    } catch {
      return 'A JSON web token could not be decoded';
    }
    const app = store.state.apps[String(claims.iss)];
    if (!app) return 'Integration not found';
    const ok = verify(
      'RSA-SHA256',
      Buffer.from(`${h}.${p}`),
      createPublicKey(app.publicKeyPem),
      Buffer.from(s, 'base64url'),
    );
    if (!ok) return 'A JSON web token could not be decoded';
    if (!claims.exp || claims.exp * 1000 < Date.now())
      return "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires";
    if (String(app.installationId) !== installationId) return 'Not Found';
    return undefined;
  }

  function budget(token: string) {
    let b = budgets.get(token);
    const t = Date.now();
    if (!b || b.reset <= t) {
      b = { used: 0, reset: t + 3600_000 };
      budgets.set(token, b);
    }
    return b;
  }

  function remaining(token: string): { remaining: number; reset: number; used: number } {
    const b = budget(token);
    const t = Date.now();
    const exhaustedUntil = Math.max(b.exhaustedUntil ?? 0, fault.exhaustAll);
    if (exhaustedUntil > t) return { remaining: 0, reset: exhaustedUntil, used: limit };
    return { remaining: Math.max(0, limit - b.used), reset: b.reset, used: b.used };
  }

  function rateHeaders(token: string): Record<string, string> {
    const r = remaining(token);
    return {
      'x-ratelimit-limit': String(limit),
      'x-ratelimit-remaining': String(r.remaining),
      'x-ratelimit-used': String(r.used),
      'x-ratelimit-reset': String(Math.ceil(r.reset / 1000)),
      'x-ratelimit-resource': 'core',
    };
  }

  // ---- the server ----
  const sockets = new Set<Socket>();
  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://emulator');
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks);

    if (url.pathname.startsWith('/_emulator/')) return control(url, req.method ?? 'GET', raw, res);

    records.requests++;
    if (fault.latencyMs) await sleep(fault.latencyMs);
    if (Date.now() < fault.outageUntil) {
      if (fault.outageMode === 'reset') {
        req.socket.destroy();
        return;
      }
      return send(res, undefined, error(503, 'Service Unavailable'), req);
    }

    const method = req.method ?? 'GET';
    let matched: Route | undefined;
    let params: Record<string, string> = {};
    for (const r of routes) {
      if (r.method !== method) continue;
      const m = r.pattern.exec(url.pathname);
      if (!m) continue;
      matched = r;
      params = Object.fromEntries(r.keys.map((k, i) => [k, decodeURIComponent(m[i + 1]!)]));
      break;
    }
    if (!matched) return send(res, undefined, error(404, 'Not Found'), req);
    const info: RequestInfo = { method, operation: matched.operation };

    let body: Record<string, unknown> = {};
    if (raw.length) {
      try {
        body = JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
      } catch {
        return send(res, matched, error(400, 'Problems parsing JSON'), req);
      }
    }

    const auth = req.headers.authorization;
    if (matched.auth === 'jwt') {
      const problem = verifyJwt(auth, params.installation_id!);
      if (problem) return send(res, matched, error(problem === 'Not Found' ? 404 : 401, problem), req);
      return send(
        res,
        matched,
        await matched.handler({ method, params, query: url.searchParams, body, headers: req.headers }),
        req,
      );
    }
    const token = /^(?:token|bearer) (.+)$/i.exec(auth ?? '')?.[1];
    if (!token) return send(res, matched, error(401, 'Requires authentication'), req);
    const grant = store.state.tokens[token];
    if (!grant || (grant.expiresAt && Date.parse(grant.expiresAt) < Date.now())) {
      return send(res, matched, error(401, 'Bad credentials'), req);
    }

    if (fault.secondary.count > 0) {
      fault.secondary.count--;
      return send(
        res,
        matched,
        error(403, 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.', {
          'retry-after': String(fault.secondary.retryAfter),
        }),
        req,
        token,
      );
    }
    if (remaining(token).remaining === 0) {
      records.requestsOverLimit++;
      return send(
        res,
        matched,
        error(403, `API rate limit exceeded for token. Check out the documentation for more information.`),
        req,
        token,
      );
    }

    const fullName = params.owner && params.repo ? `${params.owner}/${params.repo}` : undefined;
    const repo = fullName ? store.repo(fullName) : undefined;
    if (
      fullName &&
      (!repo || (grant.repos && !grant.repos.map((r) => r.toLowerCase()).includes(fullName.toLowerCase())))
    ) {
      return send(res, matched, error(404, 'Not Found'), req, token, true);
    }
    info.repo = fullName;
    await hooks.before?.(info);
    const reply = await matched.handler({
      method,
      params,
      query: url.searchParams,
      body,
      repo,
      token,
      headers: req.headers,
    });
    info.status = reply.status;
    await hooks.after?.(info);
    return send(res, matched, reply, req, token, true);
  }

  function send(
    res: ServerResponse,
    r: Route | undefined,
    reply: Reply,
    req: IncomingMessage,
    token?: string,
    counts = false,
  ): void {
    let { status, body } = reply;
    const headers: Record<string, string> = {
      'x-github-request-id': randomUUID(),
      'x-github-api-version-selected': '2022-11-28',
      ...reply.headers,
    };
    let payload: Buffer | undefined;
    if (body !== undefined) {
      const corrupt = r ? fault.corrupt.get(r.operation) : undefined;
      if (corrupt && body && typeof body === 'object') {
        fault.corrupt.delete(r!.operation);
        body = corrupt(structuredClone(body) as Record<string, unknown>) ?? body;
      }
      payload = Buffer.from(JSON.stringify(body));
      headers['content-type'] = 'application/json; charset=utf-8';
      if (req.method === 'GET' && status === 200) {
        const etag = `W/"${createHash('sha1').update(payload).digest('hex')}"`;
        headers.etag = etag;
        if (req.headers['if-none-match'] === etag) {
          status = 304;
          payload = undefined;
          body = undefined;
          records.notModified++;
          counts = false; // conditional requests that come back 304 are free
        }
      }
    }
    if (token) {
      if (counts) {
        budget(token).used++;
        records.rateLimited[token] = (records.rateLimited[token] ?? 0) + 1;
      }
      Object.assign(headers, rateHeaders(token));
    }
    if (contractOn && r) contract.check(r.method, r.operation, status, body);
    res.writeHead(status, headers).end(payload);
  }

  // ---- control API for people and other processes ----
  async function control(url: URL, method: string, raw: Buffer, res: ServerResponse): Promise<void> {
    const json = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    const body = raw.length ? (JSON.parse(raw.toString('utf8')) as Record<string, unknown>) : {};
    const logs = /^\/_emulator\/logs\/([a-f0-9]+)\.zip$/.exec(url.pathname);
    if (logs && method === 'GET') {
      const link = logLinks.get(logs[1]!);
      if (!link) return json(404, { message: 'Not Found' });
      const zip = zipStored({ 'build/1_build.txt': `${link.run.log.join('\n')}\n` });
      res.writeHead(200, { 'content-type': 'application/zip', 'content-length': String(zip.length) }).end(zip);
      return;
    }
    if (url.pathname === '/_emulator/repos' && method === 'POST') {
      return json(201, await emulator.createRepo(body as Parameters<GitHubEmulator['createRepo']>[0]));
    }
    if (url.pathname === '/_emulator/tokens' && method === 'POST')
      return json(201, { token: emulator.createToken(body) });
    if (url.pathname === '/_emulator/records' && method === 'GET') {
      return json(200, {
        records,
        contract: {
          operations: contract.operations.size,
          responses: contract.responses,
          violations: contract.violations,
        },
      });
    }
    if (url.pathname === '/_emulator/faults' && method === 'POST') {
      const f = body as {
        outageMs?: number;
        outageMode?: '503' | 'reset';
        latencyMs?: number;
        keepQueued?: boolean;
        failBuilds?: number;
        reset?: boolean;
      };
      if (f.reset) emulator.faults.reset();
      if (f.outageMs) emulator.faults.outage({ forMs: f.outageMs, mode: f.outageMode });
      if (f.latencyMs !== undefined) emulator.faults.latency(f.latencyMs);
      if (f.keepQueued !== undefined) emulator.faults.keepQueued(f.keepQueued);
      if (f.failBuilds) emulator.faults.failBuilds(f.failBuilds);
      return json(200, { ok: true });
    }
    return json(404, { message: 'Not Found' });
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      // Never crash on a bad request: answer like GitHub does when it fails.
      if (!res.headersSent)
        res
          .writeHead(500, { 'content-type': 'application/json' })
          .end(JSON.stringify({ message: `Server Error: ${(err as Error).message}`, documentation_url: DOCS }));
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', resolve);
  });
  const address = server.address() as AddressInfo;
  api = `http://${opts.host ?? '127.0.0.1'}:${address.port}`;

  // Runs acknowledged before a restart carry on.
  for (const repo of Object.values(store.state.repos)) for (const run of repo.runs) runner.schedule(repo, run);

  const emulator: GitHubEmulator = {
    url: api,
    async createRepo({ owner, name, defaultBranch = 'main', files = { 'README.md': `# ${name}\n` } }) {
      if (!store.repo(`${owner}/${name}`)) await store.createRepo(owner, name, defaultBranch, files);
      return { fullName: `${owner}/${name}` };
    },
    push(fullName, branch, files, message = 'Update') {
      const repo = store.repo(fullName);
      if (!repo) throw new Error(`no repository ${fullName}`);
      const sha = store.commit(repo, branch, files, message);
      store.save();
      return sha;
    },
    file(fullName, path, ref) {
      const repo = store.repo(fullName);
      return repo ? store.file(repo, ref ?? repo.defaultBranch, path)?.content.toString('utf8') : undefined;
    },
    runs: (fullName) => store.repo(fullName)?.runs ?? [],
    secretNames: (fullName) => Object.keys(store.repo(fullName)?.secrets ?? {}),
    createToken(spec = {}) {
      const token = `github_pat_${randomBytes(20).toString('hex')}`;
      store.state.tokens[token] = { kind: 'fine-grained', repos: spec.repos };
      store.save();
      return token;
    },
    createApp() {
      const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const appId = String(store.id());
      const installationId = store.id();
      store.state.apps[appId] = {
        publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
        installationId,
      };
      store.save();
      return { appId, privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), installationId };
    },
    faults: {
      outage({ mode = '503', forMs = 3600_000 }) {
        fault.outageMode = mode;
        fault.outageUntil = Date.now() + forMs;
      },
      latency: (ms) => void (fault.latencyMs = ms),
      exhaustRateLimit({ forMs, token }) {
        if (token) budget(token).exhaustedUntil = Date.now() + forMs;
        else fault.exhaustAll = Date.now() + forMs;
      },
      secondaryLimit: ({ count, retryAfterSeconds }) =>
        void (fault.secondary = { count, retryAfter: retryAfterSeconds }),
      keepQueued: (on) => void (runner.faults.keepQueued = on),
      failBuilds: (count) => void (runner.faults.failBuilds = count),
      webhooks({ drop = 0, duplicate = 0 }) {
        fault.dropWebhooks = drop;
        fault.duplicateWebhooks = duplicate;
      },
      corruptNextResponse: (operation, mutate) => void fault.corrupt.set(operation, mutate),
      reset() {
        Object.assign(fault, {
          outageUntil: 0,
          latencyMs: 0,
          secondary: { count: 0, retryAfter: 0 },
          dropWebhooks: 0,
          duplicateWebhooks: 0,
          exhaustAll: 0,
        });
        fault.corrupt.clear();
        for (const b of budgets.values()) b.exhaustedUntil = undefined;
        runner.faults.keepQueued = false;
        runner.faults.failBuilds = 0;
      },
    },
    records,
    contract,
    hooks,
    async stop() {
      runner.stop();
      store.save();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
    },
  };
  return emulator;
}
