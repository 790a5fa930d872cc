// End to end on a real Airflow 3: signed webhook → bridge → DAG run visible in Airflow's API.
// Reports what the bridge adds on top of Airflow's own trigger POST.
//
//   npm run bench                              # all benchmarks, this one last
//   npm run bench -- --no-airflow              # all but this one
//   npm run bench -- --only-airflow            # this one only (= npm run build && npx tsx bench/run.ts --only-airflow)
//   npm run build && npx tsx bench/e2e-airflow.ts   # the same, without run.ts's header line
//
// Needs the Airflow 3.3 venv (`bash test/airflow/install.sh 3`; startAirflow installs it if
// missing, ~40 s cold). Wall time warm: ~10–60 s Airflow start-up + ~0.1 s per webhook.
// Env: BENCH_AIRFLOW_N (measured webhooks, default 200), BENCH_AIRFLOW_TIMEOUT_S (whole run,
// default 360), BENCH_AIRFLOW_RUN_TASKS=1 (leave record_conf unpaused, see below),
// BENCH_VERBOSE=1 (every Airflow line to stderr; the last 200 are printed anyway on failure).
//
// What runs: Airflow 3 (api-server, scheduler, dag-processor; LocalExecutor, SQLite) from
// test/airflow/harness.ts with only record_conf in its DAGs folder, paused so its runs stay
// queued: executing tasks share the SQLite metadata DB with the api-server, whose trigger POSTs
// then wait seconds on the lock (500 after 5 s) — the harness's SQLite, not the path measured.
// The bridge runs as users run it (`dist/cli/main.js serve`, SQLite store, log level info,
// admin API on via BRIDGE_ADMIN_TOKEN).
// Webhooks go one at a time (plus a few uncounted warm-ups: the bridge's first attempt also
// logs in at /auth/token), so no number includes queueing behind another webhook.
//
// Per webhook, all clocks on this one machine (Date.now() here and in the bridge: same realtime
// clock; the bridge stores whole ms, so its numbers carry ±1 ms):
//   t0            just before the POST to the bridge
//   202           answer received (performance.now())
//   accepted      the bridge's attempt finished (Airflow answered 200 to the trigger) − t0
//   Airflow POST  the attempt's duration, as the bridge timed it (read from GET /v1/events/:id)
//   added         accepted − Airflow POST = attempt start − t0: receive, verify, store,
//                 route, dispatch wake-up and claim, until the trigger request starts
//   visible       GET /api/v2/dags/record_conf/dagRuns/<id> first answers 200, polled every
//                 20 ms from the 202 on (so it includes up to ~20 ms + one GET of polling)
//   baseline      the same trigger POSTed straight to Airflow by this script (no bridge),
//                 interleaved with the webhooks so both see the same Airflow load
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { startAirflow, type StartedAirflow } from '../test/airflow/harness.js';
import { airflowApi } from '../test/helpers/e2e.js';
import { CLI, spawnListening, stopChild } from '../test/helpers/process.js';
import { standardWebhookHeaders } from '../test/helpers/sign.js';
import { percentile, printTable } from './table.js';

const root = resolve(import.meta.dirname, '..');
const SECRET = `whsec_${Buffer.from('benchmark secret, not for use!!').toString('base64')}`;
const DAG = 'record_conf';
const ROUTE = 'e2e';
const POLL_MS = 20;
/** One webhook's run must be visible (and its job settled) within this, or the run fails. */
const PER_WEBHOOK_MS = 30_000;

export interface LatencyRow {
  metric: string;
  n: number;
  p50: number;
  p99: number;
  max: number;
}

export interface EndToEndOptions {
  /** Measured webhooks (default BENCH_AIRFLOW_N or 200). */
  n?: number;
  /** Sent first and not counted (default 3). */
  warmup?: number;
  /** The whole benchmark, Airflow start-up included (default BENCH_AIRFLOW_TIMEOUT_S or 360 s). */
  timeoutMs?: number;
}

interface Sample {
  ack: number;
  accepted: number;
  post: number;
  added: number;
  visible: number;
  /** Absent when Airflow answered the direct POST with an error. */
  direct?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function row(metric: string, values: number[]): LatencyRow {
  const s = [...values].sort((a, b) => a - b);
  return { metric, n: s.length, p50: percentile(s, 50), p99: percentile(s, 99), max: s.at(-1)! };
}

export async function benchEndToEnd(options: EndToEndOptions = {}): Promise<LatencyRow[]> {
  const n = options.n ?? Number(process.env.BENCH_AIRFLOW_N ?? 200);
  const warmup = options.warmup ?? 3;
  const timeoutMs = options.timeoutMs ?? Number(process.env.BENCH_AIRFLOW_TIMEOUT_S ?? 360) * 1000;
  const verbose = process.env.BENCH_VERBOSE === '1';
  const runTasks = process.env.BENCH_AIRFLOW_RUN_TASKS === '1';
  const t00 = Date.now();
  const progress = (msg: string) => process.stderr.write(`[e2e-airflow +${((Date.now() - t00) / 1000).toFixed(1)}s] ${msg}\n`);

  const temp = mkdtempSync(join(tmpdir(), 'bench-e2e-'));
  const configFile = join(temp, 'bridge.yaml');
  const recent: string[] = [];
  let phase = 'start';
  let afStarting: Promise<StartedAirflow> | undefined;
  let af: StartedAirflow | undefined;
  let bridge: ChildProcess | undefined;

  // One deadline for everything: every wait below races it, every loop checks it.
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(new Error(`e2e-airflow: gave up after ${timeoutMs / 1000} s (BENCH_AIRFLOW_TIMEOUT_S), during: ${phase}`)), timeoutMs);
  const onSignal = (sig: NodeJS.Signals) => deadline.abort(new Error(`e2e-airflow: ${sig} during: ${phase}`));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const aborted = new Promise<never>((_, reject) => deadline.signal.addEventListener('abort', () => reject(deadline.signal.reason), { once: true }));
  aborted.catch(() => {});
  const race = <T>(p: Promise<T>): Promise<T> => Promise.race([p, aborted]);

  const onAirflowLine = (line: string) => {
    recent.push(line);
    if (recent.length > 200) recent.shift();
    if (verbose || line.startsWith('[harness]')) process.stderr.write(`  ${line}\n`);
  };

  async function measure(): Promise<LatencyRow[]> {
    // --- Airflow ---------------------------------------------------------------------------
    phase = 'Airflow start-up';
    const dags = join(temp, 'dags');
    mkdirSync(dags);
    copyFileSync(join(root, 'test/airflow/dags/record_conf.py'), join(dags, 'record_conf.py'));
    progress('airflow starting… (venv check, api-server + scheduler + dag-processor, until record_conf is visible)');
    afStarting = startAirflow({ major: 3, dagsFolder: dags, waitForDags: [DAG], log: onAirflowLine, timeoutMs: Math.max(30_000, timeoutMs - 90_000) });
    af = await race(afStarting);
    progress(`airflow ${af.version} up in ${(af.startupMs / 1000).toFixed(1)} s at ${af.url}`);
    const signal = deadline.signal;
    const airflow = airflowApi(af);
    if (!runTasks) {
      // Runs stay queued: with 4 LocalExecutor tasks writing to the same SQLite metadata DB,
      // the api-server waits on its lock for seconds (and answers 500 after 5 s), which is
      // the harness's SQLite, not the trigger path being measured.
      const paused = await airflow.send('PATCH', `/dags/${DAG}`, { is_paused: true });
      if (paused.status !== 200) throw new Error(`PATCH /api/v2/dags/${DAG} → ${paused.status} ${JSON.stringify(paused.body)}`);
      progress(`${DAG} paused: its runs stay queued (BENCH_AIRFLOW_RUN_TASKS=1 runs them)`);
    }

    // --- bridge ------------------------------------------------------------------------------
    phase = 'bridge start-up';
    const adminToken = randomBytes(24).toString('base64url');
    writeFileSync(
      configFile,
      `
server: { host: 127.0.0.1, port: 0 }
store: { url: "sqlite:${join(temp, 'bridge.db')}" }
# "bridge listening" is logged at info: spawnListening waits for that line, so warn would hang.
log: { level: info }
sources: { planasonix: { path: /webhooks/planasonix, verify: { scheme: standard-webhooks, secrets: ["\${SECRET}"] } } }
airflow: { default: { url: "${af.url}", api: v2, auth: { type: password, username: "${af.username}", password: "${af.password}" } } }
# The default breaker (30 triggers of one pipeline → DAG pair per 10 min) would block this run's jobs.
loop_guard: { breaker: { max_triggers: 100000000, window: 1m } }
routes: [ { name: ${ROUTE}, match: { type: run.succeeded }, trigger: { dag_id: ${DAG}, conf: { rows: "{{ data.metrics.rows_written }}" } } } ]
`,
    );
    const started = await race(spawnListening([CLI, 'serve', '--config', configFile], 'bridge', { SECRET, BRIDGE_ADMIN_TOKEN: adminToken }, deadline.signal));
    bridge = started.child;
    const bridgeUrl = started.url;
    progress(`bridge up at ${bridgeUrl}`);

    // --- helpers -----------------------------------------------------------------------------

    const eventView = async (id: string): Promise<{ jobs?: Record<string, any>[] }> => {
      for (;;) {
        const res = await fetch(`${bridgeUrl}/v1/events/${encodeURIComponent(id)}`, { headers: { authorization: `Bearer ${adminToken}` }, signal });
        if (res.status === 429) {
          await sleep(Number(res.headers.get('retry-after') ?? 1) * 1000);
          continue;
        }
        if (res.status !== 200) throw new Error(`bridge GET /v1/events/${id} → ${res.status} ${await res.text()}`);
        return (await res.json()) as { jobs?: Record<string, any>[] };
      }
    };
    const jobLine = (job: Record<string, any> | undefined) =>
      job ? JSON.stringify({ state: job.state, dag_run_id: job.dag_run_id, last_error: job.last_error, block_reason: job.block_reason, attempts: job.attempts }) : 'no job';

    const tag = randomBytes(3).toString('hex');
    const samples: Sample[] = [];
    let retried = 0;
    let directErrors = 0;

    async function one(i: number): Promise<Sample | undefined> {
      const runId = `e2e_${tag}_${i}`;
      const dagRunId = `planasonix__${runId}__${ROUTE}`;
      const body = JSON.stringify({
        id: `evt_${runId}`,
        type: 'run.succeeded',
        created_at: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
        data: { run_id: runId, pipeline_id: 'pl_8f2a9c1d4e', pipeline_name: 'nightly_sales_to_warehouse', status: 'succeeded', metrics: { rows_written: i } },
      });
      const headers = { 'content-type': 'application/json', ...standardWebhookHeaders(SECRET, `msg_${runId}`, Math.floor(Date.now() / 1000), body) };

      const t0 = Date.now();
      const p0 = performance.now();
      const res = await fetch(`${bridgeUrl}/webhooks/planasonix`, { method: 'POST', headers, body, signal });
      const ack = performance.now() - p0;
      const answer = (await res.json()) as { id: string };
      if (res.status !== 202) throw new Error(`webhook ${i}: bridge answered ${res.status} ${JSON.stringify(answer)}`);

      let visible: number | undefined;
      while (visible === undefined) {
        signal.throwIfAborted();
        const got = await airflow.run(DAG, dagRunId);
        if (got.status === 200) visible = performance.now() - p0;
        else if (got.status !== 404) throw new Error(`webhook ${i}: GET dagRuns/${dagRunId} → ${got.status} ${JSON.stringify(got.body)}`);
        else if (performance.now() - p0 > PER_WEBHOOK_MS) throw new Error(`webhook ${i}: run ${dagRunId} not in Airflow after ${PER_WEBHOOK_MS / 1000} s; bridge job: ${jobLine((await eventView(answer.id)).jobs?.[0])}`);
        else await sleep(POLL_MS);
      }

      // The run can show in Airflow a moment before the bridge has recorded its attempt.
      let job: Record<string, any> | undefined;
      for (;;) {
        signal.throwIfAborted();
        job = (await eventView(answer.id)).jobs?.[0];
        if (job && job.state !== 'pending' && Array.isArray(job.attempts) && job.attempts.length > 0) break;
        if (performance.now() - p0 > PER_WEBHOOK_MS) throw new Error(`webhook ${i}: job not settled after ${PER_WEBHOOK_MS / 1000} s: ${jobLine(job)}`);
        await sleep(POLL_MS);
      }
      if (job.state !== 'done' || job.dag_run_id !== dagRunId) throw new Error(`webhook ${i}: expected job done with ${dagRunId}: ${jobLine(job)}`);
      const attempts = job.attempts as Record<string, any>[];
      if (attempts.length !== 1 || attempts[0]!.outcome !== 'triggered') {
        retried++;
        progress(`webhook ${i}: ${attempts.length} attempts, not counted: ${jobLine(job)}`);
        return undefined;
      }
      const a = attempts[0]!;
      const startedAt = Date.parse(a.started_at ?? '');
      const post = Number(a.duration_ms);
      if (!Number.isFinite(startedAt) || !Number.isFinite(post)) throw new Error(`webhook ${i}: no start/duration in the attempt ${JSON.stringify(a)}`);

      // Baseline: the same trigger, straight from here to Airflow.
      const d0 = performance.now();
      const direct = await airflow.send('POST', `/dags/${DAG}/dagRuns`, { dag_run_id: `direct_${runId}`, logical_date: null, conf: { rows: i }, note: null });
      const directMs = performance.now() - d0;
      if (direct.status !== 200) {
        directErrors++;
        progress(`direct trigger ${i}: Airflow answered ${direct.status} after ${directMs.toFixed(0)} ms, not counted: ${JSON.stringify(direct.body).slice(0, 300)}`);
      }

      return { ack, accepted: startedAt + post - t0, post, added: startedAt - t0, visible, ...(direct.status === 200 ? { direct: directMs } : {}) };
    }

    phase = `${warmup} warm-up webhooks`;
    for (let i = 0; i < warmup; i++) await one(i);
    progress(`warm-up done (${warmup}); sending ${n} one at a time`);
    for (let i = 0; i < n; i++) {
      phase = `webhook ${i + 1}/${n}`;
      const s = await one(warmup + i);
      if (s) samples.push(s);
      if ((i + 1) % 10 === 0 || i + 1 === n) progress(`sent ${i + 1}/${n}`);
    }
    if (samples.length === 0) throw new Error('e2e-airflow: no sample with a single successful attempt');
    const slowest = samples.reduce((a, b) => (b.visible > a.visible ? b : a));
    progress(`slowest: webhook ${samples.indexOf(slowest) + 1}/${samples.length}: ${JSON.stringify(slowest, (_, v: unknown) => (typeof v === 'number' ? Math.round(v) : v))}`);

    const col = (k: keyof Sample) => samples.flatMap((s) => (s[k] === undefined ? [] : [s[k]]));
    const rows = [
      row('webhook answered (202)', col('ack')),
      row('webhook → trigger accepted by Airflow (bridge time: attempt end − t0)', col('accepted')),
      row("Airflow's trigger POST, as timed by the bridge (attempt duration)", col('post')),
      row('**bridge added latency** (bridge time − Airflow POST = attempt start − t0)', col('added')),
      row('webhook → run visible in Airflow API (GET polled every 20 ms)', col('visible')),
      row('baseline: the same trigger POSTed straight to Airflow (no bridge)', col('direct')),
    ];
    printTable(
      `End to end on real Airflow ${af.version}: webhook → DAG run (${samples.length} webhooks one at a time after ${warmup} warm-ups${retried ? `; ${retried} with retries left out` : ''}${directErrors ? `; ${directErrors} direct POSTs failed` : ''})`,
      ['metric', 'n', 'p50 ms', 'p99 ms', 'max ms'],
      rows.map((r) => [r.metric, r.n, r.p50.toFixed(1), r.p99.toFixed(1), r.max.toFixed(1)]),
    );
    process.stdout.write(
      `\nBridge: SQLite store, log level info, one route. Airflow: api-server (1 worker), LocalExecutor, SQLite metadata DB, ${runTasks ? 'record_conf runs executing meanwhile' : 'record_conf paused (runs stay queued, no task executes)'}. p99 is nearest-rank (the max when n < 100); bridge times are whole ms.\n`,
    );
    return rows;
  }

  try {
    return await race(measure());
  } catch (err) {
    if (recent.length > 0) process.stderr.write(`[e2e-airflow] last Airflow lines:\n${recent.map((l) => `  ${l}`).join('\n')}\n`);
    throw err;
  } finally {
    clearTimeout(timer);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    deadline.abort(new Error('e2e-airflow: finished')); // ends any wait still running
    progress('stopping bridge and Airflow…');
    if (bridge) await stopChild(bridge);
    if (af) await af.stop();
    else if (afStarting) {
      // The deadline came during start-up: stop it once startAirflow gives up or resolves
      // (its process-exit hook SIGKILLs the components if we are gone first).
      await Promise.race([afStarting.then((a) => a.stop(), () => {}), sleep(20_000)]);
    }
    rmSync(temp, { recursive: true, force: true });
    progress(`stopped; total ${((Date.now() - t00) / 1000).toFixed(1)} s`);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  await benchEndToEnd();
  process.exit(0);
}
