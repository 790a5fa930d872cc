import { writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { explainEvent, formatExplanation } from '../../src/guard/explain.js';
import { configFrom, SECRET, tempDir, testApp } from '../helpers/app.js';
import { completionEvent, standardWebhookHeaders } from '../helpers/sign.js';

const YAML = `
sources: { planasonix: { path: /webhooks/planasonix, verify: { scheme: standard-webhooks, secrets: ["${SECRET}"] } } }
airflow: { default: { url: "http://127.0.0.1:9", auth: { type: none } } }
loop_guard: { max_depth: 2, breaker: { max_triggers: 5, window: 10m }, edges: [ { from: { dag_id: loop_dag }, to: { pipeline_id: pl_loop } } ] }
routes:
  - name: sales-to-dbt
    match: { type: run.succeeded, pipeline_name: "nightly_*" }
    trigger: { dag_id: dbt_sales_models, conf: { day: "{{ data.parameters.business_date }}" }, note: "run {{ data.run_id }}" }
  - name: alerts
    match: { type: [run.failed, run.timed_out] }
    trigger: { dag_id: alert }
  - name: loop
    allow_cycle: true
    match: { pipeline_id: pl_loop }
    trigger: { dag_id: loop_dag }
`;

const body = (overrides: Record<string, unknown> = {}, data: Record<string, unknown> = {}) => {
  const e = completionEvent(overrides);
  return Buffer.from(JSON.stringify({ ...e, data: { ...(e.data as object), ...data } }));
};

let cleanup: (() => Promise<void> | void) | undefined;
afterEach(async () => {
  await cleanup?.();
  cleanup = undefined;
});

describe('explain', () => {
  const config = configFrom(YAML);

  it('matched: the rendered run and the guard decision; unmatched: why not, with the actual value', async () => {
    const result = await explainEvent(body({}, { run_id: 'run_1', parameters: { business_date: '2026-11-23' } }), 'planasonix', config, undefined, Date.now());
    if (!result.ok) throw new Error(result.error.message);
    const x = result.value;
    expect(x.would_trigger).toBe(1);
    expect(x.routes[0]).toMatchObject({
      route: 'sales-to-dbt', matched: true, decision: 'trigger', target: 'airflow:dbt_sales_models',
      dag_run_id: 'planasonix__run_1__sales-to-dbt', conf: { day: '2026-11-23', planasonix_bridge: { depth: 1 } }, note: 'run run_1', breaker: 'unknown (no store)',
    });
    expect(x.routes[1]).toEqual({ route: 'alerts', matched: false, reason: 'type is "run.succeeded", route wants ["run.failed","run.timed_out"]' });
    expect(x.routes[2]).toEqual({ route: 'loop', matched: false, reason: 'pipeline_id is "pl_8f2a9c1d4e", route wants "pl_loop"' });
    expect(formatExplanation(x)).toContain('✗ alerts: no match — type is "run.succeeded"');
  });

  it('blocked: the loop guard\'s reason and the static cycle it is on', async () => {
    const lineage = { chain_id: 'c1', depth: 1, path: ['planasonix:pl_loop', 'airflow:loop_dag'], event_id: 'e0', route: 'loop' };
    const result = await explainEvent(body({}, { pipeline_id: 'pl_loop', trigger: { type: 'integration', correlation: { dag_id: 'loop_dag', planasonix_bridge: JSON.stringify(lineage) } } }), 'planasonix', config, undefined, Date.now());
    if (!result.ok) throw new Error(result.error.message);
    expect(result.value.would_trigger).toBe(0);
    expect(result.value.learned_edge).toEqual({ dagId: 'loop_dag', pipelineId: 'pl_loop', pipelineName: 'nightly_sales_to_warehouse' });
    expect(result.value.routes.find((r) => r.route === 'loop')).toMatchObject({
      decision: 'blocked',
      block: { reason: 'cycle', detail: expect.stringContaining('airflow:loop_dag is already on this chain') },
      static_cycle: 'pl_loop --route loop--> loop_dag --edge--> pl_loop',
    });
  });

  it('reads the breaker from the store, and writes nothing there', async () => {
    const app = testApp({ yaml: YAML });
    cleanup = app.close;
    const before = await app.store.learnedEdges();
    const result = await explainEvent(body({}, { parameters: { business_date: 'd' }, trigger: { type: 'integration', correlation: { dag_id: 'some_dag' } } }), 'planasonix', app.config, app.store, Date.now());
    expect(result.ok && result.value.routes[0]!.breaker).toEqual({ count: 0, max_triggers: 5, window_s: 600, open_until: null });
    expect(await app.store.learnedEdges()).toEqual(before);
  });

  it('judges two routes to the same DAG in turn, as ingest does', async () => {
    const yaml = YAML.replace('max_triggers: 5', 'max_triggers: 1').replace('routes:', `routes:
  - { name: first, match: { pipeline_id: pl_twice }, trigger: { dag_id: same_dag } }
  - { name: second, match: { pipeline_id: pl_twice }, trigger: { dag_id: same_dag, dag_run_id: "other__{{ data.run_id }}" } }`);
    const app = testApp({ yaml });
    cleanup = app.close;
    const event = body({}, { pipeline_id: 'pl_twice' });
    const result = await explainEvent(event, 'planasonix', app.config, app.store, Date.now());
    if (!result.ok) throw new Error(result.error.message);
    expect(result.value.routes.filter((r) => r.target === 'airflow:same_dag').map((r) => [r.route, r.decision, r.block?.reason])).toEqual([['first', 'trigger', undefined], ['second', 'blocked', 'breaker_open']]);
    // …and ingest agrees.
    const headers = { 'content-type': 'application/json', ...standardWebhookHeaders(SECRET, 'm-twice', Math.floor(Date.now() / 1000), event) };
    const stored = await request(app.app).post('/webhooks/planasonix').set(headers).send(event.toString());
    expect(stored.status).toBe(202);
    expect((await app.store.jobsOfEvent(stored.body.id)).filter((j) => j.dagId === 'same_dag').map((j) => [j.route, j.state])).toEqual([['first', 'pending'], ['second', 'blocked']]);
  });

  it('POST /v1/explain needs a bearer token; without BRIDGE_ADMIN_TOKEN the admin API does not exist', async () => {
    const off = testApp({ yaml: YAML });
    const res = await request(off.app).post('/v1/explain').set('content-type', 'application/json').send(body());
    expect(res.status).toBe(404);
    await off.close();

    const on = testApp({ yaml: YAML, adminTokens: ['old-token-0123456789', 'new-token-0123456789'] });
    cleanup = on.close;
    const none = await request(on.app).post('/v1/explain').send(body());
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer');
    const wrong = await request(on.app).post('/v1/explain').set('authorization', 'Bearer nope').send(body());
    expect(wrong.body).toEqual({ error: 'unauthorized', message: 'the bearer token is not valid' });
    for (const token of ['old-token-0123456789', 'new-token-0123456789']) {
      const ok = await request(on.app).post('/v1/explain').set({ authorization: `Bearer ${token}`, 'content-type': 'application/json' }).send(body({}, { parameters: { business_date: 'd' } }).toString());
      expect(ok.status).toBe(200);
      expect(ok.body.would_trigger).toBe(1);
    }
    const bad = await request(on.app).post('/v1/explain').set({ authorization: 'Bearer new-token-0123456789' }).send('{"id":1}');
    expect(bad.status).toBe(400);
    // Nothing was stored.
    expect(await on.store.learnedEdges()).toEqual([]);
  });
});

describe('planasonix-bridge explain (CLI)', () => {
  const CLI = join(import.meta.dirname, '../../dist/cli/main.js');

  it('prints each route and exits 0 when one would trigger, 3 when none', () => {
    const temp = tempDir();
    cleanup = temp.cleanup;
    const config = join(temp.dir, 'c.yaml');
    writeFileSync(config, YAML);
    const yes = join(temp.dir, 'yes.json');
    const no = join(temp.dir, 'no.json');
    writeFileSync(yes, body({}, { parameters: { business_date: 'd' } }));
    writeFileSync(no, body({ type: 'run.canceled' }));
    const run = (file: string, ...extra: string[]) => spawnSync(process.execPath, [CLI, 'explain', file, '--config', config, ...extra], { encoding: 'utf8' });
    const triggered = run(yes);
    expect(triggered.status).toBe(0);
    expect(triggered.stdout).toContain('✓ sales-to-dbt → airflow:dbt_sales_models: would trigger');
    const nothing = run(no, '--json');
    expect(nothing.status).toBe(3);
    expect(JSON.parse(nothing.stdout).would_trigger).toBe(0);
    writeFileSync(no, '{"not": "an event"}');
    expect(run(no).status).toBe(5);
  });
});
