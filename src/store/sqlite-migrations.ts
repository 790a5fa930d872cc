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
];
