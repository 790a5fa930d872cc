import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { sqliteMigrations } from '../../src/store/sqlite-migrations.js';
import type { NewEvent } from '../../src/store/types.js';
import { tempDir } from '../helpers/app.js';

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

  it('fsyncs every commit: synchronous = FULL on the connection it writes with', async () => {
    const store = openSqliteStore({ path: dbFile(), busyTimeoutMs: 100 });
    expect(store.settings()).toEqual({ journalMode: 'wal', synchronous: 'full' });
    await store.close();
  });

  it('stores the exact bytes and reads the event back', async () => {
    const store = openSqliteStore({ path: dbFile(), busyTimeoutMs: 100 });
    const inserted = await store.insertEvent(event('d1'), []);
    if (!inserted.ok) throw new Error(inserted.error.message);
    expect(inserted.value.duplicate).toBe(false);
    const back = await store.getEvent(inserted.value.id);
    expect(back).toMatchObject({ ...event('d1'), id: inserted.value.id, status: 'unrouted' });
    expect(back!.body.equals(Buffer.from('{"exact":  "bytes"}'))).toBe(true);
    await store.close();
  });

  it('dedupes on (source, delivery id): same id in another source is a new event', async () => {
    const store = openSqliteStore({ path: dbFile(), busyTimeoutMs: 100 });
    const first = await store.insertEvent(event('d1'), []);
    const again = await store.insertEvent(event('d1'), []);
    const other = await store.insertEvent(event('d1', 'other-source'), []);
    expect(again).toEqual({ ok: true, value: { id: first.ok && first.value.id, duplicate: true } });
    expect(other.ok && other.value.duplicate).toBe(false);
    await store.close();
  });

  it('reopens an existing database without re-running migrations, keeping the data', async () => {
    const path = dbFile();
    const first = openSqliteStore({ path, busyTimeoutMs: 100 });
    const inserted = await first.insertEvent(event('d1'), []);
    await first.close();
    const second = openSqliteStore({ path, busyTimeoutMs: 100 });
    expect(await second.getEvent(inserted.ok ? inserted.value.id : '')).toBeDefined();
    await second.close();
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
    const result = await store.insertEvent(event('d1'), []);
    expect(result).toMatchObject({ ok: false, error: { reason: 'store_unavailable' } });
    expect(await store.checkWritable()).toMatchObject({ ok: false });
    blocker.exec('ROLLBACK');
    expect(blocker.prepare('SELECT count(*) AS n FROM events').get()).toEqual({ n: 0 });
    blocker.close();
    expect(await store.checkWritable()).toEqual({ ok: true, value: true });
    await store.close();
  });
});
