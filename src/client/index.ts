/**
 * The Flui client library: start deploys, follow them, cancel, retry, roll back, and read builds and images. The
 * `flui` CLI is a thin layer over it. Inputs are validated here (the edge): a bad manifest or argument throws an error
 * that names the field, and nothing is started.
 *
 * Every Temporal function takes a connected `Client`, or the configuration to connect with (the connection then lives
 * for that one call). Errors meant for people are {@link FluiError}s whose `kind` says what went wrong; what a kind
 * means to a process (its exit code) is the CLI's business (src/cli/exit.ts).
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  ActivityFailure,
  ApplicationFailure,
  Client,
  Connection,
  isGrpcServiceError,
  NamespaceNotFoundError,
  TimeoutFailure,
  WorkflowFailedError,
  WorkflowNotFoundError,
  type WorkflowExecutionDescription,
  type WorkflowExecutionInfo,
} from '@temporalio/client';
import { z } from 'zod';
import type { ReadBuildLogResult } from '../activities/logs.ts';
import type { ClientConfig } from '../config.ts';
import type { ImageListing } from '../kube/history.ts';
import { DIGEST, DNS_LABEL } from '../manifest/names.ts';
import { validateManifest } from '../manifest/parse.ts';
import { deployPolicySchema, type DeployPolicy, type Manifest } from '../manifest/schema.ts';
import {
  appOf,
  cancelSignal,
  deployMemo,
  deployRequestedSignal,
  deployWorkflowId,
  FluiApp,
  formatDeployId,
  initialStatus,
  isSettled,
  isTerminal,
  parseDeployId,
  readDeployMemo,
  retrySignal,
  statusQuery,
  TASK_QUEUE,
  type Cancellation,
  type CiRunRef,
  type DeployPhase,
  type DeployRequest,
  type DeployStatus,
} from '../workflows/contract.ts';
import type { readBuildLogWorkflow } from '../workflows/logs.ts';

export type { ImageListing } from '../kube/history.ts';

/**
 * What went wrong, for callers that act on it:
 * - `invalid`: a bad argument (name, digest, option); nothing was sent anywhere.
 * - `not-found`: the app has no deploy.
 * - `failed`: the request cannot be carried out as things stand (nothing to cancel or retry, no such build).
 * - `unavailable`: Temporal or the cluster cannot be reached, or is not set up for Flui (no such namespace).
 */
export type FluiErrorKind = 'invalid' | 'not-found' | 'failed' | 'unavailable';

export class FluiError extends Error {
  readonly kind: FluiErrorKind;
  constructor(message: string, kind: FluiErrorKind = 'failed') {
    super(message);
    this.name = 'FluiError';
    this.kind = kind;
  }
}

// ---- Validation at the edge ----------------------------------------------------------------------------------

const dnsLabel = z.string().regex(DNS_LABEL, 'must be a lowercase DNS label (letters, digits, "-")');
const digestSchema = z.string().regex(DIGEST, 'must be "sha256:" followed by 64 hex digits');
const startOptionsSchema = z.object({
  policy: deployPolicySchema.optional(),
  taskQueue: z.string().min(1).optional(),
  requestedBy: z.string().max(200).optional(),
  webUi: z.url().optional(),
});

function checked<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const field = issue?.path.length ? `${what}.${issue.path.join('.')}` : what;
  throw new FluiError(`${field} ${issue?.message ?? 'is invalid'}`, 'invalid');
}

function checkApp(namespace: string, app: string): void {
  checked(dnsLabel, app, 'app');
  checked(dnsLabel, namespace, 'namespace');
}

// ---- Connection ----------------------------------------------------------------------------------------------

/** A connected client, or the configuration to connect with for one call. */
export type ClientSource = Client | Pick<ClientConfig, 'temporal'>;

export async function connect(config: Pick<ClientConfig, 'temporal'>): Promise<Client> {
  const { address, tls, apiKey, metadata, connectTimeoutMs, namespace } = config.temporal;
  try {
    const connection = await Connection.connect({ address, tls, apiKey, metadata, connectTimeout: connectTimeoutMs });
    return new Client({ connection, namespace });
  } catch (err) {
    throw new FluiError(
      `cannot reach Temporal at ${address}: ${(err as Error).message}. Start it (npm start runs one) or set TEMPORAL_ADDRESS.`,
      'unavailable',
    );
  }
}

function isClient(source: ClientSource): source is Client {
  return 'workflow' in source && 'connection' in source;
}

/** True when the error chain says Temporal itself is unreachable (gRPC UNAVAILABLE), not that a call failed. */
function isUnavailable(err: unknown): boolean {
  for (let e = err; e; e = (e as { cause?: unknown }).cause) if (isGrpcServiceError(e) && e.code === 14) return true;
  return false;
}

/** Turns Temporal's connection and namespace errors into messages that say what to do next. */
function explain(err: unknown, client: Client): unknown {
  if (err instanceof FluiError) return err;
  if (err instanceof NamespaceNotFoundError) {
    return new FluiError(
      `Temporal namespace "${client.options.namespace}" does not exist: set TEMPORAL_NAMESPACE, or create it (temporal operator namespace create)`,
      'unavailable',
    );
  }
  if (isUnavailable(err)) {
    return new FluiError(
      `lost the connection to Temporal: ${(err as Error).message}. Check that it runs, or set TEMPORAL_ADDRESS.`,
      'unavailable',
    );
  }
  return err;
}

async function withClient<T>(source: ClientSource, fn: (client: Client) => Promise<T>): Promise<T> {
  const client = isClient(source) ? source : await connect(source);
  try {
    return await fn(client);
  } catch (err) {
    throw explain(err, client);
  } finally {
    if (client !== source) await client.connection.close().catch(() => undefined);
  }
}

/**
 * Base address of Temporal Web UI for this configuration: TEMPORAL_UI_URL when set, the dev server's UI for a local
 * Temporal, Temporal Cloud's UI for a Cloud namespace; otherwise unknown.
 */
export function webUiBase(
  temporal: Pick<ClientConfig['temporal'], 'address' | 'uiPort' | 'uiUrl'>,
): string | undefined {
  if (temporal.uiUrl) return temporal.uiUrl;
  const host = temporal.address.replace(/:[0-9]+$/, '');
  if (['127.0.0.1', 'localhost', '[::1]'].includes(host)) return `http://${host}:${temporal.uiPort}`;
  if (host.endsWith('.tmprl.cloud')) return 'https://cloud.temporal.io';
  return undefined;
}

/** The Web UI page of one workflow run: its history, activity summaries and current details. */
export function webUiUrl(base: string, temporalNamespace: string, workflowId: string, runId: string): string {
  return `${base}/namespaces/${encodeURIComponent(temporalNamespace)}/workflows/${encodeURIComponent(workflowId)}/${runId}/history`;
}

// ---- Starting deploys ----------------------------------------------------------------------------------------

/** A new deploy id (src/workflows/contract.ts): its nonce is the time in ms (base36), then 6 random hex digits. */
export function newDeployId(namespace: string, app: string): string {
  return formatDeployId(namespace, app, `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`);
}

/** When a deploy id was made (client clock), if it came from {@link newDeployId}. */
function requestedAt(deployId: string): number | undefined {
  const nonce = parseDeployId(deployId)?.nonce ?? '';
  if (nonce.length <= 6) return undefined;
  const ms = parseInt(nonce.slice(0, -6), 36);
  return Number.isSafeInteger(ms) ? ms : undefined;
}

export interface StartedDeploy {
  deployId: string;
  workflowId: string;
  /** The run that received the request: a new one, or the app's running deploy (which supersedes or queues). */
  runId: string;
  /** That run in Temporal Web UI, when its address is known. */
  webUiUrl?: string;
}

export interface StartOptions {
  /** What this deploy does to one in flight: `supersede` (default: the manifest's) or `queue`. */
  policy?: DeployPolicy;
  taskQueue?: string;
  /** Who asked, shown in Web UI. */
  requestedBy?: string;
  /** Temporal Web UI base address, for {@link StartedDeploy.webUiUrl} (see {@link webUiBase}). */
  webUi?: string;
}

async function start(client: Client, request: DeployRequest, opts: StartOptions): Promise<StartedDeploy> {
  const { namespace, app } = appOf(request);
  const workflowId = deployWorkflowId(namespace, app);
  const summary =
    request.kind === 'Rollback'
      ? `Roll back ${namespace}/${app}${request.digest ? ` to ${request.digest}` : ''}`
      : request.kind === 'CatalogApp'
        ? `Deploy ${namespace}/${app} from ${request.manifest.spec.image}`
        : `Build ${request.manifest.spec.source.repository}@${request.manifest.spec.source.branch} and deploy ${namespace}/${app}`;
  // Signal-with-start: starts a deploy when none runs for the app; otherwise the running deploy receives the request
  // and supersedes itself or queues it, per policy. Temporal's workflow id uniqueness keeps one deploy per app.
  const handle = await client.workflow.signalWithStart('deployWorkflow', {
    workflowId,
    taskQueue: opts.taskQueue ?? TASK_QUEUE,
    args: [request],
    signal: deployRequestedSignal,
    signalArgs: [request],
    typedSearchAttributes: [{ key: FluiApp, value: `${namespace}/${app}` }],
    // What `flui status` and `flui builds` show until a worker picks the deploy up (the workflow replaces it).
    memo: deployMemo(initialStatus(request)),
    staticSummary: summary,
    staticDetails: `deploy id \`${request.deployId}\` · policy ${request.policy}${request.requestedBy ? ` · by ${request.requestedBy}` : ''}`,
  });
  const runId = handle.signaledRunId;
  return {
    deployId: request.deployId,
    workflowId,
    runId,
    ...(opts.webUi ? { webUiUrl: webUiUrl(opts.webUi, client.options.namespace, workflowId, runId) } : {}),
  };
}

/**
 * Asks for a deploy of the app `manifest` describes. The manifest is validated again here (a library caller may hand
 * in any object): an invalid one throws a `ManifestError` naming the field, and nothing is started. With
 * `follow: true` the result also carries the deploy's {@link follow} progress.
 */
export async function startDeploy(
  source: ClientSource,
  manifest: Manifest,
  options: StartOptions & { follow: true },
): Promise<StartedDeploy & { progress: AsyncGenerator<DeployStatus> }>;
export async function startDeploy(
  source: ClientSource,
  manifest: Manifest,
  options?: StartOptions & { follow?: boolean },
): Promise<StartedDeploy>;
export async function startDeploy(
  source: ClientSource,
  manifest: Manifest,
  options: StartOptions & { follow?: boolean } = {},
): Promise<StartedDeploy & { progress?: AsyncGenerator<DeployStatus> }> {
  const valid = validateManifest(manifest, 'manifest');
  const { follow: following, ...opts } = checked(
    startOptionsSchema.extend({ follow: z.boolean().optional() }),
    options,
    'options',
  );
  const { namespace, name: app } = valid.metadata;
  const deployId = newDeployId(namespace, app);
  const policy = opts.policy ?? valid.spec.deploy.policy;
  const request: DeployRequest =
    valid.kind === 'Application'
      ? { deployId, kind: 'Application', manifest: valid, policy, requestedBy: opts.requestedBy }
      : { deployId, kind: 'CatalogApp', manifest: valid, policy, requestedBy: opts.requestedBy };
  const started = await withClient(source, (client) => start(client, request, opts));
  return following ? { ...started, progress: follow(source, deployId) } : started;
}

/**
 * Rolls the app back to `digest` (or to the image before the current one) through the same deploy workflow, so it
 * shows in Web UI and supersedes whatever deploy is in flight.
 */
export async function rollback(
  source: ClientSource,
  namespace: string,
  app: string,
  options: Omit<StartOptions, 'policy'> & { digest?: string } = {},
): Promise<StartedDeploy> {
  checkApp(namespace, app);
  const { digest, ...rest } = options;
  if (digest !== undefined) checked(digestSchema, digest, 'digest');
  const opts = checked(startOptionsSchema, rest, 'options');
  const request: DeployRequest = {
    deployId: newDeployId(namespace, app),
    kind: 'Rollback',
    namespace,
    app,
    digest,
    policy: 'supersede',
    requestedBy: opts.requestedBy,
  };
  return withClient(source, (client) => start(client, request, opts));
}

// ---- Reading state -------------------------------------------------------------------------------------------

/** A deploy's status as the client saw it. */
export interface AppStatus extends DeployStatus {
  /** The workflow run it came from. */
  runId: string;
  /** `live`: the workflow answered the status query; `recorded`: its memo (finished, or no worker answered). */
  source: 'live' | 'recorded';
}

/** How long to wait for a worker to answer the status query before reading the recorded state instead. */
const QUERY_TIMEOUT_MS = 5000;

const CLOSED_PHASE: Record<string, DeployPhase> = {
  COMPLETED: 'succeeded',
  FAILED: 'failed',
  CANCELLED: 'cancelled',
  TERMINATED: 'cancelled',
  TIMED_OUT: 'failed',
};

/**
 * A run's status from its memo, which the workflow keeps current at every phase (no history replay needed). The
 * memo's final phase is how the deploy ended: a deploy cancelled through the signal ends its run as Failed, yet it
 * was cancelled. The run's own status speaks only for runs that ended without recording it: terminated, timed out,
 * or cancelled before a worker ran them.
 */
function recorded(
  info: WorkflowExecutionInfo | WorkflowExecutionDescription,
  namespace: string,
  app: string,
): AppStatus {
  const memo = readDeployMemo(info.memo);
  const name = info.status.name;
  let phase: DeployPhase;
  let cancelled: Cancellation | undefined = memo?.cancelled;
  if (name === 'RUNNING') phase = memo?.phase ?? 'queued';
  else if (memo && isTerminal(memo.phase)) phase = memo.phase;
  else if (name === 'CONTINUED_AS_NEW') phase = 'superseded';
  else {
    phase = CLOSED_PHASE[name] ?? 'failed';
    if (name === 'TERMINATED') cancelled = { by: 'terminated' };
    else if (name === 'CANCELLED') cancelled ??= { by: 'temporal' };
  }
  return {
    deployId: '',
    kind: 'Application',
    attempt: 1,
    timings: [],
    ...memo,
    namespace,
    app,
    phase,
    ...(cancelled ? { cancelled } : {}),
    queued: [],
    runId: info.runId,
    source: 'recorded',
  };
}

/** The app's latest run and its status: asked live while it runs, read from the memo once it ended. */
async function latest(
  client: Client,
  namespace: string,
  app: string,
  queryTimeoutMs: number,
): Promise<{ info: WorkflowExecutionDescription; status: AppStatus }> {
  const workflowId = deployWorkflowId(namespace, app);
  let info: WorkflowExecutionDescription;
  try {
    info = await client.workflow.getHandle(workflowId).describe();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) {
      throw new FluiError(
        `no deploy of ${namespace}/${app} found: check the app name and namespace (-n), or deploy it with \`flui deploy <manifest>\``,
        'not-found',
      );
    }
    throw err;
  }
  if (info.status.name !== 'RUNNING') return { info, status: recorded(info, namespace, app) };
  try {
    // Without a worker, the server would hold the query for 30 s; the memo is a good answer much sooner.
    const handle = client.workflow.getHandle(workflowId, info.runId);
    const live = await client.connection.withDeadline(Date.now() + queryTimeoutMs, () => handle.query(statusQuery));
    return { info, status: { ...live, runId: info.runId, source: 'live' } };
  } catch (err) {
    if (isUnavailable(err)) throw err;
    return { info, status: recorded(info, namespace, app) };
  }
}

/** The current (or last) deploy of `app`. */
export async function status(
  source: ClientSource,
  namespace: string,
  app: string,
  opts: { queryTimeoutMs?: number } = {},
): Promise<AppStatus> {
  checkApp(namespace, app);
  return withClient(
    source,
    async (client) => (await latest(client, namespace, app, opts.queryTimeoutMs ?? QUERY_TIMEOUT_MS)).status,
  );
}

/**
 * Stops the app's deploy in flight: its CI run is cancelled and nothing is rolled out. With a reason, through the
 * `cancel` signal (its run ends Failed, carrying the reason); without, through Temporal cancellation (its run ends
 * Cancelled). Either way the deploy reads back as `cancelled`, with who cancelled it and why.
 */
export async function cancel(
  source: ClientSource,
  namespace: string,
  app: string,
  reason?: string,
): Promise<AppStatus> {
  checkApp(namespace, app);
  if (reason !== undefined) checked(z.string().min(1).max(500), reason, 'reason');
  return withClient(source, async (client) => {
    const { status: current } = await latest(client, namespace, app, QUERY_TIMEOUT_MS);
    if (isTerminal(current.phase))
      throw new FluiError(`the last deploy of ${namespace}/${app} already ended (${current.phase}): nothing to cancel`);
    const handle = client.workflow.getHandle(deployWorkflowId(namespace, app), current.runId);
    if (reason) await handle.signal(cancelSignal, { reason });
    else await handle.cancel();
    return current;
  });
}

/** Re-runs a failed deploy that waits for a retry, from the phase that failed, in the same workflow. */
export async function retry(source: ClientSource, namespace: string, app: string): Promise<AppStatus> {
  checkApp(namespace, app);
  return withClient(source, async (client) => {
    const { status: current } = await latest(client, namespace, app, QUERY_TIMEOUT_MS);
    if (current.phase !== 'awaiting-retry') {
      throw new FluiError(
        `the deploy of ${namespace}/${app} is ${current.phase}, not waiting for a retry: \`flui retry\` re-runs a deploy that failed and waits (see \`flui status ${app}\`)`,
      );
    }
    await client.workflow.getHandle(deployWorkflowId(namespace, app), current.runId).signal(retrySignal);
    return current;
  });
}

export interface Build {
  deployId: string;
  runId: string;
  kind: DeployStatus['kind'];
  phase: DeployPhase;
  /** For a cancelled deploy: who or what cancelled it, and why. */
  cancelled?: Cancellation;
  commit?: string;
  ciRun?: CiRunRef;
  digest?: string;
  error?: string;
  startedAt: string;
  closedAt?: string;
  /** Until the run closed; absent while it runs. */
  durationSeconds?: number;
}

function buildOf(info: WorkflowExecutionInfo, namespace: string, app: string): Build {
  const s = recorded(info, namespace, app);
  return {
    deployId: s.deployId,
    runId: info.runId,
    kind: s.kind,
    phase: s.phase,
    ...(s.cancelled ? { cancelled: s.cancelled } : {}),
    commit: s.commit,
    ciRun: s.ciRun,
    digest: s.digest,
    error: s.error,
    startedAt: info.startTime.toISOString(),
    closedAt: info.closeTime?.toISOString(),
    durationSeconds: info.closeTime
      ? Math.round((info.closeTime.getTime() - info.startTime.getTime()) / 100) / 10
      : undefined,
  };
}

/** The app's runs, newest first: one per deploy (a superseding or queued deploy continues as new). */
async function runs(client: Client, namespace: string, app: string, limit: number): Promise<WorkflowExecutionInfo[]> {
  const result: WorkflowExecutionInfo[] = [];
  for await (const info of client.workflow.list({
    query: `WorkflowId = "${deployWorkflowId(namespace, app)}"`,
    pageSize: Math.min(limit, 100),
  })) {
    result.push(info);
    if (result.length >= limit) break;
  }
  return result;
}

async function builds(client: Client, namespace: string, app: string, limit: number): Promise<Build[]> {
  return (await runs(client, namespace, app, limit)).map((info) => buildOf(info, namespace, app));
}

/** Past and current deploys of the app, newest first, from Temporal's visibility store. */
export async function listBuilds(source: ClientSource, namespace: string, app: string, limit = 20): Promise<Build[]> {
  checkApp(namespace, app);
  checked(z.number().int().min(1).max(1000), limit, 'limit');
  return withClient(source, (client) => builds(client, namespace, app, limit));
}

export interface BuildLogs {
  deployId: string;
  /** The run of the app's deploy workflow that is this deploy (where its record is). */
  runId: string;
  phase: DeployPhase;
  commit?: string;
  ciRun: CiRunRef;
  /** Where the logs are: the CI's own run page (logs, reruns and artifacts stay the CI's). */
  logsUrl: string;
}

/** The app's `build`-th newest deploy that started a CI run (1 = the newest); a clear error when there is none. */
async function findBuild(client: Client, namespace: string, app: string, build: number): Promise<BuildLogs> {
  const all = await builds(client, namespace, app, Math.max(50, build));
  const withRuns = all.filter((b) => b.ciRun);
  const b = withRuns[build - 1];
  if (!b?.ciRun) {
    if (!all.length) {
      throw new FluiError(
        `no deploy of ${namespace}/${app} yet, so no build to read: deploy it first (flui deploy)`,
        'not-found',
      );
    }
    throw new FluiError(
      withRuns.length
        ? `${namespace}/${app} has ${withRuns.length} build(s) with a CI run; --build ${build} is past the oldest`
        : `no CI run recorded for ${namespace}/${app}: see \`flui builds ${app}\``,
    );
  }
  return {
    deployId: b.deployId,
    runId: b.runId,
    phase: b.phase,
    commit: b.commit,
    ciRun: b.ciRun,
    logsUrl: b.ciRun.htmlUrl,
  };
}

/** Where to read the logs of the app's `build`-th newest deploy that started a CI run (1 = the newest). */
export async function logs(source: ClientSource, namespace: string, app: string, build = 1): Promise<BuildLogs> {
  checkApp(namespace, app);
  checked(z.number().int().min(1).max(1000), build, 'build');
  return withClient(source, (client) => findBuild(client, namespace, app, build));
}

/** A piece of a build's own log, as the CI keeps it (secrets the CI masks stay masked). */
export interface BuildLogChunk {
  deployId: string;
  /** The CI run the text is from. */
  ciRun: CiRunRef;
  /** Log text after the previous chunk's; empty only in a last chunk that says `done`. */
  text: string;
  /** Hand back as `cursor` to read on from here later. */
  cursor: string;
  /** The run has finished and its whole log was read: nothing more will come. */
  done: boolean;
}

export interface BuildLogOptions {
  /** Keep reading until the run has finished and its whole log was read; otherwise stop at what is there now. */
  follow?: boolean;
  /** Between reads that found nothing new, while following; 1.5 s by default. */
  intervalMs?: number;
  /** Where the worker polls (FLUI_TASK_QUEUE). */
  taskQueue?: string;
  /** Read on from a chunk's cursor instead of from the start. */
  cursor?: string;
  /** How long one read may take, the worker's retries of an unreachable CI included; 100 s by default. */
  readTimeoutMs?: number;
}

const LOG_POLL_MS = 1500;
const LOG_READ_TIMEOUT_MS = 100_000;
const LOG_FAILURE_TRANSIENT = /(Unavailable|RateLimited|Conflict)$/;

/** What a failed read means to a person: the CI refused, could not be reached, or no worker took the request. */
function logReadError(err: unknown, taskQueue: string, timeoutMs: number): unknown {
  if (!(err instanceof WorkflowFailedError)) return err;
  let timedOut: TimeoutFailure | undefined;
  for (let e: unknown = err.cause; e; e = (e as { cause?: unknown }).cause) {
    if (e instanceof ApplicationFailure) {
      const transient = LOG_FAILURE_TRANSIENT.test(e.type ?? '');
      return new FluiError(
        transient
          ? `the CI could not be reached to read the log (the worker tried for a while): ${e.message}`
          : e.message,
        transient ? 'unavailable' : 'failed',
      );
    }
    if (e instanceof TimeoutFailure) timedOut ??= e;
  }
  if (timedOut && !(err.cause instanceof ActivityFailure)) {
    return new FluiError(
      `no Flui worker read the log within ${Math.round(timeoutMs / 1000)} s: is one running on task queue "${taskQueue}"?`,
      'unavailable',
    );
  }
  return new FluiError(`reading the build log failed: ${err.cause?.message ?? err.message}`, 'unavailable');
}

/**
 * The log of a build (from {@link logs}), in chunks: what the CI has now, or, with `follow`, everything until its
 * run ends, each line once and in order. The CLI holds no CI credential: each chunk is read by the worker, through a
 * short workflow (src/workflows/logs.ts) that names the deploy and nothing else.
 */
export async function* buildLog(
  source: ClientSource,
  build: Pick<BuildLogs, 'deployId' | 'runId'>,
  opts: BuildLogOptions = {},
): AsyncGenerator<BuildLogChunk> {
  const parsed = parseDeployId(build.deployId);
  if (!parsed) throw new FluiError(`"${build.deployId}" is not a deploy id (<namespace>.<app>.<nonce>)`, 'invalid');
  const { namespace, app } = parsed;
  const taskQueue = opts.taskQueue ?? TASK_QUEUE;
  const timeoutMs = opts.readTimeoutMs ?? LOG_READ_TIMEOUT_MS;
  const client = isClient(source) ? source : await connect(source);
  try {
    let cursor = opts.cursor;
    let ciRun: CiRunRef | undefined;
    for (;;) {
      let read: ReadBuildLogResult;
      try {
        read = await client.workflow.execute<typeof readBuildLogWorkflow>('readBuildLogWorkflow', {
          workflowId: `logs-${namespace}.${app}-${Date.now().toString(36)}${randomBytes(4).toString('hex')}`,
          taskQueue,
          args: [{ namespace, appName: app, deployRunId: build.runId, ...(cursor !== undefined ? { cursor } : {}) }],
          workflowExecutionTimeout: timeoutMs,
          staticSummary: `Read the build log of deploy ${build.deployId}`,
        });
      } catch (err) {
        throw logReadError(err, taskQueue, timeoutMs);
      }
      if (ciRun && read.ciRun.id !== ciRun.id) {
        // A `flui retry` of the deploy started another run: this one's log ends here.
        yield {
          deployId: build.deployId,
          ciRun,
          text: `(deploy ${build.deployId} started another CI run, ${read.ciRun.htmlUrl}: run \`flui logs ${app}\` again to read it)\n`,
          cursor: cursor ?? '',
          done: true,
        };
        return;
      }
      ciRun = read.ciRun;
      cursor = read.cursor;
      if (read.text !== '' || read.done) {
        yield { deployId: build.deployId, ciRun, text: read.text, cursor: read.cursor, done: read.done };
      }
      if (read.done) return;
      if (read.text === '') {
        if (!opts.follow) return;
        await sleep(opts.intervalMs ?? LOG_POLL_MS);
      }
    }
  } catch (err) {
    throw explain(err, client);
  } finally {
    if (client !== source) await client.connection.close().catch(() => undefined);
  }
}

// ---- Following a deploy --------------------------------------------------------------------------------------

export interface FollowOptions {
  /** Between status checks; 500 ms by default. */
  intervalMs?: number;
  queryTimeoutMs?: number;
  /** Skip statuses of attempts before this one: following a deploy just sent `retry`, whose signal may not have
   * landed yet, must not stop at the failure being retried. */
  fromAttempt?: number;
}

function memoDeployId(info: WorkflowExecutionInfo): string | undefined {
  return readDeployMemo(info.memo)?.deployId;
}

/** A status for a deploy that is not the app's current one (queued behind it, or replaced before it ran). */
function waiting(deployId: string, namespace: string, app: string, phase: DeployPhase, by?: string): DeployStatus {
  return {
    deployId,
    kind: 'Application',
    namespace,
    app,
    phase,
    attempt: 1,
    timings: [],
    queued: [],
    ...(by ? { supersededBy: by } : {}),
  };
}

/**
 * Follows one deploy until it ends or waits for a retry, yielding each changed status. The app's workflow id stays
 * while its runs change (a superseding or queued deploy continues as new), so a finished deploy is read from its own
 * run's memo, or found in visibility when it ended between two checks.
 */
export function follow(source: ClientSource, deployId: string, opts?: FollowOptions): AsyncGenerator<DeployStatus>;
export function follow(
  source: ClientSource,
  namespace: string,
  app: string,
  deployId: string,
  intervalMs?: number,
): AsyncGenerator<DeployStatus>;
export async function* follow(
  source: ClientSource,
  a: string,
  b?: string | FollowOptions,
  c?: string,
  d?: number,
): AsyncGenerator<DeployStatus> {
  const deployId = typeof b === 'string' ? c! : a;
  const opts: FollowOptions = typeof b === 'string' ? { intervalMs: d } : (b ?? {});
  const parsed = parseDeployId(deployId);
  if (!parsed) throw new FluiError(`"${deployId}" is not a deploy id (<namespace>.<app>.<nonce>)`, 'invalid');
  const { namespace, app } = parsed;
  const client = isClient(source) ? source : await connect(source);
  try {
    yield* followRuns(client, namespace, app, deployId, opts);
  } catch (err) {
    throw explain(err, client);
  } finally {
    if (client !== source) await client.connection.close().catch(() => undefined);
  }
}

async function* followRuns(
  client: Client,
  namespace: string,
  app: string,
  deployId: string,
  opts: FollowOptions,
): AsyncGenerator<DeployStatus> {
  const workflowId = deployWorkflowId(namespace, app);
  const interval = opts.intervalMs ?? 500;
  let ourRun: string | undefined;
  let unseen = 0;
  let last = '';
  for (;;) {
    const { status: current } = await latest(client, namespace, app, opts.queryTimeoutMs ?? QUERY_TIMEOUT_MS);
    let mine: DeployStatus;
    if (current.deployId === deployId) {
      ourRun = current.runId;
      mine = current;
    } else if (current.queued.includes(deployId)) {
      mine = waiting(deployId, namespace, app, 'queued');
    } else {
      // Ours ended and the app moved on: read our own run (strongly consistent) or, if we never saw it, visibility.
      let past: DeployStatus | undefined;
      if (ourRun) past = recorded(await client.workflow.getHandle(workflowId, ourRun).describe(), namespace, app);
      else {
        const info = (await runs(client, namespace, app, 50)).find((r) => memoDeployId(r) === deployId);
        if (info) past = recorded(info, namespace, app);
      }
      const newer = (requestedAt(current.deployId) ?? 0) > (requestedAt(deployId) ?? Infinity);
      if (past) mine = past;
      else if (newer && ++unseen >= 3) {
        // A newer deploy runs, ours is not queued and never ran: a later request replaced it while it waited.
        mine = waiting(deployId, namespace, app, 'superseded', current.deployId);
      } else mine = waiting(deployId, namespace, app, 'queued');
    }
    if (mine.attempt < (opts.fromAttempt ?? 1) && mine.phase === 'awaiting-retry') {
      await new Promise((r) => setTimeout(r, interval));
      continue;
    }
    const key = JSON.stringify([mine.phase, mine.ciRun, mine.digest, mine.error, mine.attempt, mine.commit]);
    if (key !== last) {
      last = key;
      yield mine;
    }
    if (isSettled(mine.phase)) return;
    await new Promise((r) => setTimeout(r, interval));
  }
}

// ---- Images (from the cluster) -------------------------------------------------------------------------------

/** The digests rolled out for the app, newest first, the running one marked `current` (src/kube/history.ts). */
export async function listImages(
  kubeconfig: string | undefined,
  namespace: string,
  app: string,
): Promise<ImageListing[]> {
  checkApp(namespace, app);
  // Loaded on demand: the Kubernetes client takes longer to load than every other command needs to run.
  const [{ listImages: fromCluster }, { kubeClients }] = await Promise.all([
    import('../kube/history.ts'),
    import('../kube/rollout.ts'),
  ]);
  try {
    return await fromCluster(kubeClients(kubeconfig), namespace, app);
  } catch (err) {
    throw new FluiError(
      `cannot read the image history of ${namespace}/${app} from the cluster: ${(err as Error).message}. Check KUBECONFIG.`,
      'unavailable',
    );
  }
}
