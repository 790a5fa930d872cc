// The frame every view draws into: the main region, the status line, view polling.
import { h } from './dom.js';

const main = document.getElementById('main')!;
const status = document.getElementById('status')!;

/** Polite announcements (replay results, errors), read out by screen readers. */
export function announce(message: string, isError = false): void {
  status.textContent = message;
  status.className = isError ? 'error' : '';
}

/** Replaces the view and moves focus to its heading, so keyboard users land on the content. */
export function render(title: string, ...content: (Node | null)[]): void {
  const heading = h('h2', { text: title, tabindex: '-1' });
  main.replaceChildren(heading, ...content.filter((c): c is Node => c !== null));
  document.title = `${title} · Bridge console`;
  heading.focus();
}

let poller: number | undefined;
/** Re-runs `fn` every `ms` while the view stays on screen (the next view stops it). */
export function poll(fn: () => Promise<void>, ms: number): void {
  stopPolling();
  poller = window.setInterval(() => void fn(), ms);
}
export const stopPolling = () => window.clearInterval(poller);

/** An API failure in place of the view's data. */
export const failure = (what: string, message: string) => h('p', { class: 'error', role: 'alert', text: `Could not load ${what}: ${message}` });
