// The operator console in a real browser (Debian's Chromium through playwright-core) against
// a real bridge. Airflow here is an unreachable address: these views need no trigger to
// succeed; test/console/replay.test.ts runs the dead-letter replay against real Airflow 3.
import axe from 'axe-core';
import request from 'supertest';
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { configFrom } from '../helpers/app.js';
import { computedStyle, launchBrowser, screenshot, signIn } from '../helpers/browser.js';
import { e2eBridge } from '../helpers/e2e.js';
import { completionEvent } from '../helpers/sign.js';

const TOKEN = 'console-admin-token-0123456789';

const CONFIG = `
airflow: { default: { url: "http://127.0.0.1:9", auth: { type: none }, timeout: 0.5s, retry: { max_attempts: 1 } } }
loop_guard:
  max_depth: 4
  breaker: { max_triggers: 1, window: 10m }
  edges: [ { from: { dag_id: dbt_sales_models }, to: { pipeline_id: pl_sales } } ]
routes:
  - { name: sales-to-dbt, match: { pipeline_id: pl_sales }, trigger: { dag_id: dbt_sales_models }, allow_cycle: true }
  - { name: marketing, match: { pipeline_id: pl_marketing, type: run.succeeded }, trigger: { dag_id: refresh_ads } }
  - { name: inventory-asset, match: { pipeline_name: "inventory_*" }, asset_event: { uri: "planasonix://inventory/{{ data.pipeline_id }}" } }
`;

let browser: Browser;
let cleanups: (() => Promise<void> | void)[] = [];
beforeAll(async () => {
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
});
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

type Running = Awaited<ReturnType<typeof e2eBridge>>;

async function startBridge(adminTokens = [TOKEN], dispatch = true): Promise<Running> {
  const running = await e2eBridge(CONFIG, { adminTokens, dispatch });
  cleanups.push(() => running.close());
  return running;
}

/** A signed completion event from `data.pipeline_id`; returns the bridge's stored id. */
async function send(running: Running, data: Record<string, unknown>, type = 'run.succeeded') {
  const res = await running.send(completionEvent({ type, data: { run_id: `r_${Math.random().toString(36).slice(2)}`, status: 'succeeded', ...data } }));
  expect(res.status).toBe(202);
  return res.body.id;
}

const RUNS_CONFIG = `
airflow: { default: { url: "http://127.0.0.1:9", auth: { type: none }, timeout: 0.5s, retry: { max_attempts: 1 } } }
routes:
  - { name: load-orders, match: { pipeline_id: pl_orders }, trigger: { dag_id: dbt_orders } }
  - { name: load-ads, match: { pipeline_id: pl_ads }, trigger: { dag_id: refresh_ads } }
  - { name: load-stock, match: { pipeline_id: pl_stock }, trigger: { dag_id: stock_report } }
  - { name: load-odd, match: { pipeline_id: pl_odd }, trigger: { dag_id: odd_dag } }
`;

type Seeded = { event: string; dagRunId: string; url: string };

/**
 * Jobs that Airflow took and whose runs ended as `runs` says, written straight into the store
 * (as the dispatcher and the tracker would): the bridge does not dispatch, Airflow is not asked.
 */
async function seedRuns(running: Running, runs: { pipeline: string; state: string; seconds: number; sla?: 'started' | 'finished'; url?: string }[]): Promise<Seeded[]> {
  const { store } = running;
  const seeded: Seeded[] = [];
  const now = Date.now();
  for (const r of runs) {
    const event = await send(running, { pipeline_id: r.pipeline });
    const [job] = await store.claimJobs({ airflow: 'default', now: Date.now() + 1000, limit: 1, leaseMs: 60_000, owner: 'test' });
    expect(job?.eventId).toBe(event);
    const dagRunId = `planasonix__${r.pipeline}`;
    const url = r.url ?? `http://airflow.test:8080/dags/${job!.dagId}/runs/${dagRunId}`;
    await store.finishAttempt(job!.id, 'test', { startedAt: now, durationMs: 12, httpStatus: 200, outcome: 'triggered', detail: 'queued', nextRetryAt: null }, { state: 'done', airflowState: 'queued', dagRunId, run: { url, track: true } });
    const obs = { dagId: job!.dagId!, dagRunId, state: r.state, startDate: now - r.seconds * 1000, endDate: now };
    await store.recordRuns('default', [obs], (_run, o) => ({ state: o.state, startDate: o.startDate, endDate: o.endDate, open: false, ...(r.sla ? { sla: r.sla } : {}) }), now);
    seeded.push({ event, dagRunId, url });
  }
  return seeded;
}

/** Serious and critical axe-core findings (WCAG 2 A/AA) on the page as it is now. */
async function axeProblems(page: Page, view: string): Promise<string[]> {
  await page.addScriptTag({ content: axe.source });
  const found: { id: string; impact: string; nodes: { target: string[] }[] }[] = await page.evaluate("axe.run(document, { runOnly: ['wcag2a', 'wcag2aa', 'wcag21aa'] }).then((r) => r.violations)");
  return found.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${view}: ${v.id} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

async function newPage(): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1366, height: 860 } });
  cleanups.push(() => context.close());
  return context.newPage();
}

describe('console', () => {
  it('is served only with the admin API on, with a strict CSP and nothing secret in the bundle', async () => {
    const off = await startBridge([]);
    expect((await request(off.bridge.app).get('/console/')).status).toBe(404);
    const on = await startBridge();
    const page = await request(on.bridge.app).get('/console/');
    expect(page.status).toBe(200);
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
    expect(page.text).toContain('<script type="module" src="app.js">');
    const bundle = (await request(on.bridge.app).get('/console/app.js')).text;
    expect(bundle.length).toBeGreaterThan(10_000); // dagre is bundled, nothing from a CDN
    expect(bundle).not.toMatch(/https?:\/\/(?!www\.w3\.org)/);
    const api = await request(on.bridge.app).get('/v1/events').set('authorization', `Bearer ${TOKEN}`);
    expect(api.headers['cache-control']).toBe('no-store');
  });

  it('a wrong token shows the error and no data', async () => {
    const running = await startBridge();
    const { url } = running;
    await send(running, { pipeline_id: 'pl_sales' });
    const page = await newPage();
    await signIn(page, url, 'not-the-token');
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('401 unauthorized');
    expect(await page.locator('table').count()).toBe(0);
    expect(await page.locator('nav').isHidden()).toBe(true);
    expect(await page.evaluate('sessionStorage.length')).toBe(0);
    await screenshot(page, 'login-wrong-token');
  });

  it('lists events with their routing outcome, filters them, and opens one with its job, attempts and "why not"', async () => {
    const running = await startBridge();
    const { bridge, url } = running;
    const routed = await send(running, { pipeline_id: 'pl_sales', pipeline_name: 'nightly_sales' });
    await send(running, { pipeline_id: 'pl_unknown', pipeline_name: 'ad_hoc' });
    // Airflow is unreachable with max_attempts 1: the job ends dead with the reason.
    await expect.poll(async () => (await bridge.store.jobCounts()).dead, { timeout: 10_000 }).toBe(1);
    const page = await newPage();
    await signIn(page, url, TOKEN);
    const rows = page.locator('main table tbody tr');
    await expect.poll(() => rows.count()).toBe(2);
    expect(await rows.nth(0).textContent()).toContain('unrouted');
    expect(await rows.nth(1).textContent()).toMatch(/routed.*sales-to-dbt/);
    expect(page.url()).not.toContain(TOKEN);
    await screenshot(page, 'events');

    await page.getByLabel('Outcome').selectOption('unrouted');
    await page.getByRole('button', { name: 'Apply' }).click();
    await expect.poll(() => rows.count()).toBe(1);
    expect(await rows.nth(0).textContent()).toContain('pl_unknown');

    await page.getByLabel('Outcome').selectOption('');
    await page.getByRole('button', { name: 'Apply' }).click();
    await expect.poll(() => rows.count()).toBe(2);
    await page.locator(`a[href="#/events/${routed}"]`).click();
    const job = page.getByRole('region', { name: 'Job for route sales-to-dbt' });
    await expect.poll(() => job.textContent()).toContain('dead');
    expect(await job.textContent()).toMatch(/Attempts \(1\).*1.*dead/s);
    // "Why not": the other route, with the field that failed and its value.
    await expect.poll(() => page.locator('main').textContent()).toMatch(/marketing.*no.*pipeline_id/s);
    expect(await page.getByLabel('Event body').textContent()).toContain('"pipeline_id": "pl_sales"');
    await screenshot(page, 'event-detail');
  });

  it('redrives an event against routes added since it arrived, from its page', async () => {
    const running = await startBridge([TOKEN], false);
    const { bridge, url } = running;
    const id = await send(running, { pipeline_id: 'pl_finance' });
    const page = await newPage();
    await signIn(page, url, TOKEN);
    await page.goto(`${url}/console/#/events/${id}`);
    await expect.poll(() => page.locator('main').textContent()).toContain('0 trigger(s) if it arrived now');
    expect(await page.getByRole('button', { name: /Redrive/ }).count()).toBe(0);
    // The operator adds a route for this pipeline and reloads.
    const reloaded = await bridge.reload(configFrom(`${running.yaml}  - { name: finance, match: { pipeline_id: pl_finance }, trigger: { dag_id: close_books } }\n`));
    expect(reloaded).toMatchObject({ ok: true });
    await page.reload();
    const redrive = page.getByRole('button', { name: 'Redrive: create jobs for finance' });
    await redrive.click();
    await expect.poll(() => page.getByRole('status').textContent()).toBe('Redrive created 1 job(s): finance (pending)');
    expect(await page.getByRole('region', { name: 'Job for route finance' }).textContent()).toMatch(/finance → close_books.*pending/s);
    expect(await page.getByRole('button', { name: /Redrive/ }).count()).toBe(0);
    expect((await bridge.store.jobsOfEvent(id)).map((j) => j.route)).toEqual(['finance']);
  });

  it('renders what senders wrote as text, never as markup', async () => {
    const running = await startBridge();
    const { url } = running;
    const id = await send(running, { pipeline_id: 'pl_<img src=x onerror="window.__pwned=1">', pipeline_name: '<script>window.__pwned=2</script>' });
    const page = await newPage();
    await signIn(page, url, TOKEN);
    await page.goto(`${url}/console/#/events/${id}`);
    await expect.poll(() => page.locator('main').textContent()).toContain('pl_<img src=x onerror="window.__pwned=1">');
    expect(await page.locator('main img').count()).toBe(0);
    expect(await page.evaluate('window.__pwned')).toBeUndefined();
  });

  it('draws the orchestration graph with the cycle in red, what bounds it, every route, and an open breaker', async () => {
    // Not dispatching: the first job stays pending (a dead one would not count toward the breaker).
    const running = await startBridge([TOKEN], false);
    const { bridge, url } = running;
    await send(running, { pipeline_id: 'pl_sales' });
    await send(running, { pipeline_id: 'pl_sales' }); // the second trigger of the pair opens the breaker (max 1)
    const page = await newPage();
    await signIn(page, url, TOKEN);
    await page.getByRole('link', { name: 'Graph' }).click();
    const svg = page.locator('.graph svg');
    await svg.waitFor();
    const stroke = (selector: string) => computedStyle(page.locator(selector), 'stroke');
    const red = 'rgb(198, 40, 40)';
    const amber = 'rgb(160, 90, 0)';
    // On a cycle with its breaker open: still red, with the breaker as an amber mark on it.
    const breaker = page.locator('g.edge[data-from="planasonix:pl_sales"][data-to="airflow:dbt_sales_models"]');
    expect(await stroke('g.edge[data-from="planasonix:pl_sales"][data-to="airflow:dbt_sales_models"] path')).toBe(red);
    expect(await computedStyle(breaker.locator('circle.breaker-mark'), 'fill')).toBe(amber);
    expect(await breaker.locator('title').textContent()).toMatch(/on a cycle\nbreaker open until/);
    expect(await stroke('g.edge[data-from="airflow:dbt_sales_models"][data-to="planasonix:pl_sales"] path')).toBe(red);
    expect(await stroke('g.edge[data-to="airflow:refresh_ads"] path')).not.toBe(red);
    expect(await stroke('g.node[data-id="planasonix:pl_sales"] rect')).toBe(red);
    expect(await page.locator('g.node[data-id="match:marketing"]').textContent()).toMatch(/route pattern.*type=run\.succeeded pipeline_id=pl_marketing/);
    const cycle = page.locator('ul.cycles li');
    expect(await cycle.count()).toBe(1);
    expect(await cycle.textContent()).toMatch(/pl_sales --route sales-to-dbt--> dbt_sales_models --edge--> pl_sales.*allow_cycle on sales-to-dbt: bounded by lineage \(max_depth 4\) and the breaker \(1 triggers per 600s/s);
    expect(await computedStyle(cycle, 'color')).toBe(red);
    await screenshot(page, 'graph');

    const breakers = page.locator('main table', { has: page.getByText('Loop-guard breakers now refusing triggers') });
    expect(await breakers.locator('tbody tr').textContent()).toMatch(/pl_sales.*airflow:dbt_sales_models.*amber mark on its arrow/s);
    await breakers.getByRole('button', { name: 'Reset the breaker from pl_sales to airflow:dbt_sales_models' }).click();
    await expect.poll(() => page.getByRole('status').textContent()).toContain('Breaker pl_sales → airflow:dbt_sales_models reset');
    expect(await page.locator('main').textContent()).toContain('Open breakers (0)');
    expect(await bridge.store.openBreakers(Date.now())).toEqual([]);

    await page.getByRole('link', { name: 'Dead letters & blocked' }).click();
    const blocked = page.locator('main table', { has: page.getByText('Blocked jobs (1)') });
    await expect.poll(() => blocked.locator('tbody tr').textContent()).toMatch(/sales-to-dbt → dbt_sales_models.*blocked.*breaker_open/s);
  });

  it('draws assets and learned edges; a cycle closed by a learned edge is red and says the next config load refuses it', async () => {
    const running = await startBridge([TOKEN], false);
    const { url } = running;
    // refresh_ads started this pipeline run: the bridge learns refresh_ads → pl_marketing.
    await send(running, { pipeline_id: 'pl_marketing', trigger: { type: 'integration', correlation: { dag_id: 'refresh_ads' } } });
    await send(running, { pipeline_id: 'pl_inv', pipeline_name: 'inventory_daily' });
    const page = await newPage();
    await signIn(page, url, TOKEN);
    await page.getByRole('link', { name: 'Graph' }).click();
    await page.locator('.graph svg').waitFor();
    const red = 'rgb(198, 40, 40)';
    expect(await computedStyle(page.locator('g.edge.learned[data-from="airflow:refresh_ads"][data-to="planasonix:pl_marketing"] path'), 'stroke')).toBe(red);
    expect(await computedStyle(page.locator('g.edge.learned path'), 'stroke-dasharray')).not.toBe('none');
    expect(await page.locator('g.node.asset').textContent()).toContain('planasonix://inventory/{{ data.pipeline_id }}');
    expect(await page.locator('ul.cycles').textContent()).toMatch(/pl_marketing --route marketing--> refresh_ads --learned--> pl_marketing.*not allowed by route\(s\) marketing/s);
  });

  it('keeps the view the operator chose: slow answers for a view left behind are dropped, the skip link stays on the page', async () => {
    const { url } = await startBridge();
    const page = await newPage();
    await signIn(page, url, TOKEN);
    await page.locator('main table, main p.muted').first().waitFor();
    await page.route('**/v1/graph', async (route) => {
      await new Promise((r) => setTimeout(r, 1500));
      await route.continue();
    });
    await page.getByRole('link', { name: 'Graph' }).click();
    await page.getByRole('link', { name: 'Dead letters & blocked' }).click();
    await page.getByRole('heading', { level: 2, name: 'Dead letters & blocked jobs' }).waitFor();
    await new Promise((r) => setTimeout(r, 2000));
    expect(await page.getByRole('heading', { level: 2 }).textContent()).toBe('Dead letters & blocked jobs');
    expect(await page.locator('.graph svg').count()).toBe(0);

    await page.keyboard.press('Tab'); // the skip link is the page's first stop
    expect(await page.evaluate('document.activeElement.textContent')).toBe('Skip to content');
    await page.keyboard.press('Enter');
    expect(await page.evaluate('document.activeElement.id')).toBe('main');
    expect(await page.getByRole('heading', { level: 2 }).textContent()).toBe('Dead letters & blocked jobs');
  });

  it('filters by type, pipeline and a time given in the operator\'s own time zone', async () => {
    const running = await startBridge([TOKEN], false);
    const { url } = running;
    await send(running, { pipeline_id: 'pl_sales' });
    await send(running, { pipeline_id: 'pl_other' }, 'run.failed');
    const context = await browser.newContext({ timezoneId: 'America/New_York' });
    cleanups.push(() => context.close());
    const page = await context.newPage();
    await signIn(page, url, TOKEN);
    const rows = page.locator('main table tbody tr');
    await expect.poll(() => rows.count()).toBe(2);
    const apply = async (label: string, value: string) => {
      await page.getByLabel(label).fill(value);
      await page.getByRole('button', { name: 'Apply' }).click();
    };
    await apply('Type', 'run.failed');
    await expect.poll(() => rows.count()).toBe(1);
    expect(await rows.textContent()).toContain('pl_other');
    await apply('Type', '');
    await apply('Pipeline id', 'pl_sales');
    await expect.poll(() => rows.count()).toBe(1);
    expect(await rows.textContent()).toContain('pl_sales');
    await apply('Pipeline id', '');
    // New York wall-clock time: a minute ago shows both events, a minute ahead shows none.
    const local = (ms: number) => new Date(ms).toLocaleString('sv-SE', { timeZone: 'America/New_York' }).replace(' ', 'T');
    await apply('Received since (your local time)', local(Date.now() - 60_000));
    await expect.poll(() => rows.count()).toBe(2);
    expect(await rows.first().textContent()).toMatch(/E[SD]T/);
    await apply('Received since (your local time)', local(Date.now() + 60_000));
    await expect.poll(() => page.locator('main').textContent()).toContain('no events match these filters');
  });

  it('has no serious accessibility violations in any view (axe-core, WCAG 2 A/AA)', async () => {
    const running = await startBridge();
    const { bridge, url } = running;
    const id = await send(running, { pipeline_id: 'pl_sales' });
    await expect.poll(async () => (await bridge.store.jobCounts()).dead, { timeout: 10_000 }).toBe(1);
    // axe is injected as a script, which the console's own CSP rightly refuses.
    const context = await browser.newContext({ bypassCSP: true });
    cleanups.push(() => context.close());
    const page = await context.newPage();
    const audit = async (view: string, ready: string) => {
      await page.goto(`${url}/console/#/${view}`);
      await page.locator(ready).first().waitFor();
      return axeProblems(page, view);
    };
    const problems = [...(await audit('events', 'form.login'))];
    await page.getByLabel('Admin token').fill(TOKEN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('main table').waitFor();
    problems.push(...(await audit('events', 'main table')), ...(await audit(`events/${id}`, 'main section.card')), ...(await audit('dead', 'main table')), ...(await audit('runs', 'main .runs')), ...(await audit('graph', '.graph svg')), ...(await audit('health', '.card')));
    expect(problems).toEqual([]);
  });

  it('shows each job\'s DAG run on its event page and lists failed and late runs, linking to the event and to Airflow', async () => {
    const runs = await e2eBridge(RUNS_CONFIG, { adminTokens: [TOKEN], dispatch: false });
    cleanups.push(() => runs.close());
    const [failed, late, fine, odd] = await seedRuns(runs, [
      { pipeline: 'pl_orders', state: 'failed', seconds: 95 },
      { pipeline: 'pl_ads', state: 'success', seconds: 7265, sla: 'finished' },
      { pipeline: 'pl_stock', state: 'success', seconds: 42.5 },
      { pipeline: 'pl_odd', state: 'success', seconds: 1, url: 'javascript:window.__pwned=1' },
    ]);
    const api = await request(runs.bridge.app).get('/v1/jobs?run_state=failed').set('authorization', `Bearer ${TOKEN}`);
    expect(api.body.jobs.map((j: { run: { state: string; duration_s: number } }) => j.run)).toMatchObject([{ state: 'failed', duration_s: 95 }]);

    const page = await newPage();
    await signIn(page, runs.url, TOKEN);
    await page.locator('main table').waitFor();
    await page.goto(`${runs.url}/console/#/events/${failed!.event}`);
    const job = page.getByRole('region', { name: 'Job for route load-orders' });
    await expect.poll(() => job.textContent()).toMatch(/Run in Airflow\s*failed/);
    expect(await job.textContent()).toMatch(/Duration\s*1 min 35 s/);
    expect(await job.textContent()).toMatch(/SLA\s*no SLA missed/);
    expect(await job.textContent()).toMatch(/State when triggered\s*queued/);
    expect(await job.textContent()).not.toContain('Airflow run state when triggered');
    const link = job.getByRole('link', { name: `Open run ${failed!.dagRunId} in Airflow` });
    expect(await link.getAttribute('href')).toBe(failed!.url);
    expect(await link.getAttribute('rel')).toBe('noopener noreferrer');
    await screenshot(page, 'event-run-failed');

    await page.goto(`${runs.url}/console/#/events/${late!.event}`);
    const lateJob = page.getByRole('region', { name: 'Job for route load-ads' });
    await expect.poll(() => lateJob.textContent()).toMatch(/Run in Airflow\s*success/);
    expect(await lateJob.textContent()).toMatch(/Duration\s*2 h 1 min/);
    expect(await lateJob.textContent()).toContain('SLA missed: not finished in time');

    // A run URL that is not http(s) is shown, never made a link.
    await page.goto(`${runs.url}/console/#/events/${odd!.event}`);
    const oddJob = page.getByRole('region', { name: 'Job for route load-odd' });
    await expect.poll(() => oddJob.textContent()).toContain('javascript:window.__pwned=1');
    expect(await oddJob.getByRole('link').count()).toBe(0);

    await page.getByRole('link', { name: 'Failed & late runs' }).click();
    const failedTable = page.locator('main table', { has: page.getByText('Failed runs (1)') });
    await expect.poll(() => failedTable.locator('tbody tr').textContent()).toMatch(/load-orders → dbt_orders.*failed.*1 min 35 s.*no SLA missed/s);
    expect(await failedTable.locator(`a[href="#/events/${failed!.event}"]`).count()).toBe(1);
    expect(await failedTable.getByRole('link', { name: failed!.dagRunId, exact: true }).getAttribute('href')).toBe(failed!.url);
    const lateTable = page.locator('main table', { has: page.getByText('Runs that missed their SLA (1)') });
    expect(await lateTable.locator('tbody tr').textContent()).toMatch(/load-ads → refresh_ads.*success.*2 h 1 min.*SLA missed: not finished in time/s);
    expect(await lateTable.locator(`a[href="#/events/${late!.event}"]`).count()).toBe(1);
    expect(await lateTable.getByRole('link', { name: late!.dagRunId, exact: true }).getAttribute('rel')).toBe('noopener noreferrer');
    expect(await page.locator('main').textContent()).toContain('Runs Airflow no longer knows (0): none.');
    expect(await page.locator('main').textContent()).not.toContain(fine!.dagRunId);
    await screenshot(page, 'runs');
    await page.locator(`main a[href="#/events/${late!.event}"]`).click();
    await page.getByRole('region', { name: 'Job for route load-ads' }).waitFor();

    // The view with rows in it passes the audit too (CSP bypassed only to inject axe).
    const context = await browser.newContext({ bypassCSP: true });
    cleanups.push(() => context.close());
    const audited = await context.newPage();
    await signIn(audited, runs.url, TOKEN);
    await audited.locator('main table').waitFor();
    await audited.goto(`${runs.url}/console/#/runs`);
    await audited.locator('main .runs table').first().waitFor();
    const problems = await axeProblems(audited, 'runs');
    await audited.goto(`${runs.url}/console/#/events/${late!.event}`);
    await audited.locator('main dl.run').waitFor();
    problems.push(...(await axeProblems(audited, 'event with run')));
    expect(problems).toEqual([]);
  });

  it('shows Airflow health, queue depths and throughput; a token revoked mid-session signs out', async () => {
    const running = await startBridge();
    const { bridge, url } = running;
    await send(running, { pipeline_id: 'pl_sales' });
    await expect.poll(async () => (await bridge.store.jobCounts()).dead, { timeout: 10_000 }).toBe(1);
    const page = await newPage();
    await signIn(page, url, TOKEN);
    await page.getByRole('link', { name: 'Health' }).click();
    const instance = page.getByRole('region', { name: 'Airflow instance default' });
    await expect.poll(() => instance.textContent()).toMatch(/Reachable\s*no/);
    expect(await page.getByRole('region', { name: 'dead jobs' }).textContent()).toContain('1');
    expect(await page.getByRole('heading', { level: 3, name: 'Last 15 minutes: 1 events received, 0 triggers accepted' }).count()).toBe(1);
    // The store: its size, rows per table (one event, one job, one attempt) and the last prune.
    expect(await page.getByRole('region', { name: 'store size' }).textContent()).toMatch(/size \(writable\)\d+ KB/);
    expect(await page.getByRole('region', { name: 'events rows' }).textContent()).toBe('events rows1');
    expect(await page.getByRole('region', { name: 'jobs rows' }).textContent()).toBe('jobs rows1');
    expect(await page.getByRole('region', { name: 'last prune' }).textContent()).toBe('last prunenone yet on this replica');
    await screenshot(page, 'health');
    await page.evaluate("sessionStorage.setItem('bridge-admin-token', 'revoked')");
    await expect.poll(() => page.getByRole('alert').textContent(), { timeout: 10_000 }).toContain('Signed out: 401');
    expect(await page.locator('.card').count()).toBe(0);
    // Signed out, nothing keeps asking: no refresh runs behind the login form.
    const asked: string[] = [];
    page.on('request', (r) => asked.push(r.url()));
    await new Promise((r) => setTimeout(r, 6000));
    expect(asked).toEqual([]);
  });

  it('a token revoked while a view loads shows the login, not a broken page', async () => {
    const { url } = await startBridge();
    const page = await newPage();
    await signIn(page, url, TOKEN);
    await page.locator('nav').waitFor();
    for (const view of ['Graph', 'Dead letters & blocked']) {
      await page.evaluate("sessionStorage.setItem('bridge-admin-token', 'revoked')");
      await page.goto(`${url}/console/#/${view === 'Graph' ? 'graph' : 'dead'}`);
      await page.getByRole('alert').waitFor();
      expect(await page.getByRole('alert').textContent()).toContain('Signed out: 401');
      expect(await page.getByLabel('Admin token').isVisible()).toBe(true);
      await page.getByLabel('Admin token').fill(TOKEN);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('heading', { level: 2, name: view === 'Graph' ? 'Orchestration graph' : 'Dead letters & blocked jobs' }).waitFor();
    }
  });
});
