// PostgreSQL only: what two transactions at once can do to an insert (a replica pruning while
// another ingests), held open by hand so the interleaving is the one meant.
import { afterEach, describe, expect, it } from 'vitest';
import pg from 'pg';
import { openPostgresStore, type PostgresStore } from '../../src/store/postgres.js';
import { bareEvent, freshPostgresDatabase } from '../helpers/stores.js';

const POLICY = { breaker: { maxTriggers: 1000, windowMs: 60_000 } };
const event = bareEvent;

describe('PostgreSQL store under concurrent transactions', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('a redelivery whose insert waits on a prune of its event is still a duplicate of the pruned one', async () => {
    const db = await freshPostgresDatabase();
    cleanups.push(db.drop);
    const store: PostgresStore = await openPostgresStore({ url: db.url, poolSize: 4 });
    cleanups.push(() => store.close());
    const first = await store.insertEvent(event('d1'), [], POLICY);
    if (!first.ok) throw new Error(first.error.message);

    // A prune of that event, as the pruner writes it, left uncommitted for now.
    const pruner = new pg.Client({ connectionString: db.url });
    await pruner.connect();
    cleanups.push(() => pruner.end());
    await pruner.query('BEGIN');
    await pruner.query('INSERT INTO dedupe_keys (source, delivery_id, id, event_id, pruned_at) SELECT source, delivery_id, id, event_id, 0 FROM events WHERE id = $1', [first.value.id]);
    await pruner.query('DELETE FROM events WHERE id = $1', [first.value.id]);

    // Its snapshot still holds the event, and the insert waits on the deleted row's lock.
    const redelivery = store.insertEvent(event('d1'), [], POLICY);
    const fresh = store.insertEvent(event('d2'), [], POLICY);
    await new Promise((r) => setTimeout(r, 300));
    await pruner.query('COMMIT');

    const [again, other] = await Promise.all([redelivery, fresh]);
    expect(again).toEqual({ ok: true, value: { id: first.value.id, duplicate: true, jobs: [], newLearnedEdge: false } });
    expect(other.ok && other.value.duplicate).toBe(false);
    const { rows } = await pruner.query<{ delivery_id: string }>('SELECT delivery_id FROM events ORDER BY delivery_id');
    expect(rows.map((r) => r.delivery_id)).toEqual(['d2']);
  });
});
