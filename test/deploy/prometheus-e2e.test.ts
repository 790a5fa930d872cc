// The monitoring kit end to end: a REAL Prometheus (Debian's prometheus) scrapes a bridge
// started as users run it (`serve`, metrics on their own listener as in the Kubernetes
// config) in front of a real Airflow 3 from the harness, with the shipped rules loaded.
// Airflow stopped → PlanasonixBridgeAirflowUnreachable fires (read from Prometheus's
// /api/v1/alerts); Airflow back → it resolves. Then every query of the Grafana dashboard runs
// against that Prometheus: it must parse and use only metric names the bridge's /metrics
// output has (or the recording rules').
//
// The rules are loaded from a copy in which every alert's `for:` is 1s and the recording
// group's interval 1s (so this takes seconds, not minutes); every expression, label and
// annotation is the shipped one.
import type { ChildProcess } from 'node:child_process';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startAirflow, type StartedAirflow } from '../airflow/harness.js';
import { SECRET, tempDir } from '../helpers/app.js';
import { CLI, spawnListening, stopChild } from '../helpers/process.js';
import { completionEvent, standardWebhookHeaders } from '../helpers/sign.js';
import { metricNames, namesInExposition } from './promql.js';

const ROOT = join(import.meta.dirname, '../..');
const PROMETHEUS = spawnSync('prometheus', ['--version']).status === 0;
if (!PROMETHEUS) process.stdout.write("test/deploy/prometheus-e2e.test.ts: skipped, prometheus is not installed (.ci/run installs Debian's prometheus)\n");

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
type Alert = { labels: Record<string, string>; annotations: Record<string, string>; state: 'pending' | 'firing' };

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(250);
  }
}

describe.skipIf(!PROMETHEUS)('Prometheus rules and Grafana dashboard against a real bridge, Airflow 3 and Prometheus', () => {
  const temp = tempDir();
  let af: StartedAirflow | undefined;
  let bridge: ChildProcess | undefined;
  let prometheus: ChildProcess | undefined;
  let bridgeUrl: string;
  let metricsUrl: string;
  let promUrl: string;
  const promLog: string[] = [];
  const recorded: string[] = [];
  const alerting: string[] = [];

  const api = async <T>(path: string): Promise<T> => {
    const res = await fetch(`${promUrl}${path}`);
    const body = (await res.json()) as { status: string; data: T; error?: string };
    if (body.status !== 'success') throw new Error(`${path}: ${res.status} ${body.error}`);
    return body.data;
  };
  const alerts = async () => (await api<{ alerts: Alert[] }>('/api/v1/alerts')).alerts;
  const airflowAlert = async () => (await alerts()).find((a) => a.labels.alertname === 'PlanasonixBridgeAirflowUnreachable' && a.labels.airflow === 'default');
  const instant = async (query: string) => api<{ resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] }>(`/api/v1/query?query=${encodeURIComponent(query)}`);

  beforeAll(async () => {
    af = await startAirflow({ major: 3, waitForDags: ['record_conf'] });
    const airflowPort = Number(new URL(af.url).port);
    const metricsPort = await freePort([airflowPort]);
    const promPort = await freePort([airflowPort, metricsPort]);
    const config = join(temp.dir, 'bridge.yaml');
    writeFileSync(config, `
server: { host: 127.0.0.1, port: 0 }
store: { url: "sqlite:${join(temp.dir, 'bridge.db')}" }
metrics: { host: 127.0.0.1, port: ${metricsPort}, path: /metrics }
sources:
  planasonix: { path: /webhooks/planasonix, verify: { scheme: standard-webhooks, secrets: ["\${SECRET}"] } }
airflow:
  default:
    url: "${af.url}"
    api: v2
    auth: { type: password, username: ${af.username}, password: ${af.password} }
    timeout: 2s
    retry: { max_attempts: 30, initial_delay: 0.5s, max_delay: 2s }
    circuit_breaker: { failures: 3, cooldown: 1s }
routes:
  - { name: monitored, match: { type: run.succeeded }, trigger: { dag_id: record_conf } }
`);
    ({ child: bridge, url: bridgeUrl } = await spawnListening([CLI, 'serve', '--config', config], 'bridge'));
    metricsUrl = `http://127.0.0.1:${metricsPort}`;

    // The shipped rules, `for:` and the recording interval shortened (expressions untouched).
    const alertsDoc = parse(readFileSync(join(ROOT, 'deploy/prometheus/alerts.yaml'), 'utf8')) as { groups: { rules: { alert: string; for?: string }[] }[] };
    alerting.push(...alertsDoc.groups.flatMap((g) => g.rules.map((r) => r.alert)));
    for (const rule of alertsDoc.groups.flatMap((g) => g.rules)) if (rule.for) rule.for = '1s';
    const recordingDoc = parse(readFileSync(join(ROOT, 'deploy/prometheus/recording.yaml'), 'utf8')) as { groups: { interval?: string; rules: { record: string }[] }[] };
    for (const group of recordingDoc.groups) group.interval = '1s';
    recorded.push(...recordingDoc.groups.flatMap((g) => g.rules.map((r) => r.record)));
    writeFileSync(join(temp.dir, 'alerts.yaml'), stringify(alertsDoc));
    writeFileSync(join(temp.dir, 'recording.yaml'), stringify(recordingDoc));
    writeFileSync(join(temp.dir, 'prometheus.yml'), stringify({
      global: { scrape_interval: '1s', evaluation_interval: '1s', scrape_timeout: '1s' },
      rule_files: [join(temp.dir, 'alerts.yaml'), join(temp.dir, 'recording.yaml')],
      scrape_configs: [{ job_name: 'planasonix-bridge', metrics_path: '/metrics', static_configs: [{ targets: [`127.0.0.1:${metricsPort}`] }] }],
    }));
    promUrl = `http://127.0.0.1:${promPort}`;
    prometheus = spawn('prometheus', [
      `--config.file=${join(temp.dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(temp.dir, 'tsdb')}`,
      `--web.listen-address=127.0.0.1:${promPort}`,
      '--storage.tsdb.retention.time=1h',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    prometheus.stdout!.on('data', (d) => promLog.push(String(d)));
    prometheus.stderr!.on('data', (d) => promLog.push(String(d)));
    await waitFor('Prometheus ready', async () => ((await fetch(`${promUrl}/-/ready`)).ok ? true : undefined), 30_000).catch((err) => {
      throw new Error(`${(err as Error).message}\n${promLog.join('').slice(-3000)}`);
    });
  }, 300_000);

  afterAll(async () => {
    if (prometheus) await stopChild(prometheus, 5_000);
    if (bridge) await stopChild(bridge, 10_000);
    await af?.stop();
    temp.cleanup();
  }, 60_000);

  it('loads every shipped rule, scrapes the bridge, and the rules evaluate without errors on its data', async () => {
    // One webhook end to end, so the trigger counters and the latency histogram have samples.
    const body = JSON.stringify(completionEvent());
    const sent = await fetch(`${bridgeUrl}/webhooks/planasonix`, { method: 'POST', headers: { 'content-type': 'application/json', ...standardWebhookHeaders(SECRET, 'msg_prom_1', Math.floor(Date.now() / 1000), body) }, body });
    expect(sent.status).toBe(202);
    await waitFor('the trigger counted by Prometheus', async () => {
      const { result } = await instant('sum(bridge_triggers_total{outcome="triggered"})');
      return Number(result[0]?.value[1]) >= 1 ? true : undefined;
    }, 60_000);
    const target = await waitFor('the scrape target up', async () => {
      const { activeTargets } = await api<{ activeTargets: { health: string; lastError: string }[] }>('/api/v1/targets');
      return activeTargets[0]?.health === 'up' ? activeTargets[0] : undefined;
    }, 30_000);
    expect(target.lastError).toBe('');
    const { groups } = await api<{ groups: { rules: { name: string; type: string; health: string; lastError?: string }[] }[] }>('/api/v1/rules');
    const rules = groups.flatMap((g) => g.rules);
    expect(rules.filter((r) => r.type === 'alerting').map((r) => r.name).sort()).toEqual([...alerting].sort());
    expect(alerting).toContain('PlanasonixBridgeDagRunsFailing');
    expect(rules.filter((r) => r.type === 'recording').map((r) => r.name).sort()).toEqual([...recorded].sort());
    // Every rule has been evaluated at least once by now (1 s interval) and none failed.
    await sleep(2000);
    const again = (await api<{ groups: { rules: { name: string; health: string; lastError?: string }[] }[] }>('/api/v1/rules')).groups.flatMap((g) => g.rules);
    expect(again.filter((r) => r.health !== 'ok').map((r) => [r.name, r.health, r.lastError])).toEqual([]);
    // Airflow's health endpoint reads its metadata DB; on two shared cores an answer can miss
    // the probe's 2 s timeout now and then (the shipped `for: 2m` rides that out).
    await waitFor('bridge_airflow_up 1 and no Airflow alert', async () => {
      const { result } = await instant('bridge_airflow_up{airflow="default"}');
      return result[0]?.value[1] === '1' && (await airflowAlert()) === undefined ? true : undefined;
    }, 30_000).catch(async (err) => {
      throw new Error(`${(err as Error).message}; /readyz says ${await (await fetch(`${bridgeUrl}/readyz`)).text()}`);
    });
  }, 90_000);

  it('Airflow stopped: PlanasonixBridgeAirflowUnreachable fires with its runbook; Airflow back: it resolves', async () => {
    const t0 = Date.now();
    await af!.pause();
    const firing = await waitFor('the Airflow alert firing', async () => {
      const a = await airflowAlert();
      return a?.state === 'firing' ? a : undefined;
    }, 60_000);
    const firedAfterS = (Date.now() - t0) / 1000;
    expect(firing.labels).toMatchObject({ severity: 'warning', service: 'planasonix-bridge', job: 'planasonix-bridge', airflow: 'default' });
    expect(firing.annotations.summary).toContain('cannot trigger Airflow instance default');
    expect(firing.annotations.runbook).toMatch(/^Check: .*Do: /s);
    // While Airflow is down, a webhook is still accepted; its job waits as pending.
    const body = JSON.stringify(completionEvent());
    const sent = await fetch(`${bridgeUrl}/webhooks/planasonix`, { method: 'POST', headers: { 'content-type': 'application/json', ...standardWebhookHeaders(SECRET, 'msg_prom_2', Math.floor(Date.now() / 1000), body) }, body });
    expect(sent.status).toBe(202);

    const t1 = Date.now();
    await af!.resume();
    const resumedS = (Date.now() - t1) / 1000;
    // Resolved, and because Airflow answers again (not because a failed scrape left no series).
    await waitFor('the Airflow alert resolved', async () => {
      if ((await airflowAlert()) !== undefined) return undefined;
      const { result } = await instant('bridge_airflow_up{airflow="default"} == 1 and bridge_airflow_circuit_open{airflow="default"} == 0');
      return result.length === 1 ? true : undefined;
    }, 60_000);
    const resolvedAfterS = (Date.now() - t1) / 1000;
    // The job that waited is triggered once Airflow is back, and the queue drains.
    await waitFor('the pending job drained', async () => {
      const { result } = await instant('bridge:queue_depth:max{state="pending"}');
      return result[0]?.value[1] === '0' ? true : undefined;
    }, 60_000);
    process.stdout.write(`prometheus e2e: alert firing ${firedAfterS.toFixed(1)} s after Airflow stopped; Airflow resumed in ${resumedS.toFixed(1)} s, alert resolved ${resolvedAfterS.toFixed(1)} s after resume began\n`);
  }, 240_000);

  it('every Grafana dashboard query parses in Prometheus and names only metrics the bridge exports (or recording rules)', async () => {
    const exposition = await (await fetch(`${metricsUrl}/metrics`)).text();
    const exported = namesInExposition(exposition);
    expect(exported.has('bridge_airflow_up')).toBe(true);
    const allowed = new Set([...exported, ...recorded]);
    const dashboard = JSON.parse(readFileSync(join(ROOT, 'deploy/grafana/dashboard.json'), 'utf8')) as { panels: { title: string; type: string; targets?: { expr: string }[] }[] };
    const targets = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));
    expect(targets.length).toBeGreaterThanOrEqual(12);
    const concrete = (expr: string) => expr.replaceAll('$__rate_interval', '1m').replaceAll('$__interval', '15s').replaceAll('$__range', '5m').replaceAll('${__range}', '5m');
    const problems: string[] = [];
    const empty = new Map<string, string>();
    for (const { panel, expr } of targets) {
      const query = concrete(expr);
      expect(query, panel).not.toMatch(/\$/);
      for (const name of metricNames(query)) if (!allowed.has(name)) problems.push(`${panel}: ${name} is not exported by the bridge`);
      const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(query)}`);
      const body = (await res.json()) as { status: string; error?: string; data?: { result: unknown[] } };
      if (body.status !== 'success') problems.push(`${panel}: ${query}: ${body.error}`);
      else if (body.data!.result.length === 0) empty.set(panel, query);
    }
    expect(problems).toEqual([]);
    // With traffic, a trigger and an outage behind us, the health, queue, ingest, trigger and
    // latency panels have data. One that came back empty is asked again for a few seconds: a
    // scrape that missed its 1 s timeout on a busy machine marks every series stale until the next.
    for (const panel of ['Airflow reachable (per replica)', 'Store ready (per replica)', 'Jobs by state', 'Oldest pending job', 'Webhooks received by outcome', 'Trigger outcomes', 'Dispatch latency (webhook → Airflow accepted)']) {
      const query = empty.get(panel);
      if (query) await waitFor(`data in the panel ${panel}`, async () => ((await instant(query)).result.length > 0 ? true : undefined), 10_000);
    }
  }, 60_000);
});
