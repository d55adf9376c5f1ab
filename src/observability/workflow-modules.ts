/**
 * The workflow interceptor modules every bundle of Flui's workflow code carries (the worker's own bundling, `npm run
 * bundle`, the tests' bundles): Flui's deploy metrics, and OpenTelemetry's workflow interceptors. Both only call sinks
 * the worker registers (./worker-sinks.ts), so a bundle is the same whether tracing is on or off.
 */
import { createRequire } from 'node:module';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);

export const WORKFLOW_INTERCEPTOR_MODULES: string[] = [
  fileURLToPath(new URL(`./workflow-interceptors${extname(import.meta.url)}`, import.meta.url)),
  require.resolve('@temporalio/interceptors-opentelemetry/lib/workflow-interceptors'),
];
