// What every part of `npm run bench` shares: the signed corpora, the load generator, child
// processes (bridge and baselines, started the way the tests start them), bridge configs,
// peak RSS and the row tables.
import type { ChildProcess } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import autocannon from 'autocannon';
import Database from 'better-sqlite3';
import pg from 'pg';
import { spawnListening, stopChild } from '../test/helpers/process.js';
import { startCpuMeter } from './cpu.js';
import { sinkUrl } from './sink.js';
import { printTable } from './table.js';

export const root = resolve(import.meta.dirname, '..');
export const SECRET = `whsec_${Buffer.from('benchmark secret, not for use!!').toString('base64')}`;
const KEY = Buffer.from(SECRET.slice(6), 'base64');
export const DURATION = Number(process.env.BENCH_SECONDS ?? 10);
export const CONNECTIONS = 16;
export const PG_ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
export const cli = [join(root, 'dist/cli/main.js'), 'serve', '--config'];
export const tsxCmd = (file: string) => ['--import', 'tsx', join(root, 'bench', file)];

// --- corpora -----------------------------------------------------------------------------

export type Request = ReturnType<typeof corpus>[number];

/**
 * `n` signed deliveries, each a distinct event (`tag` keeps corpora of one run apart). By
 * default all come from one pipeline, nightly_sales_to_warehouse (pl_8f2a9c1d4e); `pipelines`
 * > 1 spreads them round robin over spread_<k> (pl_spread_<k>). Signed now: the bridge
 * accepts timestamps within 5 minutes, so sign a corpus just before sending it.
 */
export function corpus(n: number, tag: string, pipelines = 1) {
  const ts = String(Math.floor(Date.now() / 1000));
  return Array.from({ length: n }, (_, i) => {
    const k = i % pipelines;
    const [pipelineId, pipelineName] = pipelines === 1 ? ['pl_8f2a9c1d4e', 'nightly_sales_to_warehouse'] : [`pl_spread_${k}`, `spread_${k}`];
    const body = JSON.stringify({
      id: `evt_${tag}_${i}`,
      type: 'run.succeeded',
      created_at: '2026-11-24T02:14:09Z',
      data: { run_id: `run_${tag}_${i}`, pipeline_id: pipelineId, pipeline_name: pipelineName, status: 'succeeded', metrics: { rows_written: i } },
    });
    const id = `msg_${tag}_${i}`;
    const sig = createHmac('sha256', KEY).update(`${id}.${ts}.${body}`).digest('base64');
    return { method: 'POST' as const, path: '/webhooks/planasonix', body, headers: { 'content-type': 'application/json', 'webhook-id': id, 'webhook-timestamp': ts, 'webhook-signature': `v1,${sig}` } };
  });
}

// --- load --------------------------------------------------------------------------------

export interface Load {
  rps: number;
  p50: number;
  p99: number;
  max: number;
  /** Transport errors, timeouts (autocannon's 10 s) and non-2xx answers. */
  errors: number;
  /** What they were, e.g. "12 timeouts, 3 × 503" ('' without errors). */
  errorKinds: string;
  /** 202 answers: events the server said it stored. */
  accepted: number;
  /** All 2xx answers (the no-store baselines answer 204). */
  ok: number;
  /** Requests sent beyond the corpus (it wrapped; those are duplicates, answered 200). */
  wrapped: number;
  seconds: number;
}

/**
 * Closed-loop load (CONNECTIONS in all, split evenly over `urls`, and the corpus split the
 * same way) for DURATION s, or `amount` requests in all, or at `rate` req/s in all. The
 * corpus is signed before; each request takes the next entry (one counter per URL, no copy
 * per connection), so events stay unique and the generator only sends. req/s = completed
 * requests / elapsed s.
 */
export async function load(urls: string[], requests: Request[], opts: { rate?: number; amount?: number } = {}): Promise<Load> {
  const per = Math.floor(requests.length / urls.length);
  let wrapped = 0;
  const results = await Promise.all(
    urls.map((url, i) => {
      const slice = requests.slice(i * per, (i + 1) * per);
      let next = 0;
      return autocannon({
        url,
        connections: Math.max(1, Math.round(CONNECTIONS / urls.length)),
        ...(opts.amount ? { amount: Math.floor(opts.amount / urls.length) } : { duration: DURATION }),
        requests: [
          {
            method: 'POST',
            path: '/webhooks/planasonix',
            setupRequest: (req: object) => {
              if (next >= slice.length) wrapped++;
              return { ...req, ...slice[next++ % slice.length]! };
            },
          },
        ],
        ...(opts.rate ? { overallRate: opts.rate / urls.length } : {}),
      });
    }),
  );
  const sum = (f: (r: autocannon.Result) => number) => results.reduce((a, r) => a + f(r), 0);
  const seconds = Math.max(...results.map((r) => r.duration));
  return {
    rps: sum((r) => r.requests.total / r.duration),
    p50: Math.max(...results.map((r) => r.latency.p50)),
    p99: Math.max(...results.map((r) => r.latency.p99)),
    max: Math.max(...results.map((r) => r.latency.max)),
    // autocannon counts a timeout in `errors` and in `timeouts`: counted once here.
    errors: sum((r) => r.errors + r.non2xx),
    errorKinds: describeErrors(results),
    accepted: sum((r) => (r.statusCodeStats as Record<string, { count: number }>)['202']?.count ?? 0),
    ok: sum((r) => r['2xx']),
    wrapped,
    seconds,
  };
}

function describeErrors(results: autocannon.Result[]): string {
  const sum = (f: (r: autocannon.Result) => number) => results.reduce((a, r) => a + f(r), 0);
  const codes = new Map<string, number>();
  for (const r of results) for (const [code, { count }] of Object.entries(r.statusCodeStats as Record<string, { count: number }>)) if (!code.startsWith('2')) codes.set(code, (codes.get(code) ?? 0) + count);
  const timeouts = sum((r) => r.timeouts);
  const other = sum((r) => r.errors) - timeouts; // autocannon counts timeouts among errors too
  return [timeouts ? `${timeouts} timeouts` : '', other > 0 ? `${other} connection errors` : '', ...[...codes].map(([c, n]) => `${n} × ${c}`)].filter(Boolean).join(', ');
}

/** The errors cell: the count, and what they were. */
export const errorsCell = (r: { errors: number; errorKinds: string }) => (r.errors ? `**${r.errors}** (${r.errorKinds})` : '0');

// --- processes ---------------------------------------------------------------------------

export interface Server {
  child: ChildProcess;
  url: string;
  pid: number;
}

export async function start(cmd: string[], env: Record<string, string> = {}): Promise<Server> {
  const name = cmd.at(-1)!.split('/').at(-1)!;
  const s = await spawnListening(cmd, name, { SECRET, ...env });
  return { ...s, pid: s.child.pid! };
}

export const stop = (s: Server) => stopChild(s.child);

/** Peak resident set (VmHWM) of a live process, MB. */
export const peakRss = (pid: number) => Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;

// --- bridge configs and stores -----------------------------------------------------------

export const NO_ROUTE = '[]';
export const ONE_ROUTE = `[ { name: sales-to-dbt, match: { type: run.succeeded, pipeline_name: "nightly_*" }, trigger: { dag_id: dbt_sales_models, conf: { rows: "{{ data.metrics.rows_written }}" } } } ]`;
/** Matches every event of a spread corpus (200 pipelines → one DAG). */
export const SPREAD_ROUTE = `[ { name: spread-to-dbt, match: { type: run.succeeded, pipeline_name: "spread_*" }, trigger: { dag_id: dbt_spread_models, conf: { rows: "{{ data.metrics.rows_written }}" } } } ]`;
/** `n` routes, each a pipeline_name glob plus a tag, none matching the benchmark's events. */
export const unmatchedRoutes = (n: number) =>
  `\n${Array.from({ length: n }, (_, i) => `  - { name: r${i}, match: { type: run.succeeded, pipeline_name: "pipe_${i}_*", tags: { team: "t${i}" } }, trigger: { dag_id: dag_${i} } }`).join('\n')}`;
const LOOSE_BREAKER = '{ max_triggers: 100000000, window: 1m }';

export function bridgeConfig(store: string, routes: string, opts: { breaker?: string } = {}) {
  const file = join(mkdtempSync(join(tmpdir(), 'bench-')), 'bridge.yaml');
  writeFileSync(
    file,
    `
server: { host: 127.0.0.1, port: 0, rate_limit: { window: 1m, max: 100000000 } }
store: { url: "${store}" }
log: { level: info }
sources: { planasonix: { path: /webhooks/planasonix, verify: { scheme: standard-webhooks, secrets: ["\${SECRET}"] } } }
airflow: { default: { url: "${sinkUrl}", auth: { type: none } } }
loop_guard: { breaker: ${opts.breaker ?? LOOSE_BREAKER} }
routes: ${routes}
`,
  );
  return file;
}

export const sqliteFile = () => join(mkdtempSync(join(tmpdir(), 'bench-db-')), 'b.db');

/** Rows of `table` in a SQLite file (read after the writer has exited). */
export function sqliteCount(file: string, table = 'events'): number {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
  } finally {
    db.close();
  }
}

/** A fresh PostgreSQL database for one run; `drop()` removes it. */
export async function freshPgDatabase(admin: pg.Client) {
  const name = `bridge_bench_${Math.random().toString(36).slice(2, 10)}`;
  await admin.query(`CREATE DATABASE ${name}`);
  const url = `postgres://postgres@127.0.0.1:5432/${name}`;
  return {
    name,
    url,
    async count(table: string): Promise<number> {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try {
        return Number((await c.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`)).rows[0]!.n);
      } finally {
        await c.end();
      }
    },
    drop: () => admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`),
  };
}

// --- rows --------------------------------------------------------------------------------

export interface Row extends Load {
  name: string;
  rssMb?: number;
  /** CPU ms per accepted event, the server process(es) only. */
  cpuMsPerEvent?: number;
  /** Rows in the store after the run; must equal `accepted`. */
  stored?: number;
}

/**
 * Rows stored vs 202 answers. A run that stops on time leaves up to CONNECTIONS requests in
 * flight whose commit lands but whose answer autocannon no longer counts, so stored may exceed
 * the 202s by that much; fewer rows than 202s means accepted events were lost, and says so.
 */
export function storedCell(r: { accepted: number; stored?: number }): string {
  if (r.stored === undefined) return '—';
  return r.stored >= r.accepted ? `${r.stored} / ${r.accepted}` : `**${r.stored} / ${r.accepted}: ${r.accepted - r.stored} LOST**`;
}

export const ratio = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined || !b ? undefined : a / b);
export const fmt = (x: number | undefined, digits = 2) => (x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(digits));

/** One server, one load: its row with peak RSS, CPU per accepted (or, without a store, answered) event and, given `count`, the rows stored. */
export async function ingestRun(name: string, cmd: string[], requests: Request[], opts: { rate?: number; amount?: number; env?: Record<string, string>; count?: () => number | Promise<number> } = {}): Promise<Row> {
  const server = await start(cmd, opts.env);
  let row: Row;
  try {
    const meter = await startCpuMeter([server.pid]);
    const result = await load([server.url], requests, opts);
    const cpu = await meter.stop();
    row = { name, ...result, rssMb: peakRss(server.pid), cpuMsPerEvent: cpu.processMs / (result.accepted || result.ok) };
  } finally {
    await stop(server);
  }
  if (opts.count) row.stored = await opts.count();
  return row;
}

export function ingestTable(title: string, rows: Row[], ratios: { label: string; of: Row | undefined }[]) {
  printTable(
    title,
    ['run', 'req/s', 'p50 ms', 'p99 ms', 'max ms', 'errors', 'stored / 202', 'CPU ms/event', 'peak RSS MB', ...ratios.map((r) => r.label)],
    rows.map((r) => [
      r.wrapped ? `${r.name} (corpus wrapped: ${r.wrapped} repeats)` : r.name,
      r.rps.toFixed(0),
      r.p50,
      r.p99,
      r.max,
      errorsCell(r),
      storedCell(r),
      fmt(r.cpuMsPerEvent, 3),
      fmt(r.rssMb, 0),
      ...ratios.map((x) => fmt(ratio(r.rps, x.of?.rps))),
    ]),
  );
}

export { printTable };
