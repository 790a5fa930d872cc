// Two bridges on one fresh PostgreSQL database, both with the same notify: target and both
// delivering: one cause (the breaker opening, judged under the pair's row lock whichever
// replica takes the delivery) gives one notification, delivered once.
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { expect, it } from 'vitest';
import { createLogger } from '../../src/log/logger.js';
import { createBridge, type Bridge } from '../../src/service.js';
import { configFrom, SECRET } from '../helpers/app.js';
import { completionEvent, standardWebhookHeaders } from '../helpers/sign.js';
import { freshPostgresDatabase } from '../helpers/stores.js';
import { startReceiver, until } from './receiver.js';

const NOTIFY_SECRET = `whsec_${randomBytes(32).toString('base64')}`;

it('two replicas on PostgreSQL: ten deliveries split across both open one breaker — one notification, delivered once', async () => {
  const db = await freshPostgresDatabase();
  const receiver = await startReceiver({ secret: NOTIFY_SECRET });
  const yaml = `
store: { url: "${db.url}", pool_size: 4 }
sources: { planasonix: { path: /webhooks/planasonix, verify: { scheme: standard-webhooks, secrets: ["${SECRET}"] } } }
airflow: { default: { url: "http://127.0.0.1:9", auth: { type: none } } }
routes: [ { name: sales, match: { pipeline_id: pl_sales }, trigger: { dag_id: dbt_sales } } ]
loop_guard: { breaker: { max_triggers: 3, window: 10m } }
notify: [ { name: oncall, url: "${receiver.url}", secret: "${NOTIFY_SECRET}" } ]
`;
  const quiet = createLogger('silent', new Writable({ write: (_c, _e, done) => done() }));
  const replicas: { bridge: Bridge; url: string; close: () => Promise<void> }[] = [];
  try {
    for (let i = 0; i < 2; i++) {
      const created = await createBridge(configFrom(yaml), quiet, {});
      if (!created.ok) throw new Error(JSON.stringify(created.problems));
      const server = created.bridge.app.listen(0, '127.0.0.1');
      await new Promise((r) => server.once('listening', r));
      created.bridge.deliverer.start();
      replicas.push({ bridge: created.bridge, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: async () => (server.closeAllConnections(), await new Promise((r) => server.close(r)), await created.bridge.close()) });
    }
    const answers = await Promise.all(
      Array.from({ length: 10 }, async (_, i) => {
        const body = JSON.stringify(completionEvent({ data: { run_id: `run_${i}`, pipeline_id: 'pl_sales', status: 'succeeded' } }));
        const res = await fetch(`${replicas[i % 2]!.url}/webhooks/planasonix`, { method: 'POST', headers: { 'content-type': 'application/json', ...standardWebhookHeaders(SECRET, `msg_rep_${i}`, Math.floor(Date.now() / 1000), body) }, body });
        return res.status;
      }),
    );
    expect(answers).toEqual(Array(10).fill(202));
    const store = replicas[0]!.bridge.store;
    expect((await store.jobCounts())).toMatchObject({ pending: 3, blocked: 7 });
    await until('delivered', () => store.listNotifications({ limit: 10 }), (p) => p.items.length === 1 && p.items[0]!.state === 'done');
    await new Promise((r) => setTimeout(r, 1000));
    expect((await store.listNotifications({ limit: 10 })).items.map((n) => n.type)).toEqual(['loop_guard.breaker_opened']);
    expect(receiver.received).toHaveLength(1);
    expect(receiver.received[0]!.verified).toBe(true);
  } finally {
    for (const r of replicas) await r.close();
    await receiver.close();
    await db.drop();
  }
}, 60_000);
