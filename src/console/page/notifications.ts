// Outbound notifications (DESIGN §8) in the console: an event's notifications with their
// attempts, and the dead ones with Replay (the same id goes out again, so receivers dedupe).
import { api, type Attempt } from './api.js';
import { badge, h, table, time } from './dom.js';
import { announce, failure } from './shell.js';

export interface Notification {
  id: string;
  target: string;
  type: string;
  state: 'pending' | 'done' | 'dead';
  event_id: string | null;
  attempts: number;
  next_attempt_at: string | null;
  last_error: string | null;
  created_at: string;
  updated_at: string;
}

/** The event page's list: one card per notification, its attempts in a table. */
export function eventNotifications(list: (Omit<Notification, 'attempts'> & { attempts: Attempt[] })[] | undefined): HTMLElement {
  const notes = list ?? [];
  return h(
    'div',
    {},
    h('h3', { text: 'Notifications' }),
    notes.length === 0 ? h('p', { class: 'muted', text: 'No notification was sent about this event.' }) : null,
    ...notes.map((n) =>
      h(
        'section',
        { class: 'card', 'aria-label': `Notification ${n.type} to ${n.target}` },
        h('p', {}, h('strong', { text: `${n.type} → ${n.target}` }), ' ', badge(n.state), ' ', h('span', { class: 'muted mono', text: n.id })),
        n.state === 'pending' && n.next_attempt_at ? h('p', { text: `Next attempt ${time(n.next_attempt_at)}` }) : null,
        n.last_error && n.state !== 'done' ? h('p', { class: 'error', text: n.last_error }) : null,
        n.state === 'dead' ? replayButton(n, null) : null,
        table(
          `Delivery attempts (${n.attempts.length})`,
          ['#', 'Started', 'Took', 'HTTP', 'Outcome', 'Receiver’s answer', 'Next retry'],
          n.attempts.map((a) => [a.n, time(a.started_at), `${a.duration_ms} ms`, a.http_status ?? '—', a.outcome, h('span', { class: 'mono', text: a.detail }), time(a.next_retry_at)]),
          'not attempted yet.',
        ),
      ),
    ),
  );
}

/** Dead notifications, newest first, each with Replay. */
export async function deadNotifications(): Promise<HTMLElement> {
  const box = h('div', {}, h('h3', { text: 'Dead notifications' }));
  const page = await api<{ notifications: Notification[]; next_cursor: string | null }>('/v1/notifications?state=dead&limit=100');
  if (!page.ok) {
    box.append(failure('dead notifications', page.message));
    return box;
  }
  box.append(
    table(
      `Dead notifications (${page.value.notifications.length}${page.value.next_cursor ? ', newest 100' : ''})`,
      ['Type → target', 'State', 'Last error', 'Attempts', 'Updated', 'Event', 'Action'],
      page.value.notifications.map((n) => {
        const state = h('td', {}, badge(n.state));
        return [
          `${n.type} → ${n.target}`,
          state,
          h('span', { class: 'mono', text: n.last_error ?? '' }),
          n.attempts,
          time(n.updated_at),
          n.event_id ? h('a', { href: `#/events/${encodeURIComponent(n.event_id)}`, text: 'open' }) : '—',
          replayButton(n, state),
        ];
      }),
      'none.',
    ),
  );
  return box;
}

function replayButton(n: Notification | (Omit<Notification, 'attempts'> & { attempts: unknown }), cell: HTMLTableCellElement | null): HTMLButtonElement {
  const button = h('button', { type: 'button', text: 'Replay', 'aria-label': `Replay notification ${n.type} to ${n.target}` });
  button.addEventListener('click', async () => {
    button.disabled = true;
    const done = await api<{ notification: Notification; replayed: boolean }>(`/v1/notifications/${encodeURIComponent(n.id)}/replay`, 'POST');
    if (!done.ok) {
      button.disabled = false;
      return announce(`Replay of notification ${n.type} → ${n.target} refused: ${done.message}`, true);
    }
    cell?.replaceChildren(badge(done.value.notification.state));
    announce(`Replay of notification ${n.type} → ${n.target}: queued (the same id ${n.id}, so a receiver that has it already dedupes)`);
  });
  return button;
}
