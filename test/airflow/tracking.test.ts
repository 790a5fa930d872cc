// Run tracking (DESIGN §7) on real Airflow 3 and 2: a DAG that succeeds, one that fails and
// one that sleeps past its route's finished_within — states and the SLA mark arrive by
// polling alone, then by the Airflow plugin's push (within 2 s of Airflow's own end time).
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configFrom } from '../helpers/app.js';
import { airflowApi, e2eBridge } from '../helpers/e2e.js';
import { completionEvent } from '../helpers/sign.js';
import type { Job } from '../../src/store/types.js';
import { freePort, startAirflow, type StartedAirflow } from './harness.js';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import pg from 'pg';
import { SECRET, tempDir } from '../helpers/app.js';
import { serveProcess, stopChild } from '../helpers/process.js';
import { freshPostgresDatabase } from '../helpers/stores.js';
import { standardWebhookHeaders } from '../helpers/sign.js';

const PUSH_SECRET = `whsec_${randomBytes(32).toString('base64')}`;
const PUSH_BUDGET_MS = 2000;

/**
 * LABELLED COUNTING PROXY — not a fake: it forwards every request to the real Airflow and
 * counts the run-list requests, to show one list request per round however many runs are open.
 */
async function countingProxy(target: string): Promise<{ url: string; lists: () => number; close: () => Promise<void> }> {
  let lists = 0;
  const upstream = new URL(target);
  const server: Server = createServer((req, res) => {
    if (req.method === 'POST' && /\/dags\/~\/dagRuns\/list$/.test(req.url ?? '')) lists++;
    const out = httpRequest({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    out.on('error', () => res.destroy());
    req.pipe(out);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, lists: () => lists, close: () => new Promise((r) => server.close(() => r())) };
}

async function until<T>(what: string, read: () => Promise<T>, done: (v: T) => boolean, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

for (const major of [3, 2] as const) {
  describe(`run tracking on real Airflow ${major}`, () => {
    let af: StartedAirflow;
    let bridge: Awaited<ReturnType<typeof e2eBridge>>;
    let port: number;
    const api = major === 3 ? 'v2' : 'v1';
    const airflowYaml = (track: string) => `
airflow:
  default: { url: "${af.url}", api: ${api}, auth: { type: password, username: ${af.username}, password: ${af.password} }, track: ${track} }
routes:
  - { name: ok, match: { pipeline_id: pl_ok }, trigger: { dag_id: push_ok } }
  - { name: fails, match: { pipeline_id: pl_fail }, trigger: { dag_id: push_fail } }
  - { name: slow, match: { pipeline_id: pl_slow }, trigger: { dag_id: push_sleep }, expect: { started_within: 1h, finished_within: 3s } }
`;

    beforeAll(async () => {
      port = await freePort();
      af = await startAirflow({
        major,
        dagsFolder: join(import.meta.dirname, 'plugin-dags'),
        waitForDags: ['push_ok', 'push_fail', 'push_sleep'],
        plugin: { url: `http://127.0.0.1:${port}/webhooks/airflow/default`, secret: PUSH_SECRET },
      });
      // Polling alone first: no push endpoint, so the plugin's posts meet a 404 and are dropped.
      bridge = await e2eBridge(airflowYaml('{ interval: 1s }'), { port });
      bridge.bridge.tracker.start();
    }, 300_000);
    afterAll(async () => {
      await bridge?.close();
      await af?.stop();
    });

    const trigger = async (pipeline: string) => {
      const sent = await bridge.send(completionEvent({ data: { run_id: `run_${pipeline}_${Date.now()}`, pipeline_id: pipeline, status: 'succeeded' } }));
      const [job] = await bridge.settled(sent.body.id);
      expect(job!.state).toBe('done');
      return job!;
    };
    const runOf = (job: Job) => bridge.store.getJob(job.id).then((j) => j!.run!);

    it('by polling alone: success, failed, and the SLA mark of a run that took too long — each logged and counted once', async () => {
      const [ok, fails, slow] = [await trigger('pl_ok'), await trigger('pl_fail'), await trigger('pl_slow')];
      // Queued when triggered; a first poll may already find it running.
      expect(await runOf(ok)).toMatchObject({ state: expect.stringMatching(/^(queued|running)$/), url: expect.stringContaining(`/dags/push_ok/`) });
      const okRun = await until('ok run', () => runOf(ok), (r) => r.state === 'success');
      const failRun = await until('failing run', () => runOf(fails), (r) => r.state === 'failed');
      const slowRun = await until('slow run', () => runOf(slow), (r) => r.state === 'success', 90_000);
      expect(okRun).toMatchObject({ open: false, slaMissed: null, startDate: expect.any(Number), endDate: expect.any(Number) });
      expect(failRun).toMatchObject({ open: false, slaMissed: null });
      expect(slowRun).toMatchObject({ open: false, slaMissed: 'finished' });
      // What Airflow itself recorded.
      const inAirflow = (await airflowApi(af).run('push_ok', ok.dagRunId!)).body;
      expect(okRun.endDate).toBe(Date.parse(inAirflow.end_date));
      const lines = bridge.logLines.filter((l) => l.component === 'track');
      expect(lines.filter((l) => l.msg === 'DAG run success').map((l) => l.route).sort()).toEqual(['ok', 'slow']);
      expect(lines.filter((l) => l.msg === 'DAG run failed').map((l) => l.route)).toEqual(['fails']);
      expect(lines.filter((l) => String(l.msg).startsWith('DAG run missed its SLA')).map((l) => [l.route, l.sla_missed])).toEqual([['slow', 'finished']]);
      const metrics = await bridge.bridge.metrics.registry.metrics();
      expect(metrics).toMatch(/bridge_dag_runs_finished_total\{route="fails",state="failed"\} 1/);
      expect(metrics).toMatch(/bridge_sla_missed_total\{route="slow",kind="finished"\} 1/);
      expect(metrics).toMatch(/bridge_load_to_run_end_seconds_count 3/);
      // The admin API's view of the same.
      const admin = (await bridge.store.listJobs({ runState: 'failed', limit: 10 })).items.map((j) => j.route);
      expect(admin).toEqual(['fails']);
    }, 180_000);

    it('by the plugin: with track.push, each state is recorded within 2 s of Airflow recording it, before any poll', async () => {
      // A poll only every hour: whatever arrives sooner came by push.
      const next = configFrom(`${bridge.yaml.replace(/airflow:[\s\S]*$/, '')}${airflowYaml(`{ interval: 1h, push: { secrets: ["${PUSH_SECRET}"] } }`)}`);
      expect(await bridge.bridge.reload(next)).toMatchObject({ ok: true });
      const [ok, fails] = [await trigger('pl_ok'), await trigger('pl_fail')];
      const seen = new Map<string, number>();
      const watch = async (job: Job, state: string) => {
        const run = await until(`pushed ${state}`, () => runOf(job), (r) => r.state === state, 60_000);
        seen.set(job.route, Date.now());
        return run;
      };
      const [okRun, failRun] = await Promise.all([watch(ok, 'success'), watch(fails, 'failed')]);
      const lag = (job: Job, run: { endDate: number | null }) => seen.get(job.route)! - run.endDate!;
      expect(lag(ok, okRun)).toBeLessThan(PUSH_BUDGET_MS);
      expect(lag(fails, failRun)).toBeLessThan(PUSH_BUDGET_MS);
      expect(bridge.bridge.tracker.requests('default')).toBeGreaterThan(0); // polled earlier, not since: the interval is an hour
      console.log(`push latency on Airflow ${major}: success ${lag(ok, okRun)} ms, failed ${lag(fails, failRun)} ms (upper bound: includes this test's 200 ms polling of the store)`);
    }, 120_000);

    if (major === 3) {
      it('a replica killed (-9) while tracking: another takes its runs over when the leases end and finishes them, each once', async () => {
        const db = await freshPostgresDatabase();
        const temp = tempDir();
        const file = join(temp.dir, 'bridge.yaml');
        writeFileSync(
          file,
          `server: { host: 127.0.0.1, port: 0 }
store: { url: "${db.url}" }
dispatch: { poll_interval: 0.2s }
sources: { planasonix: { path: /webhooks/planasonix, verify: { scheme: standard-webhooks, secrets: ["\${SECRET}"] } } }
airflow: { default: { url: "${af.url}", api: v2, auth: { type: password, username: ${af.username}, password: ${af.password} }, track: { interval: 1s } } }
routes: [ { name: slow, match: { pipeline_id: pl_slow }, trigger: { dag_id: push_sleep } } ]
`,
        );
        const pool = new pg.Pool({ connectionString: db.url });
        const a = await serveProcess(file, 'replica-a');
        let b: Awaited<ReturnType<typeof serveProcess>> | undefined;
        try {
          for (let i = 0; i < 3; i++) {
            const body = JSON.stringify(completionEvent({ data: { run_id: `run_kill_${i}_${Date.now()}`, pipeline_id: 'pl_slow', status: 'succeeded' } }));
            const res = await fetch(`${a.url}/webhooks/planasonix`, { method: 'POST', headers: { 'content-type': 'application/json', ...standardWebhookHeaders(SECRET, `m_kill_${i}_${Date.now()}`, Math.floor(Date.now() / 1000), body) }, body });
            expect(res.status).toBe(202);
          }
          const owners = () => pool.query<{ owner: string | null; state: string | null; open: number }>("SELECT track_owner AS owner, run_state AS state, run_open AS open FROM jobs WHERE state = 'done'").then((r) => r.rows);
          // A follows all three (one owner), and they are still running when it dies.
          const held = await until('A tracking', owners, (rows) => rows.length === 3 && rows.every((r) => r.owner !== null && r.open === 1), 60_000);
          expect(new Set(held.map((r) => r.owner)).size).toBe(1);
          a.child.kill('SIGKILL');
          b = await serveProcess(file, 'replica-b');
          const done = await until('B finishing', owners, (rows) => rows.every((r) => r.state === 'success' && r.open === 0), 90_000);
          expect(new Set(done.map((r) => r.owner)).size).toBe(1);
          expect(done[0]!.owner).not.toBe(held[0]!.owner);
          const metrics = await (await fetch(`${b.url}/metrics`)).text();
          // B saw all three end; A died before any ended, so each was recorded once.
          expect(metrics).toMatch(/bridge_dag_runs_finished_total\{route="slow",state="success"\} 3/);
        } finally {
          a.child.kill('SIGKILL');
          if (b) await stopChild(b.child);
          await pool.end();
          await db.drop();
          temp.cleanup();
        }
      }, 200_000);

      it('1,000 open runs cost one list request per round (counted at a proxy in front of the real Airflow)', async () => {
        const proxy = await countingProxy(af.url);
        const many = await e2eBridge(
          `airflow: { default: { url: "${proxy.url}", api: v2, auth: { type: password, username: ${af.username}, password: ${af.password} }, max_in_flight: 1, retry: { max_attempts: 30, initial_delay: 0.2s, max_delay: 2s }, circuit_breaker: { failures: 1000 }, track: { interval: 1h } } }
routes: [ { name: queued, match: { pipeline_id: pl_queued }, trigger: { dag_id: push_ok } } ]
loop_guard: { breaker: { max_triggers: 100000, window: 1h } }`,
        );
        try {
          // A paused DAG keeps its runs queued: 1,000 runs open at once (left paused; Airflow stops after this).
          expect((await airflowApi(af).send('PATCH', '/dags/push_ok', { is_paused: true })).status).toBe(200);
          // 50 at a time: a thousand connections at once overflow the listen backlog.
          for (let i = 0; i < 1000; i += 50) {
            const sent = await Promise.all(Array.from({ length: 50 }, (_, k) => many.send(completionEvent({ data: { run_id: `run_q_${i + k}`, pipeline_id: 'pl_queued', status: 'succeeded' } }))));
            for (const s of sent) expect(s.status).toBe(202);
          }
          // One trigger at a time: Airflow's SQLite metadata database answers concurrent writes with 500s.
          await until('1,000 triggers', () => many.store.jobCounts(), (c) => c.done === 1000, 240_000).catch(async (err: Error) => {
            const errors = (await many.store.listJobs({ state: 'pending', limit: 20 })).items.map((j) => j.lastError);
            throw new Error(`${err.message}; last errors: ${JSON.stringify(errors)}`);
          });
          const before = proxy.lists();
          await many.bridge.tracker.round('default');
          expect(proxy.lists() - before).toBe(1);
          const runs = (await many.store.listJobs({ runState: 'queued', limit: 500 })).items;
          expect(runs).toHaveLength(500);
          expect(runs.every((j) => j.run?.open && j.run.checkedAt !== null)).toBe(true);
          await many.bridge.tracker.round('default');
          expect(proxy.lists() - before).toBe(2);
          console.log(`tracking 1,000 open runs: ${proxy.lists() - before} list requests in 2 rounds`);
        } finally {
          await many.close();
          await proxy.close();
        }
      }, 400_000);
    }
  });
}
