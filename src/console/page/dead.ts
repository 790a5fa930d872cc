// Jobs that will not run by themselves: dead letters (gave up, or never rendered) and jobs
// the loop guard blocked. Replay puts one back in the queue and follows it to its end.
import { api, type EventDetail, type Job } from './api.js';
import { badge, h, table, time } from './dom.js';
import { announce, failure, type View } from './shell.js';
import { deadNotifications } from './notifications.js';

export async function showDeadLetters(view: View): Promise<void> {
  const [dead, blocked, notifications] = await Promise.all([jobList('dead', 'Dead letters'), jobList('blocked', 'Blocked jobs'), deadNotifications()]);
  view.render(
    'Dead letters & blocked jobs',
    h('p', { class: 'muted', text: 'Replay sends a job again with the request it rendered when its event arrived (the same dag_run_id, so a run that did happen is not duplicated). A blocked job is replayed without asking the loop guard again.' }),
    dead,
    h('h3', { text: 'Blocked by the loop guard' }),
    blocked,
    notifications,
  );
}

/** One state's jobs, newest first, 100 at a time with a button for the next page. */
async function jobList(state: 'dead' | 'blocked', caption: string): Promise<HTMLElement> {
  const box = h('div');
  const more = h('button', { type: 'button', class: 'secondary', text: `Load more ${caption.toLowerCase()}` });
  let jobs: Job[] = [];
  const load = async (cursor: string | null): Promise<void> => {
    more.disabled = true;
    const page = await api<{ jobs: Job[]; next_cursor: string | null }>(`/v1/jobs?state=${state}&limit=100${cursor ? `&cursor=${cursor}` : ''}`);
    if (!page.ok) return void box.replaceChildren(failure(caption.toLowerCase(), page.message));
    jobs = [...jobs, ...page.value.jobs];
    const next = page.value.next_cursor;
    more.disabled = false;
    more.onclick = () => void load(next);
    box.replaceChildren(jobTable(`${caption} (${jobs.length}${next ? ' shown, more below' : ''})`, jobs), ...(next ? [more] : []));
  };
  await load(null);
  return box;
}

function jobTable(caption: string, jobs: Job[]): HTMLElement {
  return table(
    caption,
    ['Route → DAG', 'State', 'Why', 'Attempts', 'Updated', 'Event', 'Action'],
    jobs.map((j) => {
      const state = h('td', {}, badge(j.state));
      const button = h('button', { type: 'button', text: 'Replay', 'aria-label': `Replay job ${j.route} → ${j.dag_id} of event ${j.event_id}` });
      button.addEventListener('click', () => void replay(j, button, state));
      return [
        `${j.route} → ${j.dag_id}`,
        state,
        h('span', { class: 'mono', text: `${j.block_reason ? `${j.block_reason}: ` : ''}${j.last_error ?? ''}` }),
        j.attempts,
        time(j.updated_at),
        h('a', { href: `#/events/${encodeURIComponent(j.event_id)}`, text: 'open' }),
        button,
      ];
    }),
    'none.',
  );
}

const FOLLOW_MS = 120_000;
/** Slower and slower, so a handful of replays stay far below the admin API's rate limit. */
const FOLLOW_STEPS_MS = [1000, 1000, 2000, 2000, 5000];

async function replay(job: Job, button: HTMLButtonElement, cell: HTMLTableCellElement): Promise<void> {
  const what = `Replay of ${job.route} → ${job.dag_id}`;
  button.disabled = true;
  const result = await api<{ job: Job; replayed: boolean; message?: string }>(`/v1/jobs/${encodeURIComponent(job.id)}/replay`, 'POST');
  if (!result.ok) {
    button.disabled = false;
    return announce(`${what} refused: ${result.message}`, true);
  }
  announce(`${what}: ${result.value.replayed ? 'queued' : (result.value.message ?? 'not replayed')}`);
  cell.replaceChildren(badge(result.value.job.state));
  // Follow the job until it settles, so the operator sees Airflow's verdict here.
  const end = Date.now() + FOLLOW_MS;
  for (let i = 0; Date.now() < end && cell.isConnected; i++) {
    await new Promise((r) => setTimeout(r, FOLLOW_STEPS_MS[Math.min(i, FOLLOW_STEPS_MS.length - 1)]));
    const event = await api<EventDetail>(`/v1/events/${encodeURIComponent(job.event_id)}`);
    const now = event.ok ? event.value.jobs.find((j) => j.id === job.id) : undefined;
    if (!now) continue;
    cell.replaceChildren(badge(now.state));
    if (now.state === 'pending') continue;
    const last = now.attempts.at(-1);
    // Airflow's whole answer is on the event page; the line says what happened.
    const detail = now.state === 'done' ? `Airflow run ${now.dag_run_id ?? ''} is ${now.airflow_state ?? 'accepted'}` : (last?.detail ?? now.last_error ?? '').slice(0, 200);
    button.disabled = false;
    return announce(`${what}: ${now.state} (HTTP ${last?.http_status ?? '—'}; ${detail})`, now.state !== 'done');
  }
  button.disabled = false;
  if (cell.isConnected) announce(`${what}: still pending after ${FOLLOW_MS / 60_000} minutes (Airflow has not taken it yet); open its event to follow the retries`);
}
