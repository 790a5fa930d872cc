// Outbound notifications (DESIGN §8): what a cause is, what the store writes for it. Pure, so
// both stores build the same rows inside the transaction that records the cause.
import { randomUUID } from 'node:crypto';

export const NOTIFY_TYPES = ['dag_run.succeeded', 'dag_run.failed', 'dag_run.sla_missed', 'job.dead_lettered', 'loop_guard.breaker_opened'] as const;
export type NotifyType = (typeof NOTIFY_TYPES)[number];

/** Something worth telling a receiver, as the store sees it when it records it. */
export interface NotifyCause {
  type: NotifyType;
  /** Unique per cause: one cause gives one notification per target, across restarts and replicas. */
  key: string;
  /** The store's event id (for GET /v1/events/:id), null when none. */
  eventId: string | null;
  jobId: string | null;
  route: string | null;
  airflow: string | null;
  dagId: string | null;
  dagRunId: string | null;
  state: string | null;
  url: string | null;
  detail: string;
  planasonix: { eventId: string | null; runId: string | null; pipelineId: string | null };
}

/** The JSON every format starts from (standard-webhooks sends it as is). */
export interface NotificationBody {
  id: string;
  type: string;
  created_at: string;
  data: {
    route: string | null;
    airflow: string | null;
    dag_id: string | null;
    dag_run_id: string | null;
    state: string | null;
    url: string | null;
    detail: string;
    planasonix: { event_id: string | null; run_id: string | null; pipeline_id: string | null };
  };
}

/** A row to write: `id` is the `webhook-id`, the same on every retry. */
export interface NewNotification {
  id: string;
  target: string;
  type: NotifyType;
  cause: string;
  eventId: string | null;
  jobId: string | null;
  body: NotificationBody;
  createdAt: number;
}

/** Built from the live config; the store calls it in the cause's transaction. */
export type Notifier = (cause: NotifyCause, now: number) => NewNotification[];

export type NotificationState = 'pending' | 'done' | 'dead';

export interface Notification extends NewNotification {
  state: NotificationState;
  attempts: number;
  nextAttemptAt: number;
  lastError: string | null;
  updatedAt: number;
  doneAt: number | null;
}

export type NotifyOutcome = 'delivered' | 'retry' | 'dead';

export interface NotificationAttempt {
  notificationId: string;
  n: number;
  startedAt: number;
  durationMs: number;
  httpStatus: number | null;
  outcome: NotifyOutcome;
  detail: string;
  nextRetryAt: number | null;
}

export type NotificationUpdate = { state: 'done' } | { state: 'pending'; nextAttemptAt: number; error: string } | { state: 'dead'; error: string };

export const newNotificationId = (): string => `msg_${randomUUID().replace(/-/g, '')}`;

export function notificationBody(id: string, cause: NotifyCause, now: number): NotificationBody {
  return {
    id,
    type: cause.type,
    created_at: new Date(now).toISOString(),
    data: {
      route: cause.route,
      airflow: cause.airflow,
      dag_id: cause.dagId,
      dag_run_id: cause.dagRunId,
      state: cause.state,
      url: cause.url,
      detail: cause.detail,
      planasonix: { event_id: cause.planasonix.eventId, run_id: cause.planasonix.runId, pipeline_id: cause.planasonix.pipelineId },
    },
  };
}

/** The events-table columns a cause carries (Planasonix's own ids). */
export interface EventIds {
  event_id: string;
  run_id: string;
  pipeline_id: string;
}

const ids = (e: EventIds | undefined) => ({ eventId: e?.event_id ?? null, runId: e?.run_id ?? null, pipelineId: e?.pipeline_id ?? null });

/** A job that gave up (attempt `n` of its whole history, so a replayed job dying again is a new cause). */
export function deadJobCause(job: { id: string; event_id: string; route: string; airflow: string; dag_id: string; dag_run_id: string | null }, event: EventIds | undefined, n: number, error: string): NotifyCause {
  return {
    type: 'job.dead_lettered', key: `job.dead_lettered:${job.id}:${n}`, eventId: job.event_id, jobId: job.id, route: job.route, airflow: job.airflow,
    dagId: job.dag_id || null, dagRunId: job.dag_run_id, state: 'dead', url: null, detail: error, planasonix: ids(event),
  };
}

/** A tracked run that reached success/failed, or that was marked as missing its SLA. */
export function runCauses(
  change: { run: { jobId: string; eventId: string; route: string; airflow: string; dagId: string; dagRunId: string; state: string | null }; finished: boolean; slaMissed?: string },
  url: string | null,
  event: EventIds | undefined,
): NotifyCause[] {
  const { run } = change;
  const base = { eventId: run.eventId, jobId: run.jobId, route: run.route, airflow: run.airflow, dagId: run.dagId, dagRunId: run.dagRunId, url, planasonix: ids(event) };
  const causes: NotifyCause[] = [];
  if (change.finished && (run.state === 'success' || run.state === 'failed')) {
    const type = run.state === 'success' ? 'dag_run.succeeded' : 'dag_run.failed';
    causes.push({ ...base, type, key: `${type}:${run.jobId}`, state: run.state, detail: `DAG run ${run.dagRunId} of ${run.dagId} ${run.state}` });
  }
  if (change.slaMissed) {
    causes.push({ ...base, type: 'dag_run.sla_missed', key: `dag_run.sla_missed:${run.jobId}`, state: run.state, detail: `not ${change.slaMissed} in time (route ${run.route}'s expect)` });
  }
  return causes;
}

/** The breaker of a (source pipeline, target) pair opened, by the job that passed the limit. */
export function breakerCause(job: { route: string; airflow: string; dagId: string; sourcePipeline: string; target: string }, eventId: string, event: EventIds | undefined, openedAt: number, detail: string): NotifyCause {
  return {
    type: 'loop_guard.breaker_opened', key: `loop_guard.breaker_opened:${job.sourcePipeline},${job.target}:${openedAt}`, eventId, jobId: null, route: job.route,
    airflow: job.airflow, dagId: job.dagId || null, dagRunId: null, state: 'open', url: null, detail, planasonix: ids(event),
  };
}
