// Row shapes and their mapping to the store's types, shared by SQLite (JSON kept as text)
// and PostgreSQL (JSONB arrives parsed).
import { isAssetRequest, type JobRequest, type RouteDecision } from '../route/route.js';
import type { Activity, Attempt, ExportedEvent, AttemptOutcome, EventStatus, Job, JobState, JobUpdate, NewJob, StoredEvent } from './types.js';
import type { RunVerdict, SlaKind, TrackedRun } from '../track/run.js';
import type { Block, BlockReason, Lineage } from '../guard/lineage.js';

const json = <T>(value: string | T): T => (typeof value === 'string' ? (JSON.parse(value) as T) : value);

export interface EventRow {
  seq: number;
  id: string;
  source: string;
  delivery_id: string;
  scheme: string;
  event_id: string;
  type: string;
  pipeline_id: string;
  run_id: string;
  status: EventStatus;
  headers: string | Record<string, string>;
  body: Buffer;
  received_at: string | Date;
  routing: string | RouteDecision[];
}

export interface JobRow {
  id: string;
  event_id: string;
  route: string;
  airflow: string;
  dag_id: string;
  dag_run_id: string | null;
  request: string | JobRequest | null;
  state: JobState;
  source_pipeline: string;
  target: string;
  lineage: string | Lineage;
  block_reason: BlockReason | null;
  attempts: number;
  next_attempt_at: number;
  lease_owner: string | null;
  lease_until: number | null;
  last_error: string | null;
  airflow_state: string | null;
  received_at: number;
  created_at: number;
  updated_at: number;
  done_at: number | null;
  run_state: string | null;
  run_start: number | null;
  run_end: number | null;
  run_url: string | null;
  run_checked_at: number | null;
  run_open: number | boolean;
  sla_missed: SlaKind | null;
}

export interface AttemptRow {
  job_id: string;
  n: number;
  started_at: number;
  duration_ms: number;
  http_status: number | null;
  outcome: AttemptOutcome;
  detail: string;
  next_retry_at: number | null;
}

export function toEvent(row: EventRow): StoredEvent {
  return {
    seq: row.seq,
    id: row.id,
    source: row.source,
    deliveryId: row.delivery_id,
    scheme: row.scheme,
    eventId: row.event_id,
    type: row.type,
    pipelineId: row.pipeline_id,
    runId: row.run_id,
    status: row.status,
    headers: json(row.headers),
    body: row.body,
    receivedAt: new Date(row.received_at),
    routing: json(row.routing),
  };
}

export function toJob(row: JobRow): Job {
  return {
    id: row.id,
    eventId: row.event_id,
    route: row.route,
    airflow: row.airflow,
    dagId: row.dag_id,
    dagRunId: row.dag_run_id,
    request: row.request === null ? null : json(row.request),
    state: row.state,
    sourcePipeline: row.source_pipeline,
    target: row.target,
    lineage: json(row.lineage),
    blockReason: row.block_reason,
    attempts: row.attempts,
    nextAttemptAt: row.next_attempt_at,
    lastError: row.last_error,
    airflowState: row.airflow_state,
    receivedAt: row.received_at,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    doneAt: row.done_at,
    run:
      row.state === 'done' && row.dag_id !== ''
        ? { state: row.run_state, startDate: row.run_start, endDate: row.run_end, url: row.run_url, checkedAt: row.run_checked_at, slaMissed: row.sla_missed, open: Boolean(row.run_open) }
        : null,
  };
}

/** A tracked run as the stores read it (`jobs` columns). */
export function toTrackedRun(row: JobRow): TrackedRun {
  return {
    jobId: row.id,
    eventId: row.event_id,
    route: row.route,
    airflow: row.airflow,
    dagId: row.dag_id,
    dagRunId: row.dag_run_id ?? '',
    triggeredAt: row.done_at ?? row.updated_at,
    receivedAt: row.received_at,
    state: row.run_state,
    startDate: row.run_start,
    endDate: row.run_end,
    slaMissed: row.sla_missed,
  };
}

/** The job columns a run verdict sets: run_state, run_start, run_end, run_open (as 0/1), run_checked_at. */
export function runUpdateValues(verdict: RunVerdict, now: number): [string | null, number | null, number | null, number, number] {
  return [verdict.state, verdict.startDate, verdict.endDate, verdict.open ? 1 : 0, now];
}

/** Whether a verdict changes what is recorded (only then is it a change, reported once). */
export function runChanged(run: TrackedRun, verdict: RunVerdict, wasOpen: boolean): boolean {
  return verdict.state !== run.state || verdict.startDate !== run.startDate || verdict.endDate !== run.endDate || verdict.open !== wasOpen;
}

/** Every column of a job, for export: the domain fields plus the lease and the breaker's flag. */
export function toExportedJob(row: JobRow & { counted: number | boolean }): ExportedEvent['jobs'][number] {
  return { ...toJob(row), leaseOwner: row.lease_owner, leaseUntil: row.lease_until, counted: Boolean(row.counted) };
}

/** Groups a page's rows into export lines, events in the order given. */
export function exportLines(events: EventRow[], jobs: (JobRow & { counted: number | boolean })[], attempts: AttemptRow[]): ExportedEvent[] {
  const jobsOf = new Map<string, ExportedEvent['jobs']>();
  for (const j of jobs) jobsOf.set(j.event_id, [...(jobsOf.get(j.event_id) ?? []), toExportedJob(j)]);
  const eventOfJob = new Map(jobs.map((j) => [j.id, j.event_id]));
  const attemptsOf = new Map<string, Attempt[]>();
  for (const a of attempts) {
    const e = eventOfJob.get(a.job_id)!;
    attemptsOf.set(e, [...(attemptsOf.get(e) ?? []), toAttempt(a)]);
  }
  return events.map((e) => ({ event: toEvent(e), jobs: jobsOf.get(e.id) ?? [], attempts: attemptsOf.get(e.id) ?? [] }));
}

export function toAttempt(row: AttemptRow): Attempt {
  return {
    jobId: row.job_id,
    n: row.n,
    startedAt: row.started_at,
    durationMs: row.duration_ms,
    httpStatus: row.http_status,
    outcome: row.outcome,
    detail: row.detail,
    nextRetryAt: row.next_retry_at,
  };
}

/**
 * The job columns an attempt sets: state, next_attempt_at, last_error, airflow_state,
 * dag_run_id, done_at, updated_at, and for a triggered run run_state, run_url, run_open.
 */
export function jobUpdateValues(update: JobUpdate, now: number): [string, number, string | null, string | null, string | null, number | null, number, string | null, string | null, number] {
  const run = update.state === 'done' ? update.run : undefined;
  return [
    update.state,
    update.state === 'pending' ? update.nextAttemptAt : now,
    update.state === 'done' ? null : update.error,
    update.state === 'done' ? update.airflowState : null,
    update.state === 'done' ? update.dagRunId : null,
    update.state === 'pending' ? null : now,
    now,
    run ? (update as { airflowState: string | null }).airflowState : null,
    run?.url ?? null,
    run?.track ? 1 : 0,
  ];
}

/** How a new job is stored: dead without a request, blocked by lineage or the breaker, else pending. */
export function newJobRow(job: NewJob, block: Block | undefined): { state: JobState; dagRunId: string | null; request: string | null } {
  return {
    state: !job.request ? 'dead' : block ? 'blocked' : 'pending',
    dagRunId: job.request && !isAssetRequest(job.request) ? job.request.dag_run_id : null,
    request: job.request ? JSON.stringify(job.request) : null,
  };
}

/** Per-minute counts as the stores return them (minute = epoch minutes), filled to one entry a minute. */
export function activityOf(since: number, now: number, received: { m: number; n: number }[], triggered: { m: number; n: number }[]): Activity {
  const first = Math.floor(since / 60_000);
  const last = Math.floor(now / 60_000);
  const minutes = new Map<number, { minute: number; received: number; triggered: number }>();
  for (let m = first; m <= last; m++) minutes.set(m, { minute: m * 60_000, received: 0, triggered: 0 });
  for (const r of received) {
    const minute = minutes.get(Number(r.m));
    if (minute) minute.received = Number(r.n);
  }
  for (const r of triggered) {
    const minute = minutes.get(Number(r.m));
    if (minute) minute.triggered = Number(r.n);
  }
  return [...minutes.values()];
}
