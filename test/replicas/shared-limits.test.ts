// Shared state between replicas, in process: two bridges on one PostgreSQL database and
// one Redis. (The three-process run is replicas.test.ts.)
import { randomBytes } from 'node:crypto';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/log/logger.js';
import { createBridge, type Bridge } from '../../src/service.js';
import { SECRET } from '../helpers/app.js';
import { completionEvent, standardWebhookHeaders } from '../helpers/sign.js';
import { freshPostgresDatabase } from '../helpers/stores.js';

let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

async function twoReplicas(extra: string): Promise<[Bridge, Bridge]> {
  const db = await freshPostgresDatabase();
  cleanups.push(() => db.drop());
  const source = `planasonix_${randomBytes(4).toString('hex')}`; // a fresh Redis key space per test
  const parsed = parseConfig(`
store: { url: "${db.url}", pool_size: 3 }
sources: { ${source}: { path: /webhooks/planasonix, verify: { scheme: standard-webhooks, secrets: ["${SECRET}"] } } }
${extra}`, {});
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.problems));
  const make = async () => {
    const created = await createBridge(parsed.config, createLogger('silent'), { adminTokens: [] });
    if (!created.ok) throw new Error('bridge');
    cleanups.push(() => created.bridge.close());
    return created.bridge;
  };
  return [await make(), await make()];
}

const send = (bridge: Bridge, id = `m_${randomBytes(4).toString('hex')}`) => {
  const body = JSON.stringify(completionEvent({ data: { run_id: id, pipeline_id: 'pl_a', status: 'succeeded' } }));
  return request(bridge.app).post('/webhooks/planasonix').set({ 'content-type': 'application/json', ...standardWebhookHeaders(SECRET, id, Math.floor(Date.now() / 1000), body) }).send(body);
};

describe('replicas share', () => {
  it('rate limits through Redis: the budget is for all replicas together', async () => {
    const [a, b] = await twoReplicas(`server: { rate_limit: { window: 1m, max: 2 }, rate_limit_redis: "redis://127.0.0.1:6379" }`);
    expect((await send(a)).status).toBe(202);
    expect((await send(b)).status).toBe(202);
    const limited = await send(a);
    expect(limited.status).toBe(429);
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    expect((await send(b)).status).toBe(429);
  });

  it('dedupe: the same delivery through two replicas is one event', async () => {
    const [a, b] = await twoReplicas('');
    const first = await send(a, 'same-delivery');
    const second = await send(b, 'same-delivery');
    expect([first.status, second.status]).toEqual([202, 200]);
    expect(second.body.id).toBe(first.body.id);
  });

  it('the loop-guard breaker opened through replica A is enforced by replica B', async () => {
    const [a, b] = await twoReplicas(`
airflow: { default: { url: "http://127.0.0.1:9", auth: { type: none } } }
loop_guard: { breaker: { max_triggers: 1, window: 10m } }
routes: [ { name: r, match: {}, trigger: { dag_id: d } } ]`);
    const viaA = await send(a);
    const viaB = await send(b);
    expect((await a.store.jobsOfEvent(viaA.body.id))[0]!.state).not.toBe('blocked');
    expect((await b.store.jobsOfEvent(viaB.body.id))[0]).toMatchObject({ state: 'blocked', blockReason: 'breaker_open' });
  });
});
