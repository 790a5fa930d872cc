// Data lifecycle: retention (DESIGN §9). Every `store.retention.interval` one replica prunes, in
// small batches off the request path, what retention lets go: events whose jobs are all done or
// blocked (or that have none) after `events`, those with a dead letter after `dead`, the
// delivery ids kept for dedupe after `dedupe`, and notifications delivered `events` ago or dead
// `dead` ago (a pending one never). Which events qualify is decided by each store's
// PRUNABLE fragment (src/store/sqlite.ts, src/store/postgres.ts), one place per store.
import type { Config } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import { PRUNED_TABLES, type PrunedTable, type Store } from '../store/types.js';

/** Least pause between two batches; the pause is also at least as long as the batch took, so ingest gets at least half the time. */
const MIN_PAUSE_MS = 20;
/** How often a pruner with `retention: false` looks again (a reload may turn it on). */
const IDLE_CHECK_MS = 10_000;

export interface PruneRound {
  /** When the round finished (ms). */
  at: number;
  rows: Record<PrunedTable, number>;
  batches: number;
  ms: number;
}

export interface PrunerDeps {
  store: Store;
  retention: () => Config['store']['retention'];
  logger: Logger;
  metrics?: Metrics;
  clock?: () => number;
  batchSize?: number;
}

export interface Pruner {
  start(): void;
  /** Runs one round now (tests, and the timer); undefined when retention is off or another replica holds the lock. */
  runOnce(): Promise<PruneRound | undefined>;
  /** The config changed: the next round follows the new interval. */
  reconfigured(): void;
  /** The last round that ran here, for /v1/status and the console. */
  last(): PruneRound | undefined;
  /** Ends the current batch's round and the timer. */
  stop(): Promise<void>;
}

export function createPruner(deps: PrunerDeps): Pruner {
  const clock = deps.clock ?? Date.now;
  const batchSize = deps.batchSize ?? deps.store.pruneBatchSize;
  const log = deps.logger.child({ component: 'retention' });
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<PruneRound | undefined> | undefined;
  let stopping = false;
  let started = false;
  let last: PruneRound | undefined;
  /** What reclaim last said, so its warning is logged when it changes, not every round. */
  let reclaimed: string | undefined;

  const round = async (): Promise<PruneRound | undefined> => {
    const retention = deps.retention();
    if (retention === false) return undefined;
    const release = await deps.store.acquirePruneLock();
    if (!release) {
      log.debug('another replica is pruning; skipped this round');
      return undefined;
    }
    const begun = Date.now();
    const rows = Object.fromEntries(PRUNED_TABLES.map((t) => [t, 0])) as Record<PrunedTable, number>;
    let batches = 0;
    try {
      let from: string | undefined;
      for (let more = true; more && !stopping; ) {
        // Cutoffs move with the clock, batch by batch; the round's cursor only skips events read as kept.
        const now = clock();
        const t0 = Date.now();
        const batch = await deps.store.pruneBatch({ now, eventsBefore: now - retention.events, deadBefore: now - retention.dead, dedupeBefore: now - retention.dedupe }, batchSize, from);
        batches++;
        for (const table of PRUNED_TABLES) {
          rows[table] += batch.deleted[table];
          if (batch.deleted[table] > 0) deps.metrics?.prunedRows.inc({ table }, batch.deleted[table]);
        }
        ({ more, from } = batch);
        if (more && !stopping) await new Promise((r) => setTimeout(r, Math.max(MIN_PAUSE_MS, Date.now() - t0)));
      }
      // Still under the lock: one replica vacuums, where the database needs it (see Store.reclaim).
      if (PRUNED_TABLES.some((t) => rows[t] > 0)) {
        const did = await deps.store.reclaim().catch((err: Error) => `reclaiming space failed: ${err.message}`);
        if (did && did !== reclaimed) log.warn(`retention: ${did}`);
        reclaimed = did;
      }
    } finally {
      await release();
    }
    last = { at: clock(), rows, batches, ms: Date.now() - begun };
    if (PRUNED_TABLES.some((t) => rows[t] > 0)) log.info({ pruned: rows, batches, ms: last.ms }, `retention: pruned ${rows.events} event(s), ${rows.jobs} job(s), ${rows.attempts} attempt(s), ${rows.dedupe_keys} expired delivery id(s), ${rows.notifications} notification(s) with ${rows.notification_attempts} attempt(s)`);
    return last;
  };

  const runOnce = () =>
    (running ??= round()
      .catch((err: Error) => {
        log.warn({ err: err.message }, 'retention: prune round failed; tried again next interval');
        return undefined;
      })
      .finally(() => (running = undefined)));

  const schedule = () => {
    if (!started || stopping) return;
    clearTimeout(timer);
    const retention = deps.retention();
    timer = setTimeout(() => void runOnce().finally(schedule), retention === false ? IDLE_CHECK_MS : retention.interval);
    timer.unref();
  };

  return {
    start() {
      started = true;
      schedule();
    },
    runOnce,
    reconfigured: schedule,
    last: () => last,
    async stop() {
      stopping = true;
      clearTimeout(timer);
      await running;
    },
  };
}
