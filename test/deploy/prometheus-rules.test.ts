// deploy/prometheus: the alerting and recording rules are valid (promtool check rules), behave
// as their unit tests say (promtool test rules, deploy/prometheus/tests/rules.test.yaml), use
// only metrics the bridge exports, and every alert carries its runbook.
import { spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/metrics/metrics.js';
import { tempDir } from '../helpers/app.js';
import { exportedNames, metricNames } from './promql.js';

const DIR = join(import.meta.dirname, '../../deploy/prometheus');
const PROMTOOL = spawnSync('promtool', ['--version']).status === 0;
if (!PROMTOOL) process.stdout.write('test/deploy/prometheus-rules.test.ts: skipped, promtool is not installed (.ci/run installs Debian\'s prometheus)\n');

type Rule = { alert?: string; record?: string; expr: string; for?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
const rulesOf = (file: string): Rule[] => (parse(readFileSync(join(DIR, file), 'utf8')) as { groups: { rules: Rule[] }[] }).groups.flatMap((g) => g.rules);
const alerts = rulesOf('alerts.yaml');
const recording = rulesOf('recording.yaml');

describe('deploy/prometheus rules', () => {
  it.skipIf(!PROMTOOL)('promtool check rules: both files parse, expressions and templates included', () => {
    const out = spawnSync('promtool', ['check', 'rules', join(DIR, 'alerts.yaml'), join(DIR, 'recording.yaml')], { encoding: 'utf8' });
    expect(out.status, out.stdout + out.stderr).toBe(0);
    expect(out.stdout).toContain(`SUCCESS: ${alerts.length} rules found`);
    expect(out.stdout).toContain(`SUCCESS: ${recording.length} rules found`);
  });

  it.skipIf(!PROMTOOL)('promtool test rules: each alert fires when it should and not before, recording rules compute what the dashboard shows', () => {
    const temp = tempDir();
    try {
      // promtool compares annotations exactly: the runbooks are checked below, not there.
      const doc = parse(readFileSync(join(DIR, 'alerts.yaml'), 'utf8')) as { groups: { rules: Rule[] }[] };
      for (const rule of doc.groups.flatMap((g) => g.rules)) delete rule.annotations;
      writeFileSync(join(temp.dir, 'alerts.yaml'), stringify(doc));
      copyFileSync(join(DIR, 'recording.yaml'), join(temp.dir, 'recording.yaml'));
      copyFileSync(join(DIR, 'tests/rules.test.yaml'), join(temp.dir, 'rules.test.yaml'));
      const out = spawnSync('promtool', ['test', 'rules', join(temp.dir, 'rules.test.yaml')], { encoding: 'utf8' });
      expect(out.status, out.stdout + out.stderr).toBe(0);
      expect(out.stdout).toContain('SUCCESS');
      // Every shipped alert has at least one case that expects it to fire.
      const tests = readFileSync(join(DIR, 'tests/rules.test.yaml'), 'utf8');
      for (const a of alerts) expect(tests, a.alert).toMatch(new RegExp(`alertname: ${a.alert}\\n\\s+exp_alerts:\\n\\s+- exp_labels`));
    } finally {
      temp.cleanup();
    }
  });

  it('uses only metrics the bridge exports (and its own recording rules)', () => {
    const exported = exportedNames(createMetrics().registry.getMetricsAsArray().map((m) => ({ name: m.name, type: String((m as unknown as { type: string }).type) })));
    const recorded = new Set(recording.map((r) => r.record!));
    const used = [...alerts, ...recording].flatMap((r) => metricNames(r.expr).map((name) => [r.alert ?? r.record, name] as const));
    expect(used.length).toBeGreaterThan(alerts.length);
    const unknown = used.filter(([, name]) => !exported.has(name) && !recorded.has(name));
    expect(unknown).toEqual([]);
    for (const name of ['bridge_airflow_up', 'bridge_ready', 'bridge_oldest_pending_age_seconds', 'bridge_breakers_open', 'bridge_webhook_rejected_total', 'bridge_triggers_total', 'bridge_airflow_circuit_open', 'bridge_dag_runs_finished_total', 'bridge_sla_missed_total', 'bridge_load_to_run_end_seconds_bucket']) {
      expect(used.some(([, n]) => n === name), name).toBe(true);
    }
  });

  it('every alert has a severity and a runbook: summary, description, what to check, what to do', () => {
    expect(alerts.map((a) => a.alert).sort()).toEqual([
      'PlanasonixBridgeAbsent', 'PlanasonixBridgeAirflowUnreachable', 'PlanasonixBridgeDagRunsFailing', 'PlanasonixBridgeDeadLetters', 'PlanasonixBridgeLoopGuardBreakerOpen',
      'PlanasonixBridgeOldestPendingTooOld', 'PlanasonixBridgeSignatureInvalidBurst', 'PlanasonixBridgeSlaMissed', 'PlanasonixBridgeStoreNotReady',
    ]);
    for (const a of alerts) {
      expect(['warning', 'critical'], a.alert).toContain(a.labels?.severity);
      expect(Object.keys(a.annotations ?? {}).sort(), a.alert).toEqual(['description', 'runbook', 'summary']);
      expect(a.annotations!.runbook, a.alert).toMatch(/^Check: .+ Do: .+/s);
    }
  });

  it('the PromQL name extractor sees through functions, matchers, label lists and ranges', () => {
    expect(metricNames('sum by (route, le) (rate(bridge_x_total{outcome="dead", a=~"b|c"}[5m])) / on(instance) group_left(foo) up > bool 0.5 and absent(bridge_ready) offset 5m').sort()).toEqual(['bridge_ready', 'bridge_x_total', 'up']);
    expect(metricNames('histogram_quantile(0.99, sum by (le) (rate(bridge_dispatch_latency_seconds_bucket[$__rate_interval])))')).toEqual(['bridge_dispatch_latency_seconds_bucket']);
    expect(metricNames('bridge:queue_depth:max{state="pending"} + 1e3')).toEqual(['bridge:queue_depth:max']);
  });
});
