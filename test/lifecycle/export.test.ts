// `planasonix-bridge export` as users run it (the built CLI) beside a store that is open and
// in use: every field round-trips (compared with the store's own reads), a pruned event is no
// longer exported, --before filters, and the exit codes follow the CLI's table.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openPostgresStore } from '../../src/store/postgres.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { ExportedEvent, NewEvent, Store } from '../../src/store/types.js';
import { SECRET, tempDir } from '../helpers/app.js';
import { runCli } from '../helpers/process.js';
import { freshPostgresDatabase } from '../helpers/stores.js';

const HOUR = 3_600_000;
const POLICY = { breaker: { maxTriggers: 1000, windowMs: 60_000 } };

const run = (args: string[]) => runCli(args, { SECRET });

/** A line as written, turned back into the store's types (body bytes, dates). */
function parse(line: string): ExportedEvent {
  const x = JSON.parse(line) as { event: Record<string, unknown>; jobs: ExportedEvent['jobs']; attempts: ExportedEvent['attempts'] };
  return { event: { ...(x.event as unknown as ExportedEvent['event']), body: Buffer.from(x.event.body as string, 'base64'), receivedAt: new Date(x.event.receivedAt as string) }, jobs: x.jobs, attempts: x.attempts };
}

const kinds = [
  {
    name: 'sqlite',
    async fresh() {
      const temp = tempDir();
      const path = join(temp.dir, 'bridge.db');
      return { dir: temp.dir, url: `sqlite:${path}`, open: async (clock: () => number) => openSqliteStore({ path, busyTimeoutMs: 500, clock }), cleanup: async () => temp.cleanup() };
    },
  },
  {
    name: 'postgres',
    async fresh() {
      const temp = tempDir();
      const db = await freshPostgresDatabase();
      return { dir: temp.dir, url: db.url, open: (clock: () => number) => openPostgresStore({ url: db.url, poolSize: 2, clock }), cleanup: async () => (await db.drop(), temp.cleanup()) };
    },
  },
];

describe.each(kinds)('export: $name', (kind) => {
  let cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.reverse()) await c();
    cleanups = [];
  });

  it('round-trips every field of events, jobs and attempts; a pruned event is no longer exported; --before filters', async () => {
    const now = Date.now();
    const location = await kind.fresh();
    // The "running bridge": this store stays open (and written) while export reads.
    const store: Store = await location.open(() => now);
    cleanups.push(location.cleanup, () => store.close());
    const config = join(location.dir, 'bridge.yaml');
    writeFileSync(config, `store: { url: "${location.url}" }\nsources: { planasonix: { path: /webhooks/planasonix, verify: { scheme: standard-webhooks, secrets: ["${SECRET}"] } } }\n`);
    const event = (i: number, receivedAt: number): NewEvent => ({
      source: 'planasonix', deliveryId: `msg_${i}`, scheme: 'standard-webhooks', eventId: `evt_${i}`, type: 'run.succeeded', pipelineId: 'pl_1', runId: `run_${i}`,
      headers: { 'webhook-id': `msg_${i}`, 'user-agent': 'Planasonix/1' }, body: Buffer.from(`{"id":"evt_${i}",  "bytes": "\u00e9xact"}`), receivedAt: new Date(receivedAt),
      routing: [{ route: 'r', matched: true }, { route: 'other', matched: false, reason: 'pipeline_id', detail: 'wanted pl_2' } as never],
    });
    const job = (route: string) => ({
      route, airflow: 'default', dagId: `dag_${route}`, request: { dag_run_id: `planasonix__${route}`, logical_date: null, conf: { a: 1, nested: { b: [1, 2] } }, note: 'n' },
      sourcePipeline: 'pl_1', target: `airflow:dag_${route}`, lineage: { chain_id: 'c', depth: 1, path: ['planasonix:pl_1', `airflow:dag_${route}`], event_id: 'evt', route },
    });
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) {
      const r = await store.insertEvent(event(i, now - (10 - i) * HOUR), i % 2 === 0 ? [job('a'), job('b')] : [], POLICY);
      if (!r.ok) throw new Error(r.error.message);
      ids.push(r.value.id);
    }
    // Some history: an attempt that will retry, then done; a dead one.
    const claimed = await store.claimJobs({ airflow: 'default', now, limit: 3, leaseMs: 30_000, owner: 'w' });
    for (const [k, j] of claimed.entries()) {
      await store.finishAttempt(j.id, 'w', { startedAt: now, durationMs: 7, httpStatus: 503, outcome: 'retry', detail: 'busy', nextRetryAt: now }, { state: 'pending', nextAttemptAt: now, error: 'busy' });
      const [again] = (await store.claimJobs({ airflow: 'default', now, limit: 100, leaseMs: 30_000, owner: 'w' })).filter((c) => c.id === j.id);
      if (k < 2) await store.finishAttempt(again!.id, 'w', { startedAt: now, durationMs: 9, httpStatus: 200, outcome: 'triggered', detail: 'queued', nextRetryAt: null }, { state: 'done', airflowState: 'queued', dagRunId: again!.dagRunId });
      else await store.finishAttempt(again!.id, 'w', { startedAt: now, durationMs: 9, httpStatus: 404, outcome: 'dead', detail: 'no DAG', nextRetryAt: null }, { state: 'dead', error: 'no DAG' });
    }

    const out = join(location.dir, 'archive.jsonl');
    const first = await run(['export', '--config', config, '--out', out]);
    expect(first.stderr).toContain('export: 7 event(s) written to');
    expect(first.code).toBe(0);
    expect(existsSync(`${out}.partial`)).toBe(false);
    const lines = readFileSync(out, 'utf8').trimEnd().split('\n').map(parse);
    expect(lines.map((l) => l.event.id)).toEqual(ids);
    for (const line of lines) {
      expect(line.event).toEqual(await store.getEvent(line.event.id));
      const jobs = await store.jobsOfEvent(line.event.id);
      expect(line.jobs.map(({ leaseOwner: _o, leaseUntil: _u, counted: _c, ...j }) => j)).toEqual(jobs);
      const attempts = (await Promise.all(jobs.map((j) => store.attemptsOfJob(j.id)))).flat();
      expect([...line.attempts].sort((x, y) => `${x.jobId}${x.n}`.localeCompare(`${y.jobId}${y.n}`))).toEqual(attempts.sort((x, y) => `${x.jobId}${x.n}`.localeCompare(`${y.jobId}${y.n}`)));
    }
    expect(lines.flatMap((l) => l.attempts).map((a) => a.outcome).sort()).toEqual(['dead', 'retry', 'retry', 'retry', 'triggered', 'triggered']);

    // Prune what retention would: events received over 6 h ago without a pending job.
    const batch = await store.pruneBatch({ now, eventsBefore: now - 6 * HOUR, deadBefore: now + 1, dedupeBefore: 0 }, 100);
    const kept = new Set((await Promise.all(ids.map(async (id) => ((await store.getEvent(id)) ? id : undefined)))).filter(Boolean));
    expect(batch.deleted.events).toBeGreaterThan(0);
    expect(kept.size).toBe(7 - batch.deleted.events);
    const second = await run(['export', '--config', config]);
    expect(second.code).toBe(0);
    const exported = second.stdout.trimEnd().split('\n').map((l) => parse(l).event.id);
    expect(exported).toEqual(ids.filter((id) => kept.has(id)));

    const before = await run(['export', '--config', config, '--before', new Date(now - 4.5 * HOUR).toISOString()]);
    expect(before.stdout.trimEnd().split('\n').map((l) => parse(l).event.id)).toEqual(ids.slice(0, 6).filter((id) => kept.has(id)));
  });

  it('exit codes: 2 for a date that is not one, 7 when there is no store to read', async () => {
    const location = await kind.fresh();
    cleanups.push(location.cleanup);
    const config = join(location.dir, 'bridge.yaml');
    const url = kind.name === 'sqlite' ? `sqlite:${join(location.dir, 'missing.db')}` : location.url.replace(/\/[^/]*$/, '/no_such_database');
    writeFileSync(config, `store: { url: "${url}" }\nsources: { planasonix: { path: /w, verify: { scheme: standard-webhooks, secrets: ["${SECRET}"] } } }\n`);
    expect((await run(['export', '--config', config, '--before', 'last tuesday'])).code).toBe(2);
    const missing = await run(['export', '--config', config, '--out', join(location.dir, 'x.jsonl')]);
    expect(missing.code).toBe(7);
    expect(missing.stderr).toMatch(/export: (no store at|the store cannot be read)/);
  });
});
