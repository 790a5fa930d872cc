// The frame every view draws into. Each view gets a View: once the operator has moved on
// (another view, sign-out, a 401), its late answers and its refreshes are dropped, so a slow
// request can never paint over the page that replaced it.
import { h } from './dom.js';

const main = document.getElementById('main')!;
const status = document.getElementById('status')!;

/** Polite announcements (replay results, errors), read out by screen readers. */
export function announce(message: string, isError = false): void {
  status.textContent = message;
  status.className = isError ? 'error' : '';
}

export interface View {
  live(): boolean;
  /** Replaces the page (if still current) and moves focus to its heading. */
  render(title: string, ...content: (Node | null)[]): void;
  /** Runs `fn` again `ms` after each run ends, while the view is current and the tab visible. */
  every(fn: () => Promise<void>, ms: number): void;
}

let current = 0;

export function openView(): View {
  const id = ++current;
  const live = () => id === current;
  return {
    live,
    render(title, ...content) {
      if (!live()) return;
      const heading = h('h2', { text: title, tabindex: '-1' });
      main.replaceChildren(heading, ...content.filter((c): c is Node => c !== null));
      document.title = `${title} · Bridge console`;
      heading.focus();
    },
    every(fn, ms) {
      const next = () =>
        setTimeout(async () => {
          if (!live()) return;
          if (!document.hidden) await fn();
          next();
        }, ms);
      next();
    },
  };
}

/** An API failure in place of the view's data. */
export const failure = (what: string, message: string) => h('p', { class: 'error', role: 'alert', text: `Could not load ${what}: ${message}` });
