// PostgreSQL only: what two transactions at once can do to an insert (a replica pruning while
// another ingests): held open by hand where one interleaving is meant, run at once where any
// interleaving must keep the breaker's count; and the upgrade that repairs that count.
import { afterEach, describe, expect, it } from 'vitest';
import pg from 'pg';
import { openPostgresStore, type PostgresStore } from '../../src/store/postgres.js';
import { postgresMigrations } from '../../src/store/postgres-migrations.js';
import { bareEvent, bareJob, freshPostgresDatabase, pruneAll } from '../helpers/stores.js';

const POLICY = { breaker: { maxTriggers: 1000, windowMs: 60_000 } };
const event = bareEvent;
const job = (n: number) => bareJob(`run_${n}`);

describe('PostgreSQL store under concurrent transactions', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('a redelivery whose insert waits on a prune of its event is still a duplicate of the pruned one', async () => {
    const db = await freshPostgresDatabase();
    cleanups.push(db.drop);
    const store: PostgresStore = await openPostgresStore({ url: db.url, poolSize: 4 });
    cleanups.push(() => store.close());
    const first = await store.insertEvent(event('d1'), [], POLICY);
    if (!first.ok) throw new Error(first.error.message);

    // A prune of that event, as the pruner writes it, left uncommitted for now.
    const pruner = new pg.Client({ connectionString: db.url });
    await pruner.connect();
    cleanups.push(() => pruner.end());
    await pruner.query('BEGIN');
    await pruner.query('INSERT INTO dedupe_keys (source, delivery_id, id, event_id, pruned_at) SELECT source, delivery_id, id, event_id, 0 FROM events WHERE id = $1', [first.value.id]);
    await pruner.query('DELETE FROM events WHERE id = $1', [first.value.id]);

    // Its snapshot still holds the event, and the insert waits on the deleted row's lock.
    const redelivery = store.insertEvent(event('d1'), [], POLICY);
    const fresh = store.insertEvent(event('d2'), [], POLICY);
    await new Promise((r) => setTimeout(r, 300));
    await pruner.query('COMMIT');

    const [again, other] = await Promise.all([redelivery, fresh]);
    expect(again).toEqual({ ok: true, value: { id: first.value.id, duplicate: true, jobs: [], newLearnedEdge: false } });
    expect(other.ok && other.value.duplicate).toBe(false);
    const { rows } = await pruner.query<{ delivery_id: string }>('SELECT delivery_id FROM events ORDER BY delivery_id');
    expect(rows.map((r) => r.delivery_id)).toEqual(['d2']);
  });

  /** A store on a fresh database with `n` events of one pair, their jobs done, at `now()`'s time. */
  const donePair = async (n: number, clock: () => number) => {
    const db = await freshPostgresDatabase();
    cleanups.push(db.drop);
    const store = await openPostgresStore({ url: db.url, poolSize: 4, clock });
    cleanups.push(() => store.close());
    const at = (d: string) => ({ ...event(d), receivedAt: new Date(clock()) });
    for (let i = 0; i < n; i++) expect((await store.insertEvent(at(`old${i}`), [job(i)], POLICY)).ok).toBe(true);
    for (const claimed of await store.claimJobs({ airflow: 'default', now: clock(), limit: 100, leaseMs: 30_000, owner: 'w' })) {
      await store.finishAttempt(claimed.id, 'w', { startedAt: clock(), durationMs: 1, httpStatus: 200, outcome: 'triggered', detail: 'ok', nextRetryAt: null }, { state: 'done', airflowState: 'queued', dagRunId: claimed.dagRunId });
    }
    const sql = new pg.Client({ connectionString: db.url });
    await sql.connect();
    cleanups.push(() => sql.end());
    return { store, at, sql, url: db.url };
  };
  const HOUR = 3_600_000;
  const cutoffs = (now: number) => ({ now, eventsBefore: now - HOUR, deadBefore: now - HOUR, dedupeBefore: now - 2 * HOUR });
  /** The breaker's kept count of the one pair, and where it counts from. */
  const kept = async (sql: pg.Client) =>
    (await sql.query<{ n: number; since: number }>("SELECT n::int AS n, counted_since::float8 AS since FROM pair_counts WHERE source_pipeline = 'pl_1' AND target = 'airflow:dag_a'")).rows[0]!;

  it('one replica pruning a pair\'s old jobs while another ingests new ones for it: no deadlock, and its kept count stays the count of its counted jobs', async () => {
    let now = Date.parse('2026-12-01T00:00:00Z');
    const clock = () => now;
    const { store: a, at, sql, url } = await donePair(60, clock);
    const b = await openPostgresStore({ url, poolSize: 4, clock });
    cleanups.push(() => b.close());
    now += 2 * HOUR; // the old jobs are past the window (1 min) and the retention below (1 h)

    const prune = async () => {
      const { events, jobs } = await pruneAll(a, () => cutoffs(now), 5);
      return { events, jobs };
    };
    // Eight senders of five events each: many small batches of the same pair, interleaved with the prune's.
    const ingest = Promise.all(
      Array.from({ length: 8 }, async (_, s) => {
        const states: string[] = [];
        for (let i = 0; i < 5; i++) {
          const r = await b.insertEvent(at(`new${s}_${i}`), [job(100 + 5 * s + i)], POLICY);
          if (!r.ok) throw new Error(r.error.message);
          states.push(...r.value.jobs.map((j) => j.state));
        }
        return states;
      }),
    );
    const [pruned, states] = await Promise.all([prune(), ingest]);
    expect(pruned).toEqual({ events: 60, jobs: 60 });
    expect(states.flat()).toEqual(Array(40).fill('pending'));

    const { rows } = await sql.query<{ n: number; counted: number }>(
      `SELECT p.n::int AS n, (SELECT count(*)::int FROM jobs j WHERE j.source_pipeline = p.source_pipeline AND j.target = p.target AND j.counted AND j.created_at > p.counted_since) AS counted
       FROM pair_counts p WHERE p.source_pipeline = 'pl_1' AND p.target = 'airflow:dag_a'`,
    );
    expect(rows).toEqual([{ n: 40, counted: 40 }]);
  });

  it('a prune leaves a busy pair\'s row alone: an ingest holding it to its commit does not hold up the prune', async () => {
    let now = Date.parse('2026-12-01T00:00:00Z');
    const { store, at, sql } = await donePair(5, () => now);
    now += HOUR + 1000; // past the retention (1 h); a new event's judgment moves the pair's count past the old jobs
    expect((await store.insertEvent(at('new'), [job(99)], POLICY)).ok).toBe(true);
    // An ingest of the pair in progress: its row locked, as pairs_lock leaves it until the commit.
    await sql.query('BEGIN');
    await sql.query("SELECT 1 FROM pair_counts WHERE source_pipeline = 'pl_1' AND target = 'airflow:dag_a' FOR UPDATE");
    const batch = store.pruneBatch(cutoffs(now), 100);
    const first = await Promise.race([batch.then(() => 'pruned'), new Promise((r) => setTimeout(() => r('waited on the pair'), 3000))]);
    await sql.query('COMMIT');
    expect(first).toBe('pruned');
    expect((await batch).deleted).toMatchObject({ events: 5, jobs: 5 });
  });

  it('an event whose job a quiet pair\'s count still holds waits a minute past retention, then goes with the count corrected', async () => {
    let now = Date.parse('2026-12-01T00:00:00Z');
    const { store, at, sql } = await donePair(3, () => now);
    now += HOUR + 30_000; // past the retention, and nothing of the pair judged since: its count still holds the three
    expect(await pruneAll(store, () => cutoffs(now), 100)).toMatchObject({ events: 0, jobs: 0 });
    expect((await kept(sql)).n).toBe(3);
    now += 31_000; // quiet for a minute past the retention
    expect(await pruneAll(store, () => cutoffs(now), 100)).toMatchObject({ events: 3, jobs: 3 });
    expect((await kept(sql)).n).toBe(0);
    expect((await store.insertEvent(at('next'), [job(50)], POLICY)).ok).toBe(true);
    expect((await kept(sql)).n).toBe(1);
  });

  it('a pair whose count passed the job by less than 5 s counts as not yet past it: the event waits, then goes with its row locked, the count unchanged', async () => {
    let now = Date.parse('2026-12-01T00:00:00Z');
    const { store, at, sql } = await donePair(1, () => now);
    const created = now;
    now += 61_000; // the window (1 min) moves 1 s past the old job
    expect((await store.insertEvent(at('next'), [job(50)], POLICY)).ok).toBe(true);
    expect(await kept(sql)).toEqual({ n: 1, since: created + 1000 });
    now = created + HOUR + 30_000;
    expect((await pruneAll(store, () => cutoffs(now), 100)).events).toBe(0);
    now = created + HOUR + 61_000;
    expect((await pruneAll(store, () => cutoffs(now), 100)).events).toBe(1);
    expect((await kept(sql)).n).toBe(1);
  });

  it('an older database\'s kept breaker counts are recounted once at upgrade: jobs pruned by an older bridge leave them', async () => {
    const db = await freshPostgresDatabase();
    cleanups.push(db.drop);
    const store = await openPostgresStore({ url: db.url, poolSize: 2 });
    for (const [i, d] of ['p1', 'p2', 'p3'].entries()) expect((await store.insertEvent(event(d), [job(i)], POLICY)).ok).toBe(true);
    await store.close();
    // What an older bridge's prune left: two of the jobs gone, the count still 3.
    const sql = new pg.Client({ connectionString: db.url });
    await sql.connect();
    cleanups.push(() => sql.end());
    await sql.query("DELETE FROM jobs WHERE event_id IN (SELECT id FROM events WHERE delivery_id IN ('p1', 'p2'))");
    await sql.query('UPDATE schema_version SET version = $1', [postgresMigrations.length - 1]);
    const count = async () => (await kept(sql)).n;
    expect(await count()).toBe(3);
    await (await openPostgresStore({ url: db.url, poolSize: 2 })).close();
    expect(await count()).toBe(1);
  });
});
