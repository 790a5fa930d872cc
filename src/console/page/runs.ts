// The DAG runs the bridge triggered, as followed to their end (DESIGN §7): a job's run on its
// event's page, and a view of the runs that need a look (failed, gone from Airflow, late).
import { api, type Job, type JobRun, type RunState } from './api.js';
import { badge, h, table, time } from './dom.js';
import { failure, type View } from './shell.js';

/** "42.5 s", "3 min 5 s", "2 h 4 min": how long the run took in Airflow. */
export function duration(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return '—';
  if (seconds < 60) return `${Math.round(seconds * 10) / 10} s`;
  const s = Math.round(seconds);
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  return hours > 0 ? `${hours} h ${minutes} min` : `${minutes} min ${s % 60} s`;
}

/** The SLA mark: says which deadline was missed in words (the colour only repeats it). */
export function slaMark(run: JobRun): HTMLElement {
  if (run.sla_missed === 'started') return h('span', { class: 'state state-sla-missed', text: 'SLA missed: not started in time' });
  if (run.sla_missed === 'finished') return h('span', { class: 'state state-sla-missed', text: 'SLA missed: not finished in time' });
  return h('span', { class: 'muted', text: 'no SLA missed' });
}

/**
 * A link to the run's page in Airflow. The URL comes from the bridge's config, but only an
 * http(s) URL becomes a link (never `javascript:` or `data:`); anything else is shown as text.
 */
export function airflowLink(run: JobRun, text: string): HTMLElement {
  if (!run.url) return h('span', { class: 'muted', text: 'no link' });
  let safe = false;
  try {
    const { protocol } = new URL(run.url);
    safe = protocol === 'https:' || protocol === 'http:';
  } catch {
    safe = false;
  }
  if (!safe) return h('span', { class: 'mono', title: 'not an http(s) URL, so not a link', text: run.url });
  return h('a', { href: run.url, target: '_blank', rel: 'noopener noreferrer', text });
}

const FINAL = new Set(['success', 'failed', 'missing']);

/** Whether the bridge still follows the run, in words. */
function following(run: JobRun): string {
  if (run.state !== null && FINAL.has(run.state)) return run.state === 'missing' ? 'Airflow no longer knows this run (deleted?)' : 'ended';
  if (run.tracking) return run.checked_at ? `followed, last checked ${time(run.checked_at)}` : 'followed, not checked yet';
  return 'no longer followed (tracking off, or past its horizon)';
}

/** The run of one job, for its event's page; null when the job triggered no DAG run. */
export function runDetails(j: Pick<Job, 'run' | 'airflow_state' | 'dag_run_id'>): HTMLElement | null {
  const run = j.run;
  if (!run) return null;
  return h(
    'dl',
    { class: 'run' },
    ...([
      ['Run in Airflow', run.state ? badge(run.state) : h('span', { class: 'muted', text: 'not seen yet' })],
      ['Followed', following(run)],
      ['Started', time(run.start_date)],
      ['Ended', time(run.end_date)],
      ['Duration', duration(run.duration_s)],
      ['SLA', slaMark(run)],
      ['Airflow', airflowLink(run, `Open run ${j.dag_run_id ?? ''} in Airflow`)],
      ...(j.airflow_state ? ([['State when triggered', j.airflow_state]] as const) : []),
    ] as const).flatMap(([k, v]) => [h('dt', { text: k }), h('dd', {}, v)]),
  );
}

type JobPage = { jobs: Job[]; next_cursor: string | null };
const jobsIn = (state: RunState, cursor: string | null = null) => api<JobPage>(`/v1/jobs?run_state=${state}&limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);

export async function showRuns(view: View): Promise<void> {
  const [failed, missing, late] = await Promise.all([runList('failed', 'Failed runs'), runList('missing', 'Runs Airflow no longer knows'), slaMissed()]);
  view.render(
    'Failed & late runs',
    h('p', { class: 'muted', text: 'DAG runs the bridge triggered and followed to their end: those that failed, those Airflow no longer knows (deleted), and those that missed their route’s expected start or finish time (expect: started_within / finished_within).' }),
    h('div', { class: 'runs' }, h('h3', { text: 'Failed in Airflow' }), failed, h('h3', { text: 'Deleted from Airflow' }), missing, h('h3', { text: 'Missed their SLA' }), late),
  );
}

/** One run state's jobs, newest first, 100 at a time with a button for the next page. */
async function runList(state: RunState, caption: string): Promise<HTMLElement> {
  const box = h('div');
  const more = h('button', { type: 'button', class: 'secondary', text: `Load more ${caption.toLowerCase()}` });
  let jobs: Job[] = [];
  const load = async (cursor: string | null): Promise<void> => {
    more.disabled = true;
    const page = await jobsIn(state, cursor);
    if (!page.ok) return void box.replaceChildren(failure(caption.toLowerCase(), page.message));
    jobs = [...jobs, ...page.value.jobs];
    const next = page.value.next_cursor;
    more.disabled = false;
    more.onclick = () => void load(next);
    box.replaceChildren(runTable(`${caption} (${jobs.length}${next ? ' shown, more below' : ''})`, jobs), ...(next ? [more] : []));
  };
  await load(null);
  return box;
}

/**
 * The admin API filters by run state, not by SLA: the newest 100 runs of each state are read
 * and those marked late kept, so a very old miss may be left out (the page says so).
 */
async function slaMissed(): Promise<HTMLElement> {
  const states: RunState[] = ['queued', 'running', 'success', 'failed', 'missing'];
  const pages = await Promise.all(states.map((s) => jobsIn(s)));
  const broken = pages.find((p) => !p.ok);
  if (broken && !broken.ok) return failure('runs that missed their SLA', broken.message);
  const late = pages
    .flatMap((p) => (p.ok ? p.value.jobs : []))
    .filter((j) => j.run?.sla_missed)
    .sort((a, b) => b.updated_at.localeCompare(a.updated_at));
  const capped = pages.some((p) => p.ok && p.value.next_cursor !== null);
  return h(
    'div',
    {},
    runTable(`Runs that missed their SLA (${late.length})`, late),
    capped ? h('p', { class: 'muted', text: 'Among the newest 100 runs in each state; older runs are not searched here.' }) : null,
  );
}

function runTable(caption: string, jobs: Job[]): HTMLElement {
  return table(
    caption,
    ['Route → DAG', 'Run', 'Duration', 'SLA', 'Ended or last checked', 'Event', 'Airflow'],
    jobs.flatMap((j) => {
      const run = j.run;
      if (!run) return [];
      return [[
        `${j.route} → ${j.dag_id}`,
        run.state ? badge(run.state) : h('span', { class: 'muted', text: 'not seen yet' }),
        duration(run.duration_s),
        slaMark(run),
        time(run.end_date ?? run.checked_at),
        h('a', { href: `#/events/${encodeURIComponent(j.event_id)}`, 'aria-label': `open event of ${j.route} run ${j.dag_run_id ?? ''}`, text: 'open' }),
        airflowLink(run, j.dag_run_id ?? 'open in Airflow'),
      ]];
    }),
    'none.',
  );
}
