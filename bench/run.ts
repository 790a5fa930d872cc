// `npm run bench`: ingest and dispatch benchmarks with their floors in the same run, printed
// as tables (ratios, because this 2-core machine is noisy), then end to end on a real Airflow 3
// (bench/e2e-airflow.ts), then the targets of issue 12 met or missed (bench/targets.ts).
//
// Parts, in order (each --only-<part> runs that part; several may be given):
//   floors           node:http, express and durable floors (bench/floors.ts)
//   ingest           the floors, the bridge on SQLite without and with a route, and the
//                    fixed-rate row at half the durable floor's max (needs the floors)
//   routes           1, 100, 1,000 unmatched routes (bench/routes.ts)
//   breaker          breaker flatness on SQLite and PostgreSQL (bench/breaker.ts)
//   postgres-scale   1 and 2 replicas × spread and hot-pair corpora, CPU per event (bench/postgres-scale.ts)
//   dispatch         10,000 queued jobs through the dispatcher (bench/dispatch.ts)
//   airflow          end to end on a real Airflow 3 (bench/e2e-airflow.ts)
//   retention        the retention soak (bench/retention.ts): 30,000 events on SQLite, 20,000 on
//                    PostgreSQL; --retention-soak for issue 14's 200,000 on each (~31 min)
// --no-postgres skips everything on PostgreSQL, --no-airflow the Airflow part.
// BENCH_SECONDS (default 10) is the length of each timed run.
import { cpus } from 'node:os';
import { benchBreaker } from './breaker.js';
import { bridgeConfig, cli, CONNECTIONS, corpus, DURATION, ingestRun, ingestTable, NO_ROUTE, ONE_ROUTE, sqliteCount, sqliteFile } from './common.js';
import { benchDispatch } from './dispatch.js';
import { benchEndToEnd } from './e2e-airflow.js';
import { benchFloors, corpusFor, durableFloor } from './floors.js';
import { benchPostgresScale } from './postgres-scale.js';
import { benchRetention } from './retention.js';
import { benchRoutes } from './routes.js';
import { printTargets, type Results } from './targets.js';

const PARTS = ['floors', 'ingest', 'routes', 'breaker', 'postgres-scale', 'dispatch', 'airflow', 'retention'] as const;
const args = new Set(process.argv.slice(2));
const unknown = [...args].filter((a) => !['--no-postgres', '--no-airflow', '--retention-soak', ...PARTS.map((p) => `--only-${p}`)].includes(a));
if (unknown.length) {
  process.stderr.write(`unknown flag ${unknown.join(' ')}; known: ${PARTS.map((p) => `--only-${p}`).join(' ')} --no-postgres --no-airflow --retention-soak\n`);
  process.exit(2);
}
const only = PARTS.filter((p) => args.has(`--only-${p}`));
const postgres = !args.has('--no-postgres');
const run = (part: (typeof PARTS)[number]) => (only.length ? only.includes(part) : true) && !(part === 'postgres-scale' && !postgres) && !(part === 'airflow' && args.has('--no-airflow'));

process.stdout.write(`planasonix-airflow-bridge benchmarks — ${new Date().toISOString()}, ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, node ${process.version}, ${DURATION}s per run, ${CONNECTIONS} connections\n`);
const results: Results = {};

// --- floors and ingest (SQLite) ------------------------------------------------------------

if (run('floors') || run('ingest')) {
  const floors = (results.floors = await benchFloors());
  const rows = [floors.node, floors.express, floors.durable];
  if (run('ingest')) {
    const noRouteFile = sqliteFile();
    results.sqliteNoRoute = await ingestRun('bridge, SQLite, no route matches', [...cli, bridgeConfig(`sqlite:${noRouteFile}`, NO_ROUTE)], corpusFor(6_000, 's0'), { count: () => sqliteCount(noRouteFile) });
    const routeFile = sqliteFile();
    results.sqliteRoute = await ingestRun('bridge, SQLite, one route matches, its jobs dispatched', [...cli, bridgeConfig(`sqlite:${routeFile}`, ONE_ROUTE)], corpusFor(6_000, 's1'), { count: () => sqliteCount(routeFile) });
    rows.push(results.sqliteNoRoute, results.sqliteRoute);
  }
  const ratios = [
    { label: '× node:http', of: floors.node },
    { label: '× express', of: floors.express },
    { label: '× durable floor', of: floors.durable },
  ];
  ingestTable('Ingest: signed webhooks, unique events, max throughput', rows, ratios);

  if (run('ingest')) {
    // Offered, not closed-loop: the same rate for the floor and the bridge.
    const rate = Math.max(50, Math.round(floors.durable.rps / 2));
    const n = Math.ceil(rate * DURATION * 1.05) + 1_000;
    const floor = await durableFloor('durable floor, fixed rate', corpus(n, 'xf'), { rate });
    const bridgeFile = sqliteFile();
    const bridge = await ingestRun('bridge, SQLite, one route + dispatch, fixed rate', [...cli, bridgeConfig(`sqlite:${bridgeFile}`, ONE_ROUTE)], corpus(n, 'xb'), { rate, count: () => sqliteCount(bridgeFile) });
    results.fixed = { rate, floor, bridge };
    ingestTable(`Fixed rate: ${rate} req/s offered (half the durable floor's max of this run)`, [floor, bridge], []);
  }
}

if (run('routes')) results.routes = await benchRoutes(results.floors?.durable);
if (run('breaker')) results.breaker = await benchBreaker({ postgres });
if (run('postgres-scale')) results.scale = await benchPostgresScale(results.floors?.durable);
if (run('dispatch')) await benchDispatch();
if (run('airflow')) await benchEndToEnd();
if (run('retention')) {
  const soak = args.has('--retention-soak');
  // One after the other (they would share the two cores).
  results.retention = [
    ...(await benchRetention({ events: soak ? 200_000 : 30_000, sqlite: true, postgres: false })),
    ...(postgres ? await benchRetention({ events: soak ? 200_000 : 20_000, sqlite: false, postgres: true }) : []),
  ];
}
// The targets need at least one of the parts they read.
if (Object.keys(results).some((k) => k !== 'floors')) printTargets(results);
process.exit(0);
