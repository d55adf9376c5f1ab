/**
 * The worker side of ./workflow-interceptors.ts: the `fluiMetrics` sink feeding the process's meter. Registered with
 * `callDuringReplay: false`, so a replayed history counts nothing.
 */
import type { InjectedSinks } from '@temporalio/worker';
import { meter } from './meter.ts';
import type { FluiMetricsSinks } from './workflow-interceptors.ts';

export function metricsSinks(): InjectedSinks<FluiMetricsSinks> {
  return {
    fluiMetrics: {
      started: { fn: (_info, kind) => meter().deployStarted(kind), callDuringReplay: false },
      finished: {
        fn: (_info, kind, outcome, phases) => {
          for (const { phase, seconds } of phases) meter().phaseDuration(kind, phase, seconds);
          meter().deployFinished(kind, outcome);
        },
        callDuringReplay: false,
      },
    },
  };
}
