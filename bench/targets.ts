// The targets of issue 12 ("Scale that scales") and the retention soak's of issue 14, each with what this run measured: met,
// missed, or "not run" when its part was skipped (flags) or could not be measured.
import type { BreakerRow } from './breaker.js';
import { fmt, printTable, ratio, type Row } from './common.js';
import type { Floors } from './floors.js';
import type { ScaleRow } from './postgres-scale.js';
import type { RetentionRow } from './retention.js';

export interface Results {
  floors?: Floors;
  sqliteNoRoute?: Row;
  sqliteRoute?: Row;
  fixed?: { rate: number; floor: Row; bridge: Row };
  routes?: Row[];
  breaker?: BreakerRow[];
  scale?: ScaleRow[];
  retention?: RetentionRow[];
}

const RSS_LIMIT_MB = 150;
/** autocannon's latencies are whole ms: a floor p99 of 0 ms is counted as 1 ms. */
const ms = (p99: number) => Math.max(1, p99);

export function printTargets(r: Results) {
  const rows: [string, string, string][] = [];
  const add = (target: string, value: number | undefined, describe: (v: number) => string, met: (v: number) => boolean) =>
    rows.push([target, value === undefined || !Number.isFinite(value) ? 'not run' : describe(value), value === undefined || !Number.isFinite(value) ? '—' : met(value) ? 'met' : '**missed**']);
  const durable = r.floors?.durable;
  const rps = (x: Row | undefined) => (x ? `${x.rps.toFixed(0)} req/s` : '?');

  add('SQLite, no route ≥ 0.5 × durable floor', ratio(r.sqliteNoRoute?.rps, durable?.rps), (v) => `${fmt(v)} × (${rps(r.sqliteNoRoute)} vs ${rps(durable)})`, (v) => v >= 0.5);
  add('SQLite, one route + dispatch ≥ 0.35 × durable floor', ratio(r.sqliteRoute?.rps, durable?.rps), (v) => `${fmt(v)} × (${rps(r.sqliteRoute)} vs ${rps(durable)})`, (v) => v >= 0.35);

  const pg = (replicas: 1 | 2, corpus: ScaleRow['corpus']) => r.scale?.find((s) => s.replicas === replicas && s.corpus === corpus);
  const pgHot1 = pg(1, 'hot pair');
  add('PostgreSQL 1 replica, one route + dispatch ≥ 0.6 × SQLite (same run)', ratio(pgHot1?.rps, r.sqliteRoute?.rps), (v) => `${fmt(v)} × (${pgHot1!.rps.toFixed(0)} vs ${rps(r.sqliteRoute)}; hot-pair corpus = the SQLite row's)`, (v) => v >= 0.6);
  for (const corpus of ['spread', 'hot pair'] as const) {
    const one = pg(1, corpus);
    const two = pg(2, corpus);
    add(`PostgreSQL 2 replicas ≥ 1.0 × 1 replica req/s (${corpus})`, ratio(two?.rps, one?.rps), (v) => `${fmt(v)} × (${two!.rps.toFixed(0)} vs ${one!.rps.toFixed(0)} req/s)`, (v) => v >= 1.0);
    add(`PostgreSQL CPU ms/event, 2 replicas ≤ 1.15 × 1 (${corpus})`, ratio(two?.cpuMsPerEvent, one?.cpuMsPerEvent), (v) => `${fmt(v)} × (${fmt(two!.cpuMsPerEvent, 3)} vs ${fmt(one!.cpuMsPerEvent, 3)} ms)`, (v) => v <= 1.15);
  }
  for (const replicas of [1, 2] as const) {
    const hot = pg(replicas, 'hot pair');
    const spread = pg(replicas, 'spread');
    add(`PostgreSQL hot pair ≥ 0.8 × spread req/s (${replicas} replica${replicas === 1 ? '' : 's'})`, ratio(hot?.rps, spread?.rps), (v) => `${fmt(v)} × (${hot!.rps.toFixed(0)} vs ${spread!.rps.toFixed(0)} req/s)`, (v) => v >= 0.8);
  }

  for (const store of ['SQLite', 'PostgreSQL']) {
    const b = r.breaker?.find((x) => x.store === store);
    add(`breaker flat: last / first window req/s ≥ 0.9 (${store})`, b?.flat, (v) => `${fmt(v)} (${b!.last.rps.toFixed(0)} vs ${b!.first.rps.toFixed(0)} req/s, ${b!.events.toLocaleString('en')} events, windows of ${b!.window.toLocaleString('en')})`, (v) => v >= 0.9);
  }

  const f = r.fixed;
  add(`fixed rate at half the durable floor's max: bridge (one route + dispatch) p99 ≤ 3 × floor p99`, f ? ms(f.bridge.p99) / ms(f.floor.p99) : undefined, (v) => `${fmt(v)} × (${f!.bridge.p99} vs ${f!.floor.p99} ms at ${f!.rate.toFixed(0)} req/s offered; bridge sustained ${f!.bridge.rps.toFixed(0)})`, (v) => v <= 3);

  const one = r.routes?.[0];
  const thousand = r.routes?.[2];
  add('1,000 routes ≥ 0.7 × 1 route req/s', ratio(thousand?.rps, one?.rps), (v) => `${fmt(v)} × (${rps(thousand)} vs ${rps(one)})`, (v) => v >= 0.7);
  add('1,000 routes p99 ≤ 2 × 1 route', thousand && one ? ms(thousand.p99) / ms(one.p99) : undefined, (v) => `${fmt(v)} × (${thousand!.p99} vs ${one!.p99} ms)`, (v) => v <= 2);

  for (const store of ['SQLite', 'PostgreSQL']) {
    const s = r.retention?.find((x) => x.store === store);
    const soak = s && `${s.events.toLocaleString('en')}-event soak`;
    add(`retention: store size at the end ≤ 1.3 × at one retention period (${store})`, s?.sizeRatio, (v) => `${fmt(v)} × (${soak})`, (v) => v <= 1.3);
    add(`retention: ingest p99 while a prune round runs ≤ 1.5 × without (${store})`, s?.p99Ratio, (v) => `${fmt(v)} × (${s!.p99With.toFixed(1)} vs ${s!.p99Without.toFixed(1)} ms, ${soak})`, (v) => v <= 1.5);
  }

  // Every bridge process under full (closed-loop) load in this run.
  const full: [string, number | undefined][] = [
    ['SQLite, no route', r.sqliteNoRoute?.rssMb],
    ['SQLite, one route', r.sqliteRoute?.rssMb],
    ...(r.routes ?? []).map((x, i) => [`SQLite, ${[1, 100, 1000][i]} routes`, x.rssMb] as [string, number | undefined]),
    ...(r.scale ?? []).map((x) => [`PostgreSQL ${x.replicas} repl. ${x.corpus}`, x.rssMb] as [string, number]),
    ...(r.breaker ?? []).map((x) => [`breaker ${x.store}`, x.rssMb] as [string, number]),
  ];
  const measured = full.filter((x): x is [string, number] => x[1] !== undefined);
  const worst = measured.reduce<[string, number] | undefined>((a, x) => (!a || x[1] > a[1] ? x : a), undefined);
  add(`peak RSS ≤ ${RSS_LIMIT_MB} MB per bridge process under full load (highest of ${measured.length})`, worst?.[1], (v) => `${v.toFixed(0)} MB (${worst![0]})`, (v) => v <= RSS_LIMIT_MB);
  add(`peak RSS ≤ ${RSS_LIMIT_MB} MB with 1,000 routes`, thousand?.rssMb, (v) => `${v.toFixed(0)} MB`, (v) => v <= RSS_LIMIT_MB);

  printTable('Targets of issues 12 and 14, this run', ['target', 'measured', ''], rows);
}
