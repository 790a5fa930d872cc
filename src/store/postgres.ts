import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { fail, ok } from '../errors/result.js';
import { judgeJob, type PairState } from '../guard/breaker.js';
import { postgresMigrations } from './postgres-migrations.js';
import { activityOf, jobUpdateValues, newJobRow, toAttempt, toEvent, toJob, type AttemptRow, type EventRow, type JobRow } from './rows.js';
import type { Inserted, IngestPolicy, JobState, NewJob, Store } from './types.js';

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

// BIGINT (epoch ms, counters) as numbers: they stay far below 2^53.
const types = { getTypeParser: ((oid: number, format?: string) => (oid === 20 ? Number : pg.types.getTypeParser(oid, format as 'text'))) as typeof pg.types.getTypeParser };

export async function openPostgresStore(options: PostgresOptions): Promise<PostgresStore> {
  const clock = options.clock ?? Date.now;
  const pool = new pg.Pool({ connectionString: options.url, max: options.poolSize, types });
  // An idle client's error (the server restarted) must not crash the process; the next
  // query gets a fresh connection.
  pool.on('error', () => {});
  await migrate(pool);

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

  async function pair(c: pg.ClientBase, source: string, target: string, now: number, windowMs: number): Promise<PairState> {
    const breaker = (await c.query<{ open_until: number | null; reset_at: number | null }>('SELECT open_until, reset_at FROM breakers WHERE source_pipeline = $1 AND target = $2', [source, target])).rows[0];
    const since = Math.max(now - windowMs, breaker?.reset_at ?? 0);
    const { n } = (await c.query<{ n: number }>("SELECT count(*)::int AS n FROM jobs WHERE source_pipeline = $1 AND target = $2 AND state IN ('pending', 'done') AND created_at > $3", [source, target, since])).rows[0]!;
    return { count: n, openUntil: breaker?.open_until ?? null };
  }

  async function insertJobs(c: pg.ClientBase, eventId: string, received: number, jobs: readonly NewJob[], policy: IngestPolicy): Promise<Inserted['jobs']> {
    const now = clock();
    const outcomes: Inserted['jobs'] = [];
    for (const job of jobs) {
      let counted: PairState | undefined;
      if (!job.block && job.request) {
        // Replicas judge the same pair one at a time: the count and the insert are atomic.
        await c.query('SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))', [job.sourcePipeline, job.target]);
        counted = await pair(c, job.sourcePipeline, job.target, now, policy.breaker.windowMs);
      }
      const { block, openedUntil } = judgeJob(job, () => counted!, now, policy.breaker);
      if (openedUntil !== undefined) {
        await c.query(
          `INSERT INTO breakers (source_pipeline, target, opened_at, open_until) VALUES ($1, $2, $3, $4)
           ON CONFLICT (source_pipeline, target) DO UPDATE SET opened_at = excluded.opened_at, open_until = excluded.open_until`,
          [job.sourcePipeline, job.target, now, openedUntil],
        );
      }
      const { state, dagRunId, request } = newJobRow(job, block);
      await c.query(
        `INSERT INTO jobs (id, event_id, route, airflow, dag_id, dag_run_id, request, state, source_pipeline, target, lineage, block_reason,
                           next_attempt_at, last_error, received_at, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16)`,
        [
          randomUUID(), eventId, job.route, job.airflow, job.dagId, dagRunId,
          request, state, job.sourcePipeline, job.target, JSON.stringify(job.lineage), block?.reason ?? null,
          received, job.error ?? block?.detail ?? null, received, now,
        ],
      );
      outcomes.push({ route: job.route, state, ...(block ? { block } : {}) });
    }
    if (outcomes.some((o) => o.state === 'pending')) await c.query(`NOTIFY ${CHANNEL}`);
    return outcomes;
  }

  const store: PostgresStore = {
    async insertEvent(e, jobs, policy) {
      try {
        const inserted = await tx(async (c) => {
          const id = randomUUID();
          const row = await c.query(
            `INSERT INTO events (id, source, delivery_id, scheme, event_id, type, pipeline_id, run_id, status, headers, body, received_at, routing)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
             ON CONFLICT (source, delivery_id) DO NOTHING RETURNING id`,
            [id, e.source, e.deliveryId, e.scheme, e.eventId, e.type, e.pipelineId, e.runId, jobs.length > 0 ? 'routed' : 'unrouted', JSON.stringify(e.headers), e.body, e.receivedAt, JSON.stringify(e.routing)],
          );
          if (row.rowCount === 0) return undefined;
          const outcomes = await insertJobs(c, id, e.receivedAt.getTime(), jobs, policy);
          let newLearnedEdge = false;
          const edge = policy.learnedEdge;
          if (edge) {
            const now = clock();
            const learned = await c.query<{ events: number }>(
              `INSERT INTO learned_edges (dag_id, pipeline_id, pipeline_name, first_seen, last_seen, events) VALUES ($1, $2, $3, $4, $4, 1)
               ON CONFLICT (dag_id, pipeline_id) DO UPDATE SET last_seen = excluded.last_seen, events = learned_edges.events + 1,
                 pipeline_name = coalesce(excluded.pipeline_name, learned_edges.pipeline_name)
               RETURNING events`,
              [edge.dagId, edge.pipelineId, edge.pipelineName, now],
            );
            newLearnedEdge = learned.rows[0]!.events === 1;
          }
          return { id, jobs: outcomes, newLearnedEdge };
        });
        if (inserted) return ok({ ...inserted, duplicate: false });
        const earlier = (await pool.query<{ id: string }>('SELECT id FROM events WHERE source = $1 AND delivery_id = $2', [e.source, e.deliveryId])).rows[0];
        if (!earlier) return fail('store_unavailable', 'insert reported a duplicate that cannot be read back');
        return ok({ id: earlier.id, duplicate: true, jobs: [], newLearnedEdge: false });
      } catch (err) {
        return fail('store_unavailable', `PostgreSQL: ${(err as Error).message}`);
      }
    },

    async getEvent(id) {
      const row = (await pool.query<EventRow>('SELECT * FROM events WHERE id = $1', [id])).rows[0];
      return row ? toEvent(row) : undefined;
    },

    async claimJobs({ airflow, now, limit, leaseMs, owner }) {
      const { rows } = await pool.query<JobRow>(
        `UPDATE jobs SET lease_owner = $1, lease_until = $2
         WHERE id IN (
           SELECT id FROM jobs
           WHERE airflow = $3 AND state = 'pending' AND next_attempt_at <= $4 AND (lease_until IS NULL OR lease_until <= $4)
           ORDER BY next_attempt_at LIMIT $5
           FOR UPDATE SKIP LOCKED)
         RETURNING *`,
        [owner, now + leaseMs, airflow, now, limit],
      );
      return rows.map(toJob);
    },

    async finishAttempt(jobId, lease, attempt, update) {
      return tx(async (c) => {
        const held = (await c.query<{ lease_owner: string | null }>('SELECT lease_owner FROM jobs WHERE id = $1 FOR UPDATE', [jobId])).rows[0];
        if (held?.lease_owner !== lease) return undefined;
        const { n } = (
          await c.query<{ n: number }>(
            `INSERT INTO attempts (job_id, n, started_at, duration_ms, http_status, outcome, detail, next_retry_at)
             VALUES ($1, (SELECT count(*) + 1 FROM attempts WHERE job_id = $1), $2, $3, $4, $5, $6, $7) RETURNING n`,
            [jobId, attempt.startedAt, attempt.durationMs, attempt.httpStatus, attempt.outcome, attempt.detail, attempt.nextRetryAt],
          )
        ).rows[0]!;
        await c.query(
          `UPDATE jobs SET state = $1, attempts = attempts + 1, next_attempt_at = $2, last_error = $3, airflow_state = coalesce($4, airflow_state),
             dag_run_id = coalesce($5, dag_run_id), done_at = $6, updated_at = $7, lease_owner = NULL, lease_until = NULL
           WHERE id = $8`,
          [...jobUpdateValues(update, clock()), jobId],
        );
        return n;
      });
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
      if (result.rowCount === 1) await pool.query(`NOTIFY ${CHANNEL}`);
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

    async listJobs(filter) {
      const { rows } = await pool.query<JobRow & { seq: number }>(
        'SELECT * FROM jobs WHERE ($1::text IS NULL OR state = $1) AND ($2::bigint IS NULL OR seq < $2) ORDER BY seq DESC LIMIT $3',
        [filter.state ?? null, filter.cursor ? Number(filter.cursor) : null, filter.limit + 1],
      );
      const items = rows.slice(0, filter.limit);
      return rows.length > filter.limit ? { items: items.map(toJob), nextCursor: String(items.at(-1)!.seq) } : { items: items.map(toJob) };
    },

    async addJobs(eventId, jobs, policy) {
      return tx(async (c) => {
        const event = (await c.query<{ received_at: Date }>('SELECT received_at FROM events WHERE id = $1 FOR UPDATE', [eventId])).rows[0];
        if (!event) return [];
        const have = new Set((await c.query<{ route: string }>('SELECT route FROM jobs WHERE event_id = $1', [eventId])).rows.map((r) => r.route));
        const created = await insertJobs(c, eventId, event.received_at.getTime(), jobs.filter((j) => !have.has(j.route)), policy);
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
      return pair(pool as unknown as pg.ClientBase, source, target, now, windowMs);
    },

    async checkWritable() {
      try {
        await pool.query('SELECT 1 FROM events LIMIT 0');
        const { rows } = await pool.query<{ ro: string }>('SHOW transaction_read_only');
        if (rows[0]?.ro === 'on') return fail('store_unavailable', 'PostgreSQL: the server is read-only (a standby?)');
        return ok(true as const);
      } catch (err) {
        return fail('store_unavailable', `PostgreSQL: ${(err as Error).message}`);
      }
    },

    async subscribe(listener) {
      const client = new pg.Client({ connectionString: options.url });
      client.on('error', () => {});
      await client.connect();
      client.on('notification', () => listener());
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
