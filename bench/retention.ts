// Retention soak (issue 14), a benchmark rather than a timed test: the `retention` part of
// `npm run bench` (bench/run.ts), or alone `npx tsx bench/retention.ts` (after `npm run build`). A `serve` process with a short retention (events, dead and dedupe
// 20 s, a prune round every second) takes a steady stream of signed deliveries — one in five
// matches a route whose jobs go to an endpoint answering like Airflow — and the store's size
// is sampled as it goes. Printed: the size at one retention period and at the end (target
// ≤ 1.3×), and ingest p99 of requests that overlapped a prune round against those that did not
// (target ≤ 1.5×), with met/missed.
//
// Flags: --postgres (also run on a fresh PostgreSQL database; table sizes from
// pg_total_relation_size), --no-sqlite, --sizing N (only: bytes per million events, both stores),
// --events N (default 200000), --rate N per second (default 250 on SQLite, 200 on PostgreSQL:
// below what this 2-core machine ingests with the load generator beside it; at 1,000/s SQLite
// ran at 888/s and its dispatch backlog, never prunable, grew to 19,606 jobs).
import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { Pool } from 'undici';
import { PRUNED_TABLES } from '../src/store/types.js';
import { freshPostgresDatabase } from '../test/helpers/stores.js';
import { percentile, printTable } from './table.js';

const root = resolve(import.meta.dirname, '..');
const SECRET = `whsec_${Buffer.from('retention soak secret, not real').toString('base64')}`;
const KEY = Buffer.from(SECRET.slice(6), 'base64');
const RETENTION_S = 20;
const MAX_IN_FLIGHT = 256;

// An endpoint answering like Airflow 3: a trigger gets 200 with the run it asked for, and the
// run tracker's list finds every run triggered since the last list finished (success), as runs
// end in production. Without that, each routed event would stay tracked, so kept, until the
// 7-day horizon and the store would grow by a fifth of the ingest rate.
async function startSink() {
  const triggered: { dag_run_id: string; at: string }[] = [];
  const sink = createServer((req, res) => {
    let raw = '';
    req.on('data', (d) => (raw += d));
    req.on('end', () => {
      const json = (body: unknown) => void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      if (req.method === 'GET') return json({ is_paused: false });
      if (req.url?.endsWith('/dagRuns/list')) {
        const runs = triggered.splice(0).map((r) => ({ dag_id: 'soak', dag_run_id: r.dag_run_id, state: 'success', queued_at: r.at, start_date: r.at, end_date: new Date().toISOString() }));
        return json({ dag_runs: runs.reverse(), total_entries: runs.length });
      }
      const runId = JSON.parse(raw).dag_run_id as string;
      triggered.push({ dag_run_id: runId, at: new Date().toISOString() });
      json({ dag_run_id: runId, dag_id: 'soak', state: 'queued', logical_date: null, conf: {} });
    });
  });
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(sink.address() as AddressInfo).port}`, close: () => sink.close() };
}

/** One soak's measures, for the targets table of `npm run bench`. */
export interface RetentionRow {
  store: string;
  events: number;
  sizeRatio: number;
  p99With: number;
  p99Without: number;
  p99Ratio: number;
}

interface Run {
  name: string;
  storeUrl: string;
  rate: number;
  /** Bytes of the store now (SQLite: file + WAL; PostgreSQL: the bridge's tables). */
  size(): Promise<number>;
  detail(): Promise<string>;
  /** Where the bytes are (PostgreSQL: per table heap, indexes, TOAST and dead rows), sampled every 10 s. */
  breakdown?(): Promise<string>;
  cleanup(): Promise<void>;
}

async function soak(run: Run, sinkUrl: string, events: number): Promise<RetentionRow> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-retention-'));
  const config = join(dir, 'bridge.yaml');
  // The breaker's window is half the retention, the way real configs have it (30 days against
  // 10 minutes by default): a pruned job left its pair's count long before. With the two equal
  // (until round 11) every pruned job had only just left it, a boundary no deployment sits on.
  writeFileSync(
    config,
    `server: { host: 127.0.0.1, port: 0, rate_limit: { window: 1m, max: 100000000 } }
store: { url: "${run.storeUrl}", retention: { events: ${RETENTION_S}s, dead: ${RETENTION_S}s, dedupe: ${RETENTION_S}s, interval: 1s } }
log: { level: info }
sources: { planasonix: { path: /webhooks/planasonix, verify: { scheme: standard-webhooks, secrets: ["${SECRET}"], tolerance: 10s } } }
airflow: { default: { url: "${sinkUrl}", auth: { type: none }, track: { interval: 2s } } }
loop_guard: { breaker: { max_triggers: 100000000, window: ${RETENTION_S / 2}s } }
routes:
  - { name: soak, match: { pipeline_id: pl_routed }, trigger: { airflow: default, dag_id: soak } }
`,
  );
  // The bridge as users run it; its log tells when each prune round ran.
  const TOKEN = 'retention-soak-admin-token-0123456789';
  const child = spawn(process.execPath, [join(root, 'dist/cli/main.js'), 'serve', '--config', config], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, BRIDGE_ADMIN_TOKEN: TOKEN } });
  const prunes: { start: number; end: number; events: number }[] = [];
  const url = await new Promise<string>((resolveUrl, reject) => {
    child.once('exit', (code) => reject(new Error(`bridge exited ${code}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line.includes('"bridge listening"')) resolveUrl(JSON.parse(line).url);
      else if (line.includes('"component":"retention"') && line.includes('"pruned"')) {
        const l = JSON.parse(line) as { time: string; ms: number; pruned: { events: number } };
        const end = Date.parse(l.time);
        prunes.push({ start: end - l.ms, end, events: l.pruned.events });
      }
    });
  });
  const pool = new Pool(url, { connections: 32, pipelining: 1 });
  const samples: { t: number; bytes: number; sent: number; events: number; pending: number }[] = [];
  // Rows and pending jobs as the bridge reports them (GET /v1/status), beside each size sample.
  const status = async () => {
    try {
      const res = await pool.request({ path: '/v1/status', method: 'GET', headers: { authorization: `Bearer ${TOKEN}` } });
      const body = (await res.body.json()) as { store: { rows?: { events: number } }; queue: { pending: number } };
      return { events: body.store.rows?.events ?? NaN, pending: body.queue.pending };
    } catch {
      return { events: NaN, pending: NaN };
    }
  };
  const latencies: { start: number; end: number }[] = [];
  let sent = 0;
  let failed = 0;
  let inFlight = 0;
  let skipped = 0;
  const t0 = Date.now();
  const sendOne = async (i: number) => {
    const body = JSON.stringify({ id: `evt_${i}`, type: 'run.succeeded', created_at: new Date().toISOString(), data: { run_id: `run_${i}`, pipeline_id: i % 5 === 0 ? 'pl_routed' : 'pl_other', status: 'succeeded', metrics: { rows_written: i } } });
    const id = `msg_${i}`;
    const ts = String(Math.floor(Date.now() / 1000));
    const sig = createHmac('sha256', KEY).update(`${id}.${ts}.${body}`).digest('base64');
    const start = performance.now();
    inFlight++;
    try {
      const res = await pool.request({ path: '/webhooks/planasonix', method: 'POST', body, headers: { 'content-type': 'application/json', 'webhook-id': id, 'webhook-timestamp': ts, 'webhook-signature': `v1,${sig}` } });
      await res.body.dump();
      if (res.statusCode !== 202) failed++;
      latencies.push({ start: performance.timeOrigin + start, end: performance.timeOrigin + performance.now() });
    } catch {
      failed++;
    } finally {
      inFlight--;
    }
  };
  // Open loop at a steady rate: each 10 ms tick sends what the clock says is due.
  const sampler = setInterval(() => void Promise.all([run.size(), status()]).then(([bytes, st]) => samples.push({ t: (Date.now() - t0) / 1000, bytes, sent, ...st })), 1000);
  const breakdowns: string[] = [];
  const breaker = run.breakdown && setInterval(() => void run.breakdown!().then((b) => breakdowns.push(`${((Date.now() - t0) / 1000).toFixed(0)} s: ${b}`)), 10_000);
  await new Promise<void>((done) => {
    const tick = setInterval(() => {
      const due = Math.min(events, Math.floor(((Date.now() - t0) / 1000) * run.rate));
      while (sent < due) {
        if (inFlight >= MAX_IN_FLIGHT) {
          skipped += due - sent;
          sent = due;
          break;
        }
        void sendOne(sent++);
      }
      if (sent >= events) {
        clearInterval(tick);
        const wait = setInterval(() => inFlight === 0 && (clearInterval(wait), done()), 20);
      }
    }, 10);
  });
  // A few more rounds, so what is due at the end is pruned before the last sample.
  await new Promise((r) => setTimeout(r, 3000));
  clearInterval(sampler);
  clearInterval(breaker);
  const endBytes = await run.size();
  const endStatus = await status();
  const seconds = (Date.now() - t0) / 1000;
  await pool.close();
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  const detail = await run.detail();
  await run.cleanup();
  rmSync(dir, { recursive: true, force: true });

  // Size at one retention period: the first sample after the first events could be pruned (and a prune round ran).
  const firstPrune = prunes.find((p) => p.events > 0);
  const atPeriod = samples.find((s) => firstPrune && s.t * 1000 + t0 >= firstPrune.end + 2000) ?? samples[0]!;
  // One period in, the store holds a window of events but no freed space yet; by two periods
  // the space freed by pruning is being reused: the steady state the file should stay at.
  const atTwo = samples.find((s) => s.t >= (2 * RETENTION_S) + 2) ?? samples.at(-1)!;
  const peak = Math.max(...samples.map((s) => s.bytes));
  const during = (l: { start: number; end: number }) => prunes.some((p) => l.start < p.end && l.end > p.start);
  const ms = (l: { start: number; end: number }) => l.end - l.start;
  const withPrune = latencies.filter(during).map(ms).sort((a, b) => a - b);
  const without = latencies.filter((l) => !during(l)).map(ms).sort((a, b) => a - b);
  const p99With = withPrune.length ? percentile(withPrune, 99) : NaN;
  const p99Without = without.length ? percentile(without, 99) : NaN;
  const mb = (b: number) => (b / 1024 / 1024).toFixed(1);
  const sizeRatio = endBytes / atPeriod.bytes;
  const p99Ratio = p99With / p99Without;
  const prunedEvents = prunes.reduce((n, p) => n + p.events, 0);
  printTable(
    `Retention soak, ${run.name}: ${events.toLocaleString('en')} events at ${run.rate}/s (20% routed and dispatched), retention ${RETENTION_S}s, a prune round every 1 s`,
    ['measure', 'value', 'target', 'met'],
    [
      ['events sent / answered other than 202 / not sent (sender at its in-flight cap)', `${events} / ${failed} / ${skipped}`, '0 refused', failed === 0 ? 'met' : 'missed'],
      ['run time s (effective rate /s)', `${seconds.toFixed(0)} (${Math.round((events - skipped) / seconds)})`, '', ''],
      ['prune rounds that deleted / events pruned', `${prunes.filter((p) => p.events > 0).length} / ${prunedEvents}`, '', ''],
      [`store size at one retention period (t = ${atPeriod.t.toFixed(0)} s) MB (events stored, jobs pending)`, `${mb(atPeriod.bytes)} (${atPeriod.events}, ${atPeriod.pending})`, '', ''],
      ['store size at the end MB (events stored, jobs pending); peak MB', `${mb(endBytes)} (${endStatus.events}, ${endStatus.pending}); ${mb(peak)}`, '', ''],
      ['size at the end ÷ at one retention period', sizeRatio.toFixed(2), '≤ 1.3', sizeRatio <= 1.3 ? 'met' : 'missed'],
      [`size at the end ÷ at two retention periods (t = ${atTwo.t.toFixed(0)} s, ${mb(atTwo.bytes)} MB); peak ÷ the same`, `${(endBytes / atTwo.bytes).toFixed(2)}; ${(peak / atTwo.bytes).toFixed(2)}`, '≤ 1.3', endBytes / atTwo.bytes <= 1.3 ? 'met' : 'missed'],
      ['ingest p99 ms overlapping a prune round (requests)', `${p99With.toFixed(1)} (${withPrune.length})`, '', ''],
      ['ingest p99 ms with no prune running (requests)', `${p99Without.toFixed(1)} (${without.length})`, '', ''],
      ['p99 during prune ÷ p99 without', p99Ratio.toFixed(2), '≤ 1.5', p99Ratio <= 1.5 ? 'met' : 'missed'],
      ['ingest p50 ms overall', percentile(latencies.map(ms).sort((a, b) => a - b), 50).toFixed(1), '', ''],
    ],
  );
  process.stdout.write(`\n${detail}\n`);
  if (breakdowns.length) process.stdout.write(`\nwhere the bytes are (MB heap + indexes + TOAST, dead rows):\n${breakdowns.join('\n')}\n`);
  process.stdout.write(`\nsamples (s: MB, events stored, jobs pending): ${samples.filter((_, i) => i % 10 === 0).map((s) => `${s.t.toFixed(0)}: ${mb(s.bytes)} ${s.events} ${s.pending}`).join('; ')}\n`);
  return { store: run.name, events: events, sizeRatio, p99With, p99Without, p99Ratio };
}

/**
 * `--sizing N`: N events of the soak's shape written straight into each store (no HTTP), the
 * routed fifth with a done job and its attempt, then the store's own size: bytes per million.
 */
async function sizing(n: number) {
  const { openSqliteStore } = await import('../src/store/sqlite.js');
  const { openPostgresStore } = await import('../src/store/postgres.js');
  const fill = async (store: import('../src/store/types.js').Store) => {
    const policy = { breaker: { maxTriggers: 1e9, windowMs: 60_000 } };
    for (let base = 0; base < n; base += 500) {
      await Promise.all(
        Array.from({ length: Math.min(500, n - base) }, (_, k) => {
          const i = base + k;
          const routed = i % 5 === 0;
          const body = JSON.stringify({ id: `evt_${i}`, type: 'run.succeeded', created_at: new Date().toISOString(), data: { run_id: `run_${i}`, pipeline_id: routed ? 'pl_routed' : 'pl_other', status: 'succeeded', metrics: { rows_written: i } } });
          const job = { route: 'soak', airflow: 'default', dagId: 'soak', request: { dag_run_id: `planasonix__run_${i}__soak`, logical_date: null, conf: {}, note: null }, sourcePipeline: 'pl_routed', target: 'airflow:soak', lineage: { chain_id: `c${i}`, depth: 1, path: ['planasonix:pl_routed', 'airflow:soak'], event_id: `evt_${i}`, route: 'soak' } };
          return store.insertEvent(
            { source: 'planasonix', deliveryId: `msg_${i}`, scheme: 'standard-webhooks', eventId: `evt_${i}`, type: 'run.succeeded', pipelineId: routed ? 'pl_routed' : 'pl_other', runId: `run_${i}`, headers: { 'content-type': 'application/json', 'user-agent': 'undici', 'webhook-id': `msg_${i}`, 'webhook-timestamp': String(Math.floor(Date.now() / 1000)) }, body: Buffer.from(body), receivedAt: new Date(), routing: [{ route: 'soak', matched: routed, ...(routed ? {} : { reason: 'pipeline_id' }) } as never] },
            routed ? [job] : [],
            policy,
          );
        }),
      );
      for (;;) {
        const claimed = await store.claimJobs({ airflow: 'default', now: Date.now(), limit: 500, leaseMs: 60_000, owner: 'sizing' });
        if (claimed.length === 0) break;
        await Promise.all(claimed.map((j) => store.finishAttempt(j.id, 'sizing', { startedAt: Date.now(), durationMs: 3, httpStatus: 200, outcome: 'triggered', detail: '{"state":"queued"}', nextRetryAt: null }, { state: 'done', airflowState: 'queued', dagRunId: j.dagRunId })));
      }
    }
  };
  const rows: string[][] = [];
  const dir = mkdtempSync(join(tmpdir(), 'bench-sizing-'));
  const sqlite = openSqliteStore({ path: join(dir, 'bridge.db'), busyTimeoutMs: 1000 });
  await fill(sqlite);
  const s = await sqlite.stats();
  rows.push(['SQLite (file: page_count × page_size)', String(n), (s.bytes / 1024 / 1024).toFixed(1), ((s.bytes / n) * 1e6 / 1024 / 1024).toFixed(0)]);
  await sqlite.close();
  rmSync(dir, { recursive: true, force: true });
  const db = await freshPostgresDatabase();
  const store = await openPostgresStore({ url: db.url, poolSize: 4 });
  await fill(store);
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  await c.query('VACUUM ANALYZE');
  await c.end();
  const p = await store.stats();
  rows.push(['PostgreSQL (tables with indexes and TOAST)', String(n), (p.bytes / 1024 / 1024).toFixed(1), ((p.bytes / n) * 1e6 / 1024 / 1024).toFixed(0)]);
  await store.close();
  await db.drop();
  printTable(`Store size per event (soak-shaped events, one in five with a done job and its attempt)`, ['store', 'events', 'MB', 'MB per million events'], rows);
}

/** The soak on each store asked for, one after the other (they would share the 2 cores). */
export async function benchRetention(opts: { events: number; sqlite: boolean; postgres: boolean; rate?: number }): Promise<RetentionRow[]> {
  const sink = await startSink();
  const rows: RetentionRow[] = [];
  if (opts.sqlite) {
    const dir = mkdtempSync(join(tmpdir(), 'bench-retention-db-'));
    const file = join(dir, 'bridge.db');
    const fileSize = (f: string) => (existsSync(f) ? statSync(f).size : 0);
    rows.push(await soak({
      name: 'SQLite',
      storeUrl: `sqlite:${file}`,
      rate: opts.rate ?? 250,
      size: async () => fileSize(file) + fileSize(`${file}-wal`),
      detail: async () => `SQLite file at the end: ${fileSize(file)} bytes, WAL ${fileSize(`${file}-wal`)} bytes`,
      cleanup: async () => rmSync(dir, { recursive: true, force: true }),
    }, sink.url, opts.events));
  }
  if (opts.postgres) {
    const db = await freshPostgresDatabase();
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    const tables = PRUNED_TABLES;
    const sizes = async () => {
      const { rows } = await client.query<{ t: string; bytes: string; n_dead: string | null; n_live: string | null }>(
        `SELECT t, pg_total_relation_size(to_regclass(t)) AS bytes, s.n_dead_tup AS n_dead, s.n_live_tup AS n_live
         FROM unnest($1::text[]) AS t LEFT JOIN pg_stat_user_tables s ON s.relname = t`,
        [tables],
      );
      return rows;
    };
    rows.push(await soak({
      name: 'PostgreSQL',
      storeUrl: db.url,
      rate: opts.rate ?? 200,
      size: async () => (await sizes()).reduce((n, r) => n + Number(r.bytes ?? 0), 0),
      detail: async () => {
        const rows = await sizes();
        const vacuums = await client.query<{ relname: string; autovacuum_count: string }>('SELECT relname, autovacuum_count FROM pg_stat_user_tables WHERE relname = ANY($1)', [tables]);
        const av = new Map(vacuums.rows.map((r) => [r.relname, r.autovacuum_count]));
        return `PostgreSQL tables at the end: ${rows.map((r) => `${r.t} ${(Number(r.bytes) / 1024 / 1024).toFixed(1)} MB (live ${r.n_live}, dead ${r.n_dead}, autovacuums ${av.get(r.t) ?? 0})`).join('; ')}`;
      },
      breakdown: async () => {
        const { rows } = await client.query<{ t: string; heap: string; indexes: string; total: string; n_dead: string | null }>(
          `SELECT t, pg_relation_size(to_regclass(t)) AS heap, pg_indexes_size(to_regclass(t)) AS indexes, pg_total_relation_size(to_regclass(t)) AS total, s.n_dead_tup AS n_dead
           FROM unnest($1::text[]) AS t LEFT JOIN pg_stat_user_tables s ON s.relname = t`,
          [tables],
        );
        const mb = (b: string | number) => (Number(b) / 1024 / 1024).toFixed(1);
        return rows.map((r) => `${r.t} ${mb(r.heap)}+${mb(r.indexes)}+${mb(Number(r.total) - Number(r.heap) - Number(r.indexes))} (${r.n_dead})`).join('; ');
      },
      cleanup: async () => {
        await client.end();
        await db.drop();
      },
    }, sink.url, opts.events));
  }
  sink.close();
  return rows;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const argv = process.argv.slice(2);
  const option = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? Number(argv[i + 1]) : undefined;
  };
  const rate = option('--rate');
  if (option('--sizing')) await sizing(option('--sizing')!);
  else await benchRetention({ events: option('--events') ?? 200_000, sqlite: !argv.includes('--no-sqlite'), postgres: argv.includes('--postgres'), ...(rate ? { rate } : {}) });
  process.exit(0);
}
