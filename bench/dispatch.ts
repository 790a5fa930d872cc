// Dispatch alone: 10,000 jobs queued in a SQLite store, then the dispatcher (in this process,
// default concurrency) triggers them on the sink answering like Airflow.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../src/config/load.js';
import { createAirflowClient } from '../src/dispatch/airflow.js';
import { createDispatcher } from '../src/dispatch/dispatcher.js';
import { parseEvent } from '../src/event/schema.js';
import { planEvent } from '../src/guard/plan.js';
import { createLogger } from '../src/log/logger.js';
import { openSqliteStore } from '../src/store/sqlite.js';
import { corpus, ONE_ROUTE, SECRET } from './common.js';
import { sinkUrl } from './sink.js';
import { percentile, printTable } from './table.js';

export async function benchDispatch(): Promise<void> {
  const JOBS = 10_000;
  const parsed = parseConfig(`
sources: { planasonix: { path: /w, verify: { scheme: standard-webhooks, secrets: ["${SECRET}"] } } }
airflow: { default: { url: "${sinkUrl}", auth: { type: none } } }
loop_guard: { breaker: { max_triggers: 100000000, window: 1m } }
routes: ${ONE_ROUTE}`, {});
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.problems));
  const config = parsed.config;
  const store = openSqliteStore({ path: join(mkdtempSync(join(tmpdir(), 'bench-dispatch-')), 'b.db'), busyTimeoutMs: 1000 });
  const queuedAt = Date.now();
  for (const r of corpus(JOBS, 'd')) {
    const event = parseEvent(Buffer.from(r.body));
    if (!event.ok) throw new Error(event.error.message);
    const plan = planEvent(event.value, 'planasonix', config);
    await store.insertEvent({ source: 'planasonix', deliveryId: r.headers['webhook-id'], scheme: 'standard-webhooks', eventId: event.value.id, type: event.value.type, pipelineId: event.value.data.pipeline_id, runId: event.value.data.run_id, headers: {}, body: Buffer.from(r.body), receivedAt: new Date(queuedAt), routing: plan.decisions }, plan.jobs, plan.policy);
  }
  const clients = new Map([['default', createAirflowClient('default', config.airflow.default!)]]);
  const dispatcher = createDispatcher({ store, config: () => config, clients: () => clients, logger: createLogger('silent') });
  const t0 = Date.now();
  dispatcher.start();
  while ((await store.jobCounts()).pending > 0) await new Promise((r) => setTimeout(r, 20));
  const seconds = (Date.now() - t0) / 1000;
  await dispatcher.stop();
  const done = (await store.listJobs({ limit: JOBS, state: 'done' })).items;
  const latencies = done.map((j) => (j.doneAt ?? 0) - t0).sort((a, b) => a - b);
  printTable(
    `Dispatch: ${JOBS.toLocaleString()} queued jobs, default concurrency (max_in_flight ${config.airflow.default!.max_in_flight}), endpoint answering like Airflow`,
    ['triggers/s', 'p50 queue→accepted ms', 'p99 queue→accepted ms', 'all done in s'],
    [[(done.length / seconds).toFixed(0), percentile(latencies, 50), percentile(latencies, 99), seconds.toFixed(1)]],
  );
  await clients.get('default')!.close();
  await store.close();
}
