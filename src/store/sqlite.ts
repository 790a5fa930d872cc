import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { newRowId } from './ids.js';
import Database from 'better-sqlite3';
import { fail, ok } from '../errors/result.js';
import { judgeJob } from '../guard/breaker.js';
import { groupCommit } from './group-commit.js';
import { startCheckpointer, type Checkpointer } from './sqlite-checkpoint.js';
import { sqliteMigrations } from './sqlite-migrations.js';
import { activityOf, exportLines, jobUpdateValues, newJobRow, runChanged, runUpdateValues, toAttempt, toEvent, toJob, toTrackedRun, type AttemptRow, type EventRow, type JobRow } from './rows.js';
import { isFinal, type RunChange } from '../track/run.js';
import { breakerCause, deadJobCause, runCauses, type EventIds, type Notifier, type NotifyCause } from '../notify/types.js';
import { FINISHED_NOTIFICATION, newNotificationValues, notificationUpdateValues, toNotification, toNotificationAttempt, type NotificationAttemptRow, type NotificationRow } from './notify-rows.js';
import type { Result } from '../errors/result.js';
import { PRUNED_TABLES, type Inserted, type IngestPolicy, type JobState, type NewEvent, type NewJob, type Store, type StoreReason, type StoreStats } from './types.js';

export interface SqliteOptions {
  path: string;
  busyTimeoutMs: number;
  /** Injected so lease and retry tests are exact. */
  clock?: () => number;
  /**
   * For tools beside a running bridge (explain): no migration, no lease recovery, no writes.
   * Without it, opening the file would release the running bridge's leases.
   */
  readonly?: boolean;
  /** Told about one-time maintenance at open (the VACUUM that turns on incremental auto-vacuum). */
  log?: (level: 'info' | 'warn', message: string, fields?: Record<string, unknown>) => void;
}

/** How long a failed ingest or dispatch commit keeps readiness at 503 unless a commit succeeds after it. */
export const FAILED_COMMIT_MEMORY_MS = 10_000;
/** The readiness probe commits this many bytes: more than a page, so the commit needs new space. */
const PROBE_BYTES = 8 * 1024;
/**
 * The blob is written at most this often: every probe appends pages to the WAL, and on a nearly
 * full disk blobs polled every 250 ms would themselves eat the space that was just freed.
 */
const PROBE_TTL_MS = 2000;
/**
 * Free pages given back to the file system per prune batch, inside its transaction: 200 pages
 * cost ~2 ms there (bench/retention.ts); 2,000 in a commit of their own cost ~34 ms plus a
 * second fsync, on the thread ingest needs.
 */
const VACUUM_PAGES = 200;

/**
 * The one definition of "prunable" for an event row `e` (parameter @deadBefore): none of its
 * jobs is pending, and none is a dead letter that died (last updated) at or after @deadBefore,
 * so dead letters keep their event on their own clock. Done and blocked jobs do not hold it;
 * an event without jobs (unrouted) is prunable too. A job whose Airflow run is still being
 * tracked (run_open) keeps its event as well, until the run ends or the horizon passes.
 */
const PRUNABLE = `NOT EXISTS (SELECT 1 FROM jobs j WHERE j.event_id = e.id AND (j.state = 'pending' OR j.run_open = 1 OR (j.state = 'dead' AND j.updated_at >= @deadBefore)))`;

/**
 * One process owns a SQLite file (several replicas use PostgreSQL), so leases left in the
 * file belong to a process that is gone: they are cleared on open and its jobs resume at once.
 */
export interface SqliteStore extends Store {
  /** What the connection really runs with (logged at start, asserted by tests). */
  settings(): { journalMode: string; synchronous: string; walSizeLimit: number; autoCheckpointPages: number };
}

const SYNCHRONOUS = ['off', 'normal', 'full', 'extra'];
/** FULL: the WAL is fsynced on every commit, so a 2xx means the event survives power loss, not just a crash of this process. */
const DURABLE = 'synchronous = FULL';

export function openSqliteStore(options: SqliteOptions): SqliteStore {
  const clock = options.clock ?? Date.now;
  if (options.readonly) {
    const db = new Database(options.path, { readonly: true, fileMustExist: true, timeout: options.busyTimeoutMs });
    if (schemaVersion(db) !== sqliteMigrations.length) throw new Error(`database schema version differs from this bridge's (${sqliteMigrations.length}); start the bridge once to migrate it`);
    return sqliteStore(db, clock);
  }
  if (options.path !== ':memory:') mkdirSync(dirname(options.path), { recursive: true });
  const db = new Database(options.path, { timeout: options.busyTimeoutMs });
  incrementalAutoVacuum(db, options.log);
  db.pragma('journal_mode = WAL');
  // The WAL file keeps the size it once reached (it is reused, not shrunk, when it starts
  // over): past 4 MB it is cut back when it starts over. 200 ms of ingest at full speed fits
  // in it; a checkpoint that could not complete for a while would otherwise leave it large.
  db.pragma('journal_size_limit = 4194304');
  db.pragma(DURABLE);
  db.pragma('foreign_keys = ON');
  migrate(db);
  if (!db.readonly) {
    try {
      db.prepare('UPDATE jobs SET lease_owner = NULL, lease_until = NULL WHERE lease_owner IS NOT NULL').run();
      db.prepare('UPDATE notifications SET lease_owner = NULL, lease_until = NULL WHERE lease_owner IS NOT NULL').run();
    } catch {
      // A read-only file: nothing to recover, and readiness reports the problem.
    }
  }
  return sqliteStore(db, clock, options.path === ':memory:' ? undefined : startCheckpointer(db, options.path, options.log));
}

/** `checkpoints`: the WAL checkpoint thread of a writing store (sqlite-checkpoint.ts); commits wait while it runs. */
function sqliteStore(db: Database.Database, clock: () => number, checkpoints?: Checkpointer): SqliteStore {
  const clear = async () => {
    for (let wait = checkpoints?.clear(); wait; wait = checkpoints?.clear()) await wait;
  };

  const insertEventRow = db.prepare<unknown[], { id: string }>(
    `INSERT INTO events (id, source, delivery_id, scheme, event_id, type, pipeline_id, run_id, status, headers, body, received_at, routing)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (source, delivery_id) DO NOTHING
     RETURNING id`,
  );
  const insertJobRow = db.prepare(
    `INSERT INTO jobs (id, event_id, route, airflow, dag_id, dag_run_id, request, state, source_pipeline, target, lineage, block_reason,
                       next_attempt_at, last_error, received_at, created_at, updated_at, counted)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  // Counted: triggers the breaker let through (not blocked ones, nor ones whose templates failed).
  const countedAfter = db.prepare<[string, string, number], { n: number }>('SELECT count(*) AS n FROM jobs WHERE source_pipeline = ? AND target = ? AND counted = 1 AND created_at > ?');
  const countedBetween = db.prepare<[string, string, number, number], { n: number }>(
    'SELECT count(*) AS n FROM jobs WHERE source_pipeline = ? AND target = ? AND counted = 1 AND created_at > ? AND created_at <= ?',
  );
  const pairRow = db.prepare<[string, string], { counted_since: number; n: number }>('SELECT counted_since, n FROM pair_counts WHERE source_pipeline = ? AND target = ?');
  const savePair = db.prepare(
    `INSERT INTO pair_counts (source_pipeline, target, counted_since, n) VALUES (?, ?, ?, ?)
     ON CONFLICT (source_pipeline, target) DO UPDATE SET counted_since = excluded.counted_since, n = excluded.n`,
  );
  const bumpPair = db.prepare('UPDATE pair_counts SET n = n + 1 WHERE source_pipeline = ? AND target = ?');
  const breakerRow = db.prepare<[string, string], { open_until: number | null; reset_at: number | null; opened_at: number | null }>(
    'SELECT opened_at, open_until, reset_at FROM breakers WHERE source_pipeline = ? AND target = ?',
  );
  const openBreaker = db.prepare(
    `INSERT INTO breakers (source_pipeline, target, opened_at, open_until) VALUES (?, ?, ?, ?)
     ON CONFLICT (source_pipeline, target) DO UPDATE SET opened_at = excluded.opened_at, open_until = excluded.open_until`,
  );
  const resetBreakerRow = db.prepare(
    `INSERT INTO breakers (source_pipeline, target, reset_at) VALUES (?, ?, ?)
     ON CONFLICT (source_pipeline, target) DO UPDATE SET opened_at = NULL, open_until = NULL, reset_at = excluded.reset_at`,
  );
  const openBreakerRows = db.prepare<[number], { source_pipeline: string; target: string; opened_at: number; open_until: number }>(
    'SELECT source_pipeline, target, opened_at, open_until FROM breakers WHERE open_until > ? ORDER BY opened_at',
  );
  const learnEdge = db.prepare<[string, string, string | null, number, number], { events: number }>(
    `INSERT INTO learned_edges (dag_id, pipeline_id, pipeline_name, first_seen, last_seen, events) VALUES (?, ?, ?, ?, ?, 1)
     ON CONFLICT (dag_id, pipeline_id) DO UPDATE SET last_seen = excluded.last_seen, events = events + 1,
       pipeline_name = coalesce(excluded.pipeline_name, pipeline_name)
     RETURNING events`,
  );
  const learnedRows = db.prepare<[], { dag_id: string; pipeline_id: string; pipeline_name: string | null }>(
    'SELECT dag_id, pipeline_id, pipeline_name FROM learned_edges ORDER BY dag_id, pipeline_id',
  );
  const existing = db.prepare<[string, string], { id: string }>('SELECT id FROM events WHERE source = ? AND delivery_id = ?');
  const eventById = db.prepare<[string], EventRow>('SELECT * FROM events WHERE id = ?');
  const jobById = db.prepare<[string], JobRow>('SELECT * FROM jobs WHERE id = ?');
  const jobsByEvent = db.prepare<[string], JobRow>('SELECT * FROM jobs WHERE event_id = ? ORDER BY created_at, route');
  const attemptsByJob = db.prepare<[string], AttemptRow>('SELECT * FROM attempts WHERE job_id = ? ORDER BY n');
  const claim = db.prepare<[string, number, string, number, number, number], JobRow>(
    `UPDATE jobs SET lease_owner = ?, lease_until = ?
     WHERE id IN (
       SELECT id FROM jobs
       WHERE airflow = ? AND state = 'pending' AND next_attempt_at <= ? AND (lease_until IS NULL OR lease_until <= ?)
       ORDER BY next_attempt_at LIMIT ?)
     RETURNING *`,
  );
  const leaseHolder = db.prepare<[string], { lease_owner: string | null; attempts: number }>('SELECT lease_owner, attempts FROM jobs WHERE id = ?');
  const insertAttempt = db.prepare(
    `INSERT INTO attempts (job_id, n, started_at, duration_ms, http_status, outcome, detail, next_retry_at)
     VALUES (?, (SELECT count(*) + 1 FROM attempts WHERE job_id = ?), ?, ?, ?, ?, ?, ?)
     RETURNING n`,
  );
  const updateJob = db.prepare(
    `UPDATE jobs SET state = ?, attempts = attempts + 1, next_attempt_at = ?, last_error = ?, airflow_state = coalesce(?, airflow_state),
       dag_run_id = coalesce(?, dag_run_id), done_at = ?, updated_at = ?, lease_owner = NULL, lease_until = NULL,
       run_state = ?, run_url = coalesce(?, run_url), run_open = ?
     WHERE id = ?`,
  );
  const claimRunRows = db.prepare<[string, number, string, string, number, number], JobRow>(
    `UPDATE jobs SET track_owner = ?, track_until = ?
     WHERE id IN (
       SELECT id FROM jobs WHERE airflow = ? AND run_open = 1 AND (track_owner = ? OR track_until IS NULL OR track_until <= ?)
       ORDER BY done_at LIMIT ?)
     RETURNING *`,
  );
  const runJobs = db.prepare<[string, string, string], JobRow>("SELECT * FROM jobs WHERE airflow = ? AND dag_id = ? AND dag_run_id = ? AND state = 'done'");
  const updateRun = db.prepare('UPDATE jobs SET run_state = ?, run_start = ?, run_end = ?, run_open = ?, run_checked_at = ? WHERE id = ?');
  const markSla = db.prepare('UPDATE jobs SET sla_missed = ? WHERE id = ? AND sla_missed IS NULL');
  const release = db.prepare(
    'UPDATE jobs SET lease_owner = NULL, lease_until = NULL, next_attempt_at = ?, updated_at = ? WHERE id = ? AND lease_owner = ?',
  );
  const receivedPerMinute = db.prepare<[string], { m: number; n: number }>("SELECT CAST(strftime('%s', received_at) AS INTEGER) / 60 AS m, count(*) AS n FROM events WHERE received_at >= ? GROUP BY m");
  const triggeredPerMinute = db.prepare<[number], { m: number; n: number }>("SELECT done_at / 60000 AS m, count(*) AS n FROM jobs WHERE state = 'done' AND done_at >= ? GROUP BY m");
  const countByState = db.prepare<[], { state: JobState; n: number }>('SELECT state, count(*) AS n FROM jobs GROUP BY state');
  const oldestPending = db.prepare<[], { at: number | null }>("SELECT min(created_at) AS at FROM jobs WHERE state = 'pending'");
  const replay = db.prepare(
    "UPDATE jobs SET state = 'pending', attempts = 0, next_attempt_at = ?, updated_at = ?, done_at = NULL, block_reason = NULL WHERE id = ? AND state IN ('dead', 'done', 'blocked') AND request IS NOT NULL",
  );
  // Committed, not rolled back: a rolled-back write never leaves the page cache, so it passes
  // on a full disk. The blob is rewritten each time, so the commit appends new WAL frames.
  const probe = db.prepare<[string, number]>('INSERT OR REPLACE INTO probe (id, at, pad) VALUES (1, ?, zeroblob(?))');
  const probeTouch = db.prepare<[string]>('UPDATE probe SET at = ? WHERE id = 1');
  const dedupeKey = db.prepare<[string, string], { id: string }>('SELECT id FROM dedupe_keys WHERE source = ? AND delivery_id = ?');
  const pruneCandidates = db.prepare<{ eventsBefore: string; from: string; deadBefore: number; limit: number }, { id: string; received_at: string }>(
    `SELECT e.id, e.received_at FROM events e
     WHERE e.received_at < @eventsBefore AND e.received_at >= @from AND ${PRUNABLE}
     ORDER BY e.received_at LIMIT @limit`,
  );
  const keepDeliveryIds = db.prepare<[number, string]>(
    `INSERT INTO dedupe_keys (source, delivery_id, id, event_id, pruned_at)
     SELECT source, delivery_id, id, event_id, ? FROM events WHERE id IN (SELECT value FROM json_each(?))
     ON CONFLICT (source, delivery_id) DO UPDATE SET id = excluded.id, event_id = excluded.event_id, pruned_at = excluded.pruned_at`,
  );
  const deleteAttempts = db.prepare<[string]>('DELETE FROM attempts WHERE job_id IN (SELECT id FROM jobs WHERE event_id IN (SELECT value FROM json_each(?)))');
  // A pair's kept count holds its counted jobs created after counted_since; those pruned before
  // the pair is judged again (it went quiet past its window and the retention) leave it here,
  // or the count would keep them for good and a quiet pair would come back over its limit.
  const forgetPrunedJobs = db.prepare<[{ ids: string }]>(
    `UPDATE pair_counts SET n = n - (
       SELECT count(*) FROM jobs j
       WHERE j.event_id IN (SELECT value FROM json_each(@ids)) AND j.counted = 1
         AND j.source_pipeline = pair_counts.source_pipeline AND j.target = pair_counts.target AND j.created_at > pair_counts.counted_since)
     WHERE (source_pipeline, target) IN (SELECT source_pipeline, target FROM jobs WHERE event_id IN (SELECT value FROM json_each(@ids)) AND counted = 1)`,
  );
  const deleteJobs = db.prepare<[string]>('DELETE FROM jobs WHERE event_id IN (SELECT value FROM json_each(?))');
  const deleteEvents = db.prepare<[string]>('DELETE FROM events WHERE id IN (SELECT value FROM json_each(?))');
  const expireDeliveryIds = db.prepare<[number, number]>(
    'DELETE FROM dedupe_keys WHERE (source, delivery_id) IN (SELECT source, delivery_id FROM dedupe_keys WHERE pruned_at < ? LIMIT ?)',
  );
  const finishedNotifications = db.prepare<{ eventsBefore: number; deadBefore: number; limit: number }, { id: string }>(
    `SELECT id FROM notifications WHERE ${FINISHED_NOTIFICATION('@eventsBefore', '@deadBefore')} LIMIT @limit`,
  );
  const deleteNotificationAttempts = db.prepare<[string]>('DELETE FROM notification_attempts WHERE notification_id IN (SELECT value FROM json_each(?))');
  const deleteNotifications = db.prepare<[string]>('DELETE FROM notifications WHERE id IN (SELECT value FROM json_each(?))');
  const pruneNotifications = (cutoffs: { eventsBefore: number; deadBefore: number }, limit: number) => {
    const ids = JSON.stringify(finishedNotifications.all({ eventsBefore: cutoffs.eventsBefore, deadBefore: cutoffs.deadBefore, limit }).map((r) => r.id));
    const notification_attempts = deleteNotificationAttempts.run(ids).changes;
    return { notifications: deleteNotifications.run(ids).changes, notification_attempts };
  };
  // Freed pages go back to the file system (auto_vacuum = INCREMENTAL) a small step per batch,
  // once they are more than a tenth of the file (below that the next inserts reuse them); true
  // while more than a tenth is still free, so the round goes on in steps with pauses between.
  const free = () => (db.pragma('freelist_count', { simple: true }) as number) > (db.pragma('page_count', { simple: true }) as number) / 10;
  const giveBackFreePages = () => {
    if (!free()) return false;
    db.pragma(`incremental_vacuum(${VACUUM_PAGES})`);
    return free();
  };
  const rowCount = Object.fromEntries(PRUNED_TABLES.map((t) => [t, db.prepare<[], { n: number }>(`SELECT count(*) AS n FROM ${t}`)]));
  const exportEventRows = db.prepare<[number, string | null, string | null, number], EventRow>(
    'SELECT * FROM events WHERE seq > ? AND (? IS NULL OR received_at < ?) ORDER BY seq LIMIT ?',
  );
  const exportJobRows = db.prepare<[string], JobRow & { counted: number }>('SELECT * FROM jobs WHERE event_id IN (SELECT value FROM json_each(?)) ORDER BY created_at, route');
  const exportAttemptRows = db.prepare<[string], AttemptRow>(
    'SELECT * FROM attempts WHERE job_id IN (SELECT id FROM jobs WHERE event_id IN (SELECT value FROM json_each(?))) ORDER BY job_id, n',
  );

  // Notifications (DESIGN §8): written inside the transaction of their cause; (target, cause) unique.
  const insertNotification = db.prepare(
    `INSERT INTO notifications (id, target, type, cause, event_id, job_id, body, next_attempt_at, created_at, updated_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (target, cause) DO NOTHING`,
  );
  const eventIdsOf = db.prepare<[string], EventIds>('SELECT event_id, run_id, pipeline_id FROM events WHERE id = ?');
  const notifyOf = (notify: Notifier | undefined, causes: NotifyCause[]) => {
    if (!notify) return;
    const now = clock();
    for (const cause of causes) for (const n of notify(cause, now)) insertNotification.run(...newNotificationValues(n));
  };
  const claimNotificationRows = db.prepare<[string, number, string, number, number, number], NotificationRow>(
    `UPDATE notifications SET lease_owner = ?, lease_until = ?
     WHERE id IN (
       SELECT id FROM notifications
       WHERE target = ? AND state = 'pending' AND next_attempt_at <= ? AND (lease_until IS NULL OR lease_until <= ?)
       ORDER BY next_attempt_at LIMIT ?)
     RETURNING *`,
  );
  const notificationLease = db.prepare<[string], { lease_owner: string | null }>('SELECT lease_owner FROM notifications WHERE id = ?');
  const insertNotificationAttempt = db.prepare(
    `INSERT INTO notification_attempts (notification_id, n, started_at, duration_ms, http_status, outcome, detail, next_retry_at)
     VALUES (?, (SELECT count(*) + 1 FROM notification_attempts WHERE notification_id = ?), ?, ?, ?, ?, ?, ?)
     RETURNING n`,
  );
  const updateNotification = db.prepare(
    `UPDATE notifications SET state = ?, attempts = attempts + 1, next_attempt_at = ?, last_error = ?, done_at = ?, updated_at = ?, lease_owner = NULL, lease_until = NULL WHERE id = ?`,
  );
  const releaseNotificationRow = db.prepare('UPDATE notifications SET lease_owner = NULL, lease_until = NULL, next_attempt_at = ? WHERE id = ? AND lease_owner = ?');
  const notificationById = db.prepare<[string], NotificationRow>('SELECT * FROM notifications WHERE id = ?');
  const notificationsByEvent = db.prepare<[string], NotificationRow>('SELECT * FROM notifications WHERE event_id = ? ORDER BY seq');
  const attemptsByNotification = db.prepare<[string], NotificationAttemptRow>('SELECT * FROM notification_attempts WHERE notification_id = ? ORDER BY n');
  const replayNotificationRow = db.prepare("UPDATE notifications SET state = 'pending', attempts = 0, next_attempt_at = ?, updated_at = ?, done_at = NULL WHERE id = ? AND state = 'dead'");
  const nextNotification = db.prepare<[], { at: number | null }>("SELECT min(next_attempt_at) AS at FROM notifications WHERE state = 'pending'");

  /**
   * The breaker's count and state for a pair, as of `now`: the kept count less the jobs that
   * left the window since it was kept (a reset moves `since` past them all). `save` keeps the
   * new count (inside a write transaction); a window that grew, or a new pair, counts afresh.
   */
  const pair = (source: string, target: string, now: number, windowMs: number, save: boolean) => {
    const breaker = breakerRow.get(source, target);
    const since = Math.max(now - windowMs, breaker?.reset_at ?? 0);
    const kept = pairRow.get(source, target);
    const count =
      kept && since >= kept.counted_since
        ? kept.n - (since > kept.counted_since ? countedBetween.get(source, target, kept.counted_since, since)!.n : 0)
        : countedAfter.get(source, target, since)!.n;
    if (save && (kept?.counted_since !== since || kept.n !== count)) savePair.run(source, target, since, count);
    return { count, openUntil: breaker?.open_until ?? null };
  };

  /** Each job pending, dead (no request) or blocked (lineage, or the breaker judged here). */
  const insertJobs = (eventId: string, received: number, jobs: readonly NewJob[], policy: IngestPolicy): Inserted['jobs'] => {
    const now = clock();
    const outcomes: Inserted['jobs'] = [];
    for (const job of jobs) {
      const { block, openedUntil } = judgeJob(job, () => pair(job.sourcePipeline, job.target, now, policy.breaker.windowMs, true), now, policy.breaker);
      if (openedUntil !== undefined) openBreaker.run(job.sourcePipeline, job.target, now, openedUntil);
      if (openedUntil !== undefined && policy.notify) notifyOf(policy.notify, [breakerCause(job, eventId, eventIdsOf.get(eventId), now, block?.detail ?? 'breaker opened')]);
      const { state, dagRunId, request } = newJobRow(job, block);
      const counted = state === 'pending';
      insertJobRow.run(
        newRowId(), eventId, job.route, job.airflow, job.dagId, dagRunId, request,
        state, job.sourcePipeline, job.target, JSON.stringify(job.lineage), block?.reason ?? null,
        received, job.error ?? block?.detail ?? null, received, now, now, counted ? 1 : 0,
      );
      if (counted) bumpPair.run(job.sourcePipeline, job.target);
      outcomes.push({ route: job.route, state, ...(block ? { block } : {}) });
    }
    return outcomes;
  };

  // Group commit: the writes that arrive in one turn of the event loop — ingested events,
  // claims, attempt records — share one transaction (one WAL write and one fsync, which
  // better-sqlite3 does on this thread). Each caller hears back only after the commit, so
  // "on disk before the answer" holds; if the commit fails, every caller in it gets the
  // failure and nothing of any of them is written.
  const grouped = groupCommit(async (batch: (() => unknown)[]) => (await clear(), db.transaction(() => batch.map((run) => run())).immediate()), 1) as <T>(run: () => T) => Promise<T>;
  // Readiness remembers how the last real commits went (a probe alone can be lucky).
  let lastFailure: { at: number; message: string } | undefined;
  let lastSuccess = 0;
  let probedOk = 0;
  const write = <T>(run: () => T): Promise<T> =>
    grouped(run).then(
      (value) => ((lastSuccess = Date.now()), value),
      (err: Error) => {
        lastFailure = { at: Date.now(), message: err.message };
        throw err;
      },
    );

  const oneInsert = (e: NewEvent, jobs: readonly NewJob[], policy: IngestPolicy): Result<Inserted, StoreReason> => {
    // A delivery whose event was pruned is still a duplicate while its id is kept.
    const pruned = dedupeKey.get(e.source, e.deliveryId);
    if (pruned) return ok({ id: pruned.id, duplicate: true, jobs: [], newLearnedEdge: false });
    const inserted = insertWithJobs(e, jobs, policy);
    if (inserted) return ok({ ...inserted, duplicate: false });
    const earlier = existing.get(e.source, e.deliveryId);
    if (!earlier) return fail('store_unavailable', 'insert reported a duplicate that cannot be read back');
    return ok({ id: earlier.id, duplicate: true, jobs: [], newLearnedEdge: false });
  };

  // Runs only inside flush's transaction, which already rolls back the whole batch when any
  // insert throws; a transaction of its own here was a SAVEPOINT and RELEASE per event, no more.
  const insertWithJobs = (e: NewEvent, jobs: readonly NewJob[], policy: IngestPolicy): Omit<Inserted, 'duplicate'> | undefined => {
    const id = newRowId();
    const row = insertEventRow.get(
      id, e.source, e.deliveryId, e.scheme, e.eventId, e.type, e.pipelineId, e.runId,
      jobs.length > 0 ? 'routed' : 'unrouted', JSON.stringify(e.headers), e.body, e.receivedAt.toISOString(), JSON.stringify(e.routing),
    );
    if (!row) return undefined;
    const outcomes = insertJobs(id, e.receivedAt.getTime(), jobs, policy);
    const edge = policy.learnedEdge;
    const now = clock();
    const newLearnedEdge = edge ? learnEdge.get(edge.dagId, edge.pipelineId, edge.pipelineName, now, now)!.events === 1 : false;
    return { id, jobs: outcomes, newLearnedEdge };
  };

  return {
    insertEvent(e, jobs, policy) {
      return write(() => oneInsert(e, jobs, policy)).catch((err: Error) => fail('store_unavailable', `SQLite: ${err.message}`));
    },

    async getEvent(id) {
      const row = eventById.get(id);
      return row ? toEvent(row) : undefined;
    },

    claimJobs({ airflow, now, limit, leaseMs, owner }) {
      return write(() => claim.all(owner, now + leaseMs, airflow, now, now, limit).map(toJob));
    },

    finishAttempt(jobId, lease, attempt, update, notify) {
      return write(() => {
        if (leaseHolder.get(jobId)?.lease_owner !== lease) return undefined;
        const { n } = insertAttempt.get(jobId, jobId, attempt.startedAt, attempt.durationMs, attempt.httpStatus, attempt.outcome, attempt.detail, attempt.nextRetryAt) as { n: number };
        updateJob.run(...jobUpdateValues(update, clock()), jobId);
        if (update.state === 'dead' && notify) {
          const row = jobById.get(jobId)!;
          notifyOf(notify, [deadJobCause(row, eventIdsOf.get(row.event_id), n, update.error)]);
        }
        return n;
      });
    },

    async releaseJob(jobId, owner, nextAttemptAt) {
      await write(() => release.run(nextAttemptAt, clock(), jobId, owner));
    },

    async getJob(id) {
      const row = jobById.get(id);
      return row ? toJob(row) : undefined;
    },

    async jobsOfEvent(eventId) {
      return jobsByEvent.all(eventId).map(toJob);
    },

    async attemptsOfJob(jobId) {
      return attemptsByJob.all(jobId).map(toAttempt);
    },

    async replayJob(id, now) {
      return replay.run(now, now, id).changes === 1;
    },

    async listEvents(filter) {
      const where: string[] = [];
      const args: unknown[] = [];
      if (filter.status) (where.push('status = ?'), args.push(filter.status));
      if (filter.pipelineId) (where.push('pipeline_id = ?'), args.push(filter.pipelineId));
      if (filter.type) (where.push('type = ?'), args.push(filter.type));
      if (filter.since) (where.push('received_at >= ?'), args.push(filter.since.toISOString()));
      if (filter.cursor) (where.push('seq < ?'), args.push(Number(filter.cursor)));
      const rows = db
        .prepare<unknown[], EventRow>(`SELECT * FROM events ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC LIMIT ?`)
        .all(...args, filter.limit + 1);
      const items = rows.slice(0, filter.limit).map(toEvent);
      return rows.length > filter.limit ? { items, nextCursor: String(items.at(-1)!.seq) } : { items };
    },

    claimRuns({ airflow, now, limit, leaseMs, owner }) {
      return write(() => claimRunRows.all(owner, now + leaseMs, airflow, owner, now, limit).map(toTrackedRun));
    },

    recordRuns(airflow, observations, judge, now, notify) {
      return write(() => {
        const changes: RunChange[] = [];
        for (const observation of observations) {
          for (const row of runJobs.all(airflow, observation.dagId, observation.dagRunId)) {
            const run = toTrackedRun(row);
            const verdict = judge(run, observation);
            updateRun.run(...runUpdateValues(verdict, now), row.id);
            const slaMissed = verdict.sla && markSla.run(verdict.sla, row.id).changes === 1 ? verdict.sla : undefined;
            const finished = verdict.state !== run.state && isFinal(verdict.state);
            if (runChanged(run, verdict, Boolean(row.run_open)) || slaMissed) {
              const change: RunChange = { run: { ...run, state: verdict.state, startDate: verdict.startDate, endDate: verdict.endDate }, finished, ...(slaMissed ? { slaMissed } : {}) };
              changes.push(change);
              if (notify) notifyOf(notify, runCauses(change, row.run_url, eventIdsOf.get(row.event_id)));
            }
          }
        }
        return changes;
      });
    },

    async listJobs(filter) {
      const rows = db
        .prepare<unknown[], JobRow & { rowid: number }>(
          `SELECT rowid, * FROM jobs WHERE (? IS NULL OR state = ?) AND (? IS NULL OR run_state = ?) AND (? IS NULL OR rowid < ?) ORDER BY rowid DESC LIMIT ?`,
        )
        .all(filter.state ?? null, filter.state ?? null, filter.runState ?? null, filter.runState ?? null, filter.cursor ?? null, filter.cursor ? Number(filter.cursor) : null, filter.limit + 1);
      const items = rows.slice(0, filter.limit);
      return rows.length > filter.limit ? { items: items.map(toJob), nextCursor: String(items.at(-1)!.rowid) } : { items: items.map(toJob) };
    },

    async addJobs(eventId, jobs, policy) {
      return db.transaction(() => {
        const event = eventById.get(eventId);
        if (!event) return [];
        const have = new Set(jobsByEvent.all(eventId).map((j) => j.route));
        const created = insertJobs(eventId, new Date(event.received_at).getTime(), jobs.filter((j) => !have.has(j.route)), policy);
        if (created.length > 0) db.prepare("UPDATE events SET status = 'routed' WHERE id = ?").run(eventId);
        return created;
      }).immediate();
    },

    async pendingByAirflow() {
      return Object.fromEntries(db.prepare<[], { airflow: string; n: number }>("SELECT airflow, count(*) AS n FROM jobs WHERE state = 'pending' GROUP BY airflow").all().map((r) => [r.airflow, r.n]));
    },

    async jobCounts() {
      const counts: Record<JobState, number> = { pending: 0, done: 0, dead: 0, blocked: 0 };
      for (const row of countByState.all()) counts[row.state] = row.n;
      return counts;
    },

    async oldestPendingAt() {
      return oldestPending.get()?.at ?? undefined;
    },

    async activity(since) {
      return activityOf(since, clock(), receivedPerMinute.all(new Date(since).toISOString()), triggeredPerMinute.all(since));
    },

    async learnedEdges() {
      return learnedRows.all().map((r) => ({ dagId: r.dag_id, pipelineId: r.pipeline_id, pipelineName: r.pipeline_name }));
    },

    async openBreakers(now) {
      return openBreakerRows.all(now).map((r) => ({ sourcePipeline: r.source_pipeline, target: r.target, openedAt: r.opened_at, openUntil: r.open_until }));
    },

    async resetBreaker(source, target, now) {
      const wasOpen = (breakerRow.get(source, target)?.open_until ?? 0) > now;
      resetBreakerRow.run(source, target, now);
      return wasOpen;
    },

    async pairState(source, target, now, windowMs) {
      return pair(source, target, now, windowMs, false);
    },

    claimNotifications({ target, now, limit, leaseMs, owner }) {
      return write(() => claimNotificationRows.all(owner, now + leaseMs, target, now, now, limit).map(toNotification));
    },

    finishNotification(id, lease, attempt, update) {
      return write(() => {
        if (notificationLease.get(id)?.lease_owner !== lease) return undefined;
        const { n } = insertNotificationAttempt.get(id, id, attempt.startedAt, attempt.durationMs, attempt.httpStatus, attempt.outcome, attempt.detail, attempt.nextRetryAt) as { n: number };
        updateNotification.run(...notificationUpdateValues(update, clock()), id);
        return n;
      });
    },

    async releaseNotification(id, owner, nextAttemptAt) {
      await write(() => releaseNotificationRow.run(nextAttemptAt, id, owner));
    },

    async getNotification(id) {
      const row = notificationById.get(id);
      return row ? toNotification(row) : undefined;
    },

    async listNotifications(filter) {
      const rows = db
        .prepare<unknown[], NotificationRow & { seq: number }>(
          'SELECT * FROM notifications WHERE (? IS NULL OR target = ?) AND (? IS NULL OR state = ?) AND (? IS NULL OR seq < ?) ORDER BY seq DESC LIMIT ?',
        )
        .all(filter.target ?? null, filter.target ?? null, filter.state ?? null, filter.state ?? null, filter.cursor ?? null, filter.cursor ? Number(filter.cursor) : null, filter.limit + 1);
      const items = rows.slice(0, filter.limit);
      return rows.length > filter.limit ? { items: items.map(toNotification), nextCursor: String(items.at(-1)!.seq) } : { items: items.map(toNotification) };
    },

    async notificationsOfEvent(eventId) {
      return notificationsByEvent.all(eventId).map(toNotification);
    },

    async attemptsOfNotification(id) {
      return attemptsByNotification.all(id).map(toNotificationAttempt);
    },

    async replayNotification(id, now) {
      return (await write(() => replayNotificationRow.run(now, now, id))).changes === 1;
    },

    async nextNotificationAt() {
      return nextNotification.get()?.at ?? undefined;
    },

    async checkWritable() {
      // Every call commits: the blob at most every PROBE_TTL_MS (and after any failure), else
      // one small row update (the write lock and a WAL frame).
      const big = Date.now() - probedOk >= PROBE_TTL_MS;
      try {
        if (big) probe.run(new Date().toISOString(), PROBE_BYTES);
        else probeTouch.run(new Date().toISOString());
        if (big) probedOk = Date.now();
      } catch (err) {
        probedOk = 0;
        return fail('store_unavailable', `SQLite: ${(err as Error).message}`);
      }
      if (lastFailure && lastFailure.at >= lastSuccess && Date.now() - lastFailure.at < FAILED_COMMIT_MEMORY_MS) {
        return fail('store_unavailable', `SQLite: the last commit failed ${Math.round((Date.now() - lastFailure.at) / 1000)}s ago: ${lastFailure.message}`);
      }
      return ok(true as const);
    },

    // Small: a batch holds the write lock and this thread, which ingest waits behind. At 500 a
    // batch took ~35 ms; at 100, 7 ms (p99 17 ms) in the soak, and ingest p99 during rounds was
    // still 1.95 × without.
    pruneBatchSize: 50,

    async pruneBatch(cutoffs, limit, from) {
      // Its own short transaction, synchronous like every write here, so it never interleaves
      // with a group commit; small batches keep the write lock (and this thread) briefly. Not
      // while a checkpoint runs (its many pages would keep that from completing). Committed
      // without an fsync (synchronous = NORMAL, this transaction only): timed in the soak, the
      // batches' bodies took ~2 ms but their FULL commits up to 44 ms, waiting on the disk with
      // every request behind them. Nothing acknowledged depends on a prune: a batch lost to a
      // power cut is deleted again next round, and the next ingest commit (FULL) syncs it anyway.
      await clear();
      db.pragma('synchronous = NORMAL');
      const batch = db.transaction(() => {
        const candidates = pruneCandidates.all({ eventsBefore: new Date(cutoffs.eventsBefore).toISOString(), from: from ?? '', deadBefore: cutoffs.deadBefore, limit });
        const ids = JSON.stringify(candidates.map((c) => c.id));
        if (candidates.length > 0) {
          keepDeliveryIds.run(cutoffs.now, ids);
          forgetPrunedJobs.run({ ids });
        }
        const counts = {
          attempts: candidates.length > 0 ? deleteAttempts.run(ids).changes : 0,
          jobs: candidates.length > 0 ? deleteJobs.run(ids).changes : 0,
          events: candidates.length > 0 ? deleteEvents.run(ids).changes : 0,
          dedupe_keys: expireDeliveryIds.run(cutoffs.dedupeBefore, limit).changes,
          ...pruneNotifications(cutoffs, limit),
        };
        return { counts, full: candidates.length === limit, last: candidates.at(-1)?.received_at, moreFree: giveBackFreePages() };
      });
      let done;
      try {
        done = batch.immediate();
      } finally {
        db.pragma(DURABLE);
      }
      const more = done.full || done.counts.dedupe_keys === limit || done.counts.notifications === limit || done.moreFree;
      return { deleted: done.counts, more, ...(done.last ? { from: done.last } : from ? { from } : {}) };
    },

    // Freed pages already went back batch by batch (incremental_vacuum).
    async reclaim() {
      return undefined;
    },

    // One process owns a SQLite file: nobody to share pruning with.
    async acquirePruneLock() {
      return async () => {};
    },

    async stats() {
      const pageCount = db.pragma('page_count', { simple: true }) as number;
      const pageSize = db.pragma('page_size', { simple: true }) as number;
      const rows = Object.fromEntries(Object.entries(rowCount).map(([t, q]) => [t, q.get()!.n])) as StoreStats['rows'];
      return { bytes: pageCount * pageSize, rows, estimated: false };
    },

    async exportEvents(filter) {
      const before = filter.before ? filter.before.toISOString() : null;
      const events = exportEventRows.all(filter.cursor ? Number(filter.cursor) : 0, before, before, filter.limit);
      const ids = JSON.stringify(events.map((e) => e.id));
      const items = exportLines(events, events.length ? exportJobRows.all(ids) : [], events.length ? exportAttemptRows.all(ids) : []);
      return events.length === filter.limit ? { items, nextCursor: String(events.at(-1)!.seq) } : { items };
    },

    async close() {
      await checkpoints?.stop();
      if (db.open) db.close();
    },

    settings() {
      return {
        journalMode: String(db.pragma('journal_mode', { simple: true })),
        synchronous: SYNCHRONOUS[db.pragma('synchronous', { simple: true }) as number] ?? 'unknown',
        walSizeLimit: db.pragma('journal_size_limit', { simple: true }) as number,
        autoCheckpointPages: db.pragma('wal_autocheckpoint', { simple: true }) as number,
      };
    },
  };
}

/**
 * `auto_vacuum = INCREMENTAL`, so pages freed by pruning can be given back to the file system
 * (`PRAGMA incremental_vacuum` after each prune batch). A new file takes the setting before its
 * first table; an existing file needs one VACUUM (a rewrite of the file, logged), done once.
 */
function incrementalAutoVacuum(db: Database.Database, log: SqliteOptions['log']): void {
  const INCREMENTAL = 2;
  if (db.pragma('auto_vacuum', { simple: true }) === INCREMENTAL) return;
  db.pragma('auto_vacuum = INCREMENTAL');
  const tables = (db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'").get() as { n: number }).n;
  if (tables === 0) return;
  const started = Date.now();
  const bytes = (db.pragma('page_count', { simple: true }) as number) * (db.pragma('page_size', { simple: true }) as number);
  log?.('info', 'store: one-time VACUUM to turn on incremental auto-vacuum (space freed by retention is given back)', { bytes });
  try {
    db.exec('VACUUM');
    log?.('info', 'store: VACUUM done', { ms: Date.now() - started, bytes_after: (db.pragma('page_count', { simple: true }) as number) * (db.pragma('page_size', { simple: true }) as number) });
  } catch (err) {
    // A full disk or a read-only file: the bridge still runs; the file reuses freed pages but does not shrink.
    log?.('warn', `store: VACUUM failed, tried again at the next start: ${(err as Error).message}`);
  }
}

function migrate(db: Database.Database): void {
  // Reading first means a current schema needs no write at all, so a read-only file still
  // opens (and then answers 503) instead of crashing the start.
  if (schemaVersion(db) === sqliteMigrations.length) return;
  db.transaction(() => {
    const current = schemaVersion(db);
    for (let v = current; v < sqliteMigrations.length; v++) db.exec(sqliteMigrations[v]!);
    db.pragma(`user_version = ${sqliteMigrations.length}`);
  }).immediate();
}

function schemaVersion(db: Database.Database): number {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > sqliteMigrations.length) {
    throw new Error(`database schema version ${version} is newer than this bridge knows (${sqliteMigrations.length}); upgrade the bridge`);
  }
  return version;
}
