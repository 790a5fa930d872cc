// Events, newest first, with filters; one event with its body, jobs, attempts and "why not".
import { api, type EventDetail, type EventSummary, type Explanation } from './api.js';
import { badge, h, table, time } from './dom.js';
import { runDetails } from './runs.js';
import { announce, failure, type View } from './shell.js';
import { eventNotifications } from './notifications.js';

interface Filters {
  status: string;
  type: string;
  pipeline_id: string;
  since: string;
}
let filters: Filters = { status: '', type: '', pipeline_id: '', since: '' };

export async function showEvents(view: View): Promise<void> {
  const rows = h('div');
  const more = h('button', { type: 'button', class: 'secondary', text: 'Load older events', hidden: true });
  let cursor: string | null = null;
  let shown: EventSummary[] = [];
  // Only the latest request's answer is drawn: a page of an older filter, or a second click
  // on "Load older", must not add its rows.
  let latest = 0;

  const load = async (append: boolean) => {
    const mine = ++latest;
    more.disabled = true;
    const q = new URLSearchParams({ limit: '50' });
    // datetime-local is the browser's local time; Date turns it into the instant it means.
    for (const [k, v] of Object.entries(filters)) if (v) q.set(k, k === 'since' ? new Date(v).toISOString() : v);
    if (append && cursor) q.set('cursor', cursor);
    const page = await api<{ events: EventSummary[]; next_cursor: string | null }>(`/v1/events?${q}`);
    if (mine !== latest) return;
    more.disabled = false;
    if (!page.ok) return rows.replaceChildren(failure('events', page.message));
    shown = append ? [...shown, ...page.value.events] : page.value.events;
    cursor = page.value.next_cursor;
    more.hidden = cursor === null;
    rows.replaceChildren(
      table(
        `${shown.length} event${shown.length === 1 ? '' : 's'}${cursor ? ' (more below)' : ''}`,
        ['Received', 'Type', 'Pipeline', 'Outcome', 'Routes', 'Event'],
        shown.map((e) => [
          time(e.received_at),
          e.type,
          h('span', { class: 'mono', text: e.pipeline_id }),
          badge(e.status),
          e.matched_routes.length > 0 ? e.matched_routes.join(', ') : h('span', { class: 'muted', text: 'none matched' }),
          h('a', { href: `#/events/${encodeURIComponent(e.id)}`, class: 'mono', text: e.event_id }),
        ]),
        Object.values(filters).some(Boolean) ? 'no events match these filters.' : 'no events received yet.',
      ),
    );
  };

  const field = (name: keyof Filters, label: string, input: HTMLInputElement | HTMLSelectElement) => {
    input.id = `filter-${name}`;
    input.value = filters[name];
    return h('label', { for: input.id }, label, input);
  };
  const statusSelect = h('select', {}, h('option', { value: '', text: 'any' }), h('option', { value: 'routed', text: 'routed' }), h('option', { value: 'unrouted', text: 'unrouted' }));
  const form = h(
    'form',
    { class: 'filters', 'aria-label': 'Filter events' },
    field('status', 'Outcome', statusSelect),
    field('type', 'Type', h('input', { placeholder: 'run.succeeded' })),
    field('pipeline_id', 'Pipeline id', h('input', { placeholder: 'pl_…' })),
    field('since', 'Received since (your local time)', h('input', { type: 'datetime-local', step: '1' })),
    h('button', { type: 'submit', text: 'Apply' }),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const read = (name: keyof Filters) => (form.querySelector(`#filter-${name}`) as HTMLInputElement).value.trim();
    filters = { status: read('status'), type: read('type'), pipeline_id: read('pipeline_id'), since: read('since') };
    void load(false);
  });
  more.addEventListener('click', () => void load(true));
  view.render('Events', form, rows, more);
  await load(false);
}

export async function showEventDetail(view: View, id: string): Promise<void> {
  const got = await api<EventDetail>(`/v1/events/${encodeURIComponent(id)}`);
  if (!got.ok) return view.render('Event', h('p', {}, h('a', { href: '#/events', text: '← All events' })), failure(`event ${id}`, got.message));
  const e = got.value;
  const why = h('div', {}, h('p', { class: 'muted', text: 'Asking the bridge…' }));
  view.render(
    `Event ${e.event_id}`,
    h('p', {}, h('a', { href: '#/events', text: '← All events' })),
    h(
      'div',
      { class: 'card' },
      h(
        'dl',
        {},
        ...([
          ['Outcome', badge(e.status)],
          ['Type', e.type],
          ['Pipeline', h('span', { class: 'mono', text: e.pipeline_id })],
          ['Planasonix run', h('span', { class: 'mono', text: e.run_id })],
          ['Source', e.source],
          ['Received', time(e.received_at)],
          ['Stored id', h('span', { class: 'mono', text: e.id })],
        ] as const).flatMap(([k, v]) => [h('dt', { text: k }), h('dd', {}, v)]),
      ),
    ),
    h('h3', { text: 'Jobs' }),
    e.jobs.length === 0 ? h('p', { class: 'muted', text: 'No route matched, so no job was created. See "Why (not)" below.' }) : null,
    ...e.jobs.map(jobSection),
    eventNotifications((e as EventDetail & { notifications?: Parameters<typeof eventNotifications>[0] }).notifications),
    h('h3', { text: 'Routing when it arrived' }),
    table('Decisions at receipt: matches and near misses (routes that could not match are left out; see Why (not) below)', ['Route', 'Matched', 'Why not'], e.routing.map((d) => [d.route, d.matched ? 'yes' : 'no', d.reason ?? ''])),
    h('h3', { text: 'Why (not), with the running config' }),
    why,
    h('h3', { text: 'Body' }),
    h('pre', { class: 'mono', 'aria-label': 'Event body', text: typeof e.body === 'string' ? e.body : JSON.stringify(e.body, null, 2) }),
  );
  const x = await api<Explanation>(`/v1/events/${encodeURIComponent(id)}/explain`);
  if (!x.ok) return void why.replaceChildren(failure('the explanation', x.message));
  // Routes that match now but have no job (added or fixed since the event arrived): redrive
  // creates exactly those; routes that already have a job are left as they are.
  const missing = x.value.routes.filter((r) => r.matched && !e.jobs.some((j) => j.route === r.route)).map((r) => r.route);
  const redrive = h('button', { type: 'button', text: `Redrive: create jobs for ${missing.join(', ')}` });
  redrive.addEventListener('click', async () => {
    redrive.disabled = true;
    const done = await api<{ created: { route: string; state: string }[] }>(`/v1/events/${encodeURIComponent(id)}/redrive`, 'POST');
    if (!done.ok) {
      redrive.disabled = false;
      return announce(`Redrive refused: ${done.message}`, true);
    }
    await showEventDetail(view, id);
    announce(`Redrive created ${done.value.created.length} job(s): ${done.value.created.map((c) => `${c.route} (${c.state})`).join(', ') || 'none'}`);
  });
  why.replaceChildren(
    table(
      `${x.value.would_trigger} trigger(s) if it arrived now`,
      ['Route', 'Matched', 'Decision', 'Why'],
      x.value.routes.map((r) => [r.route, r.matched ? 'yes' : 'no', r.decision ?? '—', r.reason ?? r.render_error ?? (r.block ? `${r.block.reason}: ${r.block.detail}` : r.target ? `→ ${r.target}` : '')]),
    ),
    ...(missing.length > 0 ? [h('p', { text: 'The running config matches routes this event has no job for.' }), redrive] : []),
  );
}

function jobSection(j: EventDetail['jobs'][number]): HTMLElement {
  return h(
    'section',
    { class: 'card', 'aria-label': `Job for route ${j.route}` },
    h('p', {}, h('strong', { text: `${j.route} → ${j.dag_id}` }), ' ', badge(j.state), ' ', h('span', { class: 'muted mono', text: j.dag_run_id ?? '' })),
    j.state === 'pending' && j.next_attempt_at ? h('p', { text: `Next attempt ${time(j.next_attempt_at)}` }) : null,
    j.last_error ? h('p', { class: j.state === 'done' ? 'muted' : 'error', text: `${j.block_reason ? `blocked (${j.block_reason}): ` : ''}${j.last_error}` }) : null,
    runDetails(j),
    table(
      `Attempts (${j.attempts.length})`,
      ['#', 'Started', 'Took', 'HTTP', 'Outcome', 'Airflow’s answer', 'Next retry'],
      j.attempts.map((a) => [a.n, time(a.started_at), `${a.duration_ms} ms`, a.http_status ?? '—', a.outcome, h('span', { class: 'mono', text: a.detail }), time(a.next_retry_at)]),
      'not attempted yet.',
    ),
  );
}
