import type { AirflowClient } from '../dispatch/airflow.js';
import type { RunObservation, TrackedRun } from './run.js';

/**
 * The state of every tracked run of one instance with one batched request (DESIGN §7):
 * `POST /api/v{1,2}/dags/~/dagRuns/list` for the runs' DAGs, newest first, one page sized to
 * what is open. A run's logical date may be anything a route renders, so runs are not found
 * by date: the list is read newest first until every tracked run is seen, or until a page
 * reaches runs queued before the oldest trigger (then the rest are `missing`). Airflow 3 is
 * also asked only for runs whose conf names planasonix_bridge.
 */
export async function listRuns(client: AirflowClient, api: 'v1' | 'v2', runs: readonly TrackedRun[], signal?: AbortSignal): Promise<{ ok: true; observations: RunObservation[]; requests: number } | { ok: false; detail: string; requests: number }> {
  const wanted = new Map(runs.map((r) => [key(r.dagId, r.dagRunId), r]));
  const oldest = Math.min(...runs.map((r) => r.triggeredAt));
  // A trigger is queued when Airflow accepts it; a minute covers clocks a little apart.
  const floor = oldest - 60_000;
  const pageLimit = Math.min(10_000, Math.max(100, 2 * runs.length));
  const found: RunObservation[] = [];
  let offset = 0;
  let requests = 0;
  for (;;) {
    const body = {
      dag_ids: [...new Set(runs.map((r) => r.dagId))],
      order_by: '-id',
      page_limit: pageLimit,
      page_offset: offset,
      ...(api === 'v2' ? { conf_contains: 'planasonix_bridge' } : {}),
    };
    requests++;
    const answer = await client.call('POST', '/dags/~/dagRuns/list', body, signal);
    if ('kind' in answer) return { ok: false, detail: answer.detail, requests };
    const page = parse(answer.text);
    if (answer.status !== 200 || !page) return { ok: false, detail: `POST /dags/~/dagRuns/list answered ${answer.status}: ${answer.text.slice(0, 200)}`, requests };
    let older = false;
    for (const run of page.dag_runs) {
      if (wanted.delete(key(run.dag_id, run.dag_run_id))) found.push({ dagId: run.dag_id, dagRunId: run.dag_run_id, state: run.state ?? 'queued', startDate: time(run.start_date), endDate: time(run.end_date) });
      const queued = time(run.queued_at ?? null);
      if (queued !== null && queued < floor) older = true;
    }
    offset += page.dag_runs.length;
    if (wanted.size === 0 || older || page.dag_runs.length === 0 || offset >= page.total_entries) break;
  }
  for (const run of wanted.values()) found.push({ dagId: run.dagId, dagRunId: run.dagRunId, state: 'missing', startDate: run.startDate, endDate: run.endDate });
  return { ok: true, observations: found, requests };
}

const key = (dagId: string, runId: string) => `${dagId}\n${runId}`;
const time = (iso: string | null | undefined): number | null => (iso ? Date.parse(iso) : null);

interface Page {
  dag_runs: { dag_id: string; dag_run_id: string; state?: string; start_date?: string | null; end_date?: string | null; queued_at?: string | null }[];
  total_entries: number;
}

function parse(text: string): Page | undefined {
  try {
    const value = JSON.parse(text) as Page;
    return Array.isArray(value?.dag_runs) && typeof value.total_entries === 'number' ? value : undefined;
  } catch {
    return undefined;
  }
}
