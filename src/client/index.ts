/**
 * The Flui client library: start deploys, follow them, cancel, retry, roll back, and read builds and images. The
 * `flui` CLI is a thin layer over it. Inputs are validated here (the edge): a bad manifest or argument starts nothing.
 */
import { randomBytes } from 'node:crypto';
import {
  Client,
  Connection,
  WorkflowNotFoundError,
  type WorkflowExecutionDescription,
  type WorkflowExecutionInfo,
} from '@temporalio/client';
import { z } from 'zod';
import type { Config } from '../config.ts';
import { listImages as listClusterImages, type ImageListing } from '../kube/history.ts';
import { kubeClients } from '../kube/rollout.ts';
import type { DeployPolicy, Manifest } from '../manifest/schema.ts';
import {
  cancelSignal,
  deployRequestedSignal,
  deployWorkflowId,
  FluiApp,
  retrySignal,
  statusQuery,
  TASK_QUEUE,
  TERMINAL_PHASES,
  type CiRunRef,
  type DeployPhase,
  type DeployRequest,
  type DeployStatus,
} from '../workflows/api.ts';

export class FluiError extends Error {
  /** Exit code the CLI uses: 2 usage, 4 unreachable/configuration, 1 otherwise. */
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.name = 'FluiError';
    this.exitCode = exitCode;
  }
}

const name = z
  .string()
  .regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, 'must be a lowercase DNS label (letters, digits, "-")');
const digest = z.string().regex(/^sha256:[a-f0-9]{64}$/, 'must be "sha256:" followed by 64 hex digits');

function checked<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const r = schema.safeParse(value);
  if (!r.success) throw new FluiError(`${what} ${r.error.issues[0]?.message ?? 'is invalid'}`, 2);
  return r.data;
}

export async function connect(config: Pick<Config, 'temporal'>): Promise<Client> {
  const address = config.temporal.address ?? '127.0.0.1:7233';
  try {
    const connection = await Connection.connect({
      address,
      tls: config.temporal.tls
        ? { clientCertPair: { crt: Buffer.from(config.temporal.tls.cert), key: Buffer.from(config.temporal.tls.key) } }
        : undefined,
      apiKey: config.temporal.apiKey,
      connectTimeout: config.temporal.connectTimeoutMs,
    });
    return new Client({ connection, namespace: config.temporal.namespace });
  } catch (err) {
    throw new FluiError(
      `cannot reach Temporal at ${address}: ${(err as Error).message}. Start it (npm start runs one) or set TEMPORAL_ADDRESS.`,
      4,
    );
  }
}

/** `<namespace>.<app>.<nonce>`: the nonce sorts by time and is random enough to never collide. */
export function newDeployId(namespace: string, app: string): string {
  const nonce = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  return `${namespace}.${app}.${nonce}`;
}

export interface StartedDeploy {
  deployId: string;
  workflowId: string;
  runId: string;
}

async function start(
  client: Client,
  request: DeployRequest,
  namespace: string,
  app: string,
  taskQueue: string,
): Promise<StartedDeploy> {
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
    taskQueue,
    args: [request],
    signal: deployRequestedSignal,
    signalArgs: [request],
    typedSearchAttributes: [{ key: FluiApp, value: `${namespace}/${app}` }],
    staticSummary: summary,
    staticDetails: `deploy id \`${request.deployId}\` · policy ${request.policy}${request.requestedBy ? ` · by ${request.requestedBy}` : ''}`,
  });
  return { deployId: request.deployId, workflowId, runId: handle.signaledRunId };
}

export async function startDeploy(
  client: Client,
  manifest: Manifest,
  opts: { policy?: DeployPolicy; taskQueue?: string; requestedBy?: string } = {},
): Promise<StartedDeploy> {
  const { namespace, name: app } = manifest.metadata;
  const deployId = newDeployId(namespace, app);
  const policy = opts.policy ?? manifest.spec.deploy.policy;
  const request: DeployRequest =
    manifest.kind === 'Application'
      ? { deployId, kind: 'Application', manifest, policy, requestedBy: opts.requestedBy }
      : { deployId, kind: 'CatalogApp', manifest, policy, requestedBy: opts.requestedBy };
  return start(client, request, namespace, app, opts.taskQueue ?? TASK_QUEUE);
}

export async function rollback(
  client: Client,
  namespace: string,
  app: string,
  opts: { digest?: string; taskQueue?: string; requestedBy?: string } = {},
): Promise<StartedDeploy> {
  checked(name, app, 'app');
  checked(name, namespace, 'namespace');
  if (opts.digest !== undefined) checked(digest, opts.digest, '--to');
  const deployId = newDeployId(namespace, app);
  return start(
    client,
    {
      deployId,
      kind: 'Rollback',
      namespace,
      app,
      digest: opts.digest,
      policy: 'supersede',
      requestedBy: opts.requestedBy,
    },
    namespace,
    app,
    opts.taskQueue ?? TASK_QUEUE,
  );
}

/** The deploy of `app` as its workflow reports it, or, for a finished one, as its memo recorded it. */
export async function status(client: Client, namespace: string, app: string): Promise<DeployStatus> {
  checked(name, app, 'app');
  const handle = client.workflow.getHandle(deployWorkflowId(namespace, app));
  let info: WorkflowExecutionDescription;
  try {
    info = await handle.describe();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError)
      throw new FluiError(`no deploy of ${namespace}/${app} found: deploy it with \`flui deploy <manifest>\``);
    throw err;
  }
  if (info.status.name === 'RUNNING') return handle.query(statusQuery);
  return statusFromMemo(info, namespace, app);
}

function statusFromMemo(
  info: WorkflowExecutionInfo | WorkflowExecutionDescription,
  namespace: string,
  app: string,
): DeployStatus {
  const memo = (info.memo?.deploy ?? {}) as Partial<DeployStatus> & { ciRun?: CiRunRef | null };
  const closed: Record<string, DeployPhase> = {
    COMPLETED: 'succeeded',
    FAILED: 'failed',
    CANCELLED: 'cancelled',
    TERMINATED: 'cancelled',
    TIMED_OUT: 'failed',
  };
  return {
    deployId: memo.deployId ?? '',
    kind: memo.kind ?? 'Application',
    namespace,
    app,
    // A run that continued as new ended the way its memo says (succeeded, failed, cancelled or superseded).
    phase:
      info.status.name === 'CONTINUED_AS_NEW'
        ? (memo.phase ?? 'superseded')
        : (closed[info.status.name] ?? memo.phase ?? 'failed'),
    commit: memo.commit ?? undefined,
    ciRun: memo.ciRun ?? undefined,
    image: memo.image ?? undefined,
    digest: memo.digest ?? undefined,
    error: memo.error ?? undefined,
    attempt: memo.attempt ?? 1,
    timings: memo.timings ?? [],
    queued: [],
  };
}

export async function cancel(client: Client, namespace: string, app: string, reason?: string): Promise<DeployStatus> {
  const current = await status(client, namespace, app);
  if (TERMINAL_PHASES.includes(current.phase))
    throw new FluiError(`the last deploy of ${namespace}/${app} already ended (${current.phase}): nothing to cancel`);
  const handle = client.workflow.getHandle(deployWorkflowId(namespace, app));
  if (reason) await handle.signal(cancelSignal, { reason });
  else await handle.cancel();
  return current;
}

export async function retry(client: Client, namespace: string, app: string): Promise<DeployStatus> {
  const current = await status(client, namespace, app);
  if (current.phase !== 'awaiting-retry') {
    throw new FluiError(
      `the deploy of ${namespace}/${app} is ${current.phase}, not waiting for a retry: \`flui retry\` re-runs a failed deploy`,
    );
  }
  await client.workflow.getHandle(deployWorkflowId(namespace, app)).signal(retrySignal);
  return current;
}

export interface Build {
  deployId: string;
  runId: string;
  kind: string;
  phase: DeployPhase;
  commit?: string;
  ciRun?: CiRunRef;
  digest?: string;
  error?: string;
  startedAt: string;
  durationSeconds?: number;
}

/** Past and current deploys of the app, newest first, from Temporal's visibility store (no history replays). */
export async function listBuilds(client: Client, namespace: string, app: string, limit = 20): Promise<Build[]> {
  checked(name, app, 'app');
  const builds: Build[] = [];
  for await (const info of client.workflow.list({
    query: `WorkflowId = "${deployWorkflowId(namespace, app)}"`,
    pageSize: limit,
  })) {
    const s = statusFromMemo(info, namespace, app);
    const phase =
      info.status.name === 'RUNNING'
        ? (((info.memo?.deploy as { phase?: DeployPhase }) ?? {}).phase ?? 'queued')
        : s.phase;
    builds.push({
      deployId: s.deployId,
      runId: info.runId,
      kind: s.kind,
      phase,
      commit: s.commit,
      ciRun: s.ciRun,
      digest: s.digest,
      error: s.error,
      startedAt: info.startTime.toISOString(),
      durationSeconds: info.closeTime
        ? Math.round((info.closeTime.getTime() - info.startTime.getTime()) / 100) / 10
        : undefined,
    });
    if (builds.length >= limit) break;
  }
  return builds;
}

/** Follows one deploy until it ends (or waits for a retry), yielding each changed status. */
export async function* follow(
  client: Client,
  namespace: string,
  app: string,
  deployId: string,
  intervalMs = 500,
): AsyncGenerator<DeployStatus> {
  const handle = client.workflow.getHandle(deployWorkflowId(namespace, app));
  let last = '';
  for (;;) {
    let s: DeployStatus;
    try {
      const info = await handle.describe();
      s = info.status.name === 'RUNNING' ? await handle.query(statusQuery) : statusFromMemo(info, namespace, app);
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw new FluiError(`deploy ${deployId} not found`);
      throw err;
    }
    let mine: DeployStatus;
    if (s.deployId === deployId) mine = s;
    else if (s.queued.includes(deployId)) mine = { ...s, deployId, phase: 'queued' };
    else {
      // Ours ended and the app's workflow moved on (a queued deploy, or a newer one superseded ours).
      const past = (await listBuilds(client, namespace, app, 50)).find((b) => b.deployId === deployId);
      mine = past
        ? {
            ...s,
            deployId,
            phase: past.phase,
            commit: past.commit,
            ciRun: past.ciRun,
            digest: past.digest,
            error: past.error,
          }
        : { ...s, deployId, phase: 'queued' };
    }
    const key = JSON.stringify([mine.phase, mine.ciRun, mine.digest, mine.error, mine.attempt]);
    if (key !== last) {
      last = key;
      yield mine;
    }
    if (TERMINAL_PHASES.includes(mine.phase) || mine.phase === 'awaiting-retry') return;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export async function listImages(
  kubeconfig: string | undefined,
  namespace: string,
  app: string,
): Promise<ImageListing[]> {
  checked(name, app, 'app');
  try {
    return await listClusterImages(kubeClients(kubeconfig), namespace, app);
  } catch (err) {
    throw new FluiError(
      `cannot read the image history of ${namespace}/${app} from the cluster: ${(err as Error).message}`,
      4,
    );
  }
}
