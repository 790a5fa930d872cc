// Versioned schema: entry i brings the database from user_version i to i + 1. Never edit a
// shipped entry; append a new one.
export const sqliteMigrations: readonly string[] = [
  `CREATE TABLE events (
     seq          INTEGER PRIMARY KEY AUTOINCREMENT,
     id           TEXT    NOT NULL UNIQUE,
     source       TEXT    NOT NULL,
     delivery_id  TEXT    NOT NULL,
     scheme       TEXT    NOT NULL,
     event_id     TEXT    NOT NULL,
     type         TEXT    NOT NULL,
     pipeline_id  TEXT    NOT NULL,
     run_id       TEXT    NOT NULL,
     status       TEXT    NOT NULL,
     headers      TEXT    NOT NULL,
     body         BLOB    NOT NULL,
     received_at  TEXT    NOT NULL,
     UNIQUE (source, delivery_id)
   );
   CREATE INDEX events_received_at ON events (received_at);
   CREATE INDEX events_pipeline ON events (pipeline_id, received_at);
   -- One row rewritten (and rolled back) by the readiness probe: proves a write is possible.
   CREATE TABLE probe (id INTEGER PRIMARY KEY CHECK (id = 1), at TEXT NOT NULL);`,
  `UPDATE events SET status = 'unrouted' WHERE status = 'received';
   -- Each route's decision for the event (matched, or why not), as JSON.
   ALTER TABLE events ADD COLUMN routing TEXT NOT NULL DEFAULT '[]';
   CREATE TABLE jobs (
     id              TEXT    PRIMARY KEY,
     event_id        TEXT    NOT NULL REFERENCES events (id),
     route           TEXT    NOT NULL,
     airflow         TEXT    NOT NULL,
     dag_id          TEXT    NOT NULL,
     dag_run_id      TEXT,
     request         TEXT,
     state           TEXT    NOT NULL CHECK (state IN ('pending', 'done', 'dead', 'blocked')),
     source_pipeline TEXT    NOT NULL,
     target          TEXT    NOT NULL,
     lineage         TEXT    NOT NULL,
     block_reason    TEXT,
     attempts        INTEGER NOT NULL DEFAULT 0,
     next_attempt_at INTEGER NOT NULL,
     lease_owner     TEXT,
     lease_until     INTEGER,
     last_error      TEXT,
     airflow_state   TEXT,
     received_at     INTEGER NOT NULL,
     created_at      INTEGER NOT NULL,
     updated_at      INTEGER NOT NULL,
     done_at         INTEGER,
     UNIQUE (event_id, route)
   );
   CREATE INDEX jobs_due ON jobs (airflow, state, next_attempt_at);
   CREATE INDEX jobs_state ON jobs (state, updated_at);
   CREATE INDEX jobs_pair ON jobs (source_pipeline, target, created_at);
   CREATE TABLE breakers (
     source_pipeline TEXT    NOT NULL,
     target          TEXT    NOT NULL,
     opened_at       INTEGER,
     open_until      INTEGER,
     reset_at        INTEGER,
     PRIMARY KEY (source_pipeline, target)
   );
   CREATE TABLE learned_edges (
     dag_id        TEXT    NOT NULL,
     pipeline_id   TEXT    NOT NULL,
     pipeline_name TEXT,
     first_seen    INTEGER NOT NULL,
     last_seen     INTEGER NOT NULL,
     events        INTEGER NOT NULL,
     PRIMARY KEY (dag_id, pipeline_id)
   );
   CREATE TABLE attempts (
     seq           INTEGER PRIMARY KEY AUTOINCREMENT,
     job_id        TEXT    NOT NULL REFERENCES jobs (id),
     n             INTEGER NOT NULL,
     started_at    INTEGER NOT NULL,
     duration_ms   INTEGER NOT NULL,
     http_status   INTEGER,
     outcome       TEXT    NOT NULL,
     detail        TEXT    NOT NULL,
     next_retry_at INTEGER,
     UNIQUE (job_id, n)
   );`,
  // Triggers accepted per minute (the console's throughput) without reading every done job.
  `CREATE INDEX jobs_done_at ON jobs (done_at) WHERE state = 'done';`,
  // The breaker's count per pair kept as a number, moved forward as jobs leave the window:
  // each counted job is read once when it enters and once when it leaves, so judging a pair
  // costs the same with 10 or 100,000 triggers in the window (was count(*) over the window).
  `ALTER TABLE jobs ADD COLUMN counted INTEGER NOT NULL DEFAULT 0;
   UPDATE jobs SET counted = 1 WHERE state IN ('pending', 'done') AND request IS NOT NULL AND block_reason IS NULL;
   DROP INDEX jobs_pair;
   CREATE INDEX jobs_counted ON jobs (source_pipeline, target, created_at) WHERE counted = 1;
   CREATE TABLE pair_counts (
     source_pipeline TEXT    NOT NULL,
     target          TEXT    NOT NULL,
     counted_since   INTEGER NOT NULL,
     n               INTEGER NOT NULL,
     PRIMARY KEY (source_pipeline, target)
   );`,
  // Run tracking (DESIGN §7): the Airflow run a trigger started, followed to its end.
  `ALTER TABLE jobs ADD COLUMN run_state TEXT;
   ALTER TABLE jobs ADD COLUMN run_start INTEGER;
   ALTER TABLE jobs ADD COLUMN run_end INTEGER;
   ALTER TABLE jobs ADD COLUMN run_url TEXT;
   ALTER TABLE jobs ADD COLUMN run_checked_at INTEGER;
   ALTER TABLE jobs ADD COLUMN run_open INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE jobs ADD COLUMN sla_missed TEXT;
   ALTER TABLE jobs ADD COLUMN track_owner TEXT;
   ALTER TABLE jobs ADD COLUMN track_until INTEGER;
   CREATE INDEX jobs_tracked ON jobs (airflow, done_at) WHERE run_open = 1;
   CREATE INDEX jobs_run ON jobs (airflow, dag_id, dag_run_id);
   CREATE INDEX jobs_run_state ON jobs (run_state);`,
  // Outbound notifications (DESIGN §8): one row per (target, cause), written with its cause.
  `CREATE TABLE notifications (
     seq             INTEGER PRIMARY KEY AUTOINCREMENT,
     id              TEXT    NOT NULL UNIQUE,
     target          TEXT    NOT NULL,
     type            TEXT    NOT NULL,
     cause           TEXT    NOT NULL,
     event_id        TEXT,
     job_id          TEXT,
     body            TEXT    NOT NULL,
     state           TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'dead')),
     attempts        INTEGER NOT NULL DEFAULT 0,
     next_attempt_at INTEGER NOT NULL,
     lease_owner     TEXT,
     lease_until     INTEGER,
     last_error      TEXT,
     created_at      INTEGER NOT NULL,
     updated_at      INTEGER NOT NULL,
     done_at         INTEGER,
     UNIQUE (target, cause)
   );
   CREATE INDEX notifications_due ON notifications (target, next_attempt_at) WHERE state = 'pending';
   CREATE INDEX notifications_event ON notifications (event_id);
   CREATE INDEX notifications_state ON notifications (state, seq);
   CREATE TABLE notification_attempts (
     seq             INTEGER PRIMARY KEY AUTOINCREMENT,
     notification_id TEXT    NOT NULL REFERENCES notifications (id),
     n               INTEGER NOT NULL,
     started_at      INTEGER NOT NULL,
     duration_ms     INTEGER NOT NULL,
     http_status     INTEGER,
     outcome         TEXT    NOT NULL,
     detail          TEXT    NOT NULL,
     next_retry_at   INTEGER,
     UNIQUE (notification_id, n)
   );`,
  // Data lifecycle (issue 14): the delivery ids of pruned events, kept for retention.dedupe so
  // a redelivery is still a duplicate; the readiness probe's row gets a blob that needs new
  // pages on every commit (a small rolled-back insert never reaches the disk).
  `CREATE TABLE dedupe_keys (
     source      TEXT    NOT NULL,
     delivery_id TEXT    NOT NULL,
     id          TEXT    NOT NULL,
     event_id    TEXT    NOT NULL,
     pruned_at   INTEGER NOT NULL,
     PRIMARY KEY (source, delivery_id)
   ) WITHOUT ROWID;
   CREATE INDEX dedupe_keys_pruned_at ON dedupe_keys (pruned_at);
   ALTER TABLE probe ADD COLUMN pad BLOB;`,
  // Retention of notifications: finished ones found by state and when they finished.
  `CREATE INDEX notifications_finished ON notifications (state, done_at) WHERE state <> 'pending';`,
  // Kept breaker counts recounted once: before this version a prune left the counted jobs it
  // deleted in their pair's count (a pair quiet past the retention kept its last window's).
  `UPDATE pair_counts SET n = (
     SELECT count(*) FROM jobs j
     WHERE j.source_pipeline = pair_counts.source_pipeline AND j.target = pair_counts.target AND j.counted = 1 AND j.created_at > pair_counts.counted_since)
   WHERE counted_since >= 0;`,
];
