/**
 * Where a self-hosted build stands (FLUI_CI=self-hosted), for `flui status`: waiting for a builder, or building on
 * which one. Read from the build workflow's description (no query, so no worker needs to answer).
 */
import { WorkflowNotFoundError, type Client } from '@temporalio/client';

export interface BuildProgress {
  state: 'waiting-for-builder' | 'building';
  /** The builder running it (its Temporal identity), while building. */
  builder?: string;
  /** The build's attempt: above 1 after a builder died or a transient failure. */
  attempt: number;
}

/** `PendingActivityInfo.state` STARTED and CANCEL_REQUESTED (temporal.api.enums.v1.PendingActivityState). */
const RUNNING_STATES = new Set([2, 3]);

/** Progress of the build `runId` (a self-hosted CI run id, `build-…`), while it runs; undefined otherwise. */
export async function buildProgress(client: Client, runId: string): Promise<BuildProgress | undefined> {
  if (!runId.startsWith('build-')) return undefined;
  try {
    const d = await client.workflow.getHandle(runId).describe();
    if (d.status.name !== 'RUNNING') return undefined;
    const activity = d.raw.pendingActivities?.[0];
    if (activity && RUNNING_STATES.has(activity.state as number)) {
      return { state: 'building', builder: activity.lastWorkerIdentity ?? undefined, attempt: activity.attempt ?? 1 };
    }
    return { state: 'waiting-for-builder', attempt: activity?.attempt ?? 1 };
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return undefined;
    throw err;
  }
}

export function formatBuildProgress(p: BuildProgress): string {
  const retry = p.attempt > 1 ? ` (attempt ${p.attempt})` : '';
  return p.state === 'building'
    ? `build:    building on ${p.builder ?? 'a builder'}${retry}\n`
    : `build:    waiting for a builder${retry}: is a flui-builder running on the build task queue?\n`;
}
