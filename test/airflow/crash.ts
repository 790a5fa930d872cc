// Kill -9 between "Airflow created the run" and "the bridge recorded it": after a restart the
// job is sent again and Airflow's 409 settles it — one DAG run, no lost job.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { SECRET, tempDir } from '../helpers/app.js';
import { airflowApi } from '../helpers/e2e.js';
import { completionEvent, standardWebhookHeaders } from '../helpers/sign.js';
import type { StartedAirflow } from './harness.js';
import { startHoldingProxy } from './holding-proxy.js';
import { serveProcess } from '../helpers/process.js';


const serve = (config: string) => serveProcess(config);

export function crashBetweenTriggerAndRecord(af: () => StartedAirflow, api: 'v1' | 'v2'): void {
  it('kill -9 after Airflow created the run but before the bridge recorded it: one run after restart', async () => {
    const a = af();
    const proxy = await startHoldingProxy(a.url);
    const temp = tempDir();
    const db = join(temp.dir, 'bridge.db');
    const config = join(temp.dir, 'bridge.yaml');
    writeFileSync(config, `
server: { host: 127.0.0.1, port: 0 }
store: { url: "sqlite:${db}" }
sources: { planasonix: { path: /webhooks/planasonix, verify: { scheme: standard-webhooks, secrets: ["\${SECRET}"] } } }
airflow: { default: { url: "${proxy.url}", api: ${api}, auth: { type: password, username: ${a.username}, password: ${a.password} } } }
routes: [ { name: crash, match: { type: run.succeeded }, trigger: { dag_id: record_conf } } ]
`);
    try {
      proxy.hold = true;
      const first = await serve(config);
      const event = completionEvent({ data: { run_id: `run_crash_${api}`, pipeline_id: 'p', status: 'succeeded' } });
      const body = JSON.stringify(event);
      const answer = await fetch(`${first.url}/webhooks/planasonix`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...standardWebhookHeaders(SECRET, 'msg_crash', Math.floor(Date.now() / 1000), body) },
        body,
      });
      expect(answer.status).toBe(202);
      const held = await proxy.heldAnswer();
      expect(held.status).toBe(200); // Airflow made the run; the bridge never hears it
      first.child.kill('SIGKILL');
      await new Promise((r) => first.child.once('exit', r));

      proxy.hold = false;
      const second = await serve(config);
      const runId = `planasonix__run_crash_${api}__crash`;
      const store = openSqliteStore({ path: db, busyTimeoutMs: 1000 });
      try {
        const eventId = ((await answer.json()) as { id: string }).id;
        for (let i = 0; i < 100 && (await store.jobsOfEvent(eventId))[0]?.state !== 'done'; i++) await new Promise((r) => setTimeout(r, 100));
        const [job] = await store.jobsOfEvent(eventId);
        expect(job).toMatchObject({ state: 'done', dagRunId: runId });
        expect((await store.attemptsOfJob(job!.id)).map((x) => [x.httpStatus, x.outcome])).toEqual([[409, 'exists']]);
      } finally {
        await store.close();
        second.child.kill('SIGTERM');
        await new Promise((r) => second.child.once('exit', r));
      }
      expect((await airflowApi(a).runs('record_conf')).filter((r) => r.conf.planasonix_bridge?.event_id === event.id)).toHaveLength(1);
    } finally {
      await proxy.close();
      temp.cleanup();
    }
  }, 60_000);
}
