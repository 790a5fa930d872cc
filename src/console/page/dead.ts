// Jobs that will not run by themselves: dead letters (gave up, or never rendered) and jobs
// the loop guard blocked. Replay puts one back in the queue and follows it to its end.
import { api, type EventDetail, type Job } from './api.js';
import { badge, h, table, time } from './dom.js';
import { announce, failure, render } from './shell.js';

export async function showDeadLetters(): Promise<void> {
  const [dead, blocked] = await Promise.all([api<{ jobs: Job[] }>('/v1/jobs?state=dead&limit=200'), api<{ jobs: Job[] }>('/v1/jobs?state=blocked&limit=200')]);
  render(
    'Dead letters & blocked jobs',
    h('p', { class: 'muted', text: 'Replay sends a job again with the request it rendered when its event arrived (the same dag_run_id, so a run that did happen is not duplicated). A blocked job is replayed without asking the loop guard again.' }),
    dead.ok ? jobTable('Dead letters', dead.value.jobs) : failure('dead letters', dead.message),
    h('h3', { text: 'Blocked by the loop guard' }),
    blocked.ok ? jobTable('Blocked jobs', blocked.value.jobs) : failure('blocked jobs', blocked.message),
  );
}

function jobTable(caption: string, jobs: Job[]): HTMLElement {
  return table(
    `${caption} (${jobs.length})`,
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

async function replay(job: Job, button: HTMLButtonElement, cell: HTMLTableCellElement): Promise<void> {
  button.disabled = true;
  const result = await api<{ job: Job; replayed: boolean; message?: string }>(`/v1/jobs/${encodeURIComponent(job.id)}/replay`, 'POST');
  if (!result.ok) {
    button.disabled = false;
    return announce(`Replay of ${job.route} → ${job.dag_id} refused: ${result.message}`, true);
  }
  announce(`Replay of ${job.route} → ${job.dag_id}: ${result.value.replayed ? 'queued' : (result.value.message ?? 'not replayed')}`);
  cell.replaceChildren(badge(result.value.job.state));
  // Follow the job until it settles, so the operator sees Airflow's verdict here.
  const end = Date.now() + FOLLOW_MS;
  while (Date.now() < end && cell.isConnected) {
    await new Promise((r) => setTimeout(r, 1000));
    const event = await api<EventDetail>(`/v1/events/${encodeURIComponent(job.event_id)}`);
    const now = event.ok ? event.value.jobs.find((j) => j.id === job.id) : undefined;
    if (!now) continue;
    cell.replaceChildren(badge(now.state));
    if (now.state !== 'pending') {
      const last = now.attempts.at(-1);
      // Airflow's whole answer is on the event page; the line says what happened.
      const detail = now.state === 'done' ? `Airflow run ${now.dag_run_id ?? ''} is ${now.airflow_state ?? 'accepted'}` : (last?.detail ?? now.last_error ?? '').slice(0, 200);
      return announce(`Replay of ${job.route} → ${job.dag_id}: ${now.state} (HTTP ${last?.http_status ?? '—'}; ${detail})`, now.state !== 'done');
    }
  }
}
