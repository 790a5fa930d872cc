// kill -9 between a notification's cause and its delivery: the row was committed with the
// cause, so the restarted bridge delivers it — once, with the id it was created with.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { expect, it } from 'vitest';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { SECRET, tempDir } from '../helpers/app.js';
import { completionEvent, standardWebhookHeaders } from '../helpers/sign.js';
import { serveProcess, stopChild } from '../helpers/process.js';
import { freePort } from '../airflow/harness.js';
import { startReceiver, until } from './receiver.js';

const NOTIFY_SECRET = `whsec_${randomBytes(32).toString('base64')}`;

it('kill -9 with the notification pending (receiver down): delivered after the restart, once, same webhook-id', async () => {
  const temp = tempDir();
  const db = join(temp.dir, 'bridge.db');
  const config = join(temp.dir, 'bridge.yaml');
  const port = await freePort();
  writeFileSync(config, `
server: { host: 127.0.0.1, port: 0 }
store: { url: "sqlite:${db}" }
sources: { planasonix: { path: /webhooks/planasonix, verify: { scheme: standard-webhooks, secrets: ["\${SECRET}"] } } }
airflow: { default: { url: "http://127.0.0.1:9", auth: { type: none } } }
routes: [ { name: sales, match: { pipeline_id: pl_sales }, trigger: { dag_id: dbt_sales } } ]
loop_guard: { breaker: { max_triggers: 1, window: 10m } }
notify:
  - { name: oncall, url: "http://127.0.0.1:${port}/hook", secret: "${NOTIFY_SECRET}", on: [loop_guard.breaker_opened], retry: { max_attempts: 100, initial_delay: 100ms, max_delay: 300ms } }
`);
  const post = async (url: string, n: number) => {
    const body = JSON.stringify(completionEvent({ data: { run_id: `run_${n}`, pipeline_id: 'pl_sales', status: 'succeeded' } }));
    const res = await fetch(`${url}/webhooks/planasonix`, { method: 'POST', headers: { 'content-type': 'application/json', ...standardWebhookHeaders(SECRET, `msg_crash_${n}`, Math.floor(Date.now() / 1000), body) }, body });
    expect(res.status).toBe(202);
    return ((await res.json()) as { id: string }).id;
  };
  const read = () => openSqliteStore({ path: db, busyTimeoutMs: 1000, readonly: true });
  const receiver = { current: undefined as Awaited<ReturnType<typeof startReceiver>> | undefined };
  try {
    const first = await serveProcess(config, 'bridge-1');
    await post(first.url, 1);
    const eventId = await post(first.url, 2);
    // The breaker opened with the second event; the receiver is down, so attempts fail.
    const before = read();
    const [pending] = await until('a failed attempt', () => before.notificationsOfEvent(eventId), (n) => (n[0]?.attempts ?? 0) >= 2);
    await before.close();
    expect(pending).toMatchObject({ state: 'pending', type: 'loop_guard.breaker_opened' });
    first.child.kill('SIGKILL');
    await new Promise((r) => first.child.once('exit', r));

    receiver.current = await startReceiver({ secret: NOTIFY_SECRET, port });
    const restartedAt = Date.now();
    const second = await serveProcess(config, 'bridge-2');
    try {
      await until('delivered', () => receiver.current!.received.length, (n) => n >= 1);
      const latency = receiver.current.received[0]!.at - restartedAt;
      await new Promise((r) => setTimeout(r, 1500));
      expect(receiver.current.received).toHaveLength(1);
      expect(receiver.current.received[0]).toMatchObject({ verified: true, headers: { 'webhook-id': pending!.id } });
      const after = read();
      try {
        const [done] = await until('recorded', () => after.notificationsOfEvent(eventId), (n) => n[0]?.state === 'done');
        const attempts = await after.attemptsOfNotification(done!.id);
        expect(attempts.at(-1)).toMatchObject({ outcome: 'delivered', httpStatus: 200 });
        expect(attempts.slice(0, -1).every((a) => a.outcome === 'retry' && a.httpStatus === null)).toBe(true);
        console.log(`[measured] kill -9 with the notification pending after ${attempts.length - 1} failed attempts; delivered ${latency} ms after the restart began`);
      } finally {
        await after.close();
      }
    } finally {
      await stopChild(second.child);
    }
  } finally {
    await receiver.current?.close();
    temp.cleanup();
  }
}, 60_000);
