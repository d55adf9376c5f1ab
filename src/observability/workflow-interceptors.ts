/**
 * Workflow interceptors bundled with the workflow code (see {@link ./workflow-modules.ts}): they count deploys and
 * time their phases without touching the workflow itself. Workflow code must not count (it replays), so these only
 * call the `fluiMetrics` sink, which the worker registers with `callDuringReplay: false`: replaying a history after a
 * cache eviction or on another worker calls nothing, and only new events count. (A worker killed after finishing a
 * workflow task but before Temporal recorded it makes the next worker run that task again, and count it again: at
 * most the one task a crash interrupts.)
 *
 * It also gives the sandbox the W3C trace-context propagator OpenTelemetry's workflow interceptors need.
 *
 * Per run of the deploy workflow: `started` with the request's kind when it begins; `finished` with its final phase
 * (succeeded, failed, cancelled, superseded) and every ended phase's duration when it returns, fails or continues as
 * new, read from the status the workflow records in its memo (workflowInfo().memo follows upsertMemo).
 */
import { propagation } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  ContinueAsNew,
  proxySinks,
  workflowInfo,
  type Sinks,
  type WorkflowInboundCallsInterceptor,
  type WorkflowInterceptors,
} from '@temporalio/workflow';
import { readDeployMemo } from '../workflows/contract.ts';

export interface FluiMetricsSinks extends Sinks {
  fluiMetrics: {
    started(kind: string): void;
    finished(kind: string, outcome: string, phases: { phase: string; seconds: number }[]): void;
  };
}

const { fluiMetrics } = proxySinks<FluiMetricsSinks>();

class DeployMetricsInterceptor implements WorkflowInboundCallsInterceptor {
  async execute(
    input: Parameters<NonNullable<WorkflowInboundCallsInterceptor['execute']>>[0],
    next: Parameters<NonNullable<WorkflowInboundCallsInterceptor['execute']>>[1],
  ): Promise<unknown> {
    if (workflowInfo().workflowType !== 'deployWorkflow') return next(input);
    const request = input.args[0] as { kind?: unknown } | undefined;
    const kind = typeof request?.kind === 'string' ? request.kind : 'unknown';
    fluiMetrics.started(kind);
    try {
      const result = await next(input);
      finish(kind, 'succeeded');
      return result;
    } catch (err) {
      finish(kind, err instanceof ContinueAsNew ? 'succeeded' : 'failed');
      throw err;
    }
  }
}

/** Reports the run's end; the memo's phase is the truth, `fallback` only when the memo has none. */
function finish(kind: string, fallback: string): void {
  const memo = readDeployMemo(workflowInfo().memo);
  const phases = (memo?.timings ?? []).flatMap((t) =>
    t.endedAt ? [{ phase: t.phase, seconds: (Date.parse(t.endedAt) - Date.parse(t.startedAt)) / 1000 }] : [],
  );
  fluiMetrics.finished(kind, memo?.phase ?? fallback, phases);
}

export const interceptors = (): WorkflowInterceptors => {
  // OpenTelemetry's workflow interceptors put the trace context in each activity's headers through the global
  // propagator, which the workflow's sandbox must have too (W3C trace context, as the worker's side reads it).
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  return { inbound: [new DeployMetricsInterceptor()] };
};
