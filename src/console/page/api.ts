// The admin API, with the operator's token from session storage: gone when the tab closes,
// never in a URL (so not in history, logs or Referer).

const KEY = 'bridge-admin-token';

export const token = {
  get: () => sessionStorage.getItem(KEY),
  set: (t: string) => sessionStorage.setItem(KEY, t),
  clear: () => sessionStorage.removeItem(KEY),
};

export type ApiResult<T> = { ok: true; value: T } | { ok: false; status: number; message: string };

/** Called on 401: the page forgets the token and shows the login with this message. */
let onUnauthorized: (message: string) => void = () => {};
export const whenUnauthorized = (fn: (message: string) => void) => (onUnauthorized = fn);

export async function api<T>(path: string, method: 'GET' | 'POST' | 'DELETE' = 'GET'): Promise<ApiResult<T>> {
  let res: Response;
  try {
    res = await fetch(path, { method, headers: { authorization: `Bearer ${token.get() ?? ''}`, accept: 'application/json' }, cache: 'no-store' });
  } catch (err) {
    return { ok: false, status: 0, message: `the bridge did not answer: ${(err as Error).message}` };
  }
  const body = (await res.json().catch(() => ({}))) as { error?: string; message?: string };
  if (res.ok) return { ok: true, value: body as T };
  const message = `${res.status} ${body.error ?? res.statusText}: ${body.message ?? 'no detail'}`;
  if (res.status === 401) {
    token.clear();
    onUnauthorized(message);
  }
  return { ok: false, status: res.status, message };
}

// --- what the admin API answers (src/admin/routes.ts, src/openapi.json) ------------------

export interface EventSummary {
  id: string;
  source: string;
  event_id: string;
  type: string;
  pipeline_id: string;
  run_id: string;
  status: 'routed' | 'unrouted';
  matched_routes: string[];
  received_at: string;
}

export interface Attempt {
  n: number;
  started_at: string;
  duration_ms: number;
  http_status: number | null;
  outcome: string;
  detail: string;
  next_retry_at: string | null;
}

export interface Job {
  id: string;
  event_id: string;
  route: string;
  airflow: string;
  dag_id: string;
  target: string;
  dag_run_id: string | null;
  state: 'pending' | 'done' | 'dead' | 'blocked';
  block_reason: string | null;
  attempts: number;
  next_attempt_at: string | null;
  last_error: string | null;
  /** Airflow's state of the run in its answer to the trigger (usually queued); see `run` for now. */
  airflow_state: string | null;
  updated_at: string;
  /** The triggered DAG run as followed since (DESIGN §7); null for asset events and untriggered jobs. */
  run: JobRun | null;
}

export type RunState = 'queued' | 'running' | 'success' | 'failed' | 'missing';

export interface JobRun {
  /** Null until Airflow has been asked about the run; `missing`: Airflow no longer knows it. */
  state: RunState | (string & {}) | null;
  start_date: string | null;
  end_date: string | null;
  duration_s: number | null;
  /** The run's page in Airflow's UI (from the instance's configured URL). */
  url: string | null;
  checked_at: string | null;
  /** The route's `expect` missed: not started, or not finished, in time. */
  sla_missed: 'started' | 'finished' | null;
  /** Still followed. */
  tracking: boolean;
}

export interface EventDetail extends EventSummary {
  body: unknown;
  routing: { route: string; matched: boolean; reason?: string }[];
  jobs: (Omit<Job, 'attempts'> & { attempts: Attempt[] })[];
}

export interface Explanation {
  routes: { route: string; matched: boolean; reason?: string; target?: string; decision?: string; render_error?: string; block?: { reason: string; detail: string } }[];
  would_trigger: number;
}

export interface GraphView {
  nodes: { id: string; kind: 'pipeline' | 'dag' | 'asset' | 'match'; label: string }[];
  edges: { from: string; to: string; kind: 'route' | 'edge' | 'learned'; route?: string; assumption?: string; cycle: boolean; breaker_open_until?: string }[];
  cycles: { path: string; nodes: string[]; bounded_by: string }[];
  breakers: { key: string; source_pipeline: string; target: string; open_until: string; drawn: boolean }[];
  max_depth: number;
}

type PrunedTable = 'events' | 'jobs' | 'attempts' | 'dedupe_keys' | 'notifications' | 'notification_attempts';

export interface Status {
  airflow: Record<string, { reachable: boolean; detail: string; circuit: string }>;
  queue: Record<'pending' | 'done' | 'dead' | 'blocked', number>;
  activity: { minute: string; received: number; triggered: number }[];
  store: {
    writable: boolean;
    detail: string;
    bytes?: number;
    rows?: Record<PrunedTable, number>;
    rows_estimated?: boolean;
    last_prune: { at: string; rows: Record<PrunedTable, number>; batches: number; ms: number } | null;
  };
}
