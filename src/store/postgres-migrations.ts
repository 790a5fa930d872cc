// Versioned schema for PostgreSQL: entry i brings the database from version i to i + 1.
// Applied under an advisory lock, so replicas starting together migrate once. Never edit a
// shipped entry; append a new one.
export const postgresMigrations: readonly string[] = [
  `CREATE TABLE events (
     seq          BIGSERIAL PRIMARY KEY,
     id           TEXT        NOT NULL UNIQUE,
     source       TEXT        NOT NULL,
     delivery_id  TEXT        NOT NULL,
     scheme       TEXT        NOT NULL,
     event_id     TEXT        NOT NULL,
     type         TEXT        NOT NULL,
     pipeline_id  TEXT        NOT NULL,
     run_id       TEXT        NOT NULL,
     status       TEXT        NOT NULL,
     headers      JSONB       NOT NULL,
     body         BYTEA       NOT NULL,
     received_at  TIMESTAMPTZ NOT NULL,
     routing      JSONB       NOT NULL DEFAULT '[]',
     UNIQUE (source, delivery_id)
   );
   CREATE INDEX events_received_at ON events (received_at);
   CREATE INDEX events_pipeline ON events (pipeline_id, received_at);
   CREATE TABLE jobs (
     seq             BIGSERIAL PRIMARY KEY,
     id              TEXT    NOT NULL UNIQUE,
     event_id        TEXT    NOT NULL REFERENCES events (id),
     route           TEXT    NOT NULL,
     airflow         TEXT    NOT NULL,
     dag_id          TEXT    NOT NULL,
     dag_run_id      TEXT,
     request         JSONB,
     state           TEXT    NOT NULL CHECK (state IN ('pending', 'done', 'dead', 'blocked')),
     source_pipeline TEXT    NOT NULL,
     target          TEXT    NOT NULL,
     lineage         JSONB   NOT NULL,
     block_reason    TEXT,
     attempts        INTEGER NOT NULL DEFAULT 0,
     next_attempt_at BIGINT  NOT NULL,
     lease_owner     TEXT,
     lease_until     BIGINT,
     last_error      TEXT,
     airflow_state   TEXT,
     received_at     BIGINT  NOT NULL,
     created_at      BIGINT  NOT NULL,
     updated_at      BIGINT  NOT NULL,
     done_at         BIGINT,
     UNIQUE (event_id, route)
   );
   CREATE INDEX jobs_due ON jobs (airflow, next_attempt_at) WHERE state = 'pending';
   CREATE INDEX jobs_state ON jobs (state, seq);
   CREATE INDEX jobs_pair ON jobs (source_pipeline, target, created_at);
   CREATE TABLE attempts (
     seq           BIGSERIAL PRIMARY KEY,
     job_id        TEXT    NOT NULL REFERENCES jobs (id),
     n             INTEGER NOT NULL,
     started_at    BIGINT  NOT NULL,
     duration_ms   INTEGER NOT NULL,
     http_status   INTEGER,
     outcome       TEXT    NOT NULL,
     detail        TEXT    NOT NULL,
     next_retry_at BIGINT,
     UNIQUE (job_id, n)
   );
   CREATE TABLE breakers (
     source_pipeline TEXT   NOT NULL,
     target          TEXT   NOT NULL,
     opened_at       BIGINT,
     open_until      BIGINT,
     reset_at        BIGINT,
     PRIMARY KEY (source_pipeline, target)
   );
   CREATE TABLE learned_edges (
     dag_id        TEXT   NOT NULL,
     pipeline_id   TEXT   NOT NULL,
     pipeline_name TEXT,
     first_seen    BIGINT NOT NULL,
     last_seen     BIGINT NOT NULL,
     events        INTEGER NOT NULL,
     PRIMARY KEY (dag_id, pipeline_id)
   );`,
  // Triggers accepted per minute (the console's throughput) without reading every done job.
  `CREATE INDEX jobs_done_at ON jobs (done_at) WHERE state = 'done';`,
  // The breaker's count per pair kept as a number (see sqlite-migrations.ts), and judged
  // under that row's lock once per ingest batch instead of an advisory lock per event.
  `ALTER TABLE jobs ADD COLUMN counted BOOLEAN NOT NULL DEFAULT false;
   UPDATE jobs SET counted = true WHERE state IN ('pending', 'done') AND request IS NOT NULL AND block_reason IS NULL;
   DROP INDEX jobs_pair;
   CREATE INDEX jobs_counted ON jobs (source_pipeline, target, created_at) WHERE counted;
   CREATE TABLE pair_counts (
     source_pipeline TEXT   NOT NULL,
     target          TEXT   NOT NULL,
     counted_since   BIGINT NOT NULL,
     n               BIGINT NOT NULL,
     PRIMARY KEY (source_pipeline, target)
   );`,
  // Run tracking (DESIGN §7): the Airflow run a trigger started, followed to its end.
  `ALTER TABLE jobs ADD COLUMN run_state TEXT, ADD COLUMN run_start BIGINT, ADD COLUMN run_end BIGINT, ADD COLUMN run_url TEXT,
     ADD COLUMN run_checked_at BIGINT, ADD COLUMN run_open SMALLINT NOT NULL DEFAULT 0, ADD COLUMN sla_missed TEXT,
     ADD COLUMN track_owner TEXT, ADD COLUMN track_until BIGINT;
   CREATE INDEX jobs_tracked ON jobs (airflow, done_at) WHERE run_open = 1;
   CREATE INDEX jobs_run ON jobs (airflow, dag_id, dag_run_id);
   CREATE INDEX jobs_run_state ON jobs (run_state);`,
  // Outbound notifications (DESIGN §8): one row per (target, cause), written with its cause.
  `CREATE TABLE notifications (
     seq             BIGSERIAL PRIMARY KEY,
     id              TEXT    NOT NULL UNIQUE,
     target          TEXT    NOT NULL,
     type            TEXT    NOT NULL,
     cause           TEXT    NOT NULL,
     event_id        TEXT,
     job_id          TEXT,
     body            JSONB   NOT NULL,
     state           TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'dead')),
     attempts        INTEGER NOT NULL DEFAULT 0,
     next_attempt_at BIGINT  NOT NULL,
     lease_owner     TEXT,
     lease_until     BIGINT,
     last_error      TEXT,
     created_at      BIGINT  NOT NULL,
     updated_at      BIGINT  NOT NULL,
     done_at         BIGINT,
     UNIQUE (target, cause)
   );
   CREATE INDEX notifications_due ON notifications (target, next_attempt_at) WHERE state = 'pending';
   CREATE INDEX notifications_event ON notifications (event_id);
   CREATE INDEX notifications_state ON notifications (state, seq);
   CREATE TABLE notification_attempts (
     seq             BIGSERIAL PRIMARY KEY,
     notification_id TEXT    NOT NULL REFERENCES notifications (id),
     n               INTEGER NOT NULL,
     started_at      BIGINT  NOT NULL,
     duration_ms     INTEGER NOT NULL,
     http_status     INTEGER,
     outcome         TEXT    NOT NULL,
     detail          TEXT    NOT NULL,
     next_retry_at   BIGINT,
     UNIQUE (notification_id, n)
   );`,
  // Data lifecycle (issue 14): delivery ids of pruned events (see sqlite-migrations.ts), and a
  // one-row table the readiness probe really commits to.
  `CREATE TABLE dedupe_keys (
     source      TEXT   NOT NULL,
     delivery_id TEXT   NOT NULL,
     id          TEXT   NOT NULL,
     event_id    TEXT   NOT NULL,
     pruned_at   BIGINT NOT NULL,
     PRIMARY KEY (source, delivery_id)
   );
   CREATE INDEX dedupe_keys_pruned_at ON dedupe_keys (pruned_at);
   CREATE TABLE probe (id INTEGER PRIMARY KEY CHECK (id = 1), at BIGINT NOT NULL, pad BYTEA);`,
  // Retention of notifications: finished ones found by state and when they finished.
  `CREATE INDEX notifications_finished ON notifications (state, done_at) WHERE state <> 'pending';`,
  // Kept breaker counts recounted once (see sqlite-migrations.ts).
  `UPDATE pair_counts p SET n = (
     SELECT count(*) FROM jobs j
     WHERE j.source_pipeline = p.source_pipeline AND j.target = p.target AND j.counted AND j.created_at > p.counted_since)
   WHERE p.counted_since >= 0;`,
];
