// Outbound notifications on real Airflow 3 (DESIGN §8): a triggered DAG that fails gives
// exactly one dag_run.failed at a loopback receiver, whose signature the bridge's own
// verifier accepts. The receiver is the receiving side, not a stand-in for Airflow.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { airflowApi, e2eBridge } from '../helpers/e2e.js';
import { completionEvent } from '../helpers/sign.js';
import { startAirflow, type StartedAirflow } from './harness.js';
import { startReceiver, until } from '../notify/receiver.js';

const NOTIFY_SECRET = `whsec_${randomBytes(32).toString('base64')}`;

describe('notifications on real Airflow 3', () => {
  let af: StartedAirflow;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let bridge: Awaited<ReturnType<typeof e2eBridge>>;

  beforeAll(async () => {
    af = await startAirflow({ major: 3, dagsFolder: join(import.meta.dirname, 'plugin-dags'), waitForDags: ['push_fail'] });
    receiver = await startReceiver({ secret: NOTIFY_SECRET });
    bridge = await e2eBridge(`
airflow:
  default: { url: "${af.url}", api: v2, auth: { type: password, username: ${af.username}, password: ${af.password} }, track: { interval: 1s } }
routes:
  - { name: fails, match: { pipeline_id: pl_fail }, trigger: { dag_id: push_fail } }
notify:
  - { name: oncall, url: "${receiver.url}", secret: "${NOTIFY_SECRET}" }
`);
    bridge.bridge.tracker.start();
    bridge.bridge.deliverer.start();
  }, 300_000);
  afterAll(async () => {
    await bridge?.close();
    await receiver?.close();
    await af?.stop();
  });

  it('a failing DAG: exactly one dag_run.failed, signed, verified by the bridge’s verifier, describing the run', async () => {
    const runId = `run_fail_${Date.now()}`;
    const sent = await bridge.send(completionEvent({ id: `evt_${runId}`, data: { run_id: runId, pipeline_id: 'pl_fail', status: 'succeeded' } }));
    const [job] = await bridge.settled(sent.body.id);
    expect(job!.state).toBe('done');
    await until('a notification', () => receiver.received.length, (n) => n >= 1, 120_000);
    // A few more tracking rounds: nothing else arrives for this cause.
    await new Promise((r) => setTimeout(r, 4000));
    expect(receiver.received).toHaveLength(1);
    const [got] = receiver.received;
    expect(got!.verified).toBe(true);
    const [note] = await bridge.store.notificationsOfEvent(sent.body.id);
    expect(got!.headers['webhook-id']).toBe(note!.id);
    expect(got!.json).toMatchObject({
      id: note!.id,
      type: 'dag_run.failed',
      data: {
        route: 'fails', airflow: 'default', dag_id: 'push_fail', dag_run_id: job!.dagRunId, state: 'failed',
        url: `${af.url}/dags/push_fail/runs/${encodeURIComponent(job!.dagRunId!)}`,
        planasonix: { event_id: `evt_${runId}`, run_id: runId, pipeline_id: 'pl_fail' },
      },
    });
    const inAirflow = (await airflowApi(af).run('push_fail', job!.dagRunId!)).body as { state: string; end_date: string };
    expect(inAirflow.state).toBe('failed');
    console.log(`[measured] Airflow 3: dag_run.failed received ${got!.at - Date.parse(inAirflow.end_date)} ms after Airflow's end_date (polling every 1 s), ${got!.at - note!.createdAt} ms after the row was committed; 1 attempt`);
    expect(await bridge.store.attemptsOfNotification(note!.id)).toMatchObject([{ n: 1, httpStatus: 200, outcome: 'delivered' }]);
  }, 180_000);
});
