/**
 * `flui logs`: one short workflow per chunk of a build's log. The CLI holds no CI credential, so it asks the worker,
 * which does: this workflow runs the one activity that reads the next chunk (src/activities/logs.ts) and returns it.
 * The client starts it with a unique id and a short execution timeout, and calls again with the returned cursor to
 * follow the build. Nothing here carries a secret: the input names a deploy, the result is the build's own output,
 * as the CI masks it.
 */
import { proxyActivities } from '@temporalio/workflow';
import type { LogActivities, ReadBuildLogInput, ReadBuildLogResult } from '../activities/logs.ts';
import { FailureType } from './contract.ts';

/**
 * A person waits on this: a CI that cannot be reached is tried a few times over about 15 seconds, then the error
 * is theirs to read (refusals at once).
 */
const { readBuildLog } = proxyActivities<LogActivities>({
  startToCloseTimeout: '40 seconds',
  scheduleToCloseTimeout: '90 seconds',
  summary: 'read the next chunk of the build log',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '8 seconds',
    maximumAttempts: 5,
    nonRetryableErrorTypes: Object.values(FailureType),
  },
});

export async function readBuildLogWorkflow(input: ReadBuildLogInput): Promise<ReadBuildLogResult> {
  return readBuildLog(input);
}
