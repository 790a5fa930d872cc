// The Airflow push plugin (airflow-plugin/, DESIGN §7 "Optional push"):
// 1. its own Python unittest suites, in the Airflow 3 and the Airflow 2 venv;
// 2. end to end on real Airflow 3 and 2: runs whose conf carries planasonix_bridge are pushed
//    (running, then success / failed), signed so that the bridge's own verifier accepts them,
//    within 2 s of the state change Airflow records.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildVerifier } from '../../src/verify/build.js';
import type { Verifier } from '../../src/verify/types.js';
import { airflowApi } from '../helpers/e2e.js';
import { airflowVenv, pluginSourceDir, startAirflow, type StartedAirflow } from './harness.js';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..', '..');
const SECRET = `whsec_${randomBytes(32).toString('base64')}`;
const PUSH_BUDGET_MS = 2000;

function runPython(python: string, args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((done, reject) => {
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('AIRFLOW_')) env[k] = v;
    env.PYTHONPATH = pluginSourceDir();
    env.PYTHONUNBUFFERED = '1';
    const child = spawn(python, args, { cwd: repo, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => done({ code, output }));
  });
}

describe('airflow-plugin Python suites (unittest)', () => {
  it('pass in the Airflow 3 and the Airflow 2 venv', async () => {
    const results = await Promise.all(
      ([3, 2] as const).map(async (major) => {
        const venv = await airflowVenv(major);
        const res = await runPython(join(venv, 'bin', 'python'), ['-m', 'unittest', 'discover', '-v', '-s', join(repo, 'airflow-plugin', 'tests')]);
        return { major, ...res };
      }),
    );
    for (const r of results) {
      const summary = /Ran (\d+) tests?[\s\S]*$/.exec(r.output)?.[0] ?? r.output.slice(-3000);
      expect(r.code, `Airflow ${r.major} unittest:\n${r.code === 0 ? summary : r.output.slice(-8000)}`).toBe(0);
      expect(Number(/Ran (\d+) tests?/.exec(r.output)?.[1])).toBeGreaterThanOrEqual(30);
      // The pip-installed discovery case needs the package index for its build backend.
      if (/skipped=/.test(r.output)) console.warn(`Airflow ${r.major} unittest skipped a case:\n${r.output.match(/^.*skipped.*$/gm)?.join('\n')}`);
    }
  }, 600_000);
});

interface Push {
  at: number;
  path: string;
  headers: IncomingHttpHeaders;
  raw: Buffer;
  body: any;
  verified: boolean;
  reason?: string;
}

/** A loopback receiver that checks every push with the bridge's own Standard Webhooks verifier. */
async function receiver(verifier: Verifier): Promise<{ url: string; pushes: Push[]; close: () => Promise<void> }> {
  const pushes: Push[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const at = Date.now();
      const raw = Buffer.concat(chunks);
      const result = await verifier({ body: raw, headers: req.headers });
      let body: unknown;
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch {
        body = undefined;
      }
      pushes.push({ at, path: req.url ?? '', headers: req.headers, raw, body, verified: result.ok, ...(result.ok ? {} : { reason: JSON.stringify(result) }) });
      res.writeHead(result.ok ? 202 : 401, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, pushes, close: () => new Promise((r) => server.close(() => r())) };
}

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};

for (const major of [3, 2] as const) {
  describe(`push plugin on real Airflow ${major}`, () => {
    let af: StartedAirflow;
    let rx: Awaited<ReturnType<typeof receiver>>;

    beforeAll(async () => {
      const built = buildVerifier({ scheme: 'standard-webhooks', secrets: [SECRET], public_keys: [], tolerance: 300_000 }, { clock: Date.now });
      if (!built.ok) throw new Error(JSON.stringify(built.problems));
      rx = await receiver(built.verifier);
      af = await startAirflow({
        major,
        dagsFolder: join(here, 'plugin-dags'),
        waitForDags: ['push_ok', 'push_fail'],
        plugin: { url: `${rx.url}/webhooks/airflow/default`, secret: SECRET },
      });
    }, 300_000);
    afterAll(async () => {
      await af?.stop();
      await rx?.close();
    }, 60_000);

    it('pushes running then success / failed for runs carrying planasonix_bridge, verified, within 2 s', async () => {
      const api = airflowApi(af);
      const stamp = Date.now();
      const lineage = { chain_id: `ch_${stamp}`, depth: 1, path: ['planasonix:pl_8f2a9c1d4e', 'airflow:push_ok'], event_id: `evt_${stamp}`, route: 'sales-to-dbt' };
      const runs = [
        { dag: 'push_ok', id: `push_ok_${major}_${stamp}`, conf: { business_date: '2026-11-23', planasonix_bridge: lineage }, end: 'success' },
        { dag: 'push_fail', id: `push_fail_${major}_${stamp}`, conf: { planasonix_bridge: { ...lineage, path: ['planasonix:pl_8f2a9c1d4e', 'airflow:push_fail'] } }, end: 'failed' },
        { dag: 'push_ok', id: `no_lineage_${major}_${stamp}`, conf: { business_date: '2026-11-23' }, end: 'success' },
      ];
      for (const r of runs) {
        const body = major === 3 ? { dag_run_id: r.id, logical_date: null, conf: r.conf, note: 'plugin e2e' } : { dag_run_id: r.id, conf: r.conf };
        const answer = await api.send('POST', `/dags/${r.dag}/dagRuns`, body);
        expect(answer.status, JSON.stringify(answer.body)).toBe(200);
      }
      const finished = new Map<string, any>();
      for (const r of runs) finished.set(r.id, await api.waitState(r.dag, r.id, r.end, 90_000));

      // Both terminal pushes within the budget after Airflow recorded the end (plus slack for
      // this poll loop to notice: the assertion below is on the arrival times themselves).
      const until = Date.now() + PUSH_BUDGET_MS + 3000;
      const expected = runs.filter((r) => 'planasonix_bridge' in r.conf).length * 2;
      while (rx.pushes.length < expected && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
      await new Promise((r) => setTimeout(r, 500)); // anything extra (e.g. for the run without lineage) would show now

      const latencies: { run: string; state: string; ms: number }[] = [];
      for (const push of rx.pushes) {
        expect(push.verified, push.reason).toBe(true);
        expect(push.path).toBe('/webhooks/airflow/default');
        expect(push.headers['content-type']).toBe('application/json');
        expect(push.headers['user-agent']).toMatch(/^planasonix-bridge-airflow-plugin\/\d+\.\d+\.\d+/);
        const d = push.body.data;
        expect(push.body).toMatchObject({ id: push.headers['webhook-id'], type: 'dag_run.state_changed' });
        expect(push.headers['webhook-id']).toBe(`af_${createHash('sha256').update(`${d.dag_id}\n${d.dag_run_id}\n${d.state}`).digest('hex').slice(0, 32)}`);
        expect(Math.abs(Date.parse(push.body.created_at) - push.at)).toBeLessThan(PUSH_BUDGET_MS);
      }
      expect(rx.pushes.some((p) => p.body.data.dag_run_id === runs[2]!.id), 'no push for a run without planasonix_bridge').toBe(false);

      for (const r of runs.slice(0, 2)) {
        const mine = rx.pushes.filter((p) => p.body.data.dag_run_id === r.id);
        expect(mine.map((p) => p.body.data.state), r.id).toEqual(['running', r.end]);
        const run = finished.get(r.id);
        for (const p of mine) {
          expect(p.body.data).toMatchObject({ dag_id: r.dag, dag_run_id: r.id, planasonix_bridge: r.conf.planasonix_bridge });
          expect(Date.parse(p.body.data.start_date)).toBe(Date.parse(run.start_date));
        }
        const [running, terminal] = mine;
        expect(running!.body.data.end_date).toBeNull();
        expect(Date.parse(terminal!.body.data.end_date)).toBe(Date.parse(run.end_date));
        latencies.push({ run: r.id, state: 'running', ms: running!.at - Date.parse(run.start_date) });
        latencies.push({ run: r.id, state: r.end, ms: terminal!.at - Date.parse(run.end_date) });
      }
      const ms = latencies.map((l) => l.ms);
      console.log(`PUSH-LATENCY Airflow ${af.version}: ${JSON.stringify({ p50_ms: quantile(ms, 0.5), max_ms: Math.max(...ms), samples: latencies })}`);
      for (const l of latencies) expect(l.ms, `${l.run} ${l.state}`).toBeLessThan(PUSH_BUDGET_MS);

      // The forwarding helpers, as a DAG task sees them: the plugin's Jinja macro and lineage(context).
      expect(await api.xcom('push_ok', runs[0]!.id, 'forward')).toEqual({ macro: lineage, function: lineage });
      expect(await api.xcom('push_ok', runs[2]!.id, 'forward')).toEqual({ macro: null, function: null });
    }, 180_000);
  });
}
