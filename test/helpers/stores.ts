import { randomBytes } from 'node:crypto';
import { afterEach } from 'vitest';
import { join } from 'node:path';
import pg from 'pg';
import { openPostgresStore } from '../../src/store/postgres.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { PRUNED_TABLES, type NewEvent, type NewJob, type PruneCutoffs, type PrunedTable, type Store } from '../../src/store/types.js';
import { tempDir } from './app.js';

/** The test PostgreSQL: the machine's server (trust auth); CI starts it if it is down. */
export const PG_ADMIN_URL = process.env.BRIDGE_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** A bare unrouted event for store-level tests: only the delivery id varies. */
export const bareEvent = (deliveryId: string): NewEvent => ({
  source: 'planasonix', deliveryId, scheme: 'standard-webhooks', eventId: `evt_${deliveryId}`, type: 'run.succeeded', pipelineId: 'pl_1', runId: `run_${deliveryId}`,
  headers: {}, body: Buffer.from('{}'), receivedAt: new Date(), routing: [],
});

/** A bare job for store-level tests: pl_1 → the DAG, a run id of the caller's choice. */
export const bareJob = (dagRunId: string, dagId = 'dag_a', route = 'r'): NewJob => ({
  route, airflow: 'default', dagId, request: { dag_run_id: dagRunId, logical_date: null, conf: {}, note: null },
  sourcePipeline: 'pl_1', target: `airflow:${dagId}`, lineage: { chain_id: 'c', depth: 1, path: ['planasonix:pl_1', `airflow:${dagId}`], event_id: 'e', route },
});

/** Prune batches of `limit` until the store says there is no more, as a pruner's round does (without its pauses, lock and vacuum): the rows deleted per table. */
export async function pruneAll(store: Store, cutoffs: () => PruneCutoffs, limit: number): Promise<Record<PrunedTable, number>> {
  const total = Object.fromEntries(PRUNED_TABLES.map((t) => [t, 0])) as Record<PrunedTable, number>;
  let from: string | undefined;
  for (let more = true; more; ) {
    const batch = await store.pruneBatch(cutoffs(), limit, from);
    for (const t of PRUNED_TABLES) total[t] += batch.deleted[t];
    ({ more, from } = batch);
  }
  return total;
}

/** A new, empty database per call, dropped by the returned cleanup. */
export async function freshPostgresDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `bridge_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = PG_ADMIN_URL.replace(/\/[^/]*$/, `/${name}`);
  return {
    url,
    async drop() {
      const c = new pg.Client({ connectionString: PG_ADMIN_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

export interface StoreKind {
  name: 'sqlite' | 'postgres';
  /** A new, empty store location; `open` may be called several times on it (replicas, restarts). */
  fresh(): Promise<{ open(clock?: () => number): Promise<Store>; cleanup(): Promise<void> }>;
}

export const STORE_KINDS: StoreKind[] = [
  {
    name: 'sqlite',
    async fresh() {
      const temp = tempDir();
      const path = join(temp.dir, 'bridge.db');
      return { open: async (clock) => openSqliteStore({ path, busyTimeoutMs: 500, ...(clock ? { clock } : {}) }), cleanup: async () => temp.cleanup() };
    },
  },
  {
    name: 'postgres',
    async fresh() {
      const db = await freshPostgresDatabase();
      return { open: (clock) => openPostgresStore({ url: db.url, poolSize: 4, ...(clock ? { clock } : {}) }), cleanup: () => db.drop() };
    },
  },
];

/**
 * `open()` gives a fresh store of `kind` and `again()` another instance on the same location
 * (a second replica, a restart); all are closed and the location removed after each test.
 */
export function storesOf(kind: StoreKind, clock: () => number): () => Promise<{ store: Store; again: () => Promise<Store> }> {
  let cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.reverse()) await c();
    cleanups = [];
  });
  return async () => {
    const location = await kind.fresh();
    const store = await location.open(clock);
    cleanups.push(location.cleanup, () => store.close());
    return {
      store,
      again: async () => {
        const other = await location.open(clock);
        cleanups.push(() => other.close());
        return other;
      },
    };
  };
}
