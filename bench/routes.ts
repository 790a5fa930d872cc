// Route count: the same bridge (SQLite, `serve`) with 1, 100 and 1,000 routes, each a
// pipeline_name glob plus a tag, none matching the load (so the cost measured is matching,
// not dispatch). Target: 1,000 routes ≥ 0.7 × the req/s of 1 route, p99 ≤ 2 ×.
import { bridgeConfig, cli, fmt, ingestRun, printTable, ratio, type Row, sqliteCount, sqliteFile, storedCell, unmatchedRoutes } from './common.js';
import { corpusFor } from './floors.js';

export const ROUTE_COUNTS = [1, 100, 1000] as const;

/** `floor`: the durable floor of this run, when the floors ran (a column × it). */
export async function benchRoutes(floor?: Row): Promise<Row[]> {
  const rows: Row[] = [];
  for (const n of ROUTE_COUNTS) {
    const file = sqliteFile();
    rows.push(await ingestRun(`bridge, SQLite, ${n.toLocaleString('en')} route${n === 1 ? '' : 's'}, none matching`, [...cli, bridgeConfig(`sqlite:${file}`, unmatchedRoutes(n))], corpusFor(6_000, `rt${n}`), { count: () => sqliteCount(file) }));
  }
  const one = rows[0]!;
  printTable(
    'Route count: SQLite, routes = pipeline_name glob + tag, none matching the load',
    ['routes', 'req/s', 'p50 ms', 'p99 ms', 'errors', 'stored / 202', 'CPU ms/event', 'peak RSS MB', 'req/s × 1 route', 'p99 × 1 route', '× durable floor'],
    rows.map((r, i) => [ROUTE_COUNTS[i]!.toLocaleString('en'), r.rps.toFixed(0), r.p50, r.p99, r.errors, storedCell(r), fmt(r.cpuMsPerEvent, 3), fmt(r.rssMb, 0), fmt(ratio(r.rps, one.rps)), fmt(ratio(r.p99, one.p99)), fmt(ratio(r.rps, floor?.rps))]),
  );
  return rows;
}
