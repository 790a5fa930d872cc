import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { sqliteMigrations } from '../../src/store/sqlite-migrations.js';
import type { IngestPolicy, NewEvent, NewJob } from '../../src/store/types.js';

const POLICY: IngestPolicy = { breaker: { maxTriggers: 100, windowMs: 60_000 } };
import { tempDir } from '../helpers/app.js';
import { bareJob, pruneAll } from '../helpers/stores.js';

let cleanup: (() => void) | undefined;
afterEach(() => cleanup?.());

function dbFile(): string {
  const temp = tempDir();
  cleanup = temp.cleanup;
  return join(temp.dir, 'nested', 'dir', 'bridge.db');
}

const event = (deliveryId: string, source = 'planasonix'): NewEvent => ({
  source,
  deliveryId,
  scheme: 'standard-webhooks',
  eventId: `evt_${deliveryId}`,
  type: 'run.succeeded',
  pipelineId: 'pl_1',
  runId: 'run_1',
  headers: { 'webhook-id': deliveryId },
  body: Buffer.from('{"exact":  "bytes"}'),
  receivedAt: new Date('2026-11-24T02:14:09.123Z'),
  routing: [{ route: 'r', matched: false, reason: 'type is "run.succeeded", route wants "run.failed"' }],
});

describe('SQLite store', () => {
  it('creates the file and its folders, in WAL mode, at the latest schema version', async () => {
    const path = dbFile();
    const store = openSqliteStore({ path, busyTimeoutMs: 100 });
    await store.close();
    const db = new Database(path, { readonly: true });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('user_version', { simple: true })).toBe(sqliteMigrations.length);
    db.close();
  });

  it('fsyncs every commit: synchronous = FULL on the connection it writes with; checkpoints are the worker thread\'s; the WAL file is cut back past 4 MB', async () => {
    const store = openSqliteStore({ path: dbFile(), busyTimeoutMs: 100 });
    expect(store.settings()).toEqual({ journalMode: 'wal', synchronous: 'full', walSizeLimit: 4 * 1024 * 1024, autoCheckpointPages: 0 });
    await store.close();
  });

  it('commits after a prune batch (whose own commit skips the fsync), even after one that failed, fsync again', async () => {
    const path = dbFile();
    const store = openSqliteStore({ path, busyTimeoutMs: 100 });
    const old = { receivedAt: new Date(Date.now() - 3_600_000) };
    for (const id of ['a', 'b']) await store.insertEvent({ ...event(id), ...old }, [], POLICY);
    const now = Date.now();
    const cutoffs = { now, eventsBefore: now - 60_000, deadBefore: now, dedupeBefore: 0 };
    expect((await store.pruneBatch(cutoffs, 1)).deleted.events).toBe(1);
    expect(store.settings().synchronous).toBe('full');
    const other = new Database(path);
    other.exec("CREATE TRIGGER no_delete BEFORE DELETE ON events BEGIN SELECT RAISE(ABORT, 'refused by the test'); END");
    other.close();
    await expect(store.pruneBatch(cutoffs, 1)).rejects.toThrow('refused by the test');
    expect(store.settings().synchronous).toBe('full');
    expect((await store.stats()).rows.events).toBe(1); // the failed batch deleted nothing
    await store.close();
  });

  it('stores the exact bytes and reads the event back', async () => {
    const store = openSqliteStore({ path: dbFile(), busyTimeoutMs: 100 });
    const inserted = await store.insertEvent(event('d1'), [], POLICY);
    if (!inserted.ok) throw new Error(inserted.error.message);
    expect(inserted.value.duplicate).toBe(false);
    const back = await store.getEvent(inserted.value.id);
    expect(back).toMatchObject({ ...event('d1'), id: inserted.value.id, status: 'unrouted' });
    expect(back!.body.equals(Buffer.from('{"exact":  "bytes"}'))).toBe(true);
    await store.close();
  });

  it('dedupes on (source, delivery id): same id in another source is a new event', async () => {
    const store = openSqliteStore({ path: dbFile(), busyTimeoutMs: 100 });
    const first = await store.insertEvent(event('d1'), [], POLICY);
    const again = await store.insertEvent(event('d1'), [], POLICY);
    const other = await store.insertEvent(event('d1', 'other-source'), [], POLICY);
    expect(again).toEqual({ ok: true, value: { id: first.ok && first.value.id, duplicate: true, jobs: [], newLearnedEdge: false } });
    expect(other.ok && other.value.duplicate).toBe(false);
    await store.close();
  });

  it('reopens an existing database without re-running migrations, keeping the data', async () => {
    const path = dbFile();
    const first = openSqliteStore({ path, busyTimeoutMs: 100 });
    const inserted = await first.insertEvent(event('d1'), [], POLICY);
    await first.close();
    const second = openSqliteStore({ path, busyTimeoutMs: 100 });
    expect(await second.getEvent(inserted.ok ? inserted.value.id : '')).toBeDefined();
    await second.close();
  });

  it('space freed by pruning goes back to the file system (auto_vacuum incremental); an old file is vacuumed once at open', async () => {
    const path = dbFile();
    mkdirSync(dirname(path), { recursive: true });
    const old = new Database(path);
    old.exec('CREATE TABLE leftover (x)'); // a file from before: auto_vacuum none, with a table
    expect(old.pragma('auto_vacuum', { simple: true })).toBe(0);
    old.close();
    const logged: string[] = [];
    const store = openSqliteStore({ path, busyTimeoutMs: 100, log: (_level, message) => logged.push(message) });
    expect(logged).toEqual([expect.stringContaining('one-time VACUUM'), 'store: VACUUM done']);
    const body = Buffer.alloc(3000, 'x');
    for (let k = 0; k < 4; k++) await Promise.all(Array.from({ length: 500 }, (_, i) => store.insertEvent({ ...event(`d${k}_${i}`), body, receivedAt: new Date(Date.now() - 3_600_000) }, [], POLICY)));
    const before = (await store.stats()).bytes;
    await pruneAll(store, () => {
      const now = Date.now();
      return { now, eventsBefore: now - 60_000, deadBefore: now, dedupeBefore: 0 };
    }, 500);
    const after = (await store.stats()).bytes;
    expect((await store.stats()).rows.events).toBe(0);
    expect(after).toBeLessThan(before / 3);
    await store.close();
    await openSqliteStore({ path, busyTimeoutMs: 100, log: (_l, m) => logged.push(m) }).close();
    expect(logged).toHaveLength(2); // not again
  });

  it('refuses a database written by a newer bridge', () => {
    const path = dbFile();
    openSqliteStore({ path, busyTimeoutMs: 100 }).close();
    const db = new Database(path);
    db.pragma(`user_version = ${sqliteMigrations.length + 1}`);
    db.close();
    expect(() => openSqliteStore({ path, busyTimeoutMs: 100 })).toThrow(/newer than this bridge knows/);
  });

  it('reports store_unavailable, writing nothing, while another writer holds the lock', async () => {
    const path = dbFile();
    const store = openSqliteStore({ path, busyTimeoutMs: 50 });
    const blocker = new Database(path);
    blocker.exec('BEGIN EXCLUSIVE');
    const result = await store.insertEvent(event('d1'), [], POLICY);
    expect(result).toMatchObject({ ok: false, error: { reason: 'store_unavailable' } });
    expect(await store.checkWritable()).toMatchObject({ ok: false });
    blocker.exec('ROLLBACK');
    expect(blocker.prepare('SELECT count(*) AS n FROM events').get()).toEqual({ n: 0 });
    blocker.close();
    // The probe commits again, but the failed ingest commit is remembered until a real
    // commit succeeds (or FAILED_COMMIT_MEMORY_MS passes): a lucky probe is not proof.
    expect(await store.checkWritable()).toMatchObject({ ok: false, error: { message: /the last commit failed .*database is locked/ } });
    expect(await store.insertEvent(event('d1'), [], POLICY)).toMatchObject({ ok: true });
    expect(await store.checkWritable()).toEqual({ ok: true, value: true });
    await store.close();
  });
});

describe('SQLite store: restart (the shared contract is in contract.test.ts)', () => {
  const { request: _unrendered, ...broken } = bareJob('', 'dag_b', 'broken');
  const jobs: NewJob[] = [bareJob('planasonix__run_1__r'), { ...broken, error: 'conf: missing' }];
  let now = Date.parse('2026-12-01T00:00:00Z');
  const clock = () => now;

  it('an older file\'s kept breaker counts are recounted once: jobs pruned by an older bridge leave them', async () => {
    const path = dbFile();
    const store = openSqliteStore({ path, busyTimeoutMs: 100, clock });
    for (const d of ['p1', 'p2', 'p3']) await store.insertEvent(event(d), jobs.slice(0, 1), POLICY);
    await store.close();
    // What an older bridge's prune left: two of the jobs gone, the count still 3.
    const db = new Database(path);
    db.prepare("DELETE FROM jobs WHERE event_id IN (SELECT id FROM events WHERE delivery_id IN ('p1', 'p2'))").run();
    db.pragma(`user_version = ${sqliteMigrations.length - 1}`);
    const count = () => db.prepare<[], { n: number }>("SELECT n FROM pair_counts WHERE source_pipeline = 'pl_1' AND target = 'airflow:dag_a'").get()!.n;
    expect(count()).toBe(3);
    openSqliteStore({ path, busyTimeoutMs: 100, clock }).close();
    expect(count()).toBe(1);
    db.close();
  });

  it('a reopened store (process restart) releases leases at once; replay re-queues a dead job', async () => {
    const path = dbFile();
    const first = openSqliteStore({ path, busyTimeoutMs: 100, clock });
    await first.insertEvent(event('d1'), jobs.slice(0, 1), POLICY);
    const [job] = await first.claimJobs({ airflow: 'default', now, limit: 1, leaseMs: 30_000, owner: 'dead-process' });
    await first.close();
    const second = openSqliteStore({ path, busyTimeoutMs: 100, clock });
    const [resumed] = await second.claimJobs({ airflow: 'default', now, limit: 1, leaseMs: 30_000, owner: 'new-process' });
    expect(resumed!.id).toBe(job!.id);
    await second.finishAttempt(job!.id, 'new-process', { startedAt: now, durationMs: 1, httpStatus: 404, outcome: 'dead', detail: 'no dag', nextRetryAt: null }, { state: 'dead', error: 'no dag' });
    expect(await second.replayJob(job!.id, now + 1)).toBe(true);
    expect(await second.getJob(job!.id)).toMatchObject({ state: 'pending', attempts: 0, nextAttemptAt: now + 1 });
    expect(await second.replayJob(job!.id, now + 2)).toBe(false);
    await second.close();
  });
});
