// Airflow instances, queue depths and the last 15 minutes of traffic, refreshed every 5 s.
// A refresh replaces the numbers only: the per-minute table stays open and focus stays put.
import { api, type Status } from './api.js';
import { badge, h, table } from './dom.js';
import { failure, type View } from './shell.js';

export async function showHealth(view: View): Promise<void> {
  const summary = h('div');
  const minutes = h('div');
  const details = h('details', {}, h('summary', { text: 'Per minute, as a table' }), minutes);
  const refresh = async () => {
    const got = await api<Status>('/v1/status');
    if (!got.ok) return void summary.replaceChildren(failure('health', got.message));
    summary.replaceChildren(...parts(got.value));
    minutes.replaceChildren(table('Traffic per minute', ['Minute', 'Received', 'Triggered'], got.value.activity.map((m) => [new Date(m.minute).toLocaleTimeString(), m.received, m.triggered])));
  };
  await refresh();
  view.render('Health', h('p', { class: 'muted', text: 'Refreshed every 5 seconds while this view is open.' }), summary, details);
  view.every(refresh, 5000);
}

function parts(st: Status): HTMLElement[] {
  const minutes = st.activity;
  const peak = Math.max(1, ...minutes.map((m) => Math.max(m.received, m.triggered)));
  const total = (k: 'received' | 'triggered') => minutes.reduce((n, m) => n + m[k], 0);
  return [
    h('h3', { text: 'Airflow' }),
    h(
      'div',
      { class: 'grid' },
      ...Object.entries(st.airflow).map(([name, a]) =>
        h('section', { class: 'card', 'aria-label': `Airflow instance ${name}` }, h('h4', { text: name }), h('dl', {}, h('dt', { text: 'Reachable' }), h('dd', {}, badge(a.reachable ? 'yes' : 'no'), ' ', h('span', { class: 'muted', text: a.detail })), h('dt', { text: 'Circuit' }), h('dd', {}, badge(a.circuit)))),
      ),
    ),
    ...storeParts(st.store),
    h('h3', { text: 'Queue' }),
    h('div', { class: 'grid' }, ...(['pending', 'done', 'dead', 'blocked'] as const).map((k) => h('section', { class: 'card', 'aria-label': `${k} jobs` }, h('div', { class: 'muted', text: k }), h('div', { class: 'big', text: String(st.queue[k]) })))),
    h('h3', { text: `Last ${minutes.length} minutes: ${total('received')} events received, ${total('triggered')} triggers accepted` }),
    h(
      'div',
      { class: 'bars', 'aria-hidden': 'true' },
      ...minutes.map((m) => h('div', { title: `${new Date(m.minute).toLocaleTimeString()}: ${m.received} received, ${m.triggered} triggered` }, bar('', m.received / peak), bar('triggered', m.triggered / peak))),
    ),
    h('p', { class: 'legend' }, h('span', {}, 'blue: events received'), h('span', {}, 'green: triggers accepted by Airflow')),
  ];
}

/** Size, rows per table and the last retention round (README "Retention and storage size"). */
function storeParts(store: Status['store']): HTMLElement[] {
  const prune = store.last_prune;
  const approx = store.rows_estimated ? '≈ ' : '';
  return [
    h('h3', { text: 'Store' }),
    h(
      'div',
      { class: 'grid' },
      h('section', { class: 'card', 'aria-label': 'store size' }, h('div', { class: 'muted', text: store.writable ? 'size (writable)' : 'size (not writable)' }), h('div', { class: 'big', text: store.bytes === undefined ? '?' : megabytes(store.bytes) }), ...(store.writable ? [] : [h('div', { class: 'muted', text: store.detail })])),
      ...Object.entries(store.rows ?? {}).map(([table, n]) => h('section', { class: 'card', 'aria-label': `${table} rows` }, h('div', { class: 'muted', text: `${table} rows` }), h('div', { class: 'big', text: `${approx}${n}` }))),
      h(
        'section',
        { class: 'card', 'aria-label': 'last prune' },
        h('div', { class: 'muted', text: 'last prune' }),
        h('div', { text: prune ? `${new Date(prune.at).toLocaleString()}: ${prune.rows.events} events, ${prune.rows.jobs} jobs, ${prune.rows.attempts} attempts, ${prune.rows.dedupe_keys} expired delivery ids, ${prune.rows.notifications} notifications (${prune.ms} ms)` : 'none yet on this replica' }),
      ),
    ),
  ];
}

function megabytes(n: number): string {
  return n < 1024 * 1024 ? `${(n / 1024).toFixed(0)} KB` : `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/** Heights through the CSSOM: the page's CSP refuses inline style attributes. */
function bar(cls: string, share: number): HTMLElement {
  const el = h('span', { class: cls });
  el.style.height = `${(100 * share).toFixed(1)}%`;
  return el;
}
