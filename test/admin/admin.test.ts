import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/log/logger.js';
import { createBridge } from '../../src/service.js';
import openapi from '../../src/openapi.json' with { type: 'json' };
import { SECRET, tempDir } from '../helpers/app.js';
import { completionEvent, standardWebhookHeaders } from '../helpers/sign.js';
import { runCli } from '../helpers/process.js';
import { startFaultAirflow, type FaultAirflow } from '../dispatch/fault-airflow.js';

const TOKEN = 'admin-token-0123456789';
const NEXT_TOKEN = 'admin-token-rotated-0123';

let airflow: FaultAirflow;
let cleanups: (() => Promise<void> | void)[] = [];
beforeEach(async () => {
  airflow = await startFaultAirflow();
  cleanups.push(() => airflow.close());
});
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

const yaml = (dir: string, extra: { password?: string; admin?: string } = {}) => `
store: { url: "sqlite:${join(dir, 'bridge.db')}" }
dispatch: { poll_interval: 0.02s }
sources: { planasonix: { path: /webhooks/planasonix, verify: { scheme: standard-webhooks, secrets: ["${SECRET}"] } } }
airflow: { default: { url: "${airflow.url}", auth: { type: password, username: admin, password: ${extra.password ?? 'admin'} }, retry: { max_attempts: 2, initial_delay: 0.01s, max_delay: 0.02s } } }
routes:
  - { name: sales, match: { pipeline_id: pl_sales }, trigger: { dag_id: dbt_sales_models } }
${extra.admin ?? ''}
`;

const logs: string[] = [];

async function bridgeFrom(text: string, file?: string) {
  const parsed = parseConfig(text, {});
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.problems));
  const sink = new Writable({ write: (c, _e, done) => (logs.push(String(c)), done()) });
  const created = await createBridge(parsed.config, createLogger('info', sink), { adminTokens: [TOKEN, NEXT_TOKEN], ...(file ? { configFile: file } : {}) });
  if (!created.ok) throw new Error(JSON.stringify(created.problems));
  created.bridge.dispatcher.start();
  cleanups.push(() => created.bridge.close());
  return created.bridge;
}

function webhook(app: Parameters<typeof request>[0], overrides: Record<string, unknown> = {}) {
  const body = JSON.stringify(completionEvent({ data: { run_id: `r${Math.random()}`, pipeline_id: 'pl_sales', status: 'succeeded' }, ...overrides }));
  return request(app).post('/webhooks/planasonix').set({ 'content-type': 'application/json', ...standardWebhookHeaders(SECRET, `m${Math.random()}`, Math.floor(Date.now() / 1000), body) }).send(body);
}

const admin = (app: Parameters<typeof request>[0], token = TOKEN) => ({
  get: (path: string) => request(app).get(path).set('authorization', `Bearer ${token}`),
  post: (path: string) => request(app).post(path).set('authorization', `Bearer ${token}`),
  delete: (path: string) => request(app).delete(path).set('authorization', `Bearer ${token}`),
});

async function until<T>(read: () => Promise<T>, ok: (v: T) => boolean, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await read();
    if (ok(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('admin API', () => {
  it('is off (404) without credentials, 401 for a wrong token, and both rotated tokens work', async () => {
    const temp = tempDir();
    cleanups.push(temp.cleanup);
    const parsed = parseConfig(yaml(temp.dir), {});
    if (!parsed.ok) throw new Error('config');
    const off = await createBridge(parsed.config, createLogger('silent'), { adminTokens: [] });
    if (!off.ok) throw new Error('bridge');
    cleanups.push(() => off.bridge.close());
    expect((await admin(off.bridge.app).get('/v1/events')).status).toBe(404);

    const app = (await bridgeFrom(yaml(tempDir().dir))).app;
    expect((await request(app).get('/v1/events')).status).toBe(401);
    expect((await admin(app, 'wrong').get('/v1/events')).status).toBe(401);
    expect((await admin(app, TOKEN).get('/v1/events')).status).toBe(200);
    expect((await admin(app, NEXT_TOKEN).get('/v1/events')).status).toBe(200);
  });

  it('accepts JWTs from admin.jwks_url with the right issuer and audience only', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k', alg: 'ES256' };
    const server: Server = createServer((_q, s) => s.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] })));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;
    const app = (await bridgeFrom(yaml(tempDir().dir, { admin: `admin: { jwks_url: "${url}", issuer: https://idp.example, audience: bridge-admin }` }))).app;
    const jwt = (aud: string, key: CryptoKey = privateKey) =>
      new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: 'k' }).setIssuer('https://idp.example').setAudience(aud).setIssuedAt().setExpirationTime('5m').sign(key);
    expect((await admin(app, await jwt('bridge-admin')).get('/v1/jobs')).status).toBe(200);
    expect((await admin(app, await jwt('someone-else')).get('/v1/jobs')).status).toBe(401);
  });

  it('pages events with a cursor and filters them', async () => {
    const app = (await bridgeFrom(yaml(tempDir().dir))).app;
    for (let i = 0; i < 5; i++) expect((await webhook(app, { type: i < 3 ? 'run.succeeded' : 'run.failed' })).status).toBe(202);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: request.Response = await admin(app).get(`/v1/events?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.status).toBe(200);
      seen.push(...page.body.events.map((e: { id: string }) => e.id));
      cursor = page.body.next_cursor;
    } while (cursor);
    expect(seen).toHaveLength(5);
    expect(new Set(seen).size).toBe(5);
    expect((await admin(app).get('/v1/events?type=run.failed')).body.events).toHaveLength(2);
    expect((await admin(app).get('/v1/events?pipeline_id=nope')).body.events).toHaveLength(0);
    expect((await admin(app).get('/v1/events?limit=0')).status).toBe(400);
    expect((await admin(app).get('/v1/events?colour=red')).body).toEqual({ error: 'bad_request', message: 'query colour: unknown parameter' });
  });

  it('shows an event with its jobs and every attempt; replays a dead job after the config is fixed and reloaded', async () => {
    const dir = tempDir().dir;
    const file = join(dir, 'bridge.yaml');
    writeFileSync(file, yaml(dir, { password: 'wrong-password' }));
    airflow.script('/auth/token', { status: 401, body: { detail: 'Invalid credentials' } });
    const bridge = await bridgeFrom(yaml(dir, { password: 'wrong-password' }), file);
    const stored = await webhook(bridge.app);
    const detail = await until(() => admin(bridge.app).get(`/v1/events/${stored.body.id}`), (r) => r.body.jobs?.[0]?.state === 'dead');
    expect(detail.body).toMatchObject({ id: stored.body.id, status: 'routed', body: { data: { pipeline_id: 'pl_sales' } }, routing: [{ route: 'sales', matched: true }] });
    const [job] = detail.body.jobs;
    expect(job).toMatchObject({ state: 'dead', last_error: expect.stringContaining('refused the configured username/password') });
    expect(job.attempts).toEqual([expect.objectContaining({ n: 1, outcome: 'dead', detail: expect.stringContaining('Invalid credentials') })]);
    expect((await admin(bridge.app).get('/v1/jobs?state=dead')).body.jobs.map((j: { id: string }) => j.id)).toEqual([job.id]);

    writeFileSync(file, yaml(dir, { password: 'admin' }));
    const reloaded = await admin(bridge.app).post('/v1/config/reload');
    expect(reloaded.body).toEqual({ reloaded: true, changed: ['airflow'] });
    const replay = await admin(bridge.app).post(`/v1/jobs/${job.id}/replay`);
    expect(replay.body).toMatchObject({ replayed: true, job: { state: 'pending' } });
    const after = await until(() => admin(bridge.app).get(`/v1/events/${stored.body.id}`), (r) => r.body.jobs[0].state === 'done');
    expect(after.body.jobs[0].attempts.map((a: { n: number; outcome: string }) => [a.n, a.outcome])).toEqual([[1, 'dead'], [2, 'triggered']]);
  });

  it('refuses an invalid config on reload and keeps serving the old one', async () => {
    const dir = tempDir().dir;
    const file = join(dir, 'bridge.yaml');
    writeFileSync(file, yaml(dir));
    const bridge = await bridgeFrom(yaml(dir), file);
    writeFileSync(file, `${yaml(dir)}\nloop_guard: { max_depth: -1 }`);
    const refused = await admin(bridge.app).post('/v1/config/reload');
    expect(refused.status).toBe(422);
    expect(refused.body.problems).toEqual([expect.objectContaining({ path: 'loop_guard.max_depth' })]);
    writeFileSync(file, yaml(dir).replace('store: { url: "sqlite:', 'store: { url: "sqlite:/elsewhere'));
    expect((await admin(bridge.app).post('/v1/config/reload')).body.problems).toEqual([{ path: 'store.url', message: 'cannot change while running; restart the bridge to apply it' }]);
    expect((await webhook(bridge.app)).status).toBe(202);
    // Removing the Airflow instance its pending jobs target: refused by the route check, so
    // nothing is orphaned by a typo.
    writeFileSync(file, yaml(dir).replace('airflow: { default:', 'airflow: { renamed:'));
    expect((await admin(bridge.app).post('/v1/config/reload')).body.problems).toEqual([expect.objectContaining({ path: 'routes[0].trigger.airflow' })]);
    // A valid change applies to the next delivery: a new source path.
    writeFileSync(file, yaml(dir).replace('path: /webhooks/planasonix', 'path: /hooks/v2'));
    expect((await admin(bridge.app).post('/v1/config/reload')).body.changed).toEqual(['sources']);
    expect((await webhook(bridge.app)).status).toBe(404);
  });

  it('warns about pending jobs whose Airflow instance a reload removed', async () => {
    airflow.script('/api/v2/dags/dbt_sales_models/dagRuns', ...Array(50).fill({ status: 503 }));
    const dir = tempDir().dir;
    const file = join(dir, 'bridge.yaml');
    const text = yaml(dir).replace('max_attempts: 2', 'max_attempts: 50');
    writeFileSync(file, text);
    const bridge = await bridgeFrom(text, file);
    await webhook(bridge.app);
    writeFileSync(file, text.replace('airflow: { default:', 'airflow: { renamed:').replace('trigger: { dag_id: dbt_sales_models }', 'trigger: { airflow: renamed, dag_id: dbt_sales_models }'));
    expect((await admin(bridge.app).post('/v1/config/reload')).body.reloaded).toBe(true);
    expect(logs.join('')).toContain('1 pending job(s) target Airflow instance \\"default\\", which is not in the config');
  });

  it('redrives an event against a config that gained a route', async () => {
    const dir = tempDir().dir;
    const file = join(dir, 'bridge.yaml');
    writeFileSync(file, yaml(dir));
    const bridge = await bridgeFrom(yaml(dir), file);
    const stored = await webhook(bridge.app, { data: { run_id: 'r_x', pipeline_id: 'pl_other', status: 'succeeded' } });
    expect((await admin(bridge.app).get(`/v1/events/${stored.body.id}`)).body.status).toBe('unrouted');
    writeFileSync(file, `${yaml(dir)}  - { name: other, match: { pipeline_id: pl_other }, trigger: { dag_id: other_dag } }\n`);
    expect((await admin(bridge.app).post('/v1/config/reload')).body.changed).toEqual(['routes', 'route other added']);
    const redrive = await admin(bridge.app).post(`/v1/events/${stored.body.id}/redrive`);
    expect(redrive.body.created).toEqual([{ route: 'other', state: 'pending' }]);
    expect((await admin(bridge.app).post(`/v1/events/${stored.body.id}/redrive`)).body.created).toEqual([]);
    await until(() => admin(bridge.app).get(`/v1/events/${stored.body.id}`), (r) => r.body.jobs[0]?.state === 'done');
  });

  it('lists the loop guard and resets a breaker', async () => {
    const dir = tempDir().dir;
    const bridge = await bridgeFrom(`${yaml(dir)}loop_guard: { breaker: { max_triggers: 1, window: 10m } }\n`);
    await webhook(bridge.app);
    await webhook(bridge.app);
    const state = await admin(bridge.app).get('/v1/loop-guard');
    expect(state.body.open_breakers).toEqual([expect.objectContaining({ key: 'pl_sales,airflow:dbt_sales_models' })]);
    const reset = await admin(bridge.app).delete(`/v1/loop-guard/breakers/${encodeURIComponent('pl_sales,airflow:dbt_sales_models')}`);
    expect(reset.body).toMatchObject({ reset: true, was_open: true });
    expect((await admin(bridge.app).get('/v1/loop-guard')).body.open_breakers).toEqual([]);
    expect((await webhook(bridge.app)).status).toBe(202);
    const blocked = (await admin(bridge.app).get('/v1/jobs?state=blocked')).body.jobs;
    expect(blocked).toHaveLength(1);
  });
});

describe('console data', () => {
  it('draws the orchestration graph: a declared cycle in red with what bounds it, a match node, an open breaker', async () => {
    const dir = tempDir().dir;
    const text = yaml(dir).replace('trigger: { dag_id: dbt_sales_models } }', 'trigger: { dag_id: dbt_sales_models }, allow_cycle: true }\n  - { name: any-failure, match: { type: run.failed }, trigger: { dag_id: page_oncall } }\n  - { name: marketing, match: { pipeline_id: pl_marketing }, trigger: { dag_id: refresh_ads } }');
    const bridge = await bridgeFrom(`${text}loop_guard: { max_depth: 4, breaker: { max_triggers: 1, window: 10m }, edges: [ { from: { dag_id: dbt_sales_models }, to: { pipeline_id: pl_sales } } ] }\n`);
    await webhook(bridge.app);
    await webhook(bridge.app); // the second trigger of the pair opens the breaker
    const graph = (await admin(bridge.app).get('/v1/graph')).body;
    expect(graph.nodes).toEqual(expect.arrayContaining([
      { id: 'planasonix:pl_sales', kind: 'pipeline', label: 'pl_sales' },
      { id: 'airflow:dbt_sales_models', kind: 'dag', label: 'dbt_sales_models' },
      { id: 'airflow:page_oncall', kind: 'dag', label: 'page_oncall' },
      { id: 'match:marketing', kind: 'match', label: 'pipeline_id=pl_marketing' },
    ]));
    expect(graph.edges).toEqual(expect.arrayContaining([
      expect.objectContaining({ from: 'planasonix:pl_sales', to: 'airflow:dbt_sales_models', kind: 'route', route: 'sales', cycle: true, breaker_open_until: expect.any(String) }),
      expect.objectContaining({ from: 'airflow:dbt_sales_models', to: 'planasonix:pl_sales', kind: 'edge', cycle: true }),
      // A route naming no pipeline is assumed to match every known one (as the loop guard assumes).
      expect.objectContaining({ from: 'planasonix:pl_sales', to: 'airflow:page_oncall', route: 'any-failure', cycle: false, assumption: expect.stringContaining('names no pipeline') }),
      { from: 'match:marketing', to: 'airflow:refresh_ads', kind: 'route', route: 'marketing', cycle: false },
    ]));
    expect(graph.cycles).toEqual([{ path: 'pl_sales --route sales--> dbt_sales_models --edge--> pl_sales', nodes: ['airflow:dbt_sales_models', 'planasonix:pl_sales'], bounded_by: expect.stringContaining('allow_cycle on sales: bounded by lineage (max_depth 4) and the breaker (1 triggers per 600s') }]);
  });

  it('reports Airflow reachability and circuit, queue depths and per-minute throughput', async () => {
    airflow.script('/api/v2/dags/dbt_sales_models/dagRuns', { status: 404, body: { detail: 'DAG not found' } });
    const bridge = await bridgeFrom(yaml(tempDir().dir));
    await webhook(bridge.app);
    await webhook(bridge.app);
    await until(async () => (await bridge.store.jobCounts()).pending, (n) => n === 0);
    const status = (await admin(bridge.app).get('/v1/status')).body;
    expect(status.airflow).toEqual({ default: expect.objectContaining({ reachable: true, circuit: 'closed' }) });
    expect(status.queue).toEqual({ pending: 0, done: 1, dead: 1, blocked: 0 });
    expect(status.activity).toHaveLength(15);
    const total = (k: 'received' | 'triggered') => status.activity.reduce((n: number, a: Record<string, number>) => n + a[k]!, 0);
    expect([total('received'), total('triggered')]).toEqual([2, 1]);
    // The last bar is the current minute.
    expect(Math.abs(Date.parse(status.activity.at(-1).minute) - Math.floor(Date.now() / 60_000) * 60_000)).toBeLessThanOrEqual(60_000);
  });

  it('explains a stored event under the running config: why a route did not match', async () => {
    const bridge = await bridgeFrom(yaml(tempDir().dir));
    const sent = await webhook(bridge.app, { data: { run_id: 'r_other', pipeline_id: 'pl_other', status: 'succeeded' } });
    const x = await admin(bridge.app).get(`/v1/events/${sent.body.id}/explain`);
    expect(x.status).toBe(200);
    expect(x.body).toMatchObject({ would_trigger: 0, routes: [{ route: 'sales', matched: false, reason: expect.stringMatching(/pipeline_id.*pl_other/) }] });
    expect((await admin(bridge.app).get('/v1/events/nope/explain')).status).toBe(404);
  });
});

describe('metrics', () => {
  it('counts a scripted scenario', async () => {
    airflow.script('/api/v2/dags/dbt_sales_models/dagRuns', { status: 503 }, { status: 404, body: { detail: 'nope' } });
    const bridge = await bridgeFrom(yaml(tempDir().dir));
    const a = await webhook(bridge.app);
    await webhook(bridge.app);
    await request(bridge.app).post('/webhooks/planasonix').set('content-type', 'application/json').send('{}');
    await until(async () => (await bridge.store.jobCounts()).pending, (n) => n === 0);
    expect(a.status).toBe(202);
    const text = (await request(bridge.app).get('/metrics')).text;
    const value = (line: string) => Number(text.split('\n').find((l) => l.startsWith(line))?.slice(line.length).trim());
    expect(value('bridge_webhooks_received_total{source="planasonix",outcome="accepted"}')).toBe(2);
    expect(value('bridge_webhooks_received_total{source="planasonix",outcome="signature_missing"}')).toBe(1);
    expect(value('bridge_webhook_rejected_total{reason="signature_missing"}')).toBe(1);
    expect(value('bridge_trigger_attempts_total{airflow="default",status_class="5xx"}')).toBe(1);
    expect(value('bridge_trigger_attempts_total{airflow="default",status_class="4xx"}')).toBe(1);
    expect(value('bridge_triggers_total{route="sales",outcome="dead"}')).toBe(1);
    expect(value('bridge_triggers_total{route="sales",outcome="triggered"}')).toBe(1);
    expect(value('bridge_dispatch_latency_seconds_count')).toBe(1);
    expect(value('bridge_queue_depth{state="done"}')).toBe(1);
    expect(value('bridge_queue_depth{state="dead"}')).toBe(1);
    expect(value('bridge_airflow_circuit_open{airflow="default"}')).toBe(0);
    expect(text).toContain('process_cpu_seconds_total');
  });
});

describe('OpenAPI document', () => {
  it('lists every implemented route, and nothing else', async () => {
    const bridge = await bridgeFrom(yaml(tempDir().dir));
    // Mounted per config (sources, and each Airflow instance's plugin push), so named here.
    const found = new Set<string>(['POST /webhooks/planasonix', 'POST /webhooks/airflow/:instance']);
    const walk = (stack: any[], prefix: string) => {
      for (const layer of stack) {
        if (layer.route) for (const method of Object.keys(layer.route.methods)) if (method !== '_all') found.add(`${method.toUpperCase()} ${prefix}${layer.route.path}`);
        if (layer.name === 'router' && layer.handle?.stack && layer.matchers?.[0]) walk(layer.handle.stack, prefix + '/v1');
      }
    };
    walk((bridge.app.express as any).router.stack, '');
    const documented = new Set(Object.entries(openapi.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}`)));
    expect([...found].sort()).toEqual([...documented].sort());
  });
});

describe('planasonix-bridge send', () => {
  it('signs and posts to a running bridge; --duplicate shows the dedupe, --repeat sends new events', async () => {
    const bridge = await bridgeFrom(yaml(tempDir().dir));
    const server = bridge.app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhooks/planasonix`;
    const run = async (...args: string[]) => {
      const { code, stdout } = await runCli(['send', ...args], { PLANASONIX_WEBHOOK_SECRET: SECRET });
      return { status: code, stdout };
    };
    const dup = await run('--url', url, '--pipeline', 'pl_sales', '--duplicate');
    expect(dup.status).toBe(0);
    expect(dup.stdout).toMatch(/^202 .*"duplicate":false.*\n200 .*"duplicate":true.*\nsent 2: 1× 202, 1× 200\n$/);
    const many = await run('--url', url, '--pipeline', 'pl_sales', '--repeat', '3', '--param', 'business_date=2026-11-23');
    expect(many.stdout).toContain('sent 3: 3× 202');
    const bad = await run('--url', url, '--pipeline', 'pl_sales', '--secret', 'whsec_' + Buffer.from('a different secret!!').toString('base64'));
    expect(bad.status).toBe(6);
    expect(bad.stdout).toMatch(/^401 /);
  });
});
