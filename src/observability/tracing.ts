/**
 * OpenTelemetry tracing, on with FLUI_OTEL=1 or OTEL_EXPORTER_OTLP_ENDPOINT: Temporal's interceptors
 * (@temporalio/interceptors-opentelemetry) make a span for each deploy workflow run (in the workflow bundle, exported
 * through the worker's `exporter` sink, never during replay) and each activity attempt (the activity interceptor),
 * linked through the activity's headers, and the worker sends them in batches over OTLP/HTTP.
 *
 * Off, the workflow interceptors still run (the bundle is the same either way) and their spans go to a sink that
 * drops them; no exporter, no activity interceptor, no network.
 */
import type { Tracer } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { Resource } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import {
  makeWorkflowExporter,
  OpenTelemetryActivityInboundInterceptor,
  OpenTelemetryActivityOutboundInterceptor,
} from '@temporalio/interceptors-opentelemetry';
import type { ActivityInterceptorsFactory, InjectedSinks } from '@temporalio/worker';
import type { OpenTelemetryWorkflowExporter } from '@temporalio/interceptors-opentelemetry';
import type { OpsConfig } from '../config.ts';

export interface Tracing {
  /** The `exporter` sink the OpenTelemetry workflow interceptors call. */
  sinks: InjectedSinks<{ exporter: OpenTelemetryWorkflowExporter }>;
  /** Activity interceptors (none when tracing is off). */
  activity: ActivityInterceptorsFactory[];
  /** Sends what is buffered and stops. */
  shutdown(): Promise<void>;
}

export function createTracing(otel: OpsConfig['otel']): Tracing {
  if (!otel) {
    return {
      sinks: { exporter: { export: { fn: () => undefined, callDuringReplay: false } } },
      activity: [],
      shutdown: async () => undefined,
    };
  }
  const resource = new Resource({ 'service.name': otel.serviceName });
  // OTLP/HTTP's path for traces under the endpoint, as the OpenTelemetry SDKs read OTEL_EXPORTER_OTLP_ENDPOINT.
  const exporter = new OTLPTraceExporter({ url: `${otel.endpoint}/v1/traces` });
  const processor: SpanProcessor = new BatchSpanProcessor(exporter, { scheduledDelayMillis: 1000 });
  const provider = new BasicTracerProvider({ resource });
  provider.addSpanProcessor(processor);
  // Activities read their parent span from the headers the workflow wrote (W3C trace context), and the interceptor
  // makes it the active context for the activity's span: that takes a context manager (AsyncLocalStorage).
  provider.register({
    contextManager: new AsyncLocalStorageContextManager(),
    propagator: new W3CTraceContextPropagator(),
  });
  const tracer: Tracer = provider.getTracer('flui-worker');
  return {
    sinks: { exporter: makeWorkflowExporter(processor, resource) },
    activity: [
      (ctx) => ({
        inbound: new OpenTelemetryActivityInboundInterceptor(ctx, { tracer }),
        outbound: new OpenTelemetryActivityOutboundInterceptor(ctx),
      }),
    ],
    shutdown: () => provider.shutdown(),
  };
}
