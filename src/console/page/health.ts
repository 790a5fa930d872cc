// Airflow instances, queue depths and the last 15 minutes of traffic; refreshed every 5 s.
import { api, type Status } from './api.js';
import { badge, h, table } from './dom.js';
import { failure, poll, render } from './shell.js';

export async function showHealth(): Promise<void> {
  const body = h('div');
  const refresh = async () => {
    const got = await api<Status>('/v1/status');
    body.replaceChildren(got.ok ? view(got.value) : failure('health', got.message));
  };
  render('Health', h('p', { class: 'muted', text: 'Refreshed every 5 seconds while this view is open.' }), body);
  await refresh();
  poll(refresh, 5000);
}

function view(st: Status): HTMLElement {
  const minutes = st.activity;
  const peak = Math.max(1, ...minutes.map((m) => Math.max(m.received, m.triggered)));
  const total = (k: 'received' | 'triggered') => minutes.reduce((n, m) => n + m[k], 0);
  return h(
    'div',
    {},
    h('h3', { text: 'Airflow' }),
    h(
      'div',
      { class: 'grid' },
      ...Object.entries(st.airflow).map(([name, a]) =>
        h('section', { class: 'card', 'aria-label': `Airflow instance ${name}` }, h('h4', { text: name }), h('dl', {}, h('dt', { text: 'Reachable' }), h('dd', {}, badge(a.reachable ? 'yes' : 'no'), ' ', h('span', { class: 'muted', text: a.detail })), h('dt', { text: 'Circuit' }), h('dd', {}, badge(a.circuit)))),
      ),
    ),
    h('h3', { text: 'Queue' }),
    h('div', { class: 'grid' }, ...(['pending', 'done', 'dead', 'blocked'] as const).map((k) => h('section', { class: 'card', 'aria-label': `${k} jobs` }, h('div', { class: 'muted', text: k }), h('div', { class: 'big', text: String(st.queue[k]) })))),
    h('h3', { text: `Last ${minutes.length} minutes: ${total('received')} events received, ${total('triggered')} triggers accepted` }),
    h(
      'div',
      { class: 'bars', 'aria-hidden': 'true' },
      ...minutes.map((m) => h('div', { title: `${new Date(m.minute).toLocaleTimeString()}: ${m.received} received, ${m.triggered} triggered` }, bar('', m.received / peak), bar('triggered', m.triggered / peak))),
    ),
    h('p', { class: 'legend' }, h('span', {}, 'blue: events received'), h('span', {}, 'green: triggers accepted by Airflow')),
    h('details', {}, h('summary', { text: 'Per minute, as a table' }), table('Traffic per minute', ['Minute', 'Received', 'Triggered'], minutes.map((m) => [new Date(m.minute).toLocaleTimeString(), m.received, m.triggered]))),
  );
}

/** Heights through the CSSOM: the page's CSP refuses inline style attributes. */
function bar(cls: string, share: number): HTMLElement {
  const el = h('span', { class: cls });
  el.style.height = `${(100 * share).toFixed(1)}%`;
  return el;
}
