// PostgreSQL scale: the bridge (`serve`, one route + dispatch to the sink) on 1 and on 2
// replicas (2 processes on one fresh database, started one after the other so the second finds
// the schema migrated; CONNECTIONS in all, split evenly over both URLs, and the corpus split
// the same way), for two corpora:
//   spread    events from 200 pipelines (spread_<k>), one route matching them all → 200 pairs
//   hot pair  one pipeline → one DAG (the SQLite rows' corpus): every job judges one breaker pair
// Each run gets a fresh database. CPU ms per accepted event = (utime + stime of the bridge
// processes + of every PostgreSQL backend of that database, see cpu.ts) / 202 answers. At the
// end the rows are counted: events and jobs must be ≥ the 202s (one job per event here).
import pg from 'pg';
import { bridgeConfig, cli, CONNECTIONS, fmt, freshPgDatabase, load, type Load, ONE_ROUTE, PG_ADMIN_URL, peakRss, printTable, ratio, type Row, type Server, SPREAD_ROUTE, start, stop, storedCell } from './common.js';
import { type CpuUse, startCpuMeter } from './cpu.js';
import { corpusFor } from './floors.js';

export type Corpus = 'spread' | 'hot pair';

export interface ScaleRow extends Load {
  replicas: 1 | 2;
  corpus: Corpus;
  cpu: CpuUse;
  cpuMsPerEvent: number;
  stored: number;
  jobs: number;
  rssMb: number;
}

async function scaleRun(admin: pg.Client, replicas: 1 | 2, kind: Corpus): Promise<ScaleRow> {
  const db = await freshPgDatabase(admin);
  try {
    const config = bridgeConfig(db.url, kind === 'spread' ? SPREAD_ROUTE : ONE_ROUTE);
    const servers: Server[] = [];
    try {
      for (let i = 0; i < replicas; i++) servers.push(await start([...cli, config]));
      const requests = corpusFor(3_000, `pg${replicas}${kind === 'spread' ? 's' : 'h'}`, kind === 'spread' ? 200 : 1);
      const meter = await startCpuMeter(servers.map((s) => s.pid), { admin, database: db.name });
      const result = await load(servers.map((s) => s.url), requests);
      const cpu = await meter.stop();
      const rssMb = Math.max(...servers.map((s) => peakRss(s.pid)));
      await Promise.all(servers.splice(0).map(stop));
      return { replicas, corpus: kind, ...result, cpu, cpuMsPerEvent: (cpu.processMs + cpu.postgresMs) / result.accepted, stored: await db.count('events'), jobs: await db.count('jobs'), rssMb };
    } finally {
      await Promise.all(servers.map(stop));
    }
  } finally {
    await db.drop();
  }
}

/** `floor`: the durable floor of this run, when the floors ran (a column × it). */
export async function benchPostgresScale(floor?: Row): Promise<ScaleRow[]> {
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  const rows: ScaleRow[] = [];
  try {
    for (const kind of ['spread', 'hot pair'] as const) for (const replicas of [1, 2] as const) rows.push(await scaleRun(admin, replicas, kind));
  } finally {
    await admin.end();
  }
  const find = (replicas: 1 | 2, kind: Corpus) => rows.find((r) => r.replicas === replicas && r.corpus === kind);
  printTable(
    `PostgreSQL scale: one route + dispatch, ${CONNECTIONS} connections in all (split evenly over the replicas), a fresh database per run`,
    ['corpus', 'replicas', 'req/s', 'p50 ms', 'p99 ms', 'errors', 'stored / 202', 'jobs', 'CPU ms/event (bridge + PG)', 'bridge ms/event', 'PG ms/event', 'PG backends', 'peak RSS MB', '2 / 1 req/s', '2 / 1 CPU/event', 'hot / spread req/s', '× durable floor'],
    rows.map((r) => {
      const one = find(1, r.corpus)!;
      const spread = find(r.replicas, 'spread');
      return [
        r.corpus,
        r.replicas,
        r.rps.toFixed(0),
        r.p50,
        r.p99,
        r.errors,
        storedCell(r),
        r.jobs >= r.accepted ? String(r.jobs) : `**${r.jobs}: ${r.accepted - r.jobs} missing**`,
        fmt(r.cpuMsPerEvent, 3),
        fmt(r.cpu.processMs / r.accepted, 3),
        fmt(r.cpu.postgresMs / r.accepted, 3),
        r.cpu.backends,
        fmt(r.rssMb, 0),
        r.replicas === 2 ? fmt(ratio(r.rps, one.rps)) : '—',
        r.replicas === 2 ? fmt(ratio(r.cpuMsPerEvent, one.cpuMsPerEvent)) : '—',
        r.corpus === 'hot pair' ? fmt(ratio(r.rps, spread?.rps)) : '—',
        fmt(ratio(r.rps, floor?.rps)),
      ];
    }),
  );
  return rows;
}
