// The notifications outbox end to end on a real bridge (HTTP ingest, SQLite, deliverer) and a
// loopback receiver. The cause is real: the loop guard's breaker opening on the second of two
// deliveries (max_triggers: 1), written in the ingest transaction; no Airflow is needed.
import { afterEach, describe, expect, it } from 'vitest';
import request from 'supertest';
import { randomBytes } from 'node:crypto';
import { e2eBridge } from '../helpers/e2e.js';
import { completionEvent } from '../helpers/sign.js';
import { startReceiver, until } from './receiver.js';

const NOTIFY_SECRET = `whsec_${randomBytes(32).toString('base64')}`;
const ADMIN = 'a-test-admin-token-that-is-long-enough-0123';

const yaml = (targets: string) => `
airflow:
  default: { url: "http://127.0.0.1:9", auth: { type: none } }
routes:
  - { name: sales, match: { pipeline_id: pl_sales }, trigger: { dag_id: dbt_sales } }
loop_guard: { breaker: { max_triggers: 1, window: 10m } }
notify:
${targets}`;

describe('notifications outbox', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function setup(targets: (receiverUrl: string) => string, receiverOptions: Parameters<typeof startReceiver>[0]) {
    const receiver = await startReceiver(receiverOptions);
    cleanups.push(receiver.close);
    const bridge = await e2eBridge(yaml(targets(receiver.url)), { dispatch: false, adminTokens: [ADMIN] });
    cleanups.push(bridge.close);
    bridge.bridge.deliverer.start();
    const openBreaker = async () => {
      await bridge.send(completionEvent({ data: { run_id: `run_a_${Date.now()}`, pipeline_id: 'pl_sales', status: 'succeeded' } }));
      const second = await bridge.send(completionEvent({ data: { run_id: 'run_b', pipeline_id: 'pl_sales', status: 'succeeded' } }));
      return second.body.id;
    };
    return { receiver, bridge, openBreaker };
  }

  it('a receiver answering 500, 500, 200: delivered once, the same webhook-id on all three, each signature accepted by the bridge’s own verifier', async () => {
    const { receiver, bridge, openBreaker } = await setup(
      (url) => `  - { name: oncall, url: "${url}", secret: "${NOTIFY_SECRET}", on: [loop_guard.breaker_opened], retry: { initial_delay: 50ms, max_delay: 100ms } }`,
      { secret: NOTIFY_SECRET, statuses: [500, 500, 200] },
    );
    const eventId = await openBreaker();
    const [note] = await until('delivered', () => bridge.store.notificationsOfEvent(eventId), (n) => n[0]?.state === 'done');
    expect(receiver.received.map((r) => r.status)).toEqual([500, 500, 200]);
    expect(new Set(receiver.received.map((r) => r.headers['webhook-id']))).toEqual(new Set([note!.id]));
    expect(receiver.received.every((r) => r.verified === true)).toBe(true);
    expect(receiver.received[2]!.json).toMatchObject({
      id: note!.id, type: 'loop_guard.breaker_opened',
      data: { route: 'sales', airflow: 'default', dag_id: 'dbt_sales', state: 'open', planasonix: { run_id: 'run_b', pipeline_id: 'pl_sales' } },
    });
    expect((await bridge.store.attemptsOfNotification(note!.id)).map((a) => [a.n, a.httpStatus, a.outcome])).toEqual([[1, 500, 'retry'], [2, 500, 'retry'], [3, 200, 'delivered']]);
    // Nothing more arrives: one cause, one delivery.
    await new Promise((r) => setTimeout(r, 500));
    expect(receiver.received).toHaveLength(3);
    const metrics = await bridge.bridge.metrics.registry.getSingleMetricAsString('bridge_notifications_total');
    expect(metrics).toContain('bridge_notifications_total{target="oncall",type="loop_guard.breaker_opened",outcome="retried"} 2');
    expect(metrics).toContain('bridge_notifications_total{target="oncall",type="loop_guard.breaker_opened",outcome="delivered"} 1');
    const shown = await request(bridge.bridge.app).get(`/v1/events/${eventId}`).set('authorization', `Bearer ${ADMIN}`);
    expect(shown.body.notifications).toMatchObject([{ id: note!.id, state: 'done', attempts: [{ n: 1, http_status: 500 }, { n: 2 }, { n: 3, outcome: 'delivered' }] }]);
    console.log(`[measured] first attempt ${receiver.received[0]!.at - note!.createdAt} ms after the cause's commit; delivered after ${receiver.received.length} attempts, ${receiver.received[2]!.at - note!.createdAt} ms`);
  });

  it('an answer that is not retryable (410) dead-letters at once; replayed from the admin API it is delivered with the same id', async () => {
    const { receiver, bridge, openBreaker } = await setup((url) => `  - { name: oncall, url: "${url}", secret: "${NOTIFY_SECRET}" }`, { secret: NOTIFY_SECRET, statuses: [410] });
    const eventId = await openBreaker();
    const [note] = await until('dead', () => bridge.store.notificationsOfEvent(eventId), (n) => n[0]?.state === 'dead');
    const admin = (r: request.Test) => r.set('authorization', `Bearer ${ADMIN}`);
    const dead = await admin(request(bridge.bridge.app).get('/v1/notifications?state=dead&target=oncall'));
    expect(dead.body.notifications).toMatchObject([{ id: note!.id, last_error: '410: scripted 410' }]);
    expect((await admin(request(bridge.bridge.app).post(`/v1/notifications/${note!.id}/replay`))).body).toMatchObject({ replayed: true, notification: { state: 'pending' } });
    await until('delivered', () => bridge.store.getNotification(note!.id), (n) => n?.state === 'done');
    expect((await admin(request(bridge.bridge.app).post(`/v1/notifications/${note!.id}/replay`))).status).toBe(409);
    expect(receiver.received.map((r) => [r.headers['webhook-id'], r.status])).toEqual([[note!.id, 410], [note!.id, 200]]);
  });

  it('a trigger the dispatcher dead-letters (Airflow unreachable, max_attempts 1): one job.dead_lettered, delivered', async () => {
    const receiver = await startReceiver({ secret: NOTIFY_SECRET });
    cleanups.push(receiver.close);
    const bridge = await e2eBridge(`
airflow:
  default: { url: "http://127.0.0.1:9", auth: { type: none }, timeout: 0.5s, retry: { max_attempts: 1 } }
routes:
  - { name: sales, match: { pipeline_id: pl_sales }, trigger: { dag_id: dbt_sales } }
notify:
  - { name: oncall, url: "${receiver.url}", secret: "${NOTIFY_SECRET}", on: [job.dead_lettered], routes: [sales] }
`);
    cleanups.push(bridge.close);
    bridge.bridge.deliverer.start();
    const sent = await bridge.send(completionEvent({ data: { run_id: 'run_dead', pipeline_id: 'pl_sales', status: 'succeeded' } }));
    const [job] = await bridge.settled(sent.body.id);
    expect(job!.state).toBe('dead');
    await until('delivered', () => receiver.received.length, (n) => n === 1);
    expect(receiver.received[0]).toMatchObject({
      verified: true,
      json: { type: 'job.dead_lettered', data: { route: 'sales', dag_id: 'dbt_sales', dag_run_id: job!.dagRunId, state: 'dead', detail: job!.lastError, planasonix: { run_id: 'run_dead', pipeline_id: 'pl_sales' } } },
    });
    const [note] = await bridge.store.notificationsOfEvent(sent.body.id);
    console.log(`[measured] job.dead_lettered received ${receiver.received[0]!.at - note!.createdAt} ms after the dead letter's commit`);
  });

  it('slack: an incoming-webhook {text, blocks} body, unsigned, readable', async () => {
    const { receiver, bridge, openBreaker } = await setup((url) => `  - { name: chat, url: "${url}", format: slack }`, {});
    const eventId = await openBreaker();
    await until('delivered', () => bridge.store.notificationsOfEvent(eventId), (n) => n[0]?.state === 'done');
    const [got] = receiver.received;
    expect(got!.headers['webhook-signature']).toBeUndefined();
    const body = got!.json as { text: string; blocks: { type: string }[] };
    expect(Object.keys(body).sort()).toEqual(['blocks', 'text']);
    expect(body.text).toContain('Loop-guard breaker opened — route sales');
    expect(body.text).toContain('DAG dbt_sales');
    expect(body.text).toContain('Planasonix run run_b of pipeline pl_sales');
    expect(body.blocks.map((b) => b.type)).toEqual(['header', 'section', 'section', 'context']);
  });
});
