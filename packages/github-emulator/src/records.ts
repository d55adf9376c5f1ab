/**
 * The emulator's own bookkeeping, for tests that assert what happened ("exactly one commit", "no request while the
 * limit said 0") rather than what a client believes happened. The counters both emulators keep are the kit's.
 */
import { bump, createBaseRecords, type BaseRecords } from '@flui/emulator-kit/records';

export { bump };

/** `operations` by `METHOD /path/template`; `commits` through the contents API, per `owner/name:path`. */
export interface Records extends BaseRecords {
  /** The same as `rateLimited`, per installation id, for installation tokens (one budget per installation). */
  rateLimitedByInstallation: Record<string, number>;
  /** Conditional requests answered 304 (free). */
  notModified: number;
  /** Workflow dispatches (runs created), per `owner/name`. */
  dispatches: Record<string, number>;
  /** Secret writes (PUT), per `owner/name`. */
  secretWrites: Record<string, number>;
  /** Pull requests opened, per `owner/name`. */
  pullsOpened: Record<string, number>;
  /** Runs re-run through the API. */
  reruns: number;
}

export function createRecords(): Records {
  return {
    ...createBaseRecords(),
    rateLimitedByInstallation: {},
    notModified: 0,
    dispatches: {},
    secretWrites: {},
    pullsOpened: {},
    reruns: 0,
  };
}
