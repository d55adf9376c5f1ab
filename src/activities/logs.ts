/**
 * The activity behind `flui logs`: reads a build's own log from the CI, on the worker, which holds the CI's
 * credentials (the CLI holds only a Temporal connection). What it reads about the build (the app's manifest, its CI
 * run) comes from the deploy's own record in Temporal, never from the caller: the caller names the app and one run of
 * its deploy workflow, and hands back the cursor it was given.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import type { CiBackend, LogChunk } from '../ci/backend.ts';
import type { Lanes } from '../lanes.ts';
import { ManifestError, validateManifest } from '../manifest/parse.ts';
import type { Application } from '../manifest/schema.ts';
import {
  deployWorkflowId,
  FailureType,
  readDeployMemo,
  type CiRunRef,
  type DeployRequest,
} from '../workflows/contract.ts';
import { admit } from './admission.ts';

export interface ReadBuildLogInput {
  namespace: string;
  /** The app's name (not `app`: activity inputs carry a manifest under that key, which admission reads). */
  appName: string;
  /** One run of the app's deploy workflow (`deploy-<namespace>.<app>`): a deploy, whose CI run's log is read. */
  deployRunId: string;
  /** From the previous chunk; absent to read from the start. */
  cursor?: string;
}

/** A chunk of the log, and the CI run it is from (a retry of the deploy starts another run). */
export interface ReadBuildLogResult extends LogChunk {
  ciRun: CiRunRef;
}

export interface LogActivities {
  /** Read-only: reads the deploy's record and the CI's log, writes nothing anywhere. */
  readBuildLog(input: ReadBuildLogInput): Promise<ReadBuildLogResult>;
}

const notFound = (message: string) => ApplicationFailure.nonRetryable(message, FailureType.NotFound);

/** The request a deploy run was started with: the first event of its history (one event is all that is read). */
async function startRequest(client: Client, workflowId: string, runId: string): Promise<DeployRequest | undefined> {
  const { history } = await client.workflowService.getWorkflowExecutionHistory({
    namespace: client.options.namespace,
    execution: { workflowId, runId },
    maximumPageSize: 1,
  });
  const payload = history?.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
  if (!payload) return undefined;
  const { payloadConverter, payloadCodecs } = client.options.loadedDataConverter;
  let payloads = [payload];
  for (const codec of [...payloadCodecs].reverse()) payloads = await codec.decode(payloads);
  return payloadConverter.fromPayload<DeployRequest>(payloads[0]!);
}

export function createLogActivities(ci: CiBackend, lanes: Lanes): LogActivities {
  return {
    async readBuildLog({ namespace, appName: app, deployRunId, cursor }) {
      const client = Context.current().client;
      const workflowId = deployWorkflowId(namespace, app);
      let memo;
      try {
        memo = readDeployMemo((await client.workflow.getHandle(workflowId, deployRunId).describe()).memo);
      } catch (err) {
        if ((err as Error).name === 'WorkflowNotFoundError') {
          throw notFound(`no deploy of ${namespace}/${app} has run ${deployRunId}`);
        }
        throw err;
      }
      const ciRun = memo?.ciRun;
      const deployId = memo?.deployId ?? deployRunId;
      if (!ciRun) throw notFound(`deploy ${deployId} of ${namespace}/${app} started no CI run`);
      const request = await startRequest(client, workflowId, deployRunId);
      if (request?.kind !== 'Application') {
        throw notFound(`deploy ${deployId} of ${namespace}/${app} builds nothing: it has no CI log`);
      }
      let manifest: Application;
      try {
        manifest = validateManifest(request.manifest, `deploy ${deployId}`) as Application;
      } catch (err) {
        if (!(err instanceof ManifestError)) throw err;
        throw ApplicationFailure.nonRetryable(err.message, FailureType.Invalid);
      }
      // Read with the worker's credentials only what its lanes allow today.
      admit(lanes, { app: manifest });
      const chunk = await ci.readLogs(manifest, ciRun, cursor);
      return { ...chunk, ciRun };
    },
  };
}
