// Debian's Chromium driven by playwright-core (.ci/run installs the chromium package; the
// test tool's own browser download cannot reach its servers from here).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/** Screenshots land here; CI keeps the folder as its artifacts. */
export const SCREENSHOTS = process.env.SCREENSHOT_DIR ?? join(import.meta.dirname, '../../artifacts/console');

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Offline machine: without the background-networking flags Chromium keeps dialling out.
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const path = join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** Signs in through the login form, as an operator would. */
export async function signIn(page: Page, url: string, token: string): Promise<void> {
  await page.goto(`${url}/console/`);
  await page.getByLabel('Admin token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** A computed CSS property of the first element (the tests type-check without the DOM library). */
export function computedStyle(locator: Locator, property: string): Promise<string> {
  type Window = { getComputedStyle(el: unknown): Record<string, string> };
  return locator.first().evaluate((el, p) => (globalThis as unknown as Window).getComputedStyle(el)[p]!, property);
}
