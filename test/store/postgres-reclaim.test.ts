// PostgreSQL only: where autovacuum is off for the bridge's tables, reclaim() does its work
// after prune rounds, and only as much as autovacuum would (its own thresholds, read from the
// server, the scale factor at most 0.1): nothing below them, VACUUM past the dead-row one,
// ANALYZE past the changed-row one, at most every 10 minutes.
import { afterEach, describe, expect, it } from 'vitest';
import pg from 'pg';
import { openPostgresStore } from '../../src/store/postgres.js';
import { PRUNED_TABLES } from '../../src/store/types.js';
import { bareEvent, freshPostgresDatabase } from '../helpers/stores.js';

const POLICY = { breaker: { maxTriggers: 1000, windowMs: 60_000 } };
const event = bareEvent;

describe('PostgreSQL reclaim with autovacuum off', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('vacuums and analyses a table only past autovacuum\'s thresholds', async () => {
    const db = await freshPostgresDatabase();
    cleanups.push(db.drop);
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    cleanups.push(() => admin.end());
    const writer = await openPostgresStore({ url: db.url, poolSize: 4 }); // creates the tables
    // Off for these tables whatever the server says, so every vacuum counted below is the bridge's.
    for (const t of PRUNED_TABLES) await admin.query(`ALTER TABLE ${t} SET (autovacuum_enabled = false)`);
    const { rows: [settings] } = await admin.query<{ vt: number; vs: number }>(
      "SELECT current_setting('autovacuum_vacuum_threshold')::int AS vt, least(current_setting('autovacuum_vacuum_scale_factor')::float8, 0.1) AS vs",
    );
    const counts = async () =>
      (await admin.query<{ vacuums: number; analyses: number; dead: number; changed: number }>(
        "SELECT vacuum_count::int AS vacuums, analyze_count::int AS analyses, n_dead_tup::int AS dead, n_mod_since_analyze::int AS changed FROM pg_stat_user_tables WHERE relname = 'events'",
      )).rows[0]!;
    // Deletes by hand, then wait for the server's statistics to show them (flushed within ~1 s).
    const deleteEvents = async (n: number, deadAfter: number) => {
      await admin.query('SELECT pg_stat_force_next_flush()');
      await admin.query('DELETE FROM events WHERE id IN (SELECT id FROM events ORDER BY received_at LIMIT $1)', [n]);
      await expect.poll(async () => (await counts()).dead, { timeout: 5000 }).toBe(deadAfter);
    };

    // The events come through a store whose connections then close: a backend's statistics are
    // flushed when it exits (an idle one may hold them for up to 10 s).
    const N = 400;
    for (let i = 0; i < N; i += 100) await Promise.all(Array.from({ length: 100 }, (_, k) => writer.insertEvent(event(`d${i + k}`), [], POLICY)));
    await writer.close();
    await expect.poll(async () => (await counts()).changed, { timeout: 5000 }).toBe(N);
    const store = await openPostgresStore({ url: db.url, poolSize: 4 });
    cleanups.push(() => store.close());

    // Never analysed, 400 rows changed: ANALYZE only, no dead rows to vacuum.
    expect(await store.reclaim()).toMatch(/autovacuum is off/);
    expect(await counts()).toMatchObject({ vacuums: 0, analyses: 1, changed: 0 });

    // Now 400 rows known; the dead-row threshold is 50 + 0.1 × 400 = 90 with the defaults (the bridge caps the scale factor at 0.1).
    const threshold = settings!.vt + settings!.vs * N;
    const few = Math.floor(threshold / 4);
    await deleteEvents(few, few);
    await store.reclaim();
    expect(await counts()).toMatchObject({ vacuums: 0, dead: few });

    const more = Math.ceil(threshold) - few + 10;
    await deleteEvents(more, few + more);
    await store.reclaim();
    await expect.poll(async () => (await counts()).dead, { timeout: 5000 }).toBe(0);
    expect((await counts()).vacuums).toBe(1);
    // Those deletes also passed the analyze threshold (100 changed > 90), but the table was
    // analysed moments ago: analysed at most every 10 minutes (ANALYZE cost ~20 ms a round).
    expect((await counts()).analyses).toBe(1);
  });
});
