// Breaker flatness: one route, one pipeline → one DAG (every event the same pair), breaker
// { max_triggers: 100000, window: 1h } so it counts every trigger of the run and never opens.
// WARMUP events first (1 % of the run, at most 1,000: JIT, connections, the first dispatches;
// without them the first window reads slow and flatters the ratio), then the first WINDOW
// events are measured (req/s), the run continues to EVENTS (warm-up included), and the last
// WINDOW are measured again: a breaker whose cost grows with the triggers in its window shows
// as a ratio below 1 (target ≥ 0.9). Dispatch runs too (the sink in bench/sink.ts is "Airflow").
//
// EVENTS = BENCH_BREAKER_EVENTS (default 100,000) on SQLite, BENCH_BREAKER_PG_EVENTS (default
// 30,000: PostgreSQL ingests a few hundred a second here) on PostgreSQL; WINDOW = EVENTS / 10.
// A store too slow to send them within BUDGET s (BENCH_BREAKER_BUDGET_S, default
// 15 × BENCH_SECONDS) at its warm-up rate gets fewer ("scaled"), and one that slows down so
// much that the run passes 2 × BUDGET stops its middle part early ("cut"); the table prints
// the count used. Corpora are signed chunk by chunk just before they are sent (the bridge
// accepts timestamps within 5 minutes).
import { bridgeConfig, cli, corpus, DURATION, errorsCell, fmt, freshPgDatabase, load, type Load, ONE_ROUTE, PG_ADMIN_URL, peakRss, printTable, sqliteCount, sqliteFile, start, stop, storedCell } from './common.js';
import pg from 'pg';

const BREAKER = '{ max_triggers: 100000, window: 1h }';
const EVENTS = { SQLite: Number(process.env.BENCH_BREAKER_EVENTS ?? 100_000), PostgreSQL: Number(process.env.BENCH_BREAKER_PG_EVENTS ?? 30_000) };
const BUDGET_S = Number(process.env.BENCH_BREAKER_BUDGET_S ?? 15 * DURATION);
const CHUNK = 20_000;

export interface BreakerRow {
  store: 'SQLite' | 'PostgreSQL';
  events: number;
  window: number;
  warmup: number;
  first: Load;
  last: Load;
  flat: number;
  accepted: number;
  errors: number;
  errorKinds: string;
  /** Why fewer events than planned were sent ('' = as planned). */
  note: string;
  stored: number;
  jobs: number;
  blocked: number;
  /** Jobs not yet dispatched when the load stopped: a backlog competes with ingest in the last window. */
  pending: number;
  rssMb: number;
  seconds: number;
}

async function breakerRun(store: 'SQLite' | 'PostgreSQL', url: string, count: (table: string, where?: string) => Promise<number>): Promise<BreakerRow> {
  const planned = EVENTS[store];
  const warmup = Math.min(1_000, Math.floor(planned / 100));
  const server = await start([...cli, bridgeConfig(url, ONE_ROUTE, { breaker: BREAKER })]);
  const t0 = Date.now();
  let accepted = 0;
  let rssMb = 0;
  let sent = 0;
  let first: Load;
  let last: Load;
  let events = planned;
  let note = '';
  let window = 0;
  const errors: Load[] = [];
  const send = async (n: number, tag: string) => {
    const result = await load([server.url], corpus(n, `bk${store}${tag}`), { amount: n });
    accepted += result.accepted;
    sent += n;
    errors.push(result);
    return result;
  };
  try {
    const warm = await send(warmup, 'w');
    // Fewer events if they would not fit the budget at the warm-up rate.
    const fits = warmup + Math.floor(warm.rps * BUDGET_S);
    if (fits < planned) {
      events = Math.max(warmup + 1_000, fits);
      note = `scaled from ${planned.toLocaleString('en')} to fit ${BUDGET_S} s at the warm-up's ${warm.rps.toFixed(0)} req/s`;
    }
    window = Math.floor(events / 10);
    first = await send(window, 'a');
    const cutAt = t0 + 2 * BUDGET_S * 1000;
    for (let i = 0; sent < events - window; i++) {
      if (Date.now() > cutAt) {
        note = `${note ? `${note}; ` : ''}cut at ${(sent + window).toLocaleString('en')} of ${events.toLocaleString('en')}: past 2 × ${BUDGET_S} s`;
        events = sent + window;
        break;
      }
      await send(Math.min(CHUNK, events - window - sent, Math.max(1_000, Math.round(first.rps * 10))), `m${i}`);
    }
    last = await send(window, 'z');
    rssMb = peakRss(server.pid);
  } finally {
    await stop(server);
  }
  return {
    store,
    events,
    window,
    warmup,
    first,
    last,
    flat: last.rps / first.rps,
    accepted,
    errors: errors.reduce((a, r) => a + r.errors, 0),
    errorKinds: errors.map((r) => r.errorKinds).filter(Boolean).join('; '),
    note,
    stored: await count('events'),
    jobs: await count('jobs'),
    blocked: await count('jobs', "state = 'blocked'"),
    pending: await count('jobs', "state = 'pending'"),
    rssMb,
    seconds: (Date.now() - t0) / 1000,
  };
}

export async function benchBreaker(opts: { postgres: boolean }): Promise<BreakerRow[]> {
  const rows: BreakerRow[] = [];
  const file = sqliteFile();
  rows.push(await breakerRun('SQLite', `sqlite:${file}`, async (t, where) => sqliteCount(file, where ? `${t} WHERE ${where}` : t)));
  if (opts.postgres) {
    const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
    await admin.connect();
    const db = await freshPgDatabase(admin);
    try {
      rows.push(await breakerRun('PostgreSQL', db.url, (t, where) => db.count(where ? `${t} WHERE ${where}` : t)));
    } finally {
      await db.drop();
      await admin.end();
    }
  }
  printTable(
    `Breaker flatness: one pair, breaker ${BREAKER}, one route + dispatch; req/s of the first vs the last window of events`,
    ['store', 'events sent', 'warm-up', 'window', 'first window req/s', 'first p99 ms', 'last window req/s', 'last p99 ms', 'last / first', 'errors', 'stored / 202', 'jobs', 'blocked', 'not yet dispatched at the end', 'peak RSS MB', 'wall s'],
    rows.map((r) => [
      r.store,
      r.events.toLocaleString('en') + (r.note ? ` (${r.note})` : ''),
      r.warmup.toLocaleString('en'),
      r.window.toLocaleString('en'),
      r.first.rps.toFixed(0),
      r.first.p99,
      r.last.rps.toFixed(0),
      r.last.p99,
      fmt(r.flat),
      errorsCell(r),
      storedCell(r),
      r.jobs,
      r.blocked,
      r.pending,
      fmt(r.rssMb, 0),
      r.seconds.toFixed(0),
    ]),
  );
  return rows;
}
