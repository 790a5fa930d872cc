import { statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { startCheckpointer } from '../../src/store/sqlite-checkpoint.js';
import { tempDir } from '../helpers/app.js';

describe('SQLite WAL checkpoints on their own thread', () => {
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  const open = () => {
    const temp = tempDir();
    const path = join(temp.dir, 'bridge.db');
    const db = new Database(path);
    db.pragma('journal_mode = WAL');
    db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, pad BLOB)');
    cleanups.push(temp.cleanup, () => db.open && db.close());
    return { db, path };
  };

  it('the writer does not checkpoint, and the WAL still starts over: it stays far below what the writes add up to', async () => {
    const { db, path } = open();
    const checkpoints = startCheckpointer(db, path);
    cleanups.push(() => checkpoints.stop());
    expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(0);
    const insert = db.prepare('INSERT INTO t (pad) VALUES (zeroblob(4000))');
    // ~3,000 pages in 150 commits over ~1.5 s, each after any checkpoint running has finished.
    let largest = 0;
    for (let i = 0; i < 150; i++) {
      for (let wait = checkpoints.clear(); wait; wait = checkpoints.clear()) await wait;
      db.transaction(() => {
        for (let k = 0; k < 20; k++) insert.run();
      })();
      largest = Math.max(largest, statSync(`${path}-wal`).size);
      await new Promise((r) => setTimeout(r, 10));
    }
    // 3,000 pages of 4 KB would be ~12 MB of WAL without a checkpoint that completes.
    expect(largest).toBeLessThan(4 * 1024 * 1024);
    expect(db.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: 3000 });
  });

  it('a checkpoint thread that cannot run gives the checkpoints back to the writer', async () => {
    const { db } = open();
    const checkpoints = startCheckpointer(db, '/nonexistent/dir/bridge.db');
    cleanups.push(() => checkpoints.stop());
    await expect.poll(() => db.pragma('wal_autocheckpoint', { simple: true }), { timeout: 5000 }).toBe(1000);
    expect(checkpoints.clear()).toBeUndefined();
  });
});
