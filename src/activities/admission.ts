/**
 * Admission: every activity checks, before it does anything, that what its input names stays inside the worker's
 * lanes (src/lanes.ts). Done here, once for all activities, so the workflow's sequence of commands is unchanged and no
 * activity can forget it: the two that prepare an Application run in parallel, and each refuses before it writes.
 */
import { ApplicationFailure } from '@temporalio/activity';
import { laneRefusal, type LaneRequest, type Lanes } from '../lanes.ts';
import type { Manifest } from '../manifest/schema.ts';
import { FailureType } from '../workflows/contract.ts';
import type { DeployActivities } from './types.ts';

/**
 * Activities that only undo what their deploy did (cancel its CI run, take back its rollout) are not checked: they
 * cannot reach anything the deploy had not already reached, and refusing them would leave a run building or a
 * rollout half done, should the lanes narrow while a deploy is in flight.
 */
const UNDO: ReadonlySet<string> = new Set<keyof DeployActivities>(['cancelRun', 'abortRollout']);

interface Carried {
  app?: Manifest;
  request?: { manifest?: Manifest; namespace?: string };
  namespace?: string;
  image?: string;
}

/** What an activity input names, whichever activity it is for: a manifest, a namespace, an image. */
export function laneRequestOf(input: unknown): LaneRequest {
  if (input === null || typeof input !== 'object') return {};
  const i = input as Carried;
  const manifest = i.app ?? i.request?.manifest;
  const images: string[] = [];
  if (manifest?.kind === 'Application') images.push(manifest.spec.image.repository);
  if (manifest?.kind === 'CatalogApp') images.push(manifest.spec.image);
  if (typeof i.image === 'string') images.push(i.image);
  return {
    namespace: manifest?.metadata.namespace ?? i.request?.namespace ?? i.namespace,
    repository: manifest?.kind === 'Application' ? manifest.spec.source.repository : undefined,
    images,
  };
}

/** Throws the permanent `Refused` failure when `input` leaves the lanes. */
export function admit(lanes: Lanes, input: unknown): void {
  const refused = laneRefusal(lanes, laneRequestOf(input));
  if (refused) {
    throw ApplicationFailure.create({
      message: refused.message,
      type: FailureType.Refused,
      nonRetryable: true,
      details: [{ lane: refused.lane, value: refused.value }],
    });
  }
}

/** The same activities, each admitting its input before it runs (the undo activities excepted, see {@link UNDO}). */
export function withAdmission<T extends object>(lanes: Lanes, activities: T): T {
  return Object.fromEntries(
    Object.entries(activities as Record<string, (...args: unknown[]) => Promise<unknown>>).map(([name, activity]) => [
      name,
      UNDO.has(name)
        ? activity
        : {
            // Named after the activity (the key), so stack traces keep its name.
            async [name](...args: unknown[]) {
              for (const arg of args) admit(lanes, arg);
              return activity(...args);
            },
          }[name]!,
    ]),
  ) as T;
}
