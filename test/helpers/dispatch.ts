import { join } from 'node:path';
import { Writable } from 'node:stream';
import { createAirflowClient } from '../../src/dispatch/airflow.js';
import { createDispatcher } from '../../src/dispatch/dispatcher.js';
import { parseEvent } from '../../src/event/schema.js';
import { createLogger } from '../../src/log/logger.js';
import { planEvent } from '../../src/guard/plan.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { Job } from '../../src/store/types.js';
import { configFrom, SECRET, tempDir } from './app.js';
import { completionEvent } from './sign.js';

/** Store + router + dispatcher on a temp SQLite file, without HTTP; events go in as ingress would put them. */
export function dispatchRig(yaml: string, options: { random?: () => number } = {}) {
  const temp = tempDir();
  const config = configFrom(`sources: { planasonix: { path: /w, verify: { scheme: standard-webhooks, secrets: ["${SECRET}"] } } }\n${yaml}`);
  const store = openSqliteStore({ path: join(temp.dir, 'bridge.db'), busyTimeoutMs: 500 });
  const logLines: Record<string, unknown>[] = [];

  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) logLines.push(JSON.parse(line));
      done();
    },
  });
  const logger = createLogger('debug', sink);
  const clients = new Map(Object.entries(config.airflow).map(([name, a]) => [name, createAirflowClient(name, a, { logger })]));
  const dispatcher = createDispatcher({ store, config: () => config, clients: () => clients, logger, ...(options.random ? { random: options.random } : {}) });
  let deliveries = 0;

  return {
    store,
    config,
    dispatcher,
    logLines,
    /** Stores an event (routed like ingress does) and returns its stored id. */
    async submit(overrides: Record<string, unknown> = {}): Promise<string> {
      const body = Buffer.from(JSON.stringify(completionEvent(overrides)));
      const event = parseEvent(body);
      if (!event.ok) throw new Error(event.error.message);
      const plan = planEvent(event.value, 'planasonix', config);
      const inserted = await store.insertEvent(
        { source: 'planasonix', deliveryId: `d${++deliveries}-${Date.now()}`, scheme: 'standard-webhooks', eventId: event.value.id, type: event.value.type, pipelineId: event.value.data.pipeline_id, runId: event.value.data.run_id, headers: {}, body, receivedAt: new Date(), routing: plan.decisions },
        plan.jobs,
        plan.policy,
      );
      if (!inserted.ok) throw new Error(inserted.error.message);
      dispatcher.wake();
      return inserted.value.id;
    },
    /** Polls the store until every job of the event is done or dead (or the time is up). */
    async settled(eventId: string, timeoutMs = 15_000): Promise<Job[]> {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const jobs = await store.jobsOfEvent(eventId);
        if (jobs.length > 0 && jobs.every((j) => j.state !== 'pending')) return jobs;
        if (Date.now() > until) throw new Error(`jobs not settled: ${JSON.stringify(jobs.map((j) => [j.route, j.state, j.attempts, j.lastError]))}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async close() {
      await dispatcher.stop();
      await Promise.all([...clients.values()].map((c) => c.close()));
      await store.close();
      temp.cleanup();
    },
  };
}
