/**
 * The emulator's own bookkeeping, for tests that assert what happened ("exactly one commit", "no request while the
 * limit said 0") rather than what a client believes happened. The counters both emulators keep are the kit's.
 */
import { bump, createBaseRecords, type BaseRecords } from '@flui/emulator-kit/records';

export { bump };

/**
 * `operations` by `METHOD /documented/path`; `rateLimited` counts every authenticated request (no 304s on /api/v4);
 * `limitRefusals` are 429s; `commits` are made through the files API or the Commits API, per project path.
 */
export interface Records extends BaseRecords {
  /** Pipelines created through the API, per project path. */
  pipelinesCreated: Record<string, number>;
  /** CI/CD variable writes (create, update, delete), per project path. */
  variableWrites: Record<string, number>;
  /** Merge requests opened, per project path. */
  mergeRequestsOpened: Record<string, number>;
  /** Webhook deliveries skipped because GitLab had auto-disabled the hook (`webhook.autoDisable`). */
  webhooksSkippedDisabled: number;
  /** Handled requests whose answers the `loseResponses` fault dropped. */
  responsesLost: number;
}

export function createRecords(): Records {
  return {
    ...createBaseRecords(),
    pipelinesCreated: {},
    variableWrites: {},
    mergeRequestsOpened: {},
    webhooksSkippedDisabled: 0,
    responsesLost: 0,
  };
}
