// `npm run demo`: the whole job on one machine. Starts a local Airflow 3 (the test harness's
// pinned virtualenv) with the example DAGs, starts the bridge on config/example.yaml, sends
// one signed completion event, prints the DAG run Airflow created, and leaves both running
// until Ctrl-C.
import { spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startAirflow } from '../test/airflow/harness.js';

const root = resolve(import.meta.dirname, '..');
const say = (line: string) => process.stdout.write(`demo: ${line}\n`);

say('starting Airflow 3 (first run installs it into ~/.cache/planasonix-bridge, about a minute)…');
const airflow = await startAirflow({ major: 3, dagsFolder: join(root, 'examples/dags'), waitForDags: ['dbt_sales_models'] });
say(`Airflow is up at ${airflow.url} (user ${airflow.username}, password ${airflow.password})`);

const secret = `whsec_${randomBytes(32).toString('base64')}`;
// Turns on the admin API and the console for this run (43 random characters).
const adminToken = randomBytes(32).toString('base64url');
const port = 8787;
const bridgeUrl = `http://127.0.0.1:${port}`;
const bridge = spawn(process.execPath, [join(root, 'dist/cli/main.js'), 'serve', '--config', join(root, 'config/example.yaml')], {
  env: {
    ...process.env,
    PLANASONIX_WEBHOOK_SECRET: secret,
    BRIDGE_ADMIN_TOKEN: adminToken,
    AIRFLOW_URL: airflow.url,
    AIRFLOW_USER: airflow.username,
    AIRFLOW_PASSWORD: airflow.password,
    BRIDGE_PORT: String(port),
    BRIDGE_STORE_URL: `sqlite:${join(mkdtempSync(join(tmpdir(), 'bridge-demo-')), 'bridge.db')}`,
  },
  stdio: ['ignore', 'inherit', 'inherit'],
});

const stop = async () => {
  say('stopping…');
  bridge.kill('SIGTERM');
  await airflow.stop();
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());

for (let i = 0; ; i++) {
  if (await fetch(`${bridgeUrl}/healthz`).then((r) => r.ok, () => false)) break;
  if (i > 100 || bridge.exitCode !== null) throw new Error('the bridge did not start; see its log above');
  await new Promise((r) => setTimeout(r, 100));
}

const runId = `run_demo_${Date.now()}`;
const event = {
  id: `evt_demo_${Date.now()}`,
  type: 'run.succeeded',
  created_at: new Date().toISOString(),
  organization_id: 'org_42',
  workspace_id: 'ws_analytics',
  data: {
    run_id: runId,
    pipeline_id: 'pl_8f2a9c1d4e',
    pipeline_name: 'nightly_sales_to_warehouse',
    environment: 'production',
    status: 'succeeded',
    trigger: { type: 'schedule' },
    parameters: { business_date: new Date(Date.now() - 86_400_000).toISOString().slice(0, 10) },
    tags: { team: 'sales' },
    metrics: { rows_written: 120344 },
  },
};
const body = JSON.stringify(event);
const msgId = `msg_demo_${Date.now()}`;
const timestamp = Math.floor(Date.now() / 1000);
const signature = createHmac('sha256', Buffer.from(secret.slice(6), 'base64')).update(`${msgId}.${timestamp}.${body}`).digest('base64');
const answer = await fetch(`${bridgeUrl}/webhooks/planasonix`, {
  method: 'POST',
  headers: { 'content-type': 'application/json', 'webhook-id': msgId, 'webhook-timestamp': String(timestamp), 'webhook-signature': `v1,${signature}` },
  body,
});
say(`sent a signed run.succeeded for nightly_sales_to_warehouse → ${answer.status} ${await answer.text()}`);

const token = ((await (await fetch(`${airflow.url}/auth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: airflow.username, password: airflow.password }) })).json()) as { access_token: string }).access_token;
const dagRunId = `planasonix__${runId}__sales-to-dbt`;
let run: { dag_run_id: string; state: string; conf: unknown } | undefined;
for (let i = 0; i < 120; i++) {
  const res = await fetch(`${airflow.url}/api/v2/dags/dbt_sales_models/dagRuns/${dagRunId}`, { headers: { authorization: `Bearer ${token}` } });
  if (res.ok) {
    run = (await res.json()) as typeof run;
    if (run!.state === 'success' || run!.state === 'failed') break;
  }
  await new Promise((r) => setTimeout(r, 500));
}
say(run ? `Airflow DAG run: ${JSON.stringify({ dag_id: 'dbt_sales_models', dag_run_id: run.dag_run_id, state: run.state, conf: run.conf })}` : 'no DAG run appeared; see the bridge log above');
say(`bridge:  ${bridgeUrl}  (POST /webhooks/planasonix, GET /readyz)`);
say(`airflow: ${airflow.url}  (UI and REST API; ${airflow.username}/${airflow.password})`);
say(`console: ${bridgeUrl}/console/  (sign in with the admin token below; also Authorization: Bearer for /v1)`);
say(`admin token for this run: ${adminToken}`);
say(`webhook secret for this run: ${secret}`);
say('both keep running; Ctrl-C stops them');
