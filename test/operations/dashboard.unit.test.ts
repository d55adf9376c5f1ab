/**
 * docs/grafana-dashboard.json is a Grafana dashboard whose every query names only metrics the worker exports: Flui's
 * and the Node.js process's (read from the worker's own prom-client registry) and the Temporal SDK's (the list that
 * test/operations/workers.test.ts checks against real worker processes).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { createPrometheusMeter, TEMPORAL_SDK_METRICS } from '../../src/observability/prometheus.ts';

interface Target {
  expr: string;
  refId: string;
}
interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { h: number; w: number; x: number; y: number };
  datasource?: { type: string; uid: string };
  targets?: Target[];
}
interface Dashboard {
  title: string;
  uid: string;
  schemaVersion: number;
  panels: Panel[];
  templating: { list: { name: string; type: string; query: unknown; definition?: string }[] };
}

const dashboard = JSON.parse(
  readFileSync(new URL('../../docs/grafana-dashboard.json', import.meta.url), 'utf8'),
) as Dashboard;

/** Every series name the worker's /metrics can carry. */
async function exportedNames(): Promise<Set<string>> {
  const names = new Set<string>();
  const withSuffixes = (name: string, type: string) => {
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(name + s);
    else if (type === 'summary') for (const s of ['', '_sum', '_count']) names.add(name + s);
    else names.add(name);
  };
  for (const m of await createPrometheusMeter().registry.getMetricsAsJSON()) withSuffixes(m.name, String(m.type));
  for (const n of TEMPORAL_SDK_METRICS.counters) withSuffixes(n, 'counter');
  for (const n of TEMPORAL_SDK_METRICS.gauges) withSuffixes(n, 'gauge');
  for (const n of TEMPORAL_SDK_METRICS.histograms) withSuffixes(n, 'histogram');
  return names;
}

const PROMQL_FUNCTIONS = new Set([
  'rate',
  'irate',
  'increase',
  'sum',
  'min',
  'max',
  'avg',
  'count',
  'histogram_quantile',
  'clamp_min',
  'label_values',
]);
const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless']);

/** The metric names a PromQL expression reads, and the functions it calls. */
export function promqlNames(expr: string): { metrics: string[]; functions: string[] } {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""') // label values
    .replace(/\{[^}]*\}/g, '') // label matchers
    .replace(/\[[^\]]*\]/g, '') // ranges
    .replace(/\b(by|without|on|ignoring)\s*\([^)]*\)/g, '') // grouping labels
    .replace(/\blabel_values\(([^,)]+),[^)]*\)/g, 'label_values($1)'); // Grafana's variable query: metric, label
  const metrics: string[] = [];
  const functions: string[] = [];
  for (const m of bare.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?/g)) {
    const name = m[0].replace(/\s*\($/, '');
    if (m[1]) functions.push(name);
    else if (!KEYWORDS.has(name)) metrics.push(name);
  }
  return { metrics, functions };
}

describe('docs/grafana-dashboard.json', () => {
  it('is a Grafana dashboard: title, uid, schema version, panels laid out on the grid, Prometheus targets', () => {
    assert.equal(typeof dashboard.title, 'string');
    assert.match(dashboard.uid, /^[a-zA-Z0-9_-]{1,40}$/);
    assert.ok(Number.isInteger(dashboard.schemaVersion) && dashboard.schemaVersion >= 30);
    const ids = dashboard.panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
    for (const p of dashboard.panels) {
      const { h, w, x, y } = p.gridPos;
      assert.ok(w > 0 && x >= 0 && x + w <= 24 && h > 0 && y >= 0, `${p.title}: within the 24-column grid`);
      if (p.type === 'row') continue;
      assert.ok(['timeseries', 'stat'].includes(p.type), p.title);
      assert.deepEqual(p.datasource, { type: 'prometheus', uid: '${datasource}' }, p.title);
      assert.ok(p.targets?.length, `${p.title}: has queries`);
      const refs = p.targets.map((t) => t.refId);
      assert.equal(new Set(refs).size, refs.length, `${p.title}: refIds are unique`);
    }
  });

  it('queries only metrics the worker exports, with known PromQL functions', async () => {
    const exported = await exportedNames();
    const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => [p.title, t.expr] as const));
    for (const v of dashboard.templating.list) if (v.definition) exprs.push([`variable ${v.name}`, v.definition]);
    assert.ok(exprs.length >= 15);
    const used = new Set<string>();
    for (const [title, expr] of exprs) {
      const { metrics, functions } = promqlNames(expr);
      assert.ok(metrics.length > 0, `${title}: reads a metric`);
      for (const m of metrics) {
        assert.ok(exported.has(m), `${title}: ${m} is not exported by the worker`);
        used.add(m);
      }
      for (const f of functions) assert.ok(PROMQL_FUNCTIONS.has(f), `${title}: unknown function ${f}`);
    }
    // Every Flui metric has a panel.
    for (const name of [
      'flui_deploys_started_total',
      'flui_deploys_finished_total',
      'flui_deploy_phase_duration_seconds_bucket',
      'flui_ci_requests_total',
      'flui_ci_rate_limit_remaining',
      'flui_webhook_deliveries_total',
      'flui_rollouts_undone_total',
    ]) {
      assert.ok(used.has(name), `no panel shows ${name}`);
    }
  });

  it('the check catches a metric the worker does not export', async () => {
    const exported = await exportedNames();
    const { metrics } = promqlNames('sum by (kind) (rate(flui_deploys_begun_total{job="x"}[5m]))');
    assert.deepEqual(metrics, ['flui_deploys_begun_total']);
    assert.ok(!exported.has(metrics[0]!));
  });
});
