// The console against a real Airflow 3: an event's job seen done with Airflow's answer, a
// dead letter (its DAG not deployed yet) replayed from the Dead letters view after the DAG
// is deployed, and the job followed there until Airflow accepts it.
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StartedAirflow } from '../airflow/harness.js';
import { airflowAndBridge, airflowApi } from '../helpers/e2e.js';
import { launchBrowser, screenshot, signIn } from '../helpers/browser.js';
import { completionEvent } from '../helpers/sign.js';

const TOKEN = 'console-replay-token-0123456789';
const DAGS = join(import.meta.dirname, '../airflow/dags');

describe('console with real Airflow 3', () => {
  let rig: Awaited<ReturnType<typeof airflowAndBridge>>;
  let af: StartedAirflow;
  let bridge: typeof rig.bridge;
  let browser: Browser;
  let page: Page;
  const dagsFolder = mkdtempSync(join(tmpdir(), 'console-dags-'));

  beforeAll(async () => {
    copyFileSync(join(DAGS, 'record_conf.py'), join(dagsFolder, 'record_conf.py'));
    ({ af, bridge } = rig = await airflowAndBridge(
      { major: 3, dagsFolder, waitForDags: ['record_conf'] },
      (a) => `airflow: { default: { url: "${a.url}", api: v2, auth: { type: password, username: ${a.username}, password: ${a.password} } } }
routes:
  - { name: sales-to-record, match: { pipeline_id: pl_sales }, trigger: { dag_id: record_conf, conf: { rows: "{{ data.metrics.rows_written }}" } } }
  - { name: sales-to-late, match: { pipeline_id: pl_sales }, trigger: { dag_id: late_dag } }`,
      { adminTokens: [TOKEN] },
    ));
    browser = await launchBrowser();
    page = await (await browser.newContext({ viewport: { width: 1366, height: 860 } })).newPage();
  }, 240_000);
  afterAll(async () => {
    await browser?.close();
    await rig?.close();
    rmSync(dagsFolder, { recursive: true, force: true });
  }, 60_000);

  it('shows the event with both jobs, replays the dead letter once its DAG exists, and the job becomes done', async () => {
    const sent = await bridge.send(completionEvent({ data: { run_id: 'run_console_1', pipeline_id: 'pl_sales', pipeline_name: 'nightly_sales', status: 'succeeded', metrics: { rows_written: 42 } } }));
    expect(sent.status).toBe(202);
    const jobs = await bridge.settled(sent.body.id);
    expect(jobs.map((j) => [j.route, j.state]).sort()).toEqual([['sales-to-late', 'dead'], ['sales-to-record', 'done']]);

    await signIn(page, bridge.url, TOKEN);
    await page.locator(`a[href="#/events/${sent.body.id}"]`).click();
    const done = page.getByRole('region', { name: 'Job for route sales-to-record' });
    const dead = page.getByRole('region', { name: 'Job for route sales-to-late' });
    await expect.poll(() => done.textContent()).toMatch(/done.*planasonix__run_console_1__sales-to-record/s);
    expect(await done.locator('tbody tr').first().textContent()).toMatch(/200.*triggered/);
    expect(await dead.textContent()).toMatch(/dead.*404.*dead/s);
    expect(await dead.textContent()).toContain('late_dag');
    await screenshot(page, 'event-detail-airflow');

    // Deploy the missing DAG, as the operator would, and wait until Airflow has parsed it.
    writeFileSync(join(dagsFolder, 'late_dag.py'), readFileSync(join(DAGS, 'record_conf.py'), 'utf8').replace('dag_id="record_conf"', 'dag_id="late_dag"'));
    const airflow = airflowApi(af);
    await expect.poll(async () => (await airflow.get('/dags/late_dag')).status, { timeout: 90_000, interval: 1000 }).toBe(200);

    await page.getByRole('link', { name: 'Dead letters & blocked' }).click();
    const row = page.locator('main table').first().locator('tbody tr', { hasText: 'sales-to-late' });
    expect(await row.textContent()).toContain('dead');
    await screenshot(page, 'dead-letters');
    await row.getByRole('button', { name: /Replay job sales-to-late/ }).click();
    await expect.poll(() => row.locator('td').nth(1).textContent(), { timeout: 60_000, interval: 500 }).toBe('done');
    expect(await page.getByRole('status').textContent()).toBe('Replay of sales-to-late → late_dag: done (HTTP 200; Airflow run planasonix__run_console_1__sales-to-late is queued)');
    await screenshot(page, 'dead-letter-replayed');

    const runs = await airflow.runs('late_dag');
    expect(runs.map((r) => r.dag_run_id)).toEqual(['planasonix__run_console_1__sales-to-late']);
    expect((await bridge.store.jobsOfEvent(sent.body.id)).map((j) => j.state)).toEqual(['done', 'done']);

    await page.getByRole('link', { name: 'Health' }).click();
    await expect.poll(() => page.getByRole('region', { name: 'Airflow instance default' }).textContent()).toMatch(/Reachable\s*yes.*Circuit\s*closed/s);
    await screenshot(page, 'health-airflow');
  }, 180_000);
});
