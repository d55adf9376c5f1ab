/** The ops configuration (FLUI_OPS_*, FLUI_LOG_FORMAT, FLUI_OTEL/OTEL_*), JSON log lines, and the meter port. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config.ts';
import { jsonLogLine } from '../../src/observability/logging.ts';
import { meter, useMeter, type Meter } from '../../src/observability/meter.ts';
import { createPrometheusMeter } from '../../src/observability/prometheus.ts';
import { parseSamples, sampleSum } from './prometheus-text.ts';

describe('ops configuration', () => {
  it('defaults: 127.0.0.1:9464, text logs, no tracing', () => {
    assert.deepEqual(loadConfig({}).ops, { host: '127.0.0.1', port: 9464, logFormat: 'text', otel: undefined });
  });

  it('reads the ops server, the log format and tracing', () => {
    const ops = loadConfig({
      FLUI_OPS_HOST: '0.0.0.0',
      FLUI_OPS_PORT: '0',
      FLUI_LOG_FORMAT: 'json',
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/',
      OTEL_SERVICE_NAME: 'flui-prod',
    }).ops;
    assert.deepEqual(ops, {
      host: '0.0.0.0',
      port: 0,
      logFormat: 'json',
      otel: { endpoint: 'http://collector:4318', serviceName: 'flui-prod' },
    });
    assert.deepEqual(loadConfig({ FLUI_OTEL: '1' }).ops.otel, {
      endpoint: 'http://127.0.0.1:4318',
      serviceName: 'flui-worker',
    });
    assert.equal(loadConfig({ FLUI_OTEL: '0', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }).ops.otel, undefined);
  });

  it('names each bad variable', () => {
    assert.throws(
      () => loadConfig({ FLUI_OPS_PORT: '99999', FLUI_LOG_FORMAT: 'yaml', OTEL_EXPORTER_OTLP_ENDPOINT: 'collector' }),
      (err: Error) =>
        /FLUI_OPS_PORT/.test(err.message) &&
        /FLUI_LOG_FORMAT must be text or json/.test(err.message) &&
        /OTEL_EXPORTER_OTLP_ENDPOINT must be an http\(s\) URL/.test(err.message),
    );
  });
});

describe('JSON log lines', () => {
  it('are one object with time, level, message and the metadata, which cannot override them', () => {
    const err = new Error('boom');
    const line = jsonLogLine({
      level: 'WARN',
      message: 'activity failed',
      timestampNanos: 1_700_000_000_123_000_000n,
      meta: { workflowId: 'deploy-x', level: 'spoof', attempt: 3n, error: err },
    });
    assert.ok(!line.includes('\n'));
    const entry = JSON.parse(line) as Record<string, unknown>;
    assert.equal(entry.time, '2023-11-14T22:13:20.123Z');
    assert.equal(entry.level, 'warn');
    assert.equal(entry.message, 'activity failed');
    assert.equal(entry.workflowId, 'deploy-x');
    assert.equal(entry.attempt, '3');
    assert.equal((entry.error as { message: string }).message, 'boom');
  });
});

describe('the meter port', () => {
  it('does nothing until a worker installs one, then feeds Prometheus', async () => {
    meter().deployStarted('Application'); // no-op: nothing installed
    const prom = createPrometheusMeter();
    const restore = useMeter(prom satisfies Meter);
    try {
      meter().deployStarted('Application');
      meter().deployFinished('Application', 'succeeded');
      meter().phaseDuration('Application', 'building', 3);
      meter().ciRequest('github', 'installation-7', 201);
      meter().ciRequest('github', 'installation-7', Number.NaN);
      meter().ciRateLimitRemaining('github', 'installation-7', 4990);
      meter().webhookDelivery('github', 'duplicate');
      meter().rolloutUndone('cancel', 'restored');
    } finally {
      restore();
    }
    meter().deployStarted('Application'); // no-op again
    const samples = parseSamples(await prom.registry.metrics());
    assert.equal(sampleSum(samples, 'flui_deploys_started_total', { kind: 'Application' }), 1);
    assert.equal(sampleSum(samples, 'flui_deploys_finished_total', { outcome: 'succeeded' }), 1);
    assert.equal(sampleSum(samples, 'flui_deploy_phase_duration_seconds_sum', { phase: 'building' }), 3);
    assert.equal(sampleSum(samples, 'flui_ci_requests_total', { status: '201' }), 1);
    assert.equal(sampleSum(samples, 'flui_ci_requests_total', { status: 'error' }), 1);
    assert.equal(sampleSum(samples, 'flui_ci_rate_limit_remaining', { client: 'installation-7' }), 4990);
    assert.equal(sampleSum(samples, 'flui_webhook_deliveries_total', { result: 'duplicate' }), 1);
    assert.equal(sampleSum(samples, 'flui_rollouts_undone_total', { after: 'cancel', action: 'restored' }), 1);
  });
});
