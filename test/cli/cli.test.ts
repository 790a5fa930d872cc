import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { connect } from 'node:net';
import { chmodSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SECRET, tempDir } from '../helpers/app.js';
import { CLI, runCli } from '../helpers/process.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { completionEvent, standardWebhookHeaders } from '../helpers/sign.js';

// The CLI is tested as users run it: the built entry point in a child process.

let cleanups: (() => void)[] = [];
afterEach(() => {
  cleanups.forEach((c) => c());
  cleanups = [];
});

/** A temp folder with a config file; `yaml` receives the database path inside that folder. */
function workspace(yaml: string | ((db: string) => string)) {
  const temp = tempDir();
  cleanups.push(temp.cleanup);
  const db = join(temp.dir, 'bridge.db');
  const file = join(temp.dir, 'bridge.yaml');
  writeFileSync(file, typeof yaml === 'string' ? yaml : yaml(db));
  return { file, db };
}

const validYaml = (db: string) => `
server: { host: 127.0.0.1, port: 0 }
store: { url: "sqlite:${db}" }
sources:
  planasonix: { path: /webhooks/planasonix, verify: { scheme: standard-webhooks, secrets: ["\${SECRET}"] } }
`;

const run = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, ...env, BRIDGE_CONFIG: '' } });

beforeAll(() => {
  expect(spawnSync(process.execPath, [CLI, '--help']).status, 'dist/ is built by the test command').toBe(0);
});

describe('planasonix-bridge check-config', () => {
  it('exits 0 for a valid file', () => {
    const ws = workspace(validYaml);
    const out = run(['check-config', ws.file], { SECRET });
    expect(out.status).toBe(0);
    expect(out.stdout).toContain('valid');
  });

  it('exits 1 and lists every problem with its path', () => {
    const ws = workspace(`
server: { port: -1 }
sources:
  a: { path: /a, verify: { scheme: standard-webhooks, secrets: ["\${UNSET_FOR_TEST}"] } }
  b: { path: /b, verify: { scheme: standard-webhooks, secrets: ["whsec_%%%"] } }
`);
    const out = run(['check-config', ws.file]);
    expect(out.status).toBe(1);
    expect(out.stderr).toContain('sources.a.verify.secrets[0]: environment variable UNSET_FOR_TEST is not set');
    expect(out.stderr).toMatch(/server\.port: /);
  });

  it('reports key problems (after the schema passes) with their path', () => {
    const ws = workspace(validYaml);
    const out = run(['check-config', ws.file], { SECRET: 'whsec_%%%' });
    expect(out.status).toBe(1);
    expect(out.stderr).toContain('sources.planasonix.verify.secrets[0]: not base64');
  });

  it('exits 2 on usage errors', () => {
    expect(run([]).status).toBe(2);
    expect(run(['frobnicate', 'x.yaml']).status).toBe(2);
    expect(run(['check-config']).status).toBe(2);
  });
});

/** As root, file permissions do not bind, so the bridge runs as `nobody` for read-only tests. */
function asUnprivileged(args: string[]): [string, string[]] {
  return process.getuid?.() === 0 ? ['setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', process.execPath, ...args]] : [process.execPath, args];
}

function serve(file: string, env: Record<string, string>, unprivileged = false): Promise<{ child: ChildProcess; url: string; logs: string[]; exited: Promise<number | null> }> {
  const args = [CLI, 'serve', '--config', file];
  const [command, argv] = unprivileged ? asUnprivileged(args) : [process.execPath, args];
  const child = spawn(command, argv, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  cleanups.push(() => child.kill('SIGKILL'));
  const logs: string[] = [];
  // `close`, not `exit`: the last lines ("stopped") may still be in the pipe at `exit`.
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    child.stderr!.on('data', (d) => logs.push(String(d)));
    child.stdout!.on('data', (chunk) => {
      for (const line of String(chunk).split('\n').filter(Boolean)) {
        logs.push(line);
        const parsed = JSON.parse(line);
        if (parsed.msg === 'bridge listening') resolve({ child, url: parsed.url, logs, exited });
      }
    });
    void exited.then((code) => reject(new Error(`exited ${code}: ${logs.join('')}`)));
  });
}

function post(url: string, body: string, id: string, beforeEnd?: () => Promise<void>): Promise<{ status: number; body: string }> {
  const headers = { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), ...standardWebhookHeaders(SECRET, id, Math.floor(Date.now() / 1000), body) };
  return new Promise((resolve, reject) => {
    const req = request(`${url}/webhooks/planasonix`, { method: 'POST', headers }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, body: text }));
    });
    req.on('error', reject);
    req.write(body.slice(0, 10));
    void (beforeEnd ?? (async () => {}))().then(() => req.end(body.slice(10)));
  });
}

describe('planasonix-bridge serve', () => {
  it('refuses to start on an invalid config: exit 1, nothing served', () => {
    const ws = workspace(validYaml);
    const out = run(['serve', '--config', ws.file]);
    expect(out.status).toBe(1);
    expect(out.stderr).toContain('invalid config, not starting');
  });

  it('serves, and on SIGTERM finishes the in-flight request before exiting 0', async () => {
    const ws = workspace(validYaml);
    const { child, url, logs, exited } = await serve(ws.file, { SECRET });
    const body = JSON.stringify(completionEvent());
    let signalled = 0;
    const answer = post(url, body, 'msg_inflight', async () => {
      // Let the headers and the first bytes reach the server, so the request is in flight.
      await new Promise((r) => setTimeout(r, 200));
      child.kill('SIGTERM');
      signalled = Date.now();
      await new Promise((r) => setTimeout(r, 300));
    });
    expect((await answer).status).toBe(202);
    expect(await exited).toBe(0);
    // Not held open by the answered client's keep-alive connection (node's agent keeps it; 5 s).
    expect(Date.now() - signalled).toBeLessThan(3000);
    expect(logs.join('\n')).toContain('"msg":"stopped"');
  });

  it('answers a client that half-closes its side right after the request', async () => {
    // Some clients and proxies send FIN after the request. node:http aborts such a request
    // unless the answer is already written; /readyz here waits on a network probe of Airflow.
    const ws = workspace((db) => `${validYaml(db)}airflow: { default: { url: "http://127.0.0.1:9", auth: { type: none } } }\n`);
    const { url } = await serve(ws.file, { SECRET });
    const { port } = new URL(url);
    const status = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), '127.0.0.1', () => socket.end(`GET /readyz HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\n\r\n`));
      let text = '';
      socket.on('data', (d) => (text += d));
      socket.on('error', reject);
      socket.on('close', () => resolve(text.split('\r\n')[0]!));
    });
    expect(status).toBe('HTTP/1.1 200 OK');
  });

  it('keeps an acknowledged event through kill -9', async () => {
    const ws = workspace(validYaml);
    const { child, url, exited } = await serve(ws.file, { SECRET });
    const answer = await post(url, JSON.stringify(completionEvent()), 'msg_kill9');
    expect(answer.status).toBe(202);
    child.kill('SIGKILL');
    await exited;
    const reopened = new Database(ws.db, { readonly: true });
    const row = reopened.prepare('SELECT delivery_id FROM events WHERE id = ?').get(JSON.parse(answer.body).id);
    reopened.close();
    expect(row).toEqual({ delivery_id: 'msg_kill9' });
  });

  // Needs the checkout to be readable by `nobody` when the tests run as root.
  const [probeCmd, probeArgs] = asUnprivileged([CLI, '--help']);
  const unprivilegedCanRun = spawnSync(probeCmd, probeArgs).status === 0;
  it.skipIf(!unprivilegedCanRun)('on a read-only database file: starts, reports not ready, answers 503 and writes nothing', async () => {
    const ws = workspace(validYaml);
    openSqliteStore({ path: ws.db, busyTimeoutMs: 100 }).close();
    const dir = dirname(ws.db);
    if (process.getuid?.() === 0) spawnSync('chown', ['-R', 'nobody', dir]);
    chmodSync(dir, 0o755);
    chmodSync(ws.db, 0o444);
    const { url } = await serve(ws.file, { SECRET }, true);
    const ready = await fetch(`${url}/readyz`);
    expect(ready.status).toBe(503);
    // The reason code only: the store's own error text stays in the log and behind /v1/status.
    expect(await ready.json()).toEqual({ status: 'not_ready', reasons: ['store_unavailable'] });
    const answer = await post(url, JSON.stringify(completionEvent()), 'msg_readonly');
    expect(answer.status).toBe(503);
    expect(JSON.parse(answer.body)).toEqual({ error: 'store_unavailable', message: 'the event could not be stored; retry later' });
    const db = new Database(ws.db, { readonly: true });
    expect(db.prepare('SELECT count(*) AS n FROM events').get()).toEqual({ n: 0 });
    db.close();
  });
});

describe('planasonix-bridge send', () => {
  // The newcomer's path: the README's first send, against config/example.yaml as shipped,
  // triggers the example route sales-to-dbt (send sets data.metrics.rows_written, 1 by default).
  const EXAMPLE = join(import.meta.dirname, '../../config/example.yaml');
  const readmeSend = ['send', '--pipeline', 'pl_8f2a9c1d4e', '--pipeline-name', 'nightly_sales_to_warehouse', '--param', 'business_date=2026-11-23'];
  const sendTo = async (url: string, extra: string[]) => {
    const { code, ...out } = await runCli([...readmeSend, ...extra, '--url', `${url}/webhooks/planasonix`], { PLANASONIX_WEBHOOK_SECRET: SECRET });
    return { status: code, ...out };
  };

  it("the README's first send triggers sales-to-dbt on the example config; --rows 0 matches nothing", async () => {
    const temp = tempDir();
    cleanups.push(temp.cleanup);
    const db = join(temp.dir, 'bridge.db');
    // Airflow is not needed: the job waits in the store (a closed port keeps it pending).
    const { url } = await serve(EXAMPLE, { PLANASONIX_WEBHOOK_SECRET: SECRET, BRIDGE_PORT: '0', BRIDGE_STORE_URL: `sqlite:${db}`, AIRFLOW_URL: 'http://127.0.0.1:9', AIRFLOW_USER: 'admin', AIRFLOW_PASSWORD: 'not-used-here' });
    const first = await sendTo(url, ['--duplicate']);
    expect(first.status, first.stderr).toBe(0);
    const [accepted, duplicate] = first.stdout.split('\n');
    expect(accepted).toMatch(/^202 .*"duplicate":false/);
    expect(duplicate).toMatch(/^200 .*"duplicate":true/);
    const none = await sendTo(url, ['--rows', '0']);
    expect(none.status).toBe(0);
    const reader = new Database(db, { readonly: true });
    const events = reader.prepare('SELECT id, status, body FROM events ORDER BY seq').all() as { id: string; status: string; body: Buffer }[];
    const jobs = reader.prepare('SELECT event_id, route, dag_id FROM jobs').all();
    reader.close();
    expect(events.map((e) => [e.status, JSON.parse(String(e.body)).data.metrics])).toEqual([['routed', { rows_written: 1 }], ['unrouted', { rows_written: 0 }]]);
    expect(jobs).toEqual([{ event_id: events[0]!.id, route: 'sales-to-dbt', dag_id: 'dbt_sales_models' }]);
  });

  it('refuses a --rows that is not a whole number ≥ 0 (exit 2)', () => {
    for (const rows of ['1.5', 'many']) {
      const out = run(['send', '--url', 'http://127.0.0.1:9/x', '--pipeline', 'pl_1', '--rows', rows], { PLANASONIX_WEBHOOK_SECRET: SECRET });
      expect(out.status, rows).toBe(2);
      expect(out.stderr).toContain('--rows');
    }
  });
});
