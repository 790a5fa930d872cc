// Retention end to end through HTTP, on both stores, with an injected clock: done events are
// pruned with their jobs and attempts, pending ones kept, dead letters on their own clock, and
// a pruned event's redelivery is `200 duplicate` inside `dedupe` and `202` new after it.
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { createApp } from '../../src/ingress/app.js';
import { buildSources } from '../../src/ingress/sources.js';
import { createPruner } from '../../src/lifecycle/pruner.js';
import { createLogger } from '../../src/log/logger.js';
import { createMetrics } from '../../src/metrics/metrics.js';
import type { Store } from '../../src/store/types.js';
import { configFrom, SECRET } from '../helpers/app.js';
import { standardWebhookHeaders } from '../helpers/sign.js';
import { STORE_KINDS } from '../helpers/stores.js';

const MIN = 60_000;
const YAML = `
store: { retention: { events: 60m, dead: 180m, dedupe: 300m, interval: 1m } }
sources:
  planasonix: { path: /webhooks/planasonix, verify: { scheme: standard-webhooks, secrets: ["${SECRET}"] } }
airflow: { default: { url: "http://127.0.0.1:9", auth: { type: none } } }
routes:
  - { name: dbt, match: { pipeline_id: pl_routed }, trigger: { airflow: default, dag_id: dbt } }
`;

describe.each(STORE_KINDS)('retention through HTTP: $name', (kind) => {
  let cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.reverse()) await c();
    cleanups = [];
  });

  async function harness() {
    let now = Date.parse('2026-12-01T00:00:00Z');
    const clock = () => now;
    const location = await kind.fresh();
    const store: Store = await location.open(clock);
    cleanups.push(location.cleanup, () => store.close());
    const config = configFrom(YAML);
    const built = buildSources(config, clock);
    if (!built.ok) throw new Error(JSON.stringify(built.problems));
    const logger = createLogger('silent');
    const metrics = createMetrics();
    const app = createApp({ live: () => ({ config, sources: built.sources }), store, logger, clock, metrics, adminTokens: [] });
    const pruner = createPruner({ store, retention: () => config.store.retention, logger, clock, metrics, batchSize: 2 });
    const send = async (id: string, pipeline = 'pl_routed') => {
      const body = JSON.stringify({ id, type: 'run.succeeded', created_at: new Date(now).toISOString(), data: { run_id: `run_${id}`, pipeline_id: pipeline, status: 'succeeded' } });
      const res = await request(app)
        .post('/webhooks/planasonix')
        .set({ 'content-type': 'application/json', ...standardWebhookHeaders(SECRET, `msg_${id}`, Math.floor(now / 1000), body) })
        .send(body);
      return { status: res.status, body: res.body as { id: string; event_id: string; duplicate: boolean } };
    };
    /** What a dispatcher does with every due job: one attempt, done or dead. */
    const settle = async (outcome: 'done' | 'dead') => {
      for (const job of await store.claimJobs({ airflow: 'default', now, limit: 100, leaseMs: 30_000, owner: 'w' })) {
        const attempt = { startedAt: now, durationMs: 4, httpStatus: outcome === 'done' ? 200 : 404, outcome: outcome === 'done' ? ('triggered' as const) : ('dead' as const), detail: outcome, nextRetryAt: null };
        await store.finishAttempt(job.id, 'w', attempt, outcome === 'done' ? { state: 'done', airflowState: 'queued', dagRunId: job.dagRunId } : { state: 'dead', error: 'DAG not found' });
      }
    };
    return { store, send, settle, pruner, metrics, advance: (ms: number) => (now += ms) };
  }

  it('prunes done events with their jobs and attempts, keeps pending ones, dead letters on their own clock; redelivery is a duplicate inside dedupe, new after it', async () => {
    const { store, send, settle, pruner, metrics, advance } = await harness();
    const done = await send('evt_done');
    expect(done.status).toBe(202);
    await settle('done');
    const dead = await send('evt_dead');
    await settle('dead');
    const unrouted = await send('evt_unrouted', 'pl_nobody');
    const pending = await send('evt_pending');
    expect([dead.status, unrouted.status, pending.status]).toEqual([202, 202, 202]);
    const doneJob = (await store.jobsOfEvent(done.body.id))[0]!;
    expect(await store.attemptsOfJob(doneJob.id)).toHaveLength(1);

    advance(30 * MIN); // younger than events: 60m — nothing goes
    expect((await pruner.runOnce())!.rows.events).toBe(0);

    advance(40 * MIN); // 70 min: done and unrouted go; pending is kept, the dead letter (died 70 min ago < dead: 180m) too
    const first = await pruner.runOnce();
    expect(first!.rows).toEqual({ events: 2, jobs: 1, attempts: 1, dedupe_keys: 0, notifications: 0, notification_attempts: 0 });
    expect(await store.getEvent(done.body.id)).toBeUndefined();
    expect(await store.getJob(doneJob.id)).toBeUndefined();
    expect(await store.attemptsOfJob(doneJob.id)).toEqual([]);
    expect(await store.getEvent(unrouted.body.id)).toBeUndefined();
    expect(await store.getEvent(pending.body.id)).toBeDefined();
    expect(await store.getEvent(dead.body.id)).toBeDefined();

    // Planasonix redelivers the pruned event: the original stored id, as a duplicate, nothing new.
    const again = await send('evt_done');
    expect(again).toEqual({ status: 200, body: { id: done.body.id, event_id: 'evt_done', duplicate: true } });
    expect(await store.jobCounts()).toEqual({ pending: 1, done: 0, dead: 1, blocked: 0 });

    advance(120 * MIN); // 190 min: the dead letter passes dead: 180m; pending still waits for Airflow
    expect((await pruner.runOnce())!.rows).toMatchObject({ events: 1, jobs: 1, attempts: 1 });
    expect(await store.getEvent(dead.body.id)).toBeUndefined();
    expect(await store.getEvent(pending.body.id)).toBeDefined();
    expect((await send('evt_dead')).status).toBe(200);

    advance(250 * MIN); // the first delivery ids were kept 370 min > dedupe: 300m
    expect((await pruner.runOnce())!.rows.dedupe_keys).toBe(2);
    const late = await send('evt_done');
    expect(late.status).toBe(202);
    expect(late.body.duplicate).toBe(false);
    expect(late.body.id).not.toBe(done.body.id);
    expect((await send('evt_dead')).status).toBe(200); // its id was kept later: still inside dedupe
    const counted = await metrics.registry.getSingleMetricAsString('bridge_pruned_rows_total');
    expect(counted).toContain('bridge_pruned_rows_total{table="events"} 3');
    expect(counted).toContain('bridge_pruned_rows_total{table="dedupe_keys"} 2');
  });

  it('a round goes in small batches and skips nothing: 9 prunable events around kept ones, batch size 2', async () => {
    const { store, send, settle, pruner, advance } = await harness();
    const kept: string[] = [];
    for (let i = 0; i < 9; i++) {
      if (i % 3 === 1) kept.push((await send(`evt_p${i}`)).body.id);
      else await send(`evt_u${i}`, 'pl_nobody');
    }
    await settle('done');
    for (let i = 0; i < 3; i++) kept.push((await send(`evt_k${i}`)).body.id); // pending
    advance(62 * MIN); // past events: 60m and the minute more a quiet pair's events wait on PostgreSQL (QUIET_PAIR_MS)
    const round = await pruner.runOnce();
    expect(round!.rows.events).toBe(9);
    expect(round!.batches).toBeGreaterThanOrEqual(5);
    expect((await store.stats()).rows.events).toBe(3);
    for (const id of kept.slice(3)) expect(await store.getEvent(id)).toBeDefined();
  });
});
