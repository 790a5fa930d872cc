// The end-to-end cases every Airflow major version must pass, against a real Airflow
// started by the harness. Each version's test file calls this once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { airflowAndBridge, airflowApi, e2eBridge } from '../helpers/e2e.js';
import { SECRET } from '../helpers/app.js';
import { completionEvent } from '../helpers/sign.js';
import { crashBetweenTriggerAndRecord } from './crash.js';
import { loopGuardOnRealAirflow } from './loop.js';
import { startLoginPageProxy } from './login-page-proxy.js';
import type { StartedAirflow } from './harness.js';

export interface ContractOptions {
  major: 3 | 2;
  /** Extra, version-specific cases, given the running Airflow. */
  extra?: (af: () => StartedAirflow) => void;
  jwtExpirationSeconds?: number;
}

export function airflowContract({ major, extra, jwtExpirationSeconds }: ContractOptions): void {
  const api = major === 3 ? 'v2' : 'v1';
  let rig: Awaited<ReturnType<typeof airflowAndBridge>>;
  let af: StartedAirflow;
  let bridge: typeof rig.bridge;

  const routes = (auth: string) => `
airflow:
  default: { url: "URL", api: ${api}, auth: ${auth}, timeout: 10s, retry: { max_attempts: 3, initial_delay: 0.2s, max_delay: 1s } }
routes:
  - name: sales-to-dbt
    match: { type: run.succeeded, pipeline_name: "nightly_*" }
    trigger:
      dag_id: record_conf
      conf:
        business_date: "{{ data.parameters.business_date }}"
        planasonix_run_id: "{{ data.run_id }}"
        rows: "{{ data.metrics.rows_written | default: 0 }}"
        tags: "{{ data.tags | default: null }}"
      note: "Triggered by Planasonix run {{ data.run_id }}"
  - name: to-missing-dag
    match: { type: run.succeeded, pipeline_id: pl_missing }
    trigger: { dag_id: no_such_dag }
  - name: to-paused-dag
    match: { type: run.succeeded, pipeline_id: pl_paused }
    trigger: { dag_id: paused_dag }
  - name: to-asset
    match: { type: run.succeeded, pipeline_id: pl_asset }
    asset_event: { uri: "planasonix://bridge/test-asset", extra: { planasonix_run_id: "{{ data.run_id }}" } }
`;

  describe(`real Airflow ${major} (api ${api})`, () => {
    beforeAll(async () => {
      ({ af, bridge } = rig = await airflowAndBridge(
        {
          major,
          ...(jwtExpirationSeconds ? { jwtExpirationSeconds } : {}),
          // The loop DAGs sign their call-backs with this; it is never put in a DAG's conf.
          env: { PLANASONIX_TEST_WEBHOOK_SECRET: SECRET },
          waitForDags: ['record_conf', 'paused_dag', 'loop_dag', 'hop_4', 'nofwd_dag', 'asset_consumer'],
        },
        (a) => routes(`{ type: password, username: ${a.username}, password: ${a.password} }`).replace('URL', a.url),
      ));
    }, 240_000);
    afterAll(() => rig?.close(), 60_000);

    it('signed webhook → one DAG run with the rendered conf and dag_run_id, which reaches success', async () => {
      const event = completionEvent({ data: { run_id: `run_e2e_${major}`, pipeline_id: 'pl_8f2a9c1d4e', pipeline_name: 'nightly_sales_to_warehouse', status: 'succeeded', parameters: { business_date: '2026-11-23' }, tags: { team: 'sales' }, metrics: { rows_written: 120344 } } });
      const answer = await bridge.send(event);
      expect(answer.status).toBe(202);
      const [job] = await bridge.settled(answer.body.id);
      expect(job).toMatchObject({ route: 'sales-to-dbt', state: 'done', attempts: 1, dagRunId: `planasonix__run_e2e_${major}__sales-to-dbt`, airflowState: 'queued' });

      const airflow = airflowApi(af);
      const run = await airflow.waitState('record_conf', job!.dagRunId!, 'success');
      const conf = {
        business_date: '2026-11-23',
        planasonix_run_id: `run_e2e_${major}`,
        rows: 120344,
        tags: { team: 'sales' },
        planasonix_bridge: { chain_id: expect.any(String), depth: 1, path: ['planasonix:pl_8f2a9c1d4e', 'airflow:record_conf'], event_id: event.id, route: 'sales-to-dbt' },
      };
      expect(run.conf).toEqual(conf);
      expect(run.note).toBe(`Triggered by Planasonix run run_e2e_${major}`);
      // What the DAG's task itself received, read back from its XCom.
      expect(await airflow.xcom('record_conf', job!.dagRunId!, 'record')).toEqual(conf);
    }, 120_000);

    it('the same webhook again, and a replay of the job, still leave exactly one DAG run', async () => {
      const event = completionEvent({ data: { run_id: `run_dup_${major}`, pipeline_id: 'pl_8f2a9c1d4e', pipeline_name: 'nightly_x', status: 'succeeded', parameters: { business_date: 'd' } } });
      const first = await bridge.send(event);
      const [job] = await bridge.settled(first.body.id);
      expect(job!.state).toBe('done');

      const again = await bridge.send(event);
      expect(again).toEqual({ status: 200, body: expect.objectContaining({ id: first.body.id, duplicate: true }) });

      // Replaying a job that did run sends the same dag_run_id again: Airflow answers 409.
      expect(await bridge.store.replayJob(job!.id, Date.now())).toBe(true);
      bridge.bridge.dispatcher.wake();
      const [replayed] = await bridge.settled(first.body.id);
      expect(replayed!.state).toBe('done');
      const attempts = await bridge.store.attemptsOfJob(job!.id);
      expect(attempts.map((a) => [a.httpStatus, a.outcome])).toEqual([[200, 'triggered'], [409, 'exists']]);

      // Counted by what the runs carry, not by id (Airflow keeps ids unique anyway).
      const runs = (await airflowApi(af).runs('record_conf')).filter((r) => r.conf.planasonix_bridge?.event_id === event.id);
      expect(runs).toHaveLength(1);
    }, 120_000);

    it("a route to a missing DAG is dead-lettered with Airflow's detail", async () => {
      const answer = await bridge.send(completionEvent({ data: { run_id: `run_missing_${major}`, pipeline_id: 'pl_missing', status: 'succeeded' } }));
      const [job] = await bridge.settled(answer.body.id);
      expect(job).toMatchObject({ route: 'to-missing-dag', state: 'dead', attempts: 1 });
      expect(job!.lastError).toMatch(/answered 404: .*no_such_dag.* not found/i);
    }, 60_000);

    it('a paused DAG accepts the run (queued), and the bridge warns naming the DAG', async () => {
      const answer = await bridge.send(completionEvent({ data: { run_id: `run_paused_${major}`, pipeline_id: 'pl_paused', status: 'succeeded' } }));
      const [job] = await bridge.settled(answer.body.id);
      expect(job).toMatchObject({ state: 'done', airflowState: 'queued' });
      // The pause check runs after the attempt is recorded, in the background.
      const warned = () => bridge.logLines.some((l) => typeof l.msg === 'string' && l.msg.includes('DAG paused_dag is paused'));
      for (let i = 0; i < 50 && !warned(); i++) await new Promise((r) => setTimeout(r, 100));
      expect(warned()).toBe(true);
    }, 60_000);

    it('an asset event makes Airflow run the DAG scheduled on that asset', async () => {
      const airflow = airflowApi(af);
      const before = (await airflow.runs('asset_consumer')).length;
      const answer = await bridge.send(completionEvent({ data: { run_id: `run_asset_${major}`, pipeline_id: 'pl_asset', status: 'succeeded' } }));
      const [job] = await bridge.settled(answer.body.id);
      expect(job).toMatchObject({ route: 'to-asset', state: 'done', target: 'asset:planasonix://bridge/test-asset' });
      const attempts = await bridge.store.attemptsOfJob(job!.id);
      expect(attempts).toEqual([expect.objectContaining({ httpStatus: 200, outcome: 'triggered', detail: expect.stringContaining('planasonix://bridge/test-asset') })]);
      let runs = before;
      for (let i = 0; i < 120 && runs === before; i++) {
        await new Promise((r) => setTimeout(r, 500));
        runs = (await airflow.runs('asset_consumer')).length;
      }
      expect(runs).toBe(before + 1);
    }, 90_000);

    it('a wrong password is dead-lettered with a clear auth reason', async () => {
      const wrong = await e2eBridge(routes(`{ type: password, username: ${af.username}, password: not-the-password }`).replace('URL', af.url));
      try {
        const answer = await wrong.send(completionEvent({ data: { run_id: `run_badpw_${major}`, pipeline_id: 'pl_x', pipeline_name: 'nightly_x', status: 'succeeded', parameters: { business_date: 'd' } } }));
        const [job] = await wrong.settled(answer.body.id);
        expect(job!.state).toBe('dead');
        expect(job!.lastError).toMatch(major === 3 ? /refused the configured username\/password at POST \/auth\/token \(401/ : /answered 403: .*Forbidden/);
      } finally {
        await wrong.close();
      }
    }, 60_000);

    it('a 200 login page from a proxy in front of Airflow is dead with the reason, and Airflow has no run', async () => {
      const proxy = await startLoginPageProxy(af.url);
      const behind = await e2eBridge(routes(`{ type: password, username: ${af.username}, password: ${af.password} }`).replace('URL', proxy.url));
      try {
        const answer = await behind.send(completionEvent({ data: { run_id: `run_sso_${major}`, pipeline_id: 'pl_x', pipeline_name: 'nightly_x', status: 'succeeded', parameters: { business_date: 'd' } } }));
        const [job] = await behind.settled(answer.body.id);
        expect(job).toMatchObject({ state: 'dead', attempts: 1 });
        expect(job!.lastError).toBe(
          `POST /api/${api}/dags/record_conf/dagRuns answered 200 but not with a DAG run (content-type text/html; starts "<!DOCTYPE html> <html><head><title>Sign in</title></head><bo…"): does airflow.default.url point at Airflow's API, not a login page or proxy?`,
        );
        expect(behind.logLines.some((l) => l.msg === 'DAG run triggered')).toBe(false);
        // Only the trigger was faked: the login (Airflow 3) went to the real Airflow.
        expect(proxy.seen.filter((s) => !s.forwarded)).toHaveLength(1);
        if (major === 3) expect(proxy.seen.find((s) => s.path === '/auth/token')).toMatchObject({ forwarded: true, status: 201 });
        expect(job!.dagRunId).toBe(`planasonix__run_sso_${major}__sales-to-dbt`);
        expect((await airflowApi(af).run('record_conf', `planasonix__run_sso_${major}__sales-to-dbt`)).status).toBe(404);
      } finally {
        await behind.close();
        await proxy.close();
      }
    }, 60_000);

    it('/readyz finds the Airflow instance reachable (no reason code)', async () => {
      expect(await (await fetch(`${bridge.url}/readyz`)).json()).toEqual({ status: 'ready', reasons: [] });
    });

    crashBetweenTriggerAndRecord(() => af, api);
    loopGuardOnRealAirflow(() => af, api);

    extra?.(() => af);
  });
}
