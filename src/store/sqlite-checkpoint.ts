import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type Database from 'better-sqlite3';

/** How often the WAL is checkpointed, with commits held for the moment its second pass takes. */
export const CHECKPOINT_INTERVAL_MS = 200;
/** A checkpoint that takes longer than this releases the commits and turns the automatic one back on. */
const CHECKPOINT_TIMEOUT_MS = 2000;

// The worker's code as a string (eval), so it runs the same from the built dist and from the
// TypeScript sources under test: a worker file would need a TypeScript loader in the second.
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.module);
const db = new Database(workerData.path, { timeout: 0 });
db.pragma('cache_size = -256');
parentPort.on('message', (m) => {
  if (m === 'stop') return db.close(), parentPort.close();
  try {
    const [row] = db.pragma('wal_checkpoint(PASSIVE)');
    parentPort.postMessage({ ok: true, busy: row.busy });
  } catch (err) {
    parentPort.postMessage({ ok: false, message: String(err && err.message) });
  }
});
`;

export interface Checkpointer {
  /** Resolves when commits may go on: at once, or when the checkpoint running now is done. */
  clear(): Promise<void> | undefined;
  stop(): Promise<void>;
}

type Log = (level: 'info' | 'warn', message: string, fields?: Record<string, unknown>) => void;

/**
 * WAL checkpoints off the request thread. SQLite's automatic checkpoint runs inside whichever
 * commit pushes the WAL past 1,000 pages — an ingest commit as often as any — and copies the
 * frames and fsyncs the database file on this thread while every request waits (a prune batch,
 * with its many deleted pages, made that commit come sooner). Here the writing connection has
 * `wal_autocheckpoint = 0`, and every 200 ms a worker thread with its own connection runs
 * two PASSIVE checkpoints: the first while commits go on (it copies, and fsyncs, nearly all
 * there is), the second while the store holds its next commit (`clear()`), copying only what
 * landed during the first; requests go on being read, verified and parsed meanwhile. Holding
 * the commits is what lets the checkpoint complete, and only a complete one lets the next
 * commit start the WAL over: with commits landing during it, a checkpoint never completes
 * (tried alone, the WAL grew to 40 MB in two minutes of the retention soak). One held pass
 * did all the copying with commits waiting: held p50 2–3 ms, up to 22 ms, in the soak; with
 * the first pass, p50 0.1–0.5 ms, at most 5 ms. If the worker fails or stalls, commits are
 * released and the automatic checkpoint is turned back on.
 */
export function startCheckpointer(db: Database.Database, path: string, log?: Log): Checkpointer {
  const module = createRequire(import.meta.url).resolve('better-sqlite3');
  // Small limits: the thread only runs the pragma, and its heap and page cache count in the
  // process's memory (the bench measured peak RSS ~10–18 MB higher with the thread).
  const worker = new Worker(WORKER, { eval: true, workerData: { path, module }, resourceLimits: { maxOldGenerationSizeMb: 16, maxYoungGenerationSizeMb: 2 } });
  worker.unref();
  db.pragma('wal_autocheckpoint = 0');
  let running: { done: Promise<void>; release: () => void; timeout: NodeJS.Timeout } | undefined;
  /** The first pass, with commits going on: its timeout while it runs. */
  let copying: NodeJS.Timeout | undefined;
  let failing = false;
  let fallen = false;
  const release = () => {
    if (!running) return;
    clearTimeout(running.timeout);
    running.release();
    running = undefined;
  };
  const fallBack = (why: string) => {
    clearTimeout(copying);
    copying = undefined;
    release();
    if (fallen || !db.open) return;
    fallen = true;
    clearInterval(timer);
    db.pragma('wal_autocheckpoint = 1000');
    log?.('warn', 'store: the WAL checkpoint thread stopped; commits checkpoint on their own again', { why });
  };
  const deadline = () => setTimeout(() => fallBack(`no answer in ${CHECKPOINT_TIMEOUT_MS} ms`), CHECKPOINT_TIMEOUT_MS);
  const hold = () => {
    let resolve!: () => void;
    const done = new Promise<void>((r) => (resolve = r));
    running = { done, release: resolve, timeout: deadline() };
    worker.postMessage('checkpoint');
  };
  worker.on('message', (m: { ok: boolean; message?: string }) => {
    if (copying) {
      // The first pass copied what was there; the second, with commits held, copies what
      // landed meanwhile and completes, so the WAL starts over.
      clearTimeout(copying);
      copying = undefined;
      if (!fallen) hold();
      return;
    }
    release();
    if (m.ok && failing) log?.('info', 'store: WAL checkpoints succeed again');
    else if (!m.ok && !failing) log?.('warn', 'store: a WAL checkpoint failed; the WAL grows until one succeeds (tried every 200 ms)', { error: m.message });
    failing = !m.ok;
  });
  worker.on('error', (err) => fallBack(err.message));
  const exited = new Promise<void>((r) => worker.once('exit', () => r()));
  worker.on('exit', (code) => fallBack(`exit ${code}`));
  const timer = setInterval(() => {
    if (running || copying) return;
    copying = deadline();
    worker.postMessage('checkpoint');
  }, CHECKPOINT_INTERVAL_MS);
  timer.unref();
  return {
    clear: () => running?.done,
    async stop() {
      fallen = true;
      clearInterval(timer);
      clearTimeout(copying);
      copying = undefined;
      release();
      // Referenced again: unreferenced, a process with nothing else left would exit before the
      // thread does, and whatever awaits this stop (the "stopped" log line) would never run.
      worker.ref();
      worker.postMessage('stop');
      await exited;
    },
  };
}
