import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import { fail, ok } from '../errors/result.js';
import { sqliteMigrations } from './sqlite-migrations.js';
import type { EventStatus, NewEvent, Store, StoredEvent } from './types.js';

export interface SqliteOptions {
  path: string;
  busyTimeoutMs: number;
}

interface EventRow {
  seq: number;
  id: string;
  source: string;
  delivery_id: string;
  scheme: string;
  event_id: string;
  type: string;
  pipeline_id: string;
  run_id: string;
  status: EventStatus;
  headers: string;
  body: Buffer;
  received_at: string;
}

const ROLLBACK = Symbol('rollback');

export function openSqliteStore(options: SqliteOptions): Store {
  if (options.path !== ':memory:') mkdirSync(dirname(options.path), { recursive: true });
  const db = new Database(options.path, { timeout: options.busyTimeoutMs });
  db.pragma('journal_mode = WAL');
  // FULL: the WAL is fsynced on every commit, so a 2xx means the event survives power loss,
  // not just a crash of this process.
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  migrate(db);

  const insert = db.prepare<unknown[], { id: string }>(
    `INSERT INTO events (id, source, delivery_id, scheme, event_id, type, pipeline_id, run_id, status, headers, body, received_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'received', ?, ?, ?)
     ON CONFLICT (source, delivery_id) DO NOTHING
     RETURNING id`,
  );
  const existing = db.prepare<[string, string], { id: string }>('SELECT id FROM events WHERE source = ? AND delivery_id = ?');
  const byId = db.prepare<[string], EventRow>('SELECT * FROM events WHERE id = ?');
  const probe = db.prepare<[string]>('INSERT OR REPLACE INTO probe (id, at) VALUES (1, ?)');

  return {
    async insertEvent(e: NewEvent) {
      try {
        const row = insert.get(
          randomUUID(), e.source, e.deliveryId, e.scheme, e.eventId, e.type, e.pipelineId, e.runId,
          JSON.stringify(e.headers), e.body, e.receivedAt.toISOString(),
        );
        if (row) return ok({ id: row.id, duplicate: false });
        const earlier = existing.get(e.source, e.deliveryId);
        if (!earlier) return fail('store_unavailable', 'insert reported a duplicate that cannot be read back');
        return ok({ id: earlier.id, duplicate: true });
      } catch (err) {
        return fail('store_unavailable', `SQLite: ${(err as Error).message}`);
      }
    },

    async getEvent(id: string) {
      const row = byId.get(id);
      return row ? toEvent(row) : undefined;
    },

    async checkWritable() {
      try {
        // A real row write, rolled back: BEGIN alone succeeds even on a read-only file.
        db.transaction(() => {
          probe.run(new Date().toISOString());
          throw ROLLBACK;
        })();
      } catch (err) {
        if (err !== ROLLBACK) return fail('store_unavailable', `SQLite: ${(err as Error).message}`);
      }
      return ok(true as const);
    },

    async close() {
      if (db.open) db.close();
    },
  };
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

function toEvent(row: EventRow): StoredEvent {
  return {
    seq: row.seq,
    id: row.id,
    source: row.source,
    deliveryId: row.delivery_id,
    scheme: row.scheme,
    eventId: row.event_id,
    type: row.type,
    pipelineId: row.pipeline_id,
    runId: row.run_id,
    status: row.status,
    headers: JSON.parse(row.headers) as Record<string, string>,
    body: row.body,
    receivedAt: new Date(row.received_at),
  };
}
