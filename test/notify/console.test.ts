// The console's notifications (a real Chromium against a real bridge and a loopback
// receiver): an event's notifications with their attempts, the dead ones with Replay.
import { randomBytes } from 'node:crypto';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { launchBrowser, screenshot, signIn } from '../helpers/browser.js';
import { e2eBridge } from '../helpers/e2e.js';
import { completionEvent } from '../helpers/sign.js';
import { startReceiver, until } from './receiver.js';

const TOKEN = 'console-admin-token-0123456789-notify';
const NOTIFY_SECRET = `whsec_${randomBytes(32).toString('base64')}`;

let browser: Browser;
beforeAll(async () => {
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
});

it('shows a dead notification with Replay on the dead-letters view, and the event’s notifications with attempts', async () => {
  const receiver = await startReceiver({ secret: NOTIFY_SECRET, statuses: [410] });
  const running = await e2eBridge(
    `
airflow: { default: { url: "http://127.0.0.1:9", auth: { type: none } } }
routes: [ { name: sales, match: { pipeline_id: pl_sales }, trigger: { dag_id: dbt_sales } } ]
loop_guard: { breaker: { max_triggers: 1, window: 10m } }
notify: [ { name: oncall, url: "${receiver.url}", secret: "${NOTIFY_SECRET}" } ]
`,
    { adminTokens: [TOKEN], dispatch: false },
  );
  const context = await browser.newContext({ viewport: { width: 1366, height: 860 } });
  try {
    running.bridge.deliverer.start();
    await running.send(completionEvent({ data: { run_id: 'run_1', pipeline_id: 'pl_sales', status: 'succeeded' } }));
    const eventId = (await running.send(completionEvent({ data: { run_id: 'run_2', pipeline_id: 'pl_sales', status: 'succeeded' } }))).body.id;
    await until('dead', () => running.store.notificationsOfEvent(eventId), (n) => n[0]?.state === 'dead');
    const page = await context.newPage();
    await signIn(page, running.url, TOKEN);
    await page.goto(`${running.url}/console/#/dead`);
    const row = page.locator('table', { hasText: 'Dead notifications' }).locator('tbody tr');
    await expect.poll(() => row.count()).toBe(1);
    expect(await row.textContent()).toMatch(/loop_guard\.breaker_opened → oncall.*dead.*410: scripted 410/);
    await screenshot(page, 'dead-notifications');
    await page.getByRole('button', { name: 'Replay notification loop_guard.breaker_opened to oncall' }).click();
    await until('delivered', () => running.store.notificationsOfEvent(eventId), (n) => n[0]?.state === 'done');
    expect(receiver.received.map((r) => r.status)).toEqual([410, 200]);

    await page.goto(`${running.url}/console/#/events/${eventId}`);
    const card = page.getByRole('region', { name: 'Notification loop_guard.breaker_opened to oncall' });
    await expect.poll(() => card.textContent()).toContain('done');
    expect(await card.textContent()).toMatch(/Delivery attempts \(2\).*410.*dead.*200.*delivered/s);
    await screenshot(page, 'event-notifications');
  } finally {
    await context.close();
    await running.close();
    await receiver.close();
  }
}, 60_000);
