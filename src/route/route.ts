import type { RouteConfig } from '../config/schema.js';
import type { PlanasonixEvent } from '../event/schema.js';
import { routeIndex } from './candidates.js';
import { sanitiseRunId } from './run-id.js';
import type { Scope } from './template.js';

/** Why a route did or did not match; kept for explain and logs. */
export interface RouteDecision {
  route: string;
  matched: boolean;
  /** For a miss, the first test that failed; for a hit, empty. */
  reason?: string;
}

/** The exact body sent to `POST /dags/{dag_id}/dagRuns` (DESIGN §5: no other keys). */
export interface TriggerRequest {
  dag_run_id: string;
  logical_date: string | null;
  conf: Record<string, unknown>;
  note: string | null;
}

/** An asset (Airflow 2: dataset) event: the asset by uri or id, and its `extra`. */
export interface AssetRequest {
  asset: { uri: string } | { asset_id: number };
  extra: Record<string, unknown>;
}

export type JobRequest = TriggerRequest | AssetRequest;

export const isAssetRequest = (r: JobRequest): r is AssetRequest => 'asset' in r;

export interface PlannedJob {
  route: string;
  airflow: string;
  /** The DAG for a DAG run; empty for an asset event. */
  dagId: string;
  /** `airflow:<dag_id>` or `asset:<uri or id>`: a node of the loop guard's graph. */
  target: string;
  /** Undefined when rendering failed: the job is stored dead with `error`. */
  request?: JobRequest;
  error?: string;
}

export interface Routed {
  decisions: RouteDecision[];
  jobs: PlannedJob[];
}

const ISO_WITH_ZONE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/;

const isScalar = (v: unknown): v is string | number | boolean => typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';
const describeValue = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'an array' : `an ${typeof v}`);

/**
 * `all` decides every route (explain, redrive); `near-misses` only those the route index
 * could not rule out (ingest stores these: what it keeps per event does not grow with the
 * config, and explain answers for the others on demand). Both give the same jobs.
 */
export function routeEvent(event: PlanasonixEvent, source: string, routes: readonly RouteConfig[], decide: 'all' | 'near-misses' = 'all'): Routed {
  const decisions: RouteDecision[] = [];
  const jobs: PlannedJob[] = [];
  for (const route of decide === 'all' ? routes : routeIndex(routes).candidates(event)) {
    const miss = firstMiss(event, route);
    decisions.push(miss === undefined ? { route: route.name, matched: true } : { route: route.name, matched: false, reason: miss });
    if (miss === undefined) jobs.push(planJob(event, source, route));
  }
  return { decisions, jobs };
}

function firstMiss(event: PlanasonixEvent, route: RouteConfig): string | undefined {
  for (const test of route.match.tests) {
    const value = test.read(event);
    if (value === undefined) return `${test.field} is absent (route wants ${JSON.stringify(test.pattern)})`;
    if (!test.test(value)) return `${test.field} is ${JSON.stringify(value)}, route wants ${JSON.stringify(test.pattern)}`;
  }
  if (route.match.where) {
    const result = route.match.where.evaluate({ event, data: event.data });
    if (!result.ok) return `${result.message} (${route.match.where.text})`;
    if (!result.value) return `where is false: ${route.match.where.text}`;
  }
  return undefined;
}

function planJob(event: PlanasonixEvent, source: string, route: RouteConfig): PlannedJob {
  const t = route.target;
  const scope: Scope = { event, data: event.data, route: { name: route.name, airflow: t.airflow, ...(t.kind === 'dag_run' ? { dag_id: t.dag_id } : {}) }, source: { name: source } };
  return t.kind === 'dag_run' ? planDagRun(route.name, t, scope) : planAssetEvent(route.name, t, scope);
}

type Target<K> = Extract<RouteConfig['target'], { kind: K }>;

function planDagRun(route: string, t: Target<'dag_run'>, scope: Scope): PlannedJob {
  const base = { route, airflow: t.airflow, dagId: t.dag_id, target: `airflow:${t.dag_id}` };
  const conf = t.conf.render(scope);
  if (!conf.ok) return { ...base, error: `conf: ${conf.message}` };
  const runId = t.dag_run_id.render(scope);
  if (!runId.ok) return { ...base, error: `dag_run_id: ${runId.message}` };
  if (!isScalar(runId.value)) return { ...base, error: `dag_run_id: rendered to ${describeValue(runId.value)}; use a path to a string or number` };
  const note = t.note?.render(scope) ?? { ok: true as const, value: null };
  if (!note.ok) return { ...base, error: `note: ${note.message}` };
  if (note.value !== null && !isScalar(note.value)) return { ...base, error: `note: rendered to ${describeValue(note.value)}; use a path to a string or number` };

  let logicalDate: string | null = null;
  if (t.logical_date) {
    const rendered = t.logical_date.render(scope);
    if (!rendered.ok) return { ...base, error: `logical_date: ${rendered.message}` };
    // ISO 8601 with a zone only: anything else would be read in the machine's local time.
    const text = typeof rendered.value === 'string' ? rendered.value : '';
    const date = ISO_WITH_ZONE.test(text) ? new Date(text) : undefined;
    if (!date || Number.isNaN(date.getTime())) return { ...base, error: `logical_date: ${JSON.stringify(rendered.value)} is not an ISO 8601 date-time with a zone` };
    logicalDate = date.toISOString();
  }

  return {
    ...base,
    request: {
      dag_run_id: sanitiseRunId(String(runId.value)),
      logical_date: logicalDate,
      conf: conf.value as Record<string, unknown>,
      note: note.value === null ? null : String(note.value),
    },
  };
}

function planAssetEvent(route: string, t: Target<'asset_event'>, scope: Scope): PlannedJob {
  const base = { route, airflow: t.airflow, dagId: '' };
  const extra = t.extra.render(scope);
  if (t.asset_id !== undefined) {
    const ided = { ...base, target: `asset:${t.asset_id}` };
    return extra.ok ? { ...ided, request: { asset: { asset_id: t.asset_id }, extra: extra.value as Record<string, unknown> } } : { ...ided, error: `extra: ${extra.message}` };
  }
  const uri = t.uri!.render(scope);
  const target = `asset:${uri.ok && isScalar(uri.value) ? String(uri.value) : t.uri!.text}`;
  if (!uri.ok) return { ...base, target, error: `uri: ${uri.message}` };
  if (!isScalar(uri.value)) return { ...base, target, error: `uri: rendered to ${describeValue(uri.value)}` };
  if (!extra.ok) return { ...base, target, error: `extra: ${extra.message}` };
  return { ...base, target, request: { asset: { uri: String(uri.value) }, extra: extra.value as Record<string, unknown> } };
}
