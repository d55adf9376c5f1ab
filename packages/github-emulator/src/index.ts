/**
 * A GitHub emulator for the part of the REST API Flui's pipeline uses, faithful enough that the production Octokit
 * client runs against it unchanged (`baseUrl`), and hostile enough to prove the pipeline survives what GitHub does:
 * conditional requests and ETags, primary and secondary rate limits, bad credentials, invisible repositories,
 * missing permissions, outages, slow responses, runs that stay queued, failing builds, lost and duplicated webhooks.
 *
 * Served (see routes-*.ts): repository get; contents get/create/update (blob SHAs, 409 on a stale `sha`, 422 without
 * one); git refs (branches and tags, matching-refs) and annotated tag objects; pull requests (list with
 * `head`/`base`/`state`, create, get, update, merge); Actions public key, secrets (list/get/put/delete), variables
 * (get/create/update); environments (get, create) and their secrets, each environment with its own key; workflows
 * (list/get); dispatch (200 with
 * `return_run_details`, else 204; 422 without a `workflow_dispatch` trigger or with wrong inputs); runs (list with
 * `branch`, `event`, `status`, `created`, `head_sha`, `actor` and pages, get, cancel, re-run, re-run failed jobs);
 * jobs (list, get); logs (302 to a zip; a finished job's, 302 to plain text); repository tarballs (302 to a gzip'd
 * tar of the commit, routes-archives.ts); GitHub Apps with several installations (one per account): the installation
 * of a repository, installation tokens narrowed to repositories and permissions (RS256 JWT); /rate_limit.
 * `workflow_run` webhooks on completion, signed with `X-Hub-Signature-256`.
 *
 * Auth: `Authorization: token X` or `Bearer X` with a token from {@link GitHubEmulator.createToken} (fine-grained,
 * optionally limited to repositories and permissions) or a GitHub App installation token (`ghs_...`), which reaches
 * only its installation's account and spends that installation's rate limit.
 *
 * The registry credential: the simulated runner (runner.ts) reads it from the Actions secrets the workflow names —
 * a `docker/login-action` step's `username: ${{ secrets.X }}` and `password: ${{ secrets.Y }}`, or the registry token
 * of Flui's minted-token login step — each sealed (libsodium sealed box) with the repository's (or the job's
 * environment's) public key, as on GitHub. It logs in to the registry with them and pushes the build step's tags
 * there; a wrong credential fails the run with the registry's 401 in the job log.
 *
 * Every response (and webhook payload) is checked against GitHub's OpenAPI description (contract.ts); the test helper
 * fails the test that caused a violation. With `dataDir`, state is persisted before each acknowledgement, so a
 * restarted emulator has every run and secret it confirmed, and resumes unfinished runs.
 *
 * Control: tests use this object; people and other processes use HTTP under `/_emulator/` (control.ts), and
 * `node --import tsx packages/github-emulator/src/main.ts` starts one from a shell.
 */
import { createHash, generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { readBody, serve } from '@flui/emulator-kit/server';
import sodium from 'libsodium-wrappers';
import { budgetOf, canSee, lacksPermission, RateLimits, verifyAppJwt } from './auth.ts';
import { LogLinks, type Emulation } from './context.ts';
import { ContractChecker } from './contract.ts';
import { handleControl, handleHtml } from './control.ts';
import { FaultState } from './faults.ts';
import { DOCS, error, Refusal, Router, type Ctx, type Reply, type Route } from './http.ts';
import { bump, createRecords } from './records.ts';
import { registerActionsRoutes } from './routes-actions.ts';
import { registerAppRoutes } from './routes-apps.ts';
import { registerEnvironmentRoutes } from './routes-environments.ts';
import { registerTagRoutes } from './routes-tags.ts';
import { registerRepoRoutes } from './routes-repos.ts';
import { registerArchiveRoutes } from './routes-archives.ts';
import { Runner } from './runner.ts';
import { workflowRun } from './shapes.ts';
import { Store, type Installation, type Permissions } from './store.ts';
import { Webhooks } from './webhooks.ts';

export type { Faults } from './faults.ts';
export type { Records } from './records.ts';
export type { Permissions, PullRequest, Run, RunStep } from './store.ts';

import type { EmulatedRun, GitHubEmulator, GitHubEmulatorOptions, RequestInfo } from './api.ts';

export type { EmulatedRun, GitHubEmulator, GitHubEmulatorOptions, InstallationSpec, RequestInfo } from './api.ts';

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
  const records = createRecords();
  const limits = new RateLimits(opts.rateLimit ?? 5000);
  const fault = new FaultState();
  const webhooks = new Webhooks(opts.webhook, fault, records, contractOn ? contract : undefined);
  const hooks: GitHubEmulator['hooks'] = {};
  const router = new Router();
  let api = '';
  const env: Emulation = { store, runner, records, router, api: () => api, logs: new LogLinks() };
  runner.onCompleted = (repo, run) => webhooks.runCompleted(api, repo, run);

  registerRepoRoutes(env);
  const archives = registerArchiveRoutes(env);
  registerActionsRoutes(env);
  registerEnvironmentRoutes(env);
  registerTagRoutes(env);
  registerAppRoutes(env, (token) => limits.overview(budgetOf(token, store.state.tokens[token])));

  // ---- the API server ----
  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://emulator');
    const method = req.method ?? 'GET';
    const raw = await readBody(req);
    if (!raw) return send(res, req, undefined, error(413, 'Payload Too Large'));

    if (archives.serve(url.pathname, res)) return;
    if (url.pathname.startsWith('/_emulator/')) return handleControl(emulator, env, url, method, raw, res);
    if (url.pathname.startsWith('/_html/')) return handleHtml(env, url, res);

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
      return send(res, req, undefined, error(503, 'Service Unavailable'));
    }

    const match = router.match(method, url.pathname);
    if (match === 'malformed') return send(res, req, undefined, error(400, 'Bad Request'));
    if (!match) return send(res, req, undefined, error(404, 'Not Found'));
    const { route, params } = match;
    bump(records.operations, `${method} ${route.operation}`);

    let body: Record<string, unknown> = {};
    if (raw.length) {
      try {
        body = JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
      } catch {
        return send(res, req, route, error(400, 'Problems parsing JSON'));
      }
      if (!body || typeof body !== 'object' || Array.isArray(body)) {
        return send(res, req, route, error(400, 'Problems parsing JSON'));
      }
    }
    const ctx: Ctx = { method, params, query: url.searchParams, body, headers: req.headers, url };
    const authorization = req.headers.authorization;

    if (route.auth === 'jwt') {
      const jwt = verifyAppJwt(store, authorization);
      if ('problem' in jwt) return send(res, req, route, error(401, jwt.problem));
      ctx.appId = jwt.appId;
      return send(res, req, route, await run(route, ctx));
    }
    const token = /^(?:token|bearer) (\S+)$/i.exec(authorization ?? '')?.[1];
    const grant = token ? store.state.tokens[token] : undefined;
    const valid = grant && !(grant.expiresAt && Date.parse(grant.expiresAt) < Date.now());
    if (route.auth === 'none') {
      if (valid) ctx.token = token;
      return send(res, req, route, await run(route, ctx), valid ? token : undefined);
    }
    if (!token) return send(res, req, route, error(401, 'Requires authentication'));
    if (!valid) return send(res, req, route, error(401, 'Bad credentials'));
    Object.assign(ctx, { token, grant });

    const secondary = fault.takeSecondary();
    if (secondary) {
      bump(records.limitRefusals, token);
      return send(
        res,
        req,
        route,
        error(
          secondary.status,
          'You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID.',
          secondary.retryAfter === undefined ? undefined : { 'retry-after': String(secondary.retryAfter) },
          'https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits',
        ),
        token,
      );
    }
    if (limits.state(budgetOf(token, grant)).remaining === 0) {
      records.requestsOverLimit++;
      bump(records.limitRefusals, token);
      return send(
        res,
        req,
        route,
        error(
          limits.status,
          'API rate limit exceeded for user ID 1. If you reach out to GitHub Support for help, please include the request ID.',
          undefined,
          'https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-primary-rate-limits',
        ),
        token,
      );
    }

    const fullName = params.owner && params.repo ? `${params.owner}/${params.repo}` : undefined;
    if (fullName) {
      const repo = store.repo(fullName);
      if (!repo || !canSee(grant!, fullName)) return send(res, req, route, error(404, 'Not Found'), token, true);
      ctx.repo = repo;
    }
    const denied = lacksPermission(grant!, route.permission);
    if (denied) return send(res, req, route, error(403, denied), token, true);

    const info: RequestInfo = {
      method,
      operation: route.operation,
      repo: fullName,
      credential: {
        token: token!,
        kind: grant!.kind,
        installationId: grant!.installationId,
        repos: grant!.repos,
        permissions: grant!.permissions,
      },
    };
    await hooks.before?.(info);
    const reply = await run(route, ctx);
    info.status = reply.status;
    await hooks.after?.(info);
    return send(res, req, route, reply, token, true);
  }

  async function run(route: Route, ctx: Ctx): Promise<Reply> {
    try {
      return await route.handler(ctx);
    } catch (err) {
      if (err instanceof Refusal) return err.reply;
      // A bug in the emulator must still answer like GitHub, and show up in the test that hit it.
      contract.violations.push(`${ctx.method} ${route.operation}: handler threw ${(err as Error).stack}`);
      return error(500, 'Server Error');
    }
  }

  function send(
    res: ServerResponse,
    req: IncomingMessage,
    route: Route | undefined,
    reply: Reply,
    token?: string,
    charged = false,
  ): void {
    let status = reply.status;
    let body = reply.body;
    const headers: Record<string, string> = {
      'x-github-request-id': randomUUID().toUpperCase(),
      'x-github-api-version-selected': '2022-11-28',
      'x-github-media-type': 'github.v3; format=json',
      vary: 'Accept, Authorization, Cookie, X-GitHub-OTP',
      ...reply.headers,
    };
    let payload: Buffer | undefined;
    if (body !== undefined) {
      const corrupt = route ? fault.takeCorruption(req.method ?? 'GET', route.operation) : undefined;
      if (corrupt && body && typeof body === 'object') {
        body = corrupt(structuredClone(body) as Record<string, unknown>) ?? body;
      }
      payload = Buffer.from(JSON.stringify(body));
      headers['content-type'] = 'application/json; charset=utf-8';
    } else if (reply.raw) {
      payload = reply.raw.data;
      headers['content-type'] = reply.raw.contentType;
    }
    if (req.method === 'GET' && status === 200 && payload) {
      const etag = `W/"${createHash('sha256')
        .update(payload)
        .update(headers['content-type'] ?? '')
        .digest('hex')
        .slice(0, 64)}"`;
      headers.etag = etag;
      if (matchesEtag(req.headers['if-none-match'], etag)) {
        status = 304;
        payload = undefined;
        body = undefined;
        records.notModified++;
        charged = false; // conditional requests answered 304 are free
      }
    }
    if (token) {
      const grant = store.state.tokens[token];
      const budget = budgetOf(token, grant);
      if (charged) {
        limits.charge(budget);
        bump(records.rateLimited, token);
        if (grant?.installationId !== undefined) bump(records.rateLimitedByInstallation, String(grant.installationId));
      }
      Object.assign(headers, limits.headers(budget));
    }
    if (contractOn && route && !reply.raw) {
      try {
        contract.check(route.method, route.operation, status, body);
      } catch (err) {
        // A schema the validator cannot compile is the checker's problem, not the client's: answer anyway.
        contract.violations.push(
          `${route.method} ${route.operation} -> ${status}: cannot check: ${(err as Error).message}`,
        );
      }
    }
    if (payload) headers['content-length'] = String(payload.length);
    res.writeHead(status, headers).end(payload);
  }

  const server = await serve(
    handle,
    (err) => ({
      contentType: 'application/json; charset=utf-8',
      body: { message: `Server Error: ${err.message}`, documentation_url: DOCS },
    }),
    opts,
  );
  api = server.url;

  // Runs acknowledged before a restart carry on.
  for (const repo of Object.values(store.state.repos)) for (const run of repo.runs) runner.schedule(repo, run);

  /** A new installation; one on an account covers only that account's repositories. */
  const installation = (spec: { account?: string; repos?: string[]; permissions?: Permissions }): Installation => {
    const stray = spec.repos?.find(
      (r) => spec.account && r.split('/')[0]!.toLowerCase() !== spec.account.toLowerCase(),
    );
    if (stray) throw new Error(`GitHub emulator: ${stray} is not a repository of ${spec.account}`);
    return { id: store.id(), account: spec.account, repos: spec.repos, permissions: spec.permissions };
  };

  const repoOf = (fullName: string) => {
    const repo = store.repo(fullName);
    if (!repo) throw new Error(`GitHub emulator: no repository ${fullName}`);
    return repo;
  };

  const emulator: GitHubEmulator = {
    url: api,
    async createRepo({ owner, name, defaultBranch = 'main', files = { 'README.md': `# ${name}\n` } }) {
      if (!/^[A-Za-z0-9_.-]+$/.test(owner) || !/^[A-Za-z0-9_.-]+$/.test(name)) {
        throw new Error(`GitHub emulator: invalid repository name ${owner}/${name}`);
      }
      if (!store.repo(`${owner}/${name}`)) await store.createRepo(owner, name, defaultBranch, files);
      return { fullName: `${owner}/${name}` };
    },
    push(fullName, branch, files, message = 'Update') {
      const repo = repoOf(fullName);
      // A new branch starts from the default branch, as one made on GitHub does.
      repo.branches[branch] ??= repo.branches[repo.defaultBranch]!;
      const sha = store.commit(repo, branch, files, message);
      store.save();
      return sha;
    },
    protectBranch(fullName, branch, on = true) {
      const repo = repoOf(fullName);
      repo.protectedBranches = repo.protectedBranches.filter((b) => b !== branch);
      if (on) repo.protectedBranches.push(branch);
      store.save();
    },
    file(fullName, path, ref) {
      const repo = store.repo(fullName);
      return repo ? store.file(repo, ref ?? repo.defaultBranch, path)?.content.toString('utf8') : undefined;
    },
    runs(fullName) {
      const repo = store.repo(fullName);
      if (!repo) return [];
      for (const run of repo.runs) {
        // Not stored: the URL follows the emulator's address, which a restart may change.
        if (!Object.hasOwn(run, 'htmlUrl')) {
          Object.defineProperty(run, 'htmlUrl', { get: () => workflowRun(api, repo, run).html_url, enumerable: false });
        }
      }
      return repo.runs as EmulatedRun[];
    },
    pulls: (fullName) => store.repo(fullName)?.pulls ?? [],
    secretNames(fullName, environment) {
      const repo = store.repo(fullName);
      const scope = repo && environment ? store.environment(repo, environment, false) : repo;
      return Object.keys(scope?.secrets ?? {});
    },
    secretValue(fullName, name, environment) {
      const repo = store.repo(fullName);
      const scope = repo && environment ? store.environment(repo, environment, false) : repo;
      const secret = scope?.secrets[name.toUpperCase()];
      if (!scope || !secret) return undefined;
      const b64 = (s: string) => sodium.from_base64(s, sodium.base64_variants.ORIGINAL);
      return sodium.to_string(
        sodium.crypto_box_seal_open(b64(secret.encrypted), b64(scope.keyPair.publicKey), b64(scope.keyPair.privateKey)),
      );
    },
    createToken(spec = {}) {
      const token = `github_pat_${randomBytes(20).toString('hex')}`;
      store.state.tokens[token] = {
        kind: 'fine-grained',
        repos: spec.repos,
        permissions: spec.permissions,
        expiresAt:
          spec.expiresInMs === undefined
            ? undefined
            : new Date(Date.now() + spec.expiresInMs).toISOString().replace(/\.\d{3}Z$/, 'Z'),
      };
      store.save();
      return token;
    },
    createApp(spec = {}) {
      const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const appId = String(store.id());
      const specs = spec.installations ?? [{ repos: spec.repos, permissions: spec.permissions }];
      const installations = specs.map((i) => installation(i));
      store.state.apps[appId] = {
        publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
        installations,
        tokenExpiresInMs: spec.tokenExpiresInMs,
      };
      store.save();
      return {
        appId,
        privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
        installationId: installations[0]?.id ?? 0,
        installations: installations.map(({ id, account }) => ({ id, account })),
      };
    },
    addInstallation(appId, spec) {
      const app = store.state.apps[appId];
      if (!app) throw new Error(`GitHub emulator: no GitHub App ${appId}`);
      const added = installation(spec);
      app.installations.push(added);
      store.save();
      return { installationId: added.id };
    },
    removeInstallation(appId, installationId) {
      const app = store.state.apps[appId];
      if (!app?.installations.some((i) => i.id === installationId)) {
        throw new Error(`GitHub emulator: GitHub App ${appId} has no installation ${installationId}`);
      }
      app.installations = app.installations.filter((i) => i.id !== installationId);
      // Uninstalling revokes the installation's tokens, as on GitHub.
      for (const [token, grant] of Object.entries(store.state.tokens)) {
        if (grant.installationId === installationId) delete store.state.tokens[token];
      }
      store.save();
    },
    faults: {
      ...fault.controls(),
      exhaustRateLimit({ forMs, token, installationId, status = 403 }) {
        limits.status = status;
        const budget =
          installationId !== undefined
            ? `installation:${installationId}`
            : token && budgetOf(token, store.state.tokens[token]);
        limits.exhaust(forMs, budget);
      },
      secondaryLimit: ({ count, retryAfterSeconds, status }) => fault.setSecondary(count, retryAfterSeconds, status),
      keepQueued: (on) => void (runner.faults.keepQueued = on),
      runnerCapacity: (count) => void (runner.faults.maxInProgress = Math.max(1, count)),
      failBuilds: (count) => void (runner.faults.failBuilds = Math.max(0, count)),
      reset() {
        fault.reset();
        limits.clearFaults();
        runner.faults.keepQueued = false;
        runner.faults.maxInProgress = Infinity;
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

/** `If-None-Match` holds a list of ETags (weak or strong) or `*`. */
function matchesEtag(header: string | string[] | undefined, etag: string): boolean {
  if (!header) return false;
  const strip = (t: string) => t.trim().replace(/^W\//, '');
  return String(header)
    .split(',')
    .some((t) => t.trim() === '*' || strip(t) === strip(etag));
}
