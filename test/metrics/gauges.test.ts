// The gauges set at each scrape for alerting (deploy/prometheus/alerts.yaml): Airflow up,
// store ready, oldest pending job's age, open breakers.
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/log/logger.js';
import { createBridge } from '../../src/service.js';
import { SECRET, tempDir } from '../helpers/app.js';
import { completionEvent, standardWebhookHeaders } from '../helpers/sign.js';
import { startFaultAirflow, type FaultAirflow } from '../dispatch/fault-airflow.js';

let airflow: FaultAirflow;
let closedPort: number;
let cleanups: (() => Promise<void> | void)[] = [];
beforeEach(async () => {
  airflow = await startFaultAirflow();
  cleanups.push(() => airflow.close());
  // A port nothing listens on: taken, then released.
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  closedPort = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
});
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

const yaml = (dir: string, breaker = 100) => `
store: { url: "sqlite:${join(dir, 'bridge.db')}" }
dispatch: { poll_interval: 0.02s }
sources: { planasonix: { path: /webhooks/planasonix, verify: { scheme: standard-webhooks, secrets: ["${SECRET}"] } } }
airflow:
  default: { url: "${airflow.url}", auth: { type: password, username: admin, password: admin } }
  gone: { url: "http://127.0.0.1:${closedPort}", auth: { type: none }, timeout: 1s }
routes:
  - { name: sales, match: { pipeline_id: pl_sales }, trigger: { dag_id: dbt_sales_models } }
loop_guard: { breaker: { max_triggers: ${breaker}, window: 10m } }
`;

async function bridgeFrom(text: string) {
  const parsed = parseConfig(text, {});
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.problems));
  const created = await createBridge(parsed.config, createLogger('info', new Writable({ write: (_c, _e, done) => done() })));
  if (!created.ok) throw new Error(JSON.stringify(created.problems));
  cleanups.push(() => created.bridge.close());
  return created.bridge;
}

const webhook = (app: Parameters<typeof request>[0]) => {
  const body = JSON.stringify(completionEvent({ data: { run_id: `r${Math.random()}`, pipeline_id: 'pl_sales', status: 'succeeded' } }));
  return request(app).post('/webhooks/planasonix').set({ 'content-type': 'application/json', ...standardWebhookHeaders(SECRET, `m${Math.random()}`, Math.floor(Date.now() / 1000), body) }).send(body);
};

async function scrape(app: Parameters<typeof request>[0]) {
  const text = (await request(app).get('/metrics')).text;
  return (series: string) => {
    const line = text.split('\n').find((l) => l.startsWith(`${series} `));
    return line === undefined ? undefined : Number(line.slice(series.length + 1));
  };
}

describe('alerting gauges', () => {
  it('bridge_airflow_up: 1 for an instance whose health endpoint answers, 0 for one nobody listens on', async () => {
    const bridge = await bridgeFrom(yaml(tempDir().dir));
    const value = await scrape(bridge.app);
    expect(value('bridge_airflow_up{airflow="default"}')).toBe(1);
    expect(value('bridge_airflow_up{airflow="gone"}')).toBe(0);
  });

  it('bridge_ready: 1 while the store commits, 0 once it cannot (and the scrape still answers)', async () => {
    const bridge = await bridgeFrom(yaml(tempDir().dir));
    expect((await scrape(bridge.app))('bridge_ready')).toBe(1);
    await bridge.store.close();
    const res = await request(bridge.app).get('/metrics');
    expect(res.status).toBe(200);
    expect((await scrape(bridge.app))('bridge_ready')).toBe(0);
  });

  it('bridge_oldest_pending_age_seconds: the oldest pending job\'s age, 0 when nothing is pending', async () => {
    const bridge = await bridgeFrom(yaml(tempDir().dir));
    expect((await scrape(bridge.app))('bridge_oldest_pending_age_seconds')).toBe(0);
    expect((await webhook(bridge.app)).status).toBe(202); // dispatcher not started: the job stays pending
    await new Promise((r) => setTimeout(r, 1100));
    await webhook(bridge.app);
    const age = (await scrape(bridge.app))('bridge_oldest_pending_age_seconds')!;
    expect(age).toBeGreaterThanOrEqual(1);
    expect(age).toBeLessThan(10);
    bridge.dispatcher.start();
    await expect.poll(async () => (await bridge.store.jobCounts()).pending, { timeout: 10_000 }).toBe(0);
    expect((await scrape(bridge.app))('bridge_oldest_pending_age_seconds')).toBe(0);
  });

  it('bridge_breakers_open: counts the loop guard\'s open breakers', async () => {
    const bridge = await bridgeFrom(yaml(tempDir().dir, 1));
    await webhook(bridge.app);
    expect((await scrape(bridge.app))('bridge_breakers_open')).toBe(0);
    await webhook(bridge.app); // the second trigger for the pair within the window opens its breaker
    expect((await scrape(bridge.app))('bridge_breakers_open')).toBe(1);
  });
});
