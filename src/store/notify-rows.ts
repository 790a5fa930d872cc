// Notification rows (DESIGN §8), shared by both stores: SQLite keeps JSON as text, PostgreSQL as JSONB.
import type { NewNotification, Notification, NotificationAttempt, NotificationState, NotificationUpdate, NotifyOutcome, NotifyType } from '../notify/types.js';

export interface NotificationRow {
  id: string;
  target: string;
  type: NotifyType;
  cause: string;
  event_id: string | null;
  job_id: string | null;
  body: string | Notification['body'];
  state: NotificationState;
  attempts: number;
  next_attempt_at: number;
  last_error: string | null;
  created_at: number;
  updated_at: number;
  done_at: number | null;
}

export interface NotificationAttemptRow {
  notification_id: string;
  n: number;
  started_at: number;
  duration_ms: number;
  http_status: number | null;
  outcome: NotifyOutcome;
  detail: string;
  next_retry_at: number | null;
}

export function toNotification(row: NotificationRow): Notification {
  return {
    id: row.id,
    target: row.target,
    type: row.type,
    cause: row.cause,
    eventId: row.event_id,
    jobId: row.job_id,
    body: typeof row.body === 'string' ? JSON.parse(row.body) : row.body,
    state: row.state,
    attempts: row.attempts,
    nextAttemptAt: row.next_attempt_at,
    lastError: row.last_error,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    doneAt: row.done_at,
  };
}

export function toNotificationAttempt(row: NotificationAttemptRow): NotificationAttempt {
  return {
    notificationId: row.notification_id,
    n: row.n,
    startedAt: row.started_at,
    durationMs: row.duration_ms,
    httpStatus: row.http_status,
    outcome: row.outcome,
    detail: row.detail,
    nextRetryAt: row.next_retry_at,
  };
}

/** Insert values: id, target, type, cause, event_id, job_id, body, next_attempt_at, created_at, updated_at. */
export function newNotificationValues(n: NewNotification): [string, string, string, string, string | null, string | null, string, number, number, number] {
  return [n.id, n.target, n.type, n.cause, n.eventId, n.jobId, JSON.stringify(n.body), n.createdAt, n.createdAt, n.createdAt];
}

/** Update values: state, next_attempt_at, last_error, done_at, updated_at. */
export function notificationUpdateValues(update: NotificationUpdate, now: number): [string, number, string | null, number | null, number] {
  return [update.state, update.state === 'pending' ? update.nextAttemptAt : now, update.state === 'done' ? null : update.error, update.state === 'pending' ? null : now, now];
}

/**
 * The one definition of a prunable notification (SQL over a notifications row, the cutoffs as
 * SQL): delivered before `deliveredBefore` or dead before `deadBefore`, both from done_at, so
 * delivered ones follow `retention.events` and dead ones `retention.dead`; a pending one never
 * (a replayed one is pending again, done_at cleared).
 */
export const FINISHED_NOTIFICATION = (deliveredBefore: string, deadBefore: string) =>
  `((state = 'done' AND done_at < ${deliveredBefore}) OR (state = 'dead' AND done_at < ${deadBefore}))`;
