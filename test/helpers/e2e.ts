import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/log/logger.js';
import { createBridge, type BridgeOptions } from '../../src/service.js';
import type { Job } from '../../src/store/types.js';
import { startAirflow, type StartAirflowOptions, type StartedAirflow } from '../airflow/harness.js';
import { configFrom, SECRET, tempDir } from './app.js';
import { standardWebhookHeaders } from './sign.js';

/**
 * A whole bridge (HTTP, store, dispatch) on a loopback port with a temp SQLite file.
 * `dispatch: false` leaves jobs pending (to look at them, or to let a breaker count them);
 * `port` fixes the port (for DAGs that call back), else any free one.
 */
export async function e2eBridge(routesAndAirflow: string, options: BridgeOptions & { dispatch?: boolean; port?: number } = {}) {
  const temp = tempDir();
  const yaml = `
server: { host: 127.0.0.1, port: 0 }
store: { url: "sqlite:${join(temp.dir, 'bridge.db')}" }
dispatch: { poll_interval: 0.1s }
sources:
  planasonix: { path: /webhooks/planasonix, verify: { scheme: standard-webhooks, secrets: ["${SECRET}"] } }
${routesAndAirflow}`;
  const config = configFrom(yaml);
  const logLines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) logLines.push(JSON.parse(line));
      done();
    },
  });
  const created = await createBridge(config, createLogger('debug', sink), options);
  if (!created.ok) throw new Error(JSON.stringify(created.problems));
  const { bridge } = created;
  const server = bridge.app.listen(options.port ?? 0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  if (options.dispatch !== false) bridge.dispatcher.start();

  return {
    url,
    /** The whole config text, for a test that reloads a changed copy. */
    yaml,
    bridge,
    store: bridge.store,
    logLines,
    /** Posts a signed webhook as Planasonix would. */
    async send(event: Record<string, unknown>, deliveryId = `msg_${event.id as string}`) {
      const body = JSON.stringify(event);
      const res = await fetch(`${url}/webhooks/planasonix`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...standardWebhookHeaders(SECRET, deliveryId, Math.floor(Date.now() / 1000), body) },
        body,
      });
      return { status: res.status, body: (await res.json()) as { id: string; duplicate: boolean } };
    },
    async settled(eventId: string, timeoutMs = 30_000): Promise<Job[]> {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const jobs = await bridge.store.jobsOfEvent(eventId);
        if (jobs.length > 0 && jobs.every((j) => j.state !== 'pending')) return jobs;
        if (Date.now() > until) throw new Error(`jobs not settled: ${JSON.stringify(jobs.map((j) => [j.route, j.state, j.attempts, j.lastError]))}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await bridge.close();
      temp.cleanup();
    },
  };
}

/**
 * A real Airflow from the harness and a bridge in front of it, configured from the running
 * Airflow (its URL and login); `close` stops both, and a bridge that fails to start does not
 * leave Airflow running.
 */
export async function airflowAndBridge(start: StartAirflowOptions, yaml: (af: StartedAirflow) => string, options: Parameters<typeof e2eBridge>[1] = {}) {
  const af = await startAirflow(start);
  try {
    const bridge = await e2eBridge(yaml(af), options);
    return {
      af,
      bridge,
      async close() {
        await bridge.close();
        await af.stop();
      },
    };
  } catch (err) {
    await af.stop();
    throw err;
  }
}

/** A small client for asserting what the real Airflow holds (not the bridge's client). */
export function airflowApi(af: { url: string; username: string; password: string; major: 3 | 2 }) {
  const api = `${af.url}/api/${af.major === 3 ? 'v2' : 'v1'}`;
  let token: string | undefined;
  async function auth(): Promise<Record<string, string>> {
    if (af.major === 2) return { authorization: `Basic ${Buffer.from(`${af.username}:${af.password}`).toString('base64')}` };
    token ??= ((await (await fetch(`${af.url}/auth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: af.username, password: af.password }) })).json()) as { access_token: string }).access_token;
    return { authorization: `Bearer ${token}` };
  }
  async function send(method: 'GET' | 'POST' | 'PATCH', path: string, body?: unknown): Promise<{ status: number; body: any }> {
    const request = async () => fetch(`${api}${path}`, { method, headers: { ...(await auth()), ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    let res = await request();
    if (res.status === 401 && af.major === 3) {
      token = undefined;
      res = await request();
    }
    return { status: res.status, body: await res.json().catch(() => undefined) };
  }
  const get = (path: string) => send('GET', path);
  return {
    get,
    send,
    run: (dagId: string, runId: string) => get(`/dags/${dagId}/dagRuns/${encodeURIComponent(runId)}`),
    async runs(dagId: string): Promise<{ dag_run_id: string; state: string; conf: Record<string, any> }[]> {
      return (await get(`/dags/${dagId}/dagRuns?limit=100`)).body.dag_runs;
    },
    async waitState(dagId: string, runId: string, state: string, timeoutMs = 60_000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const { body } = await get(`/dags/${dagId}/dagRuns/${encodeURIComponent(runId)}`);
        if (body?.state === state) return body;
        if (body?.state === 'failed' || Date.now() > until) throw new Error(`run ${runId} is ${body?.state}, wanted ${state}`);
        await new Promise((r) => setTimeout(r, 500));
      }
    },
    async xcom(dagId: string, runId: string, task: string) {
      const suffix = af.major === 2 ? '?stringify=false' : '';
      return (await get(`/dags/${dagId}/dagRuns/${encodeURIComponent(runId)}/taskInstances/${task}/xcomEntries/return_value${suffix}`)).body?.value;
    },
  };
}
