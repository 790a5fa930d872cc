import { randomUUID } from 'node:crypto';
import { newRowId } from './ids.js';
import pg from 'pg';
import { fail, ok } from '../errors/result.js';
import { judgeJob, type PairState } from '../guard/breaker.js';
import { groupCommit } from './group-commit.js';
import { postgresMigrations } from './postgres-migrations.js';
import { activityOf, exportLines, jobUpdateValues, newJobRow, runChanged, runUpdateValues, toAttempt, toEvent, toJob, toTrackedRun, type AttemptRow, type EventRow, type JobRow } from './rows.js';
import { isFinal, type RunChange } from '../track/run.js';
import { breakerCause, deadJobCause, runCauses, type EventIds, type NewNotification, type Notifier, type NotifyCause } from '../notify/types.js';
import { FINISHED_NOTIFICATION, newNotificationValues, notificationUpdateValues, toNotification, toNotificationAttempt, type NotificationAttemptRow, type NotificationRow } from './notify-rows.js';
import type { Result } from '../errors/result.js';
import { PRUNED_TABLES, type Attempt, type Inserted, type IngestPolicy, type JobState, type JobUpdate, type NewEvent, type NewJob, type PrunedTable, type Store, type StoreReason } from './types.js';

// Several replicas share one database; PostgreSQL gives the guarantees: unique keys for
// dedupe, FOR UPDATE SKIP LOCKED for claims, advisory locks for migrations and for judging a
// breaker pair, LISTEN/NOTIFY to wake the other replicas.

export interface PostgresOptions {
  url: string;
  poolSize: number;
  clock?: () => number;
}

export interface PostgresStore extends Store {
  /** Calls `listener` when any replica commits new pending jobs; returns an unsubscribe. */
  subscribe(listener: () => void): Promise<() => Promise<void>>;
}

const CHANNEL = 'planasonix_bridge_jobs';
const MIGRATION_LOCK = 7_262_311_001; // any constant: the key replicas agree on
/** Held (session-level) by the one replica pruning now; freed with its connection if it dies. */
const PRUNE_LOCK = 7_262_311_002;
/** Where the bridge vacuums for autovacuum (it is off), a pruned table is analysed at most this often. */
const ANALYZE_EVERY_MS = 10 * 60_000;
/**
 * How long past retention an event waits when a counted job of it is still in its pair's kept
 * count (the pair not judged since the job left the window, by COUNT_MARGIN_MS): a busy pair's
 * next ingest moves the count past it, and the prune then needs no lock on the pair's row, on
 * which that ingest would queue; only a pair quiet this long has its row locked and its count
 * corrected.
 */
const QUIET_PAIR_MS = 60_000;
/** How long a failed ingest or dispatch commit keeps readiness at 503 unless a commit succeeds after it. */
const FAILED_COMMIT_MEMORY_MS = 10_000;
const PROBE_BYTES = 16 * 1024;

/**
 * The one definition of "prunable" for an event row `e`, `deadBefore` being the SQL of the
 * dead letters' cutoff (ms): none of its jobs is pending, and none is a dead letter that died
 * (last updated) at or after it, so dead letters keep their event on their own clock. Done and
 * blocked jobs do not hold it; an event without jobs is prunable too. A job whose Airflow run
 * is still being tracked (run_open) keeps its event as well, until the run ends or the horizon passes.
 */
const prunable = (deadBefore: string) =>
  `NOT EXISTS (SELECT 1 FROM jobs j WHERE j.event_id = e.id AND (j.state = 'pending' OR j.run_open = 1 OR (j.state = 'dead' AND j.updated_at >= ${deadBefore})))`;

/**
 * Job `j` is one its pair's kept count `k` (a pair_counts row) still includes, or (with a
 * margin) one the count passed less than that long ago.
 */
const IN_KEPT_COUNT = (j: string, k: string, marginMs = 0) => `${j}.counted AND ${j}.created_at > ${k}.counted_since - ${marginMs}`;
/**
 * How far a pair's count must have passed a job for a prune to leave the pair's row unlocked.
 * An ingest judging with an earlier clock than the judgment before it (a batch in flight, two
 * replicas' clocks) moves the count back and counts afresh, the job included if its snapshot
 * came before the prune's commit; past this margin no such judgment can reach the job.
 */
const COUNT_MARGIN_MS = 5_000;

/** Rows to the column arrays of an `unnest($1::t[], …)` insert: one parameter per column, whatever the row count. */
function columns(rows: readonly unknown[][], width: number): unknown[][] {
  return Array.from({ length: width }, (_, k) => rows.map((r) => r[k]));
}

// BIGINT (epoch ms, counters) as numbers: they stay far below 2^53.
const types = { getTypeParser: ((oid: number, format?: string) => (oid === 20 ? Number : pg.types.getTypeParser(oid, format as 'text'))) as typeof pg.types.getTypeParser };

export async function openPostgresStore(options: PostgresOptions): Promise<PostgresStore> {
  const clock = options.clock ?? Date.now;
  const pool = new pg.Pool({ connectionString: options.url, max: options.poolSize, types });
  // An idle client's error (the server restarted) must not crash the process; the next
  // query gets a fresh connection.
  pool.on('error', () => {});
  await migrate(pool);
  // Each NOTIFY names the store that sent it: the sender woke its own dispatcher already
  // (onJobs, the admin's replay), so its listener skips its own and wakes only for others'.
  const self = randomUUID();
  const notifyOthers = (c: pg.ClientBase | pg.Pool) => c.query('SELECT pg_notify($1, $2)', [CHANNEL, self]);

  // The statements of the hot paths (ingest, claims, attempt records, prune batches) are
  // named: node-pg prepares a named statement once per connection and PostgreSQL then keeps
  // its plan, where an unnamed one is planned at every call, and planning cost more than
  // running (the pair judge on a warm server: 0.36 ms to plan, 0.13 ms to run; EXPLAIN
  // (ANALYZE, SUMMARY)).
  async function tx<T>(work: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  }

  type PairKey = { source: string; target: string; windowMs: number };

  /**
   * The breaker's state for each pair, as of `now`: the kept count less the jobs that left the
   * window since (see the SQLite store). Two statements with `lock`, one without, however many
   * pairs a batch holds.
   * With `lock`, the pairs' rows are locked for the rest of the transaction, so replicas judge
   * a pair one batch at a time: one insert creates the missing rows and, by a no-op update of
   * the existing ones, locks them all, in (source, target) order; an `ON CONFLICT DO UPDATE`
   * locks the row as it is now, also one committed after the statement began (a second
   * replica's new pair), which a `SELECT … FOR UPDATE` would not see. Both replicas' batches
   * take the rows in the same order, so they cannot deadlock. Then the rows are read and judged.
   */
  async function pairStates(c: pg.ClientBase, pairs: readonly PairKey[], now: number, lock: boolean): Promise<(PairState & { since: number })[]> {
    const sources = pairs.map((p) => p.source);
    const targets = pairs.map((p) => p.target);
    if (lock) {
      await c.query({
        name: 'pairs_lock',
        text: `INSERT INTO pair_counts (source_pipeline, target, counted_since, n)
               SELECT s, t, -1, 0 FROM unnest($1::text[], $2::text[]) AS u(s, t) ORDER BY s, t
               ON CONFLICT (source_pipeline, target) DO UPDATE SET n = pair_counts.n`,
        values: [sources, targets],
      });
    }
    // The kept counts and the breakers are read in a statement after the lock: one that waited
    // for a pair's lock sees what committed meanwhile (a breaker another replica opened), which
    // a join in the locking statement would see as of its start. The count in the window: the
    // kept count moved forward past the jobs that left it, or (first use, window moved back by
    // a reset or a longer window) counted afresh; both by the index on counted jobs.
    const { rows } = await c.query<{ i: number; open_until: number | null; since: number; count: number }>({
      name: 'pairs_judge',
      text: `SELECT u.i::int AS i, b.open_until, s.since,
         CASE WHEN k.since < 0 OR s.since < k.since
                THEN (SELECT count(*) FROM jobs WHERE source_pipeline = u.source AND target = u.target AND counted AND created_at > s.since)
              WHEN s.since > k.since
                THEN k.n - (SELECT count(*) FROM jobs WHERE source_pipeline = u.source AND target = u.target AND counted AND created_at > k.since AND created_at <= s.since)
              ELSE k.n END::int AS count
       FROM unnest($1::text[], $2::text[], $3::bigint[]) WITH ORDINALITY AS u(source, target, window_ms, i)
       LEFT JOIN breakers b ON b.source_pipeline = u.source AND b.target = u.target
       CROSS JOIN LATERAL (SELECT coalesce(max(p.counted_since), -1) AS since, coalesce(max(p.n), 0) AS n FROM pair_counts p WHERE p.source_pipeline = u.source AND p.target = u.target) AS k
       CROSS JOIN LATERAL (SELECT greatest($4::bigint - u.window_ms, coalesce(b.reset_at, 0)) AS since) AS s`,
      values: [sources, targets, pairs.map((p) => p.windowMs), now],
    });
    const judged = new Map(rows.map((r) => [r.i, r]));
    return pairs.map((_, i) => {
      const r = judged.get(i + 1)!;
      return { count: r.count, openUntil: r.open_until, since: r.since };
    });
  }

  /** Notifications of causes recorded in this transaction; (target, cause) unique, so a cause seen twice (replicas, restarts) writes once. */
  async function insertNotifications(c: pg.ClientBase, notify: Notifier | undefined, causes: NotifyCause[]): Promise<void> {
    if (!notify || causes.length === 0) return;
    const now = clock();
    const rows: NewNotification[] = causes.flatMap((cause) => notify(cause, now));
    if (rows.length === 0) return;
    await c.query(
      `INSERT INTO notifications (id, target, type, cause, event_id, job_id, body, next_attempt_at, created_at, updated_at)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::jsonb[], $8::bigint[], $9::bigint[], $10::bigint[])
       ON CONFLICT (target, cause) DO NOTHING`,
      columns(rows.map(newNotificationValues), 10),
    );
  }

  async function eventIdsOf(c: pg.ClientBase, ids: string[]): Promise<Map<string, EventIds>> {
    const { rows } = await c.query<EventIds & { id: string }>('SELECT id, event_id, run_id, pipeline_id FROM events WHERE id = ANY($1)', [ids]);
    return new Map(rows.map((r) => [r.id, r]));
  }

  type Batch = { eventId: string; received: number; jobs: readonly NewJob[]; policy: IngestPolicy }[];

  /**
   * The jobs of a batch of new events: each (pair) judged once per batch under its row lock
   * (all pairs of the batch locked and judged together, see pairStates), then one
   * multi-row insert; one NOTIFY when any is pending.
   */
  async function insertJobs(c: pg.ClientBase, batch: Batch): Promise<Inserted['jobs'][]> {
    const now = clock();
    const judged = batch.flatMap((item) => item.jobs.filter((j) => !j.block && j.request).map((j) => ({ j, policy: item.policy })));
    const pairs = new Map<string, PairKey>();
    for (const { j, policy } of judged) pairs.set(JSON.stringify([j.sourcePipeline, j.target]), { source: j.sourcePipeline, target: j.target, windowMs: policy.breaker.windowMs });
    const states = new Map<string, PairState & { since: number; added: number }>();
    if (pairs.size > 0) {
      const judgedPairs = await pairStates(c, [...pairs.values()], now, true);
      [...pairs.keys()].forEach((key, i) => states.set(key, { ...judgedPairs[i]!, added: 0 }));
    }
    const rows: unknown[][] = [];
    const opened = new Map<string, { source: string; target: string; until: number }>();
    const breakerNews: { job: NewJob; eventId: string; notify: Notifier; detail: string }[] = [];
    const outcomes = batch.map((item) =>
      item.jobs.map((job) => {
        const key = JSON.stringify([job.sourcePipeline, job.target]);
        const state = states.get(key);
        const { block, openedUntil } = judgeJob(job, () => ({ count: state!.count + state!.added, openUntil: state!.openUntil }), now, item.policy.breaker);
        if (openedUntil !== undefined) {
          state!.openUntil = openedUntil;
          opened.set(key, { source: job.sourcePipeline, target: job.target, until: openedUntil });
          if (item.policy.notify) breakerNews.push({ job, eventId: item.eventId, notify: item.policy.notify, detail: block?.detail ?? 'breaker opened' });
        }
        const { state: jobState, dagRunId, request } = newJobRow(job, block);
        const counted = jobState === 'pending';
        if (counted) state!.added++;
        rows.push([
          newRowId(), item.eventId, job.route, job.airflow, job.dagId, dagRunId, request, jobState, job.sourcePipeline, job.target,
          JSON.stringify(job.lineage), block?.reason ?? null, item.received, job.error ?? block?.detail ?? null, item.received, now, counted,
        ]);
        return { route: job.route, state: jobState, ...(block ? { block } : {}) };
      }),
    );
    for (const { source, target, until } of opened.values()) {
      await c.query(
        `INSERT INTO breakers (source_pipeline, target, opened_at, open_until) VALUES ($1, $2, $3, $4)
         ON CONFLICT (source_pipeline, target) DO UPDATE SET opened_at = excluded.opened_at, open_until = excluded.open_until`,
        [source, target, now, until],
      );
    }
    if (rows.length > 0) {
      // One statement: the jobs, the pairs' counts moved forward, and the other replicas told
      // when any job is pending (one round trip where there were three).
      const counts = [...states].map(([key, state]) => [pairs.get(key)!.source, pairs.get(key)!.target, state.since, state.count + state.added]);
      const pending = outcomes.some((o) => o.some((j) => j.state === 'pending'));
      await c.query({
        name: 'jobs_insert',
        text: `WITH new_jobs AS (
           INSERT INTO jobs (id, event_id, route, airflow, dag_id, dag_run_id, request, state, source_pipeline, target, lineage, block_reason,
                             next_attempt_at, last_error, received_at, created_at, updated_at, counted)
           SELECT id, event_id, route, airflow, dag_id, dag_run_id, request, state, source_pipeline, target, lineage, block_reason,
                  next_attempt_at, last_error, received_at, created_at, created_at, counted
           FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::jsonb[], $8::text[], $9::text[], $10::text[],
                       $11::jsonb[], $12::text[], $13::bigint[], $14::text[], $15::bigint[], $16::bigint[], $17::boolean[])
             AS u(id, event_id, route, airflow, dag_id, dag_run_id, request, state, source_pipeline, target, lineage, block_reason,
                  next_attempt_at, last_error, received_at, created_at, counted)),
         moved AS (
           UPDATE pair_counts p SET counted_since = u.since, n = u.n
           FROM unnest($18::text[], $19::text[], $20::bigint[], $21::bigint[]) AS u(source_pipeline, target, since, n)
           WHERE p.source_pipeline = u.source_pipeline AND p.target = u.target)
         SELECT pg_notify($22, $23) WHERE $24::boolean`,
        values: [...columns(rows, 17), ...columns(counts, 4), CHANNEL, self, pending],
      });
    }
    if (breakerNews.length > 0) {
      const ids = await eventIdsOf(c, breakerNews.map((b) => b.eventId));
      for (const b of breakerNews) await insertNotifications(c, b.notify, [breakerCause(b.job, b.eventId, ids.get(b.eventId), now, b.detail)]);
    }
    return outcomes;
  }

  type Waiting = { e: NewEvent; jobs: readonly NewJob[]; policy: IngestPolicy };

  /**
   * One transaction for a batch of deliveries: a multi-row event insert (duplicates drop out
   * by the unique key, also within the batch), the jobs of the new ones, learned edges.
   * Sorted by delivery, so two replicas' batches meet unique-key waits in the same order.
   */
  async function insertBatch(batch: Waiting[]): Promise<Result<Inserted, StoreReason>[]> {
    batch.sort((x, y) => (x.e.source + '\n' + x.e.deliveryId < y.e.source + '\n' + y.e.deliveryId ? -1 : 1));
    const ids = batch.map(() => newRowId());
    // One key for a delivery, whether it comes from a request or from a row read back.
    const deliveryKey = (r: { source: string | null; delivery_id: string | null }) => `${r.source}\n${r.delivery_id}`;
    const keyOf = (w: Waiting) => deliveryKey({ source: w.e.source, delivery_id: w.e.deliveryId });
    const prunedIds = async (c: pg.ClientBase, of: Waiting[]) =>
      new Map(
        of.length === 0
          ? []
          : (
              await c.query<{ id: string; source: string; delivery_id: string }>(
                'SELECT k.id, k.source, k.delivery_id FROM dedupe_keys k JOIN unnest($1::text[], $2::text[]) AS u(source, delivery_id) USING (source, delivery_id)',
                [of.map((w) => w.e.source), of.map((w) => w.e.deliveryId)],
              )
            ).rows.map((r) => [deliveryKey(r), r.id]),
      );
    return tx(async (c) => {
      // Deliveries of pruned events are duplicates while their ids are kept: looked up in the
      // statement that inserts the others (one round trip), and not inserted. `existed`: the
      // deliveries whose event this statement's snapshot still holds (redeliveries).
      const { rows } = await c.query<{ kind: 'new' | 'kept' | 'existed'; id: string | null; source: string | null; delivery_id: string | null }>({
        name: 'events_insert',
        text: `WITH u AS (
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::jsonb[], $11::bytea[], $12::timestamptz[], $13::jsonb[])
             AS u(id, source, delivery_id, scheme, event_id, type, pipeline_id, run_id, status, headers, body, received_at, routing)),
         kept AS (SELECT k.id, k.source, k.delivery_id FROM dedupe_keys k JOIN u USING (source, delivery_id)),
         existed AS (SELECT e.source, e.delivery_id FROM events e JOIN u USING (source, delivery_id)),
         ins AS (
           INSERT INTO events (id, source, delivery_id, scheme, event_id, type, pipeline_id, run_id, status, headers, body, received_at, routing)
           SELECT u.* FROM u WHERE NOT EXISTS (SELECT 1 FROM kept WHERE kept.source = u.source AND kept.delivery_id = u.delivery_id)
           ON CONFLICT (source, delivery_id) DO NOTHING RETURNING id)
         SELECT 'new' AS kind, id, NULL AS source, NULL AS delivery_id FROM ins
         UNION ALL SELECT 'kept', id, source, delivery_id FROM kept
         UNION ALL SELECT 'existed', NULL, source, delivery_id FROM existed`,
        values: columns(
          batch.map(({ e, jobs }, i) => [ids[i], e.source, e.deliveryId, e.scheme, e.eventId, e.type, e.pipelineId, e.runId, jobs.length > 0 ? 'routed' : 'unrouted', JSON.stringify(e.headers), e.body, e.receivedAt, JSON.stringify(e.routing)]),
          13,
        ),
      });
      const kept = new Map<string, string>(rows.flatMap((r) => (r.kind === 'kept' ? [[deliveryKey(r), r.id!] as const] : [])));
      const inserted = new Set(rows.flatMap((r) => (r.kind === 'new' ? [r.id!] : [])));
      const existed = new Set(rows.flatMap((r) => (r.kind === 'existed' ? [deliveryKey(r)] : [])));
      // A prune batch committing while this insert waited on the row it deleted: its copy of
      // the delivery id is visible now (a new statement sees what committed meanwhile). Such an
      // event is a duplicate after all: take the new row out again, in this transaction. Only
      // a delivery whose event the insert's snapshot held can have met that; new ones cannot.
      const late = await prunedIds(c, batch.filter((w, i) => inserted.has(ids[i]!) && existed.has(keyOf(w))));
      if (late.size > 0) {
        const undo = batch.flatMap((w, i) => (late.has(keyOf(w)) ? [ids[i]!] : []));
        await c.query('DELETE FROM events WHERE id = ANY($1)', [undo]);
        for (const id of undo) inserted.delete(id);
        for (const [k, id] of late) kept.set(k, id);
      }
      const fresh = batch.flatMap((w, i) => (inserted.has(ids[i]!) ? [{ w, id: ids[i]! }] : []));
      const outcomes = await insertJobs(c, fresh.map(({ w, id }) => ({ eventId: id, received: w.e.receivedAt.getTime(), jobs: w.jobs, policy: w.policy })));
      const learned = new Map<string, boolean>();
      for (const { w, id } of fresh) {
        const edge = w.policy.learnedEdge;
        if (!edge) continue;
        const row = await c.query<{ events: number }>(
          `INSERT INTO learned_edges (dag_id, pipeline_id, pipeline_name, first_seen, last_seen, events) VALUES ($1, $2, $3, $4, $4, 1)
           ON CONFLICT (dag_id, pipeline_id) DO UPDATE SET last_seen = excluded.last_seen, events = learned_edges.events + 1,
             pipeline_name = coalesce(excluded.pipeline_name, learned_edges.pipeline_name)
           RETURNING events`,
          [edge.dagId, edge.pipelineId, edge.pipelineName, clock()],
        );
        learned.set(id, row.rows[0]!.events === 1);
      }
      const dupes = batch.filter((w, i) => !inserted.has(ids[i]!) && !kept.has(keyOf(w)));
      const earlier = new Map<string, string>();
      if (dupes.length > 0) {
        const found = await c.query<{ id: string; source: string; delivery_id: string }>(
          'SELECT e.id, e.source, e.delivery_id FROM events e JOIN unnest($1::text[], $2::text[]) AS u(source, delivery_id) USING (source, delivery_id)',
          [dupes.map((w) => w.e.source), dupes.map((w) => w.e.deliveryId)],
        );
        for (const r of found.rows) earlier.set(deliveryKey(r), r.id);
      }
      const byId = new Map(fresh.map(({ id }, i) => [id, outcomes[i]!]));
      return batch.map((w, i): Result<Inserted, StoreReason> => {
        const id = ids[i]!;
        if (inserted.has(id)) return ok({ id, duplicate: false, jobs: byId.get(id)!, newLearnedEdge: learned.get(id) ?? false });
        const before = earlier.get(keyOf(w)) ?? kept.get(keyOf(w));
        return before ? ok({ id: before, duplicate: true, jobs: [], newLearnedEdge: false }) : fail('store_unavailable', 'insert reported a duplicate that cannot be read back');
      });
    });
  }

  type Finish = { jobId: string; lease: string; attempt: Omit<Attempt, 'jobId' | 'n'>; update: JobUpdate; notify?: Notifier | undefined };

  /**
   * Attempt records of a batch in one statement (so one round trip and, on its own, one
   * commit): the jobs locked, each lease checked against its row as locked, the attempts
   * inserted and the jobs updated for those whose lease holds. A batch in which a job turns
   * dead with notifications on runs it in a transaction with the notifications' inserts.
   */
  async function finishBatch(batch: Finish[]): Promise<(number | undefined)[]> {
    const record = async (c: pg.ClientBase | pg.Pool) => {
      const now = clock();
      const { rows } = await c.query<{ job_id: string; lease: string; n: number }>({
        name: 'attempts_record',
        text: `WITH u AS (
           SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::int[], $5::int[], $6::text[], $7::text[], $8::bigint[],
                                $9::text[], $10::bigint[], $11::text[], $12::text[], $13::text[], $14::bigint[], $15::bigint[], $16::text[], $17::text[], $18::smallint[])
             AS u(job_id, lease, started_at, duration_ms, http_status, outcome, detail, next_retry_at,
                  state, next_attempt_at, last_error, airflow_state, dag_run_id, done_at, updated_at, run_state, run_url, run_open)),
         held AS (SELECT id, lease_owner FROM jobs WHERE id = ANY($1) ORDER BY id FOR UPDATE),
         ok AS (SELECT u.* FROM u JOIN held ON held.id = u.job_id AND held.lease_owner = u.lease),
         ins AS (
           INSERT INTO attempts (job_id, n, started_at, duration_ms, http_status, outcome, detail, next_retry_at)
           SELECT ok.job_id, (SELECT count(*) + 1 FROM attempts a WHERE a.job_id = ok.job_id), ok.started_at, ok.duration_ms, ok.http_status, ok.outcome, ok.detail, ok.next_retry_at
           FROM ok
           RETURNING job_id, n),
         upd AS (
           UPDATE jobs SET state = ok.state, attempts = jobs.attempts + 1, next_attempt_at = ok.next_attempt_at, last_error = ok.last_error,
             airflow_state = coalesce(ok.airflow_state, jobs.airflow_state), dag_run_id = coalesce(ok.dag_run_id, jobs.dag_run_id),
             done_at = ok.done_at, updated_at = ok.updated_at, lease_owner = NULL, lease_until = NULL,
             run_state = ok.run_state, run_url = coalesce(ok.run_url, jobs.run_url), run_open = ok.run_open
           FROM ok WHERE jobs.id = ok.job_id)
         SELECT ins.job_id, ok.lease, ins.n FROM ins JOIN ok USING (job_id)`,
        values: columns(batch.map(({ jobId, lease, attempt: a, update }) => [jobId, lease, a.startedAt, a.durationMs, a.httpStatus, a.outcome, a.detail, a.nextRetryAt, ...jobUpdateValues(update, now)]), 18),
      });
      // Keyed by job and lease: an old lease's late record in the same batch as the new one's gets nothing.
      return new Map(rows.map((r) => [`${r.job_id}\n${r.lease}`, r.n]));
    };
    const key = (f: Finish) => `${f.jobId}\n${f.lease}`;
    const dead = batch.filter((f) => f.update.state === 'dead' && f.notify);
    const numbers =
      dead.length === 0
        ? await record(pool)
        : await tx(async (c) => {
            const numbers = await record(c);
            const recorded = dead.filter((f) => numbers.has(key(f)));
            if (recorded.length === 0) return numbers;
            const { rows } = await c.query<JobRow & { p_event_id: string; p_run_id: string; p_pipeline_id: string }>(
              'SELECT j.*, e.event_id AS p_event_id, e.run_id AS p_run_id, e.pipeline_id AS p_pipeline_id FROM jobs j JOIN events e ON e.id = j.event_id WHERE j.id = ANY($1)',
              [recorded.map((f) => f.jobId)],
            );
            const byId = new Map(rows.map((r) => [r.id, r]));
            for (const f of recorded) {
              const row = byId.get(f.jobId)!;
              await insertNotifications(c, f.notify, [deadJobCause(row, { event_id: row.p_event_id, run_id: row.p_run_id, pipeline_id: row.p_pipeline_id }, numbers.get(key(f))!, (f.update as { error: string }).error)]);
            }
            return numbers;
          });
    return batch.map((f) => numbers.get(key(f)));
  }

  // Group commit, as in the SQLite store: what arrives while a batch is being written waits
  // for the next one, so under load each commit (one WAL flush) carries many deliveries or
  // attempt records. Attempt records: two batches may be in flight, so one's round trips
  // overlap the other's. Ingest: one, since the batches of a busy pair queue on its row lock
  // (held to the commit) and a second batch only split the waiting deliveries in two: hot
  // pair 405 → 542–573 req/s with two replicas, spread corpus unchanged (README, round 8).
  let autovacuumOff: boolean | undefined;
  // Readiness remembers how the last real commits went (a probe alone can be lucky).
  let lastFailure: { at: number; message: string } | undefined;
  let lastSuccess = 0;
  const noted = <T, R>(run: (item: T) => Promise<R>) => (item: T) =>
    run(item).then(
      (value) => ((lastSuccess = Date.now()), value),
      (err: Error) => {
        lastFailure = { at: Date.now(), message: err.message };
        throw err;
      },
    );
  const ingest = noted(groupCommit(insertBatch, 1));
  const finish = noted(groupCommit(finishBatch, 2));

  const store: PostgresStore = {
    insertEvent(e, jobs, policy) {
      return ingest({ e, jobs, policy }).catch((err: Error) => fail('store_unavailable', `PostgreSQL: ${err.message}`));
    },

    async getEvent(id) {
      const row = (await pool.query<EventRow>('SELECT * FROM events WHERE id = $1', [id])).rows[0];
      return row ? toEvent(row) : undefined;
    },

    async claimJobs({ airflow, now, limit, leaseMs, owner }) {
      const { rows } = await pool.query<JobRow>({
        name: 'jobs_claim',
        text: `UPDATE jobs SET lease_owner = $1, lease_until = $2
         WHERE id IN (
           SELECT id FROM jobs
           WHERE airflow = $3 AND state = 'pending' AND next_attempt_at <= $4 AND (lease_until IS NULL OR lease_until <= $4)
           ORDER BY next_attempt_at LIMIT $5
           FOR UPDATE SKIP LOCKED)
         RETURNING *`,
        values: [owner, now + leaseMs, airflow, now, limit],
      });
      return rows.map(toJob);
    },

    finishAttempt(jobId, lease, attempt, update, notify) {
      return finish({ jobId, lease, attempt, update, notify });
    },

    async releaseJob(jobId, owner, nextAttemptAt) {
      await pool.query('UPDATE jobs SET lease_owner = NULL, lease_until = NULL, next_attempt_at = $1, updated_at = $2 WHERE id = $3 AND lease_owner = $4', [nextAttemptAt, clock(), jobId, owner]);
    },

    async getJob(id) {
      const row = (await pool.query<JobRow>('SELECT * FROM jobs WHERE id = $1', [id])).rows[0];
      return row ? toJob(row) : undefined;
    },

    async jobsOfEvent(eventId) {
      return (await pool.query<JobRow>('SELECT * FROM jobs WHERE event_id = $1 ORDER BY created_at, route', [eventId])).rows.map(toJob);
    },

    async attemptsOfJob(jobId) {
      return (await pool.query<AttemptRow>('SELECT * FROM attempts WHERE job_id = $1 ORDER BY n', [jobId])).rows.map(toAttempt);
    },

    async replayJob(id, now) {
      const result = await pool.query(
        "UPDATE jobs SET state = 'pending', attempts = 0, next_attempt_at = $1, updated_at = $1, done_at = NULL, block_reason = NULL WHERE id = $2 AND state IN ('dead', 'done', 'blocked') AND request IS NOT NULL",
        [now, id],
      );
      if (result.rowCount === 1) await notifyOthers(pool);
      return result.rowCount === 1;
    },

    async listEvents(filter) {
      const where: string[] = [];
      const args: unknown[] = [];
      const add = (sql: string, value: unknown) => {
        args.push(value);
        where.push(sql.replace('?', `$${args.length}`));
      };
      if (filter.status) add('status = ?', filter.status);
      if (filter.pipelineId) add('pipeline_id = ?', filter.pipelineId);
      if (filter.type) add('type = ?', filter.type);
      if (filter.since) add('received_at >= ?', filter.since);
      if (filter.cursor) add('seq < ?', Number(filter.cursor));
      args.push(filter.limit + 1);
      const { rows } = await pool.query<EventRow>(`SELECT * FROM events ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC LIMIT $${args.length}`, args);
      const items = rows.slice(0, filter.limit).map(toEvent);
      return rows.length > filter.limit ? { items, nextCursor: String(items.at(-1)!.seq) } : { items };
    },

    async claimRuns({ airflow, now, limit, leaseMs, owner }) {
      const { rows } = await pool.query<JobRow>(
        `UPDATE jobs SET track_owner = $1, track_until = $2
         WHERE id IN (
           SELECT id FROM jobs WHERE airflow = $3 AND run_open = 1 AND (track_owner = $1 OR track_until IS NULL OR track_until <= $4)
           ORDER BY done_at LIMIT $5
           FOR UPDATE SKIP LOCKED)
         RETURNING *`,
        [owner, now + leaseMs, airflow, now, limit],
      );
      return rows.map(toTrackedRun);
    },

    async recordRuns(airflow, observations, judge, now, notify) {
      if (observations.length === 0) return [];
      return tx(async (c) => {
        // Locked, so a push and a poll of the same run on two replicas record it one after the other.
        const { rows } = await c.query<JobRow>(
          `SELECT jobs.* FROM jobs JOIN unnest($2::text[], $3::text[]) AS u(dag_id, dag_run_id) USING (dag_id, dag_run_id)
           WHERE airflow = $1 AND state = 'done' ORDER BY id FOR UPDATE OF jobs`,
          [airflow, observations.map((o) => o.dagId), observations.map((o) => o.dagRunId)],
        );
        const byRun = new Map(observations.map((o) => [`${o.dagId}\n${o.dagRunId}`, o]));
        const changes: RunChange[] = [];
        const updates = rows.map((row) => {
          const run = toTrackedRun(row);
          const verdict = judge(run, byRun.get(`${row.dag_id}\n${row.dag_run_id}`)!);
          const slaMissed = verdict.sla && row.sla_missed === null ? verdict.sla : undefined;
          if (runChanged(run, verdict, Boolean(row.run_open)) || slaMissed) {
            changes.push({ run: { ...run, state: verdict.state, startDate: verdict.startDate, endDate: verdict.endDate }, finished: verdict.state !== run.state && isFinal(verdict.state), ...(slaMissed ? { slaMissed } : {}) });
          }
          return [row.id, ...runUpdateValues(verdict, now), slaMissed ?? null];
        });
        await c.query(
          `UPDATE jobs SET run_state = u.run_state, run_start = u.run_start, run_end = u.run_end, run_open = u.run_open, run_checked_at = u.checked_at,
             sla_missed = coalesce(jobs.sla_missed, u.sla)
           FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::smallint[], $6::bigint[], $7::text[]) AS u(id, run_state, run_start, run_end, run_open, checked_at, sla)
           WHERE jobs.id = u.id`,
          columns(updates, 7),
        );
        if (notify && changes.length > 0) {
          const urls = new Map(rows.map((r) => [r.id, r.run_url]));
          const ids = await eventIdsOf(c, changes.map((ch) => ch.run.eventId));
          await insertNotifications(c, notify, changes.flatMap((ch) => runCauses(ch, urls.get(ch.run.jobId) ?? null, ids.get(ch.run.eventId))));
        }
        return changes;
      });
    },

    async listJobs(filter) {
      const { rows } = await pool.query<JobRow & { seq: number }>(
        'SELECT * FROM jobs WHERE ($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR run_state = $2) AND ($3::bigint IS NULL OR seq < $3) ORDER BY seq DESC LIMIT $4',
        [filter.state ?? null, filter.runState ?? null, filter.cursor ? Number(filter.cursor) : null, filter.limit + 1],
      );
      const items = rows.slice(0, filter.limit);
      return rows.length > filter.limit ? { items: items.map(toJob), nextCursor: String(items.at(-1)!.seq) } : { items: items.map(toJob) };
    },

    async addJobs(eventId, jobs, policy) {
      return tx(async (c) => {
        const event = (await c.query<{ received_at: Date }>('SELECT received_at FROM events WHERE id = $1 FOR UPDATE', [eventId])).rows[0];
        if (!event) return [];
        const have = new Set((await c.query<{ route: string }>('SELECT route FROM jobs WHERE event_id = $1', [eventId])).rows.map((r) => r.route));
        const [created = []] = await insertJobs(c, [{ eventId, received: event.received_at.getTime(), jobs: jobs.filter((j) => !have.has(j.route)), policy }]);
        if (created.length > 0) await c.query("UPDATE events SET status = 'routed' WHERE id = $1", [eventId]);
        return created;
      });
    },

    async pendingByAirflow() {
      const { rows } = await pool.query<{ airflow: string; n: number }>("SELECT airflow, count(*)::int AS n FROM jobs WHERE state = 'pending' GROUP BY airflow");
      return Object.fromEntries(rows.map((r) => [r.airflow, r.n]));
    },

    async jobCounts() {
      const counts: Record<JobState, number> = { pending: 0, done: 0, dead: 0, blocked: 0 };
      for (const row of (await pool.query<{ state: JobState; n: number }>('SELECT state, count(*)::int AS n FROM jobs GROUP BY state')).rows) counts[row.state] = row.n;
      return counts;
    },

    async oldestPendingAt() {
      return (await pool.query<{ at: number | null }>("SELECT min(created_at) AS at FROM jobs WHERE state = 'pending'")).rows[0]?.at ?? undefined;
    },

    async activity(since) {
      const [received, triggered] = await Promise.all([
        pool.query<{ m: number; n: number }>('SELECT floor(extract(epoch FROM received_at) / 60)::bigint AS m, count(*)::int AS n FROM events WHERE received_at >= $1 GROUP BY m', [new Date(since)]),
        pool.query<{ m: number; n: number }>("SELECT done_at / 60000 AS m, count(*)::int AS n FROM jobs WHERE state = 'done' AND done_at >= $1 GROUP BY m", [since]),
      ]);
      return activityOf(since, clock(), received.rows, triggered.rows);
    },

    async learnedEdges() {
      const { rows } = await pool.query<{ dag_id: string; pipeline_id: string; pipeline_name: string | null }>('SELECT dag_id, pipeline_id, pipeline_name FROM learned_edges ORDER BY dag_id, pipeline_id');
      return rows.map((r) => ({ dagId: r.dag_id, pipelineId: r.pipeline_id, pipelineName: r.pipeline_name }));
    },

    async openBreakers(now) {
      const { rows } = await pool.query<{ source_pipeline: string; target: string; opened_at: number; open_until: number }>(
        'SELECT source_pipeline, target, opened_at, open_until FROM breakers WHERE open_until > $1 ORDER BY opened_at',
        [now],
      );
      return rows.map((r) => ({ sourcePipeline: r.source_pipeline, target: r.target, openedAt: r.opened_at, openUntil: r.open_until }));
    },

    async resetBreaker(source, target, now) {
      return tx(async (c) => {
        const before = (await c.query<{ open_until: number | null }>('SELECT open_until FROM breakers WHERE source_pipeline = $1 AND target = $2 FOR UPDATE', [source, target])).rows[0];
        await c.query(
          `INSERT INTO breakers (source_pipeline, target, reset_at) VALUES ($1, $2, $3)
           ON CONFLICT (source_pipeline, target) DO UPDATE SET opened_at = NULL, open_until = NULL, reset_at = excluded.reset_at`,
          [source, target, now],
        );
        return (before?.open_until ?? 0) > now;
      });
    },

    async pairState(source, target, now, windowMs) {
      const [state] = await pairStates(pool as unknown as pg.ClientBase, [{ source, target, windowMs }], now, false);
      return { count: state!.count, openUntil: state!.openUntil };
    },

    async claimNotifications({ target, now, limit, leaseMs, owner }) {
      const { rows } = await pool.query<NotificationRow>(
        `UPDATE notifications SET lease_owner = $1, lease_until = $2
         WHERE id IN (
           SELECT id FROM notifications
           WHERE target = $3 AND state = 'pending' AND next_attempt_at <= $4 AND (lease_until IS NULL OR lease_until <= $4)
           ORDER BY next_attempt_at LIMIT $5
           FOR UPDATE SKIP LOCKED)
         RETURNING *`,
        [owner, now + leaseMs, target, now, limit],
      );
      return rows.map(toNotification);
    },

    async finishNotification(id, lease, attempt, update) {
      return tx(async (c) => {
        const held = (await c.query<{ lease_owner: string | null }>('SELECT lease_owner FROM notifications WHERE id = $1 FOR UPDATE', [id])).rows[0];
        if (held?.lease_owner !== lease) return undefined;
        const { n } = (
          await c.query<{ n: number }>(
            `INSERT INTO notification_attempts (notification_id, n, started_at, duration_ms, http_status, outcome, detail, next_retry_at)
             VALUES ($1, (SELECT count(*) + 1 FROM notification_attempts WHERE notification_id = $1), $2, $3, $4, $5, $6, $7) RETURNING n`,
            [id, attempt.startedAt, attempt.durationMs, attempt.httpStatus, attempt.outcome, attempt.detail, attempt.nextRetryAt],
          )
        ).rows[0]!;
        await c.query(
          'UPDATE notifications SET state = $1, attempts = attempts + 1, next_attempt_at = $2, last_error = $3, done_at = $4, updated_at = $5, lease_owner = NULL, lease_until = NULL WHERE id = $6',
          [...notificationUpdateValues(update, clock()), id],
        );
        return n;
      });
    },

    async releaseNotification(id, owner, nextAttemptAt) {
      await pool.query('UPDATE notifications SET lease_owner = NULL, lease_until = NULL, next_attempt_at = $1 WHERE id = $2 AND lease_owner = $3', [nextAttemptAt, id, owner]);
    },

    async getNotification(id) {
      const row = (await pool.query<NotificationRow>('SELECT * FROM notifications WHERE id = $1', [id])).rows[0];
      return row ? toNotification(row) : undefined;
    },

    async listNotifications(filter) {
      const { rows } = await pool.query<NotificationRow & { seq: number }>(
        'SELECT * FROM notifications WHERE ($1::text IS NULL OR target = $1) AND ($2::text IS NULL OR state = $2) AND ($3::bigint IS NULL OR seq < $3) ORDER BY seq DESC LIMIT $4',
        [filter.target ?? null, filter.state ?? null, filter.cursor ? Number(filter.cursor) : null, filter.limit + 1],
      );
      const items = rows.slice(0, filter.limit);
      return rows.length > filter.limit ? { items: items.map(toNotification), nextCursor: String(items.at(-1)!.seq) } : { items: items.map(toNotification) };
    },

    async notificationsOfEvent(eventId) {
      return (await pool.query<NotificationRow>('SELECT * FROM notifications WHERE event_id = $1 ORDER BY seq', [eventId])).rows.map(toNotification);
    },

    async attemptsOfNotification(id) {
      return (await pool.query<NotificationAttemptRow>('SELECT * FROM notification_attempts WHERE notification_id = $1 ORDER BY n', [id])).rows.map(toNotificationAttempt);
    },

    async replayNotification(id, now) {
      const result = await pool.query("UPDATE notifications SET state = 'pending', attempts = 0, next_attempt_at = $1, updated_at = $1, done_at = NULL WHERE id = $2 AND state = 'dead'", [now, id]);
      return result.rowCount === 1;
    },

    async nextNotificationAt() {
      return (await pool.query<{ at: number | null }>("SELECT min(next_attempt_at) AS at FROM notifications WHERE state = 'pending'")).rows[0]?.at ?? undefined;
    },

    async checkWritable() {
      try {
        const { rows } = await pool.query<{ ro: string }>('SHOW transaction_read_only');
        if (rows[0]?.ro === 'on') return fail('store_unavailable', 'PostgreSQL: the server is read-only (a standby?)');
        // A committed write of more than a page: a full disk or a lost database fails it.
        await pool.query('INSERT INTO probe (id, at, pad) VALUES (1, $1, $2) ON CONFLICT (id) DO UPDATE SET at = excluded.at, pad = excluded.pad', [Date.now(), Buffer.alloc(PROBE_BYTES)]);
      } catch (err) {
        return fail('store_unavailable', `PostgreSQL: ${(err as Error).message}`);
      }
      if (lastFailure && lastFailure.at >= lastSuccess && Date.now() - lastFailure.at < FAILED_COMMIT_MEMORY_MS) {
        return fail('store_unavailable', `PostgreSQL: the last commit failed ${Math.round((Date.now() - lastFailure.at) / 1000)}s ago: ${lastFailure.message}`);
      }
      return ok(true as const);
    },

    // Ingest goes on through the pool's other connections meanwhile, sharing the server's CPU
    // and WAL with the batch: 100 events a batch, with the pruner's pauses between, disturb it
    // less than 500 (30,000-event soak: p99 during rounds 1.42 × without against 2.74 ×, once
    // ANALYZE no longer ran every round; before that, round trips made 500 the better size), and
    // less than 50 too (200,000 events: 1.75 × against 1.84 ×, twice the batches' commits and pauses).
    pruneBatchSize: 100,

    async pruneBatch(cutoffs, limit, from) {
      // One transaction: the events, their jobs and attempts, and the copy of their delivery
      // ids go together, so a replica that dies mid-prune leaves nothing half-deleted. Two
      // statements whatever the batch holds (there were nine to twelve, each a round trip
      // while ingest waited for the same two cores): the first locks the candidates, their
      // jobs and their pairs' kept counts; the second, with a snapshot taken after those locks,
      // judges again (a job replayed or redriven since the first read keeps its event), deletes,
      // and takes the deleted jobs out of the kept counts that still include them (a pair not
      // judged since they left its window would otherwise keep them for good, see pairStates).
      // Only those pairs' rows are locked, and only once quiet (QUIET_PAIR_MS): a 40,000-event
      // soak caught ingest waiting on the one busy pair's row, locked by a prune batch to its
      // commit, in 159 of 1,366 samples taken during prunes. A pair whose count is past a job
      // (by COUNT_MARGIN_MS) stays past it: a later judgment's window starts after any prunable
      // job, retention being at least the window.
      // Ingest takes a pair's lock only after its event insert, the one step that can wait on a
      // prune, so the two cannot deadlock.
      const { counts, full, last } = await tx(async (c) => {
        const candidates = (
          await c.query<{ id: string; received_at: Date }>({
            name: 'prune_lock',
            text: `WITH c AS (
               SELECT e.id, e.received_at FROM events e
               WHERE e.received_at < $1 AND e.received_at >= $2 AND ${prunable('$3')}
                 AND (e.received_at < $5 OR NOT EXISTS (SELECT 1 FROM jobs j JOIN pair_counts k USING (source_pipeline, target) WHERE j.event_id = e.id AND ${IN_KEPT_COUNT('j', 'k', COUNT_MARGIN_MS)}))
               ORDER BY e.received_at LIMIT $4
               FOR UPDATE OF e SKIP LOCKED),
             j AS (SELECT id, source_pipeline, target, counted, created_at FROM jobs WHERE event_id = ANY (ARRAY(SELECT id FROM c)) ORDER BY id FOR UPDATE),
             p AS (
               SELECT 1 FROM pair_counts k
               WHERE EXISTS (SELECT 1 FROM j WHERE j.source_pipeline = k.source_pipeline AND j.target = k.target AND ${IN_KEPT_COUNT('j', 'k', COUNT_MARGIN_MS)})
               ORDER BY source_pipeline, target FOR UPDATE)
             -- A SELECT in WITH runs only as far as it is read: the counts make both locks complete.
             SELECT id, received_at, (SELECT count(*) FROM j) AS jobs, (SELECT count(*) FROM p) AS pairs FROM c ORDER BY received_at`,
            values: [new Date(cutoffs.eventsBefore), from ?? new Date(0).toISOString(), cutoffs.deadBefore, limit, new Date(cutoffs.eventsBefore - QUIET_PAIR_MS)],
          })
        ).rows;
        // The sub-statements share one snapshot, so each names the rows it removes by the
        // judged ids, not by what another removed; a delivery id both expiring and kept again
        // by this batch (the ON CONFLICT case) is refreshed, not also deleted: one row changed
        // twice in a statement is undefined. Notifications are locked, so a replay (dead →
        // pending) committing meanwhile is either seen or waited out, never deleted. Rows are
        // named by `= ANY (ARRAY(…))`, not `IN (SELECT …)`: an index lookup per id, where `IN`
        // let the planner hash a scan of all of events and, four times, of all of jobs (100-event
        // batches on soak-shaped tables: mean 6.5–7.0 → 4.6–5.5 ms, p90 9.8–11.8 → 6.0–7.1 ms).
        const { rows } = await c.query<Record<PrunedTable, number>>({
          name: 'prune_delete',
          text: `WITH ids AS (SELECT e.id, e.source, e.delivery_id, e.event_id FROM events e WHERE e.id = ANY($1) AND ${prunable('$2')}),
           kept AS (
             INSERT INTO dedupe_keys (source, delivery_id, id, event_id, pruned_at)
             SELECT source, delivery_id, id, event_id, $3 FROM ids
             ON CONFLICT (source, delivery_id) DO UPDATE SET id = excluded.id, event_id = excluded.event_id, pruned_at = excluded.pruned_at),
           a AS (DELETE FROM attempts WHERE job_id = ANY (ARRAY(SELECT id FROM jobs WHERE event_id = ANY (ARRAY(SELECT id FROM ids)))) RETURNING 1),
           j AS (DELETE FROM jobs WHERE event_id = ANY (ARRAY(SELECT id FROM ids)) RETURNING 1),
           forgotten AS (
             UPDATE pair_counts p SET n = p.n - g.n
             FROM (SELECT j.source_pipeline, j.target, count(*) AS n FROM jobs j JOIN pair_counts k USING (source_pipeline, target)
                   WHERE j.event_id = ANY (ARRAY(SELECT id FROM ids)) AND ${IN_KEPT_COUNT('j', 'k')}
                   GROUP BY j.source_pipeline, j.target) g
             WHERE p.source_pipeline = g.source_pipeline AND p.target = g.target),
           e AS (DELETE FROM events WHERE id = ANY (ARRAY(SELECT id FROM ids)) RETURNING 1),
           d AS (
             DELETE FROM dedupe_keys WHERE (source, delivery_id) IN (
               SELECT k.source, k.delivery_id FROM dedupe_keys k
               WHERE k.pruned_at < $4 AND NOT EXISTS (SELECT 1 FROM ids WHERE ids.source = k.source AND ids.delivery_id = k.delivery_id)
               LIMIT $5)
             RETURNING 1),
           f AS (SELECT id FROM notifications WHERE ${FINISHED_NOTIFICATION('$6', '$7')} LIMIT $5 FOR UPDATE SKIP LOCKED),
           na AS (DELETE FROM notification_attempts WHERE notification_id IN (SELECT id FROM f) RETURNING 1),
           n AS (DELETE FROM notifications WHERE id IN (SELECT id FROM f) RETURNING 1)
           SELECT (SELECT count(*) FROM e)::int AS events, (SELECT count(*) FROM j)::int AS jobs, (SELECT count(*) FROM a)::int AS attempts,
                  (SELECT count(*) FROM d)::int AS dedupe_keys, (SELECT count(*) FROM n)::int AS notifications, (SELECT count(*) FROM na)::int AS notification_attempts`,
          values: [candidates.map((r) => r.id), cutoffs.deadBefore, cutoffs.now, cutoffs.dedupeBefore, limit, cutoffs.eventsBefore, cutoffs.deadBefore],
        });
        return { counts: rows[0]!, full: candidates.length === limit, last: candidates.at(-1)?.received_at };
      });
      return { deleted: counts, more: full || counts.dedupe_keys === limit || counts.notifications === limit, ...(last ? { from: last.toISOString() } : from ? { from } : {}) };
    },

    async reclaim() {
      // Autovacuum makes deleted rows' space reusable. Where it is off (server-wide or for a
      // table), the tables would grow for ever despite pruning: vacuum them here instead (a
      // plain VACUUM: no exclusive lock, only pages with dead rows are visited), but only the
      // tables past autovacuum's thresholds, as autovacuum would, with the server's settings
      // except a scale factor of at most 0.1: at the default 0.2 the soak's tables grew to
      // 1.29 × their size at one retention period (target 1.3). Vacuuming and analysing all six
      // after every round took ~100 ms of the server's time a second in the soak (p50 98 ms,
      // p90 130 ms), and ingest p99 during rounds was 1.67 × without. Of what was left, ANALYZE
      // was nearly all (timed in a 30,000-event soak: 19–23 ms with it, a plain VACUUM 1.5 ms,
      // some table past its analyze threshold almost every round), so a table is analysed at
      // most every ANALYZE_EVERY_MS: its statistics change shape slowly, its dead rows do not.
      autovacuumOff ??= (
        await pool.query<{ off: boolean }>(
          `SELECT current_setting('autovacuum') = 'off'
                  OR EXISTS (SELECT 1 FROM pg_class WHERE oid = ANY (ARRAY[${PRUNED_TABLES.map((t) => `to_regclass('${t}')`).join(', ')}]) AND 'autovacuum_enabled=false' = ANY (coalesce(reloptions, '{}'))) AS off`,
        )
      ).rows[0]!.off;
      if (!autovacuumOff) return undefined;
      const { rows } = await pool.query<{ t: PrunedTable; vacuum: boolean; analyze: boolean }>(
        `SELECT t,
                s.n_dead_tup > current_setting('autovacuum_vacuum_threshold')::float8 + least(current_setting('autovacuum_vacuum_scale_factor')::float8, 0.1) * greatest(c.reltuples, 0) AS vacuum,
                s.n_mod_since_analyze > current_setting('autovacuum_analyze_threshold')::float8 + current_setting('autovacuum_analyze_scale_factor')::float8 * greatest(c.reltuples, 0)
                  AND coalesce(greatest(s.last_analyze, s.last_autoanalyze), '-infinity') < now() - make_interval(secs => $2) AS analyze
         FROM unnest($1::text[]) AS t JOIN pg_class c ON c.oid = to_regclass(t) JOIN pg_stat_user_tables s ON s.relid = c.oid`,
        [PRUNED_TABLES, ANALYZE_EVERY_MS / 1000],
      );
      const tables = (vacuum: boolean, analyze: boolean) => rows.filter((r) => r.vacuum === vacuum && r.analyze === analyze).map((r) => r.t).join(', ');
      for (const [command, names] of [['VACUUM (ANALYZE)', tables(true, true)], ['VACUUM', tables(true, false)], ['ANALYZE', tables(false, true)]]) {
        if (names) await pool.query(`${command} ${names}`);
      }
      return 'autovacuum is off for the bridge tables: the bridge vacuums those past autovacuum\'s thresholds after prune rounds';
    },

    async acquirePruneLock() {
      const client = await pool.connect();
      try {
        const { rows } = await client.query<{ got: boolean }>('SELECT pg_try_advisory_lock($1) AS got', [PRUNE_LOCK]);
        if (!rows[0]?.got) {
          client.release();
          return undefined;
        }
      } catch (err) {
        client.release(true);
        throw err;
      }
      return async () => {
        // A connection that cannot unlock is dropped: the session, and its lock, end with it.
        await client.query('SELECT pg_advisory_unlock($1)', [PRUNE_LOCK]).then(
          () => client.release(),
          () => client.release(true),
        );
      };
    },

    async stats() {
      // Sizes from the catalog (no table scan); row counts are pg_class.reltuples, PostgreSQL's
      // estimate as of the last (auto)VACUUM or ANALYZE, counted exactly only for a table never analysed yet.
      const { rows } = await pool.query<{ name: PrunedTable; bytes: number; reltuples: number }>(
        `SELECT t AS name, pg_total_relation_size(to_regclass(t))::bigint AS bytes, (SELECT reltuples FROM pg_class WHERE oid = to_regclass(t))::float8 AS reltuples
         FROM unnest($1::text[]) AS t`,
        [PRUNED_TABLES],
      );
      const counts = {} as Record<PrunedTable, number>;
      for (const r of rows) {
        counts[r.name] = r.reltuples >= 0 ? Math.round(r.reltuples) : (await pool.query<{ n: number }>(`SELECT count(*)::bigint AS n FROM ${r.name}`)).rows[0]!.n;
      }
      return { bytes: rows.reduce((sum, r) => sum + Number(r.bytes), 0), rows: counts, estimated: true };
    },

    async exportEvents(filter) {
      // Plain reads, a page at a time: no transaction held open on a running bridge's database.
      const events = (
        await pool.query<EventRow>('SELECT * FROM events WHERE seq > $1 AND ($2::timestamptz IS NULL OR received_at < $2) ORDER BY seq LIMIT $3', [
          filter.cursor ? Number(filter.cursor) : 0,
          filter.before ?? null,
          filter.limit,
        ])
      ).rows;
      const ids = events.map((e) => e.id);
      const [jobs, attempts] = ids.length
        ? await Promise.all([
            pool.query<JobRow & { counted: boolean }>('SELECT * FROM jobs WHERE event_id = ANY($1) ORDER BY created_at, route', [ids]),
            pool.query<AttemptRow>('SELECT * FROM attempts WHERE job_id IN (SELECT id FROM jobs WHERE event_id = ANY($1)) ORDER BY job_id, n', [ids]),
          ])
        : [{ rows: [] }, { rows: [] }];
      const items = exportLines(events, jobs.rows, attempts.rows);
      return events.length === filter.limit ? { items, nextCursor: String(events.at(-1)!.seq) } : { items };
    },

    async subscribe(listener) {
      const client = new pg.Client({ connectionString: options.url });
      client.on('error', () => {});
      await client.connect();
      client.on('notification', (n) => n.payload !== self && listener());
      await client.query(`LISTEN ${CHANNEL}`);
      return async () => {
        await client.end().catch(() => {});
      };
    },

    async close() {
      await pool.end();
    },
  };
  return store;
}

async function migrate(pool: pg.Pool): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    // Replicas starting together: the first migrates, the others wait here and find it done.
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await client.query('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)');
    const current = (await client.query<{ version: number }>('SELECT version FROM schema_version')).rows[0]?.version ?? 0;
    if (current > postgresMigrations.length) {
      throw new Error(`database schema version ${current} is newer than this bridge knows (${postgresMigrations.length}); upgrade the bridge`);
    }
    for (let v = current; v < postgresMigrations.length; v++) await client.query(postgresMigrations[v]!);
    if (current === 0) await client.query('INSERT INTO schema_version (version) VALUES ($1)', [postgresMigrations.length]);
    else await client.query('UPDATE schema_version SET version = $1', [postgresMigrations.length]);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}
