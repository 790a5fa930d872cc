import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { parseEvent, type PlanasonixEvent } from '../../src/event/schema.js';
import { routeEvent } from '../../src/route/route.js';
import { configFrom } from '../helpers/app.js';
import { completionEvent } from '../helpers/sign.js';

const HEAD = `sources: { p: { path: /p, verify: { scheme: hmac-sha256, secrets: [sixteen-chars-secret] } } }
airflow: { default: { url: "http://127.0.0.1:8080", auth: { type: none } } }
`;

function routes(yaml: string) {
  return configFrom(`${HEAD}routes:\n${yaml}`).routes;
}

function event(overrides: Record<string, unknown> = {}, data: Record<string, unknown> = {}): PlanasonixEvent {
  const base = completionEvent(overrides);
  const parsed = parseEvent(Buffer.from(JSON.stringify({ ...base, data: { ...(base.data as object), ...data } })));
  if (!parsed.ok) throw new Error(parsed.error.message);
  return parsed.value;
}

describe('routing', () => {
  const table = routes(`
  - name: exact
    match: { type: run.succeeded, pipeline_id: pl_8f2a9c1d4e, environment: production, tags: { team: sales } }
    trigger: { dag_id: a }
  - name: glob-and-list
    match: { pipeline_name: "nightly_*", status: [succeeded, failed], trigger_type: [schedule, api] }
    trigger: { dag_id: b }
  - name: failures
    match: { type: run.failed }
    trigger: { dag_id: alerts }
  - name: where
    match: { where: 'data.metrics.rows_written > 100000 && event.workspace_id == "ws_analytics"' }
    trigger: { dag_id: c }
`);

  it('gives one job per matching route (fan-out), and says why the others did not match', () => {
    const e = event({}, { trigger: { type: 'schedule' } });
    const routed = routeEvent(e, 'p', table);
    expect(routed.jobs.map((j) => j.route)).toEqual(['exact', 'glob-and-list', 'where']);
    expect(routed.decisions.find((d) => d.route === 'failures')).toEqual({ route: 'failures', matched: false, reason: 'type is "run.succeeded", route wants "run.failed"' });
  });

  it('needs every given field to match; an absent field is a miss with its name', () => {
    const noTrigger = routeEvent(event(), 'p', table);
    expect(noTrigger.decisions.find((d) => d.route === 'glob-and-list')!.reason).toBe('trigger_type is absent (route wants ["schedule","api"])');
    const otherTeam = routeEvent(event({}, { tags: { team: 'ops' } }), 'p', table);
    expect(otherTeam.decisions.find((d) => d.route === 'exact')!.reason).toBe('tags.team is "ops", route wants "sales"');
  });

  it('evaluates where in CEL; a false or failing expression is a miss with the reason', () => {
    const small = routeEvent(event({}, { metrics: { rows_written: 5 } }), 'p', table);
    expect(small.decisions.find((d) => d.route === 'where')!.reason).toMatch(/^where is false: /);
    const none = routeEvent(event({}, { metrics: {} }), 'p', table);
    expect(none.decisions.find((d) => d.route === 'where')!.reason).toMatch(/^where could not be evaluated: .*rows_written/);
  });

  it('globs match names with slashes and dots too, and lists mean any of', () => {
    const t = routes(`
  - name: g
    match: { pipeline_name: ["inventory_*", "exact_name"], organization_id: "org_*" }
    trigger: { dag_id: g }
`);
    expect(routeEvent(event({}, { pipeline_name: 'inventory_eu/west.hourly' }), 'p', t).jobs).toHaveLength(1);
    expect(routeEvent(event({}, { pipeline_name: 'exact_name' }), 'p', t).jobs).toHaveLength(1);
    expect(routeEvent(event({}, { pipeline_name: 'exact_name_2' }), 'p', t).jobs).toHaveLength(0);
  });

  it('renders conf (types kept), dag_run_id (default shape), note and logical_date', () => {
    const t = routes(`
  - name: sales-to-dbt
    match: { type: run.succeeded }
    trigger:
      dag_id: dbt_sales_models
      conf: { business_date: "{{ data.parameters.business_date }}", rows: "{{ data.metrics.rows_written }}", all: "{{ data.tags }}" }
      note: "Triggered by Planasonix run {{ data.run_id }}"
      logical_date: "{{ data.finished_at }}"
`);
    const e = event({}, { run_id: 'run_7Hc2', parameters: { business_date: '2026-11-23' }, finished_at: '2026-11-24T02:14:07Z' });
    expect(routeEvent(e, 'p', t).jobs[0]).toEqual({
      route: 'sales-to-dbt',
      airflow: 'default',
      dagId: 'dbt_sales_models',
      target: 'airflow:dbt_sales_models',
      request: {
        dag_run_id: 'planasonix__run_7Hc2__sales-to-dbt',
        logical_date: '2026-11-24T02:14:07.000Z',
        conf: { business_date: '2026-11-23', rows: 120344, all: { team: 'sales' } },
        note: 'Triggered by Planasonix run run_7Hc2',
      },
    });
  });

  it('a job whose template cannot render carries the reason instead of a request', () => {
    const t = routes(`
  - name: needs-watermark
    match: { type: run.succeeded }
    trigger: { dag_id: x, conf: { watermark: "{{ data.parameters.watermark }}" } }
`);
    expect(routeEvent(event(), 'p', t).jobs[0]).toEqual({
      route: 'needs-watermark', airflow: 'default', dagId: 'x', target: 'airflow:x',
      error: 'conf: {{ data.parameters.watermark }}: data.parameters.watermark is missing (add "| default: …" if it is optional)',
    });
  });

  it('refuses a dag_run_id or note that renders to an object, and a logical_date that is not ISO 8601 with a zone', () => {
    const t = routes(`
  - { name: obj-id, match: {}, trigger: { dag_id: x, dag_run_id: "{{ data.tags }}" } }
  - { name: obj-note, match: {}, trigger: { dag_id: x, note: "{{ data.tags }}" } }
  - { name: local-date, match: {}, trigger: { dag_id: x, logical_date: "2026-11-24 02:14" } }
  - { name: number-date, match: {}, trigger: { dag_id: x, logical_date: "{{ data.metrics.rows_written }}" } }
`);
    const errors = routeEvent(event(), 'p', t).jobs.map((j) => j.error);
    expect(errors).toEqual([
      'dag_run_id: rendered to an object; use a path to a string or number',
      'note: rendered to an object; use a path to a string or number',
      'logical_date: "2026-11-24 02:14" is not an ISO 8601 date-time with a zone',
      'logical_date: 120344 is not an ISO 8601 date-time with a zone',
    ]);
  });

  it('reads tags as own properties: a tag key like "constructor" is just absent', () => {
    const t = routes(`  - { name: proto, match: { tags: { constructor: "*" } }, trigger: { dag_id: x } }`);
    expect(routeEvent(event(), 'p', t).decisions[0]).toEqual({ route: 'proto', matched: false, reason: 'tags.constructor is absent (route wants "*")' });
  });

  it('plans an asset event: uri rendered, extra rendered, target asset:<uri>', () => {
    const t = routes(`
  - name: inventory-asset
    match: { type: run.succeeded }
    asset_event: { uri: "planasonix://inventory/{{ data.pipeline_id }}", extra: { rows: "{{ data.metrics.rows_written }}" } }
`);
    expect(routeEvent(event(), 'p', t).jobs[0]).toEqual({
      route: 'inventory-asset', airflow: 'default', dagId: '', target: 'asset:planasonix://inventory/pl_8f2a9c1d4e',
      request: { asset: { uri: 'planasonix://inventory/pl_8f2a9c1d4e' }, extra: { rows: 120344 } },
    });
  });

  it('sanitises a rendered run id that Airflow would refuse', () => {
    const t = routes(`
  - name: r
    match: {}
    trigger: { dag_id: x, dag_run_id: "run {{ data.pipeline_name }}/{{ data.run_id }}" }
`);
    expect((routeEvent(event({}, { run_id: 'a..b' }), 'p', t).jobs[0]!.request as { dag_run_id: string }).dag_run_id).toMatch(/^run_nightly_sales_to_warehouse_a\.b~[0-9a-f]{16}$/);
  });
});

describe('routes in the config', () => {
  const problems = (yaml: string) => {
    const r = parseConfig(`${HEAD}routes:\n${yaml}`, {});
    return r.ok ? [] : r.problems.map((p) => `${p.path}: ${p.message}`);
  };

  it('reports a CEL syntax error, a template error, an unknown instance and a duplicate name with their paths', () => {
    expect(
      problems(`
  - name: a
    match: { where: 'data.x >' }
    trigger: { dag_id: d, conf: { x: "{{ data.x | nope }}" } }
  - name: a
    match: {}
    trigger: { airflow: elsewhere, dag_id: d, note: "{{ nothing.x }}" }
`),
    ).toEqual([
      expect.stringMatching(/^routes\[0\]\.match\.where: not a valid CEL expression/),
      expect.stringMatching(/^routes\[0\]\.trigger\.conf\.x: unknown filter "nope"/),
      expect.stringMatching(/^routes\[1\]\.trigger\.note: unknown root "nothing"/),
    ]);
    expect(problems(`
  - { name: a, match: {}, trigger: { dag_id: d } }
  - { name: a, match: {}, trigger: { airflow: elsewhere, dag_id: d } }
`)).toEqual([
      'routes[1].name: another route is already named "a"',
      'routes[1].trigger.airflow: no Airflow instance "elsewhere" under airflow: (configured: default)',
    ]);
  });

  it('type-checks where at load: unknown names and functions are config errors', () => {
    expect(problems(`  - { name: a, match: { where: 'route.name == "x"' }, trigger: { dag_id: d } }`)).toEqual([expect.stringMatching(/^routes\[0\]\.match\.where: CEL: Unknown variable: route/)]);
    expect(problems(`  - { name: a, match: { where: 'foo(data.x)' }, trigger: { dag_id: d } }`)).toEqual([expect.stringMatching(/^routes\[0\]\.match\.where: CEL: found no matching overload/)]);
    expect(problems(`  - { name: a, match: { where: '1 + 2' }, trigger: { dag_id: d } }`)).toEqual([expect.stringMatching(/gives int, not bool/)]);
  });

  it('refuses timeouts and delays that would switch safety off', () => {
    const p = parseConfig(`${HEAD.replace('auth: { type: none }', 'auth: { type: none }, timeout: 0, retry: { initial_delay: 5s, max_delay: 1s }')}dispatch: { poll_interval: 0 }`, {});
    expect(p.ok || p.problems.map((x) => x.path).sort()).toEqual(['airflow.default.retry.max_delay', 'airflow.default.timeout', 'dispatch.poll_interval']);
  });

  it('refuses unknown match fields and a lease too short for the timeout', () => {
    expect(problems(`  - { name: a, match: { pipeline: x }, trigger: { dag_id: d } }`)).toEqual(['routes[0].match.pipeline: unknown key (misspelt, or not supported by this version)']);
    expect(parseConfig(`${HEAD.replace('auth: { type: none }', 'auth: { type: none }, timeout: 20s')}dispatch: { lease: 30s }`, {}).ok).toBe(false);
  });
});
