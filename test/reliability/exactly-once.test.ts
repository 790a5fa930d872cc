// Crashes, faults and duplicate storms end in one stored event and one run per event.
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { SECRET, tempDir } from '../helpers/app.js';
import { completionEvent, standardWebhookHeaders } from '../helpers/sign.js';
import { startCountingAirflow, type CountingAirflow } from '../replicas/counting-airflow.js';
import { startFaultProxy } from './fault-proxy.js';
import { serveProcess } from '../helpers/process.js';

let cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

function setup(airflowUrl: string, extra = '') {
  const temp = tempDir();
  cleanups.push(temp.cleanup);
  const db = join(temp.dir, 'bridge.db');
  const file = join(temp.dir, 'bridge.yaml');
  writeFileSync(file, `
server: { host: 127.0.0.1, port: 0, rate_limit: { window: 1m, max: 1000000 } }
store: { url: "sqlite:${db}" }
dispatch: { lease: 3s, poll_interval: 0.1s }
sources: { planasonix: { path: /webhooks/planasonix, verify: { scheme: standard-webhooks, secrets: ["\${SECRET}"] } } }
airflow: { default: { url: "${airflowUrl}", auth: { type: none }, timeout: 1s, retry: { max_attempts: 50, initial_delay: 0.05s, max_delay: 0.5s }, circuit_breaker: { failures: 1000, cooldown: 1s } } }
loop_guard: { breaker: { max_triggers: 1000000, window: 1m } }
routes: [ { name: r, match: {}, trigger: { dag_id: counted } } ]
${extra}`);
  return { db, file };
}

async function serve(file: string): Promise<{ child: ChildProcess; url: string }> {
  const started = await serveProcess(file);
  cleanups.push(() => void started.child.kill('SIGKILL'));
  return started;
}

/**
 * The counting endpoint, a config pointing at it (or at `front`, a proxy before it) and a
 * bridge serving that config; everything is closed after the test.
 */
type Front = { url: string; close(): Promise<void> };
type Counted = { airflow: Awaited<ReturnType<typeof startCountingAirflow>>; db: string; file: string; bridge: Awaited<ReturnType<typeof serve>> };
function countedBridge(): Promise<Counted>;
function countedBridge<F extends Front>(front: (airflowUrl: string) => Promise<F>): Promise<Counted & { proxy: F }>;
async function countedBridge(front?: (airflowUrl: string) => Promise<Front>) {
  const airflow = await startCountingAirflow();
  cleanups.push(() => airflow.close());
  const proxy = front ? await front(airflow.url) : undefined;
  if (proxy) cleanups.push(() => proxy.close());
  const { db, file } = setup(proxy?.url ?? airflow.url);
  return { airflow, proxy, db, file, bridge: await serve(file) };
}

const delivery = (i: number, tag: string) => ({ id: `msg_${tag}_${i}`, body: JSON.stringify(completionEvent({ data: { run_id: `${tag}_${i}`, pipeline_id: 'pl', status: 'succeeded' } })) });

async function post(url: () => string, d: { id: string; body: string }): Promise<number> {
  for (;;) {
    try {
      const res = await fetch(`${url()}/webhooks/planasonix`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...standardWebhookHeaders(SECRET, d.id, Math.floor(Date.now() / 1000), d.body) },
        body: d.body,
      });
      await res.arrayBuffer();
      if (res.status < 300) return res.status;
    } catch {
      // no answer: the sender retries, as Planasonix does
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

function counts(db: string) {
  const d = new Database(db, { readonly: true });
  try {
    return d.prepare("SELECT (SELECT count(*) FROM events) AS events, (SELECT count(*) FROM jobs WHERE state = 'done') AS done, (SELECT count(*) FROM jobs WHERE state != 'done') AS other").get() as { events: number; done: number; other: number };
  } finally {
    d.close();
  }
}

async function settle(db: string, expected: number, airflow: CountingAirflow, ms = 60_000) {
  const until = Date.now() + ms;
  let c = counts(db);
  while (Date.now() < until && (c.done < expected || airflow.created() < expected)) {
    await new Promise((r) => setTimeout(r, 100));
    c = counts(db);
  }
  return c;
}

describe('exactly once', () => {
  it('1,000 events while the bridge is killed with SIGKILL at random moments and restarted', async () => {
    const rig = await countedBridge();
    const { airflow, db, file } = rig;
    let bridge = rig.bridge;
    const deliveries = Array.from({ length: 1000 }, (_, i) => delivery(i, 'crash'));
    const queue = [...deliveries];
    let kills = 0;
    let sending = true;
    const killer = (async () => {
      while (sending || kills < 3) {
        await new Promise((r) => setTimeout(r, 200 + Math.random() * 600));
        bridge.child.kill('SIGKILL');
        kills++;
        bridge = await serve(file);
      }
    })();
    await Promise.all(Array.from({ length: 8 }, async () => {
      for (let d = queue.shift(); d; d = queue.shift()) await post(() => bridge.url, d);
    }));
    sending = false;
    await killer;
    const c = await settle(db, 1000, airflow);
    expect(kills).toBeGreaterThanOrEqual(3);
    expect(c).toEqual({ events: 1000, done: 1000, other: 0 });
    expect(airflow.created()).toBe(1000);
    for (const d of deliveries) expect(airflow.posts.has(`planasonix__${JSON.parse(d.body).data.run_id}__r`)).toBe(true);
    process.stdout.write(`crash: ${kills} kills, 1000 events stored once, ${airflow.created()} runs created once, ${[...airflow.posts.values()].filter((v) => v > 1).length} run ids re-posted (409)\n`);
  }, 120_000);

  it('503 bursts with Retry-After, answers past the timeout and dropped connections: still one run each', async () => {
    const { airflow, proxy, db, bridge } = await countedBridge((url) => startFaultProxy(url, { slowMs: 1500 }));
    const deliveries = Array.from({ length: 300 }, (_, i) => delivery(i, 'fault'));
    await Promise.all(deliveries.map((d) => post(() => bridge.url, d)));
    const c = await settle(db, 300, airflow);
    expect(c).toEqual({ events: 300, done: 300, other: 0 });
    expect(airflow.created()).toBe(300);
    expect(proxy.injected.unavailable).toBeGreaterThan(10);
    expect(proxy.injected.slow).toBeGreaterThan(10);
    expect(proxy.injected.dropped).toBeGreaterThan(10);
    process.stdout.write(`faults: ${JSON.stringify(proxy.injected)} injected, 300 events, ${airflow.created()} runs created once\n`);
  }, 120_000);

  it('each event delivered three times at once: one stored event, one run', async () => {
    const { airflow, db, bridge } = await countedBridge();
    const deliveries = Array.from({ length: 200 }, (_, i) => delivery(i, 'storm'));
    const statuses = await Promise.all(deliveries.flatMap((d) => [d, d, d]).map((d) => post(() => bridge.url, d)));
    expect(statuses.filter((s) => s === 202)).toHaveLength(200);
    expect(statuses.filter((s) => s === 200)).toHaveLength(400);
    const c = await settle(db, 200, airflow);
    expect(c).toEqual({ events: 200, done: 200, other: 0 });
    expect(airflow.created()).toBe(200);
    expect([...airflow.posts.values()].every((v) => v === 1)).toBe(true);
  }, 60_000);
});
