import type { Result } from '../errors/result.js';
import type { BreakerPolicy } from '../guard/breaker.js';
import type { LearnedEdge } from '../guard/graph.js';
import type { BlockReason, GuardedJob, Lineage } from '../guard/lineage.js';
import type { JobRequest, RouteDecision } from '../route/route.js';
import type { RunChange, RunObservation, RunState, RunVerdict, SlaKind, TrackedRun } from '../track/run.js';

import type { Notification, NotificationAttempt, NotificationState, NotificationUpdate, Notifier } from '../notify/types.js';

export type { LearnedEdge };

/** What ingress hands to the store: a verified, parsed delivery and the exact bytes received. */
export interface NewEvent {
  source: string;
  /** Dedupe key within the source: the scheme's delivery id, else the event's own `id`. */
  deliveryId: string;
  scheme: string;
  eventId: string;
  type: string;
  pipelineId: string;
  runId: string;
  /** The headers worth keeping for debugging; never signatures or credentials. */
  headers: Record<string, string>;
  body: Buffer;
  receivedAt: Date;
  /** Every route's decision: matched, or the first test that failed (kept for "why not"). */
  routing: RouteDecision[];
}

/** `routed`: at least one trigger job; `unrouted`: no route matched (visible, not an error). */
export type EventStatus = 'routed' | 'unrouted';

export interface StoredEvent extends NewEvent {
  id: string;
  seq: number;
  status: EventStatus;
}

/**
 * One trigger job per matching route, written in the same transaction as its event. Without
 * a request (templates failed) it starts dead; with a lineage block it starts blocked.
 */
export type NewJob = GuardedJob;

/** blocked: refused by the loop guard; never retried automatically, replayable by an operator. */
export type JobState = 'pending' | 'done' | 'dead' | 'blocked';

export interface Job {
  id: string;
  eventId: string;
  route: string;
  airflow: string;
  dagId: string;
  dagRunId: string | null;
  request: JobRequest | null;
  state: JobState;
  sourcePipeline: string;
  target: string;
  lineage: Lineage;
  blockReason: BlockReason | null;
  /** Attempts since the job was created or last replayed. */
  attempts: number;
  nextAttemptAt: number;
  lastError: string | null;
  airflowState: string | null;
  createdAt: number;
  updatedAt: number;
  doneAt: number | null;
  /** When the event was received: dispatch latency is measured from here. */
  receivedAt: number;
  /** The Airflow run the trigger started, as last seen (DESIGN §7); null for asset events and jobs not triggered. */
  run: JobRun | null;
}

export interface JobRun {
  state: RunState | null;
  startDate: number | null;
  endDate: number | null;
  url: string | null;
  checkedAt: number | null;
  slaMissed: SlaKind | null;
  /** Still followed. */
  open: boolean;
}

export interface Attempt {
  jobId: string;
  n: number;
  startedAt: number;
  durationMs: number;
  httpStatus: number | null;
  outcome: AttemptOutcome;
  detail: string;
  nextRetryAt: number | null;
}

/** triggered (2xx), exists (409: an earlier attempt or replay already made it), retry, dead (gave up). */
export type AttemptOutcome = 'triggered' | 'exists' | 'retry' | 'dead';

/** How an attempt changes its job; applied with the attempt row in one transaction. */
export type JobUpdate =
  | { state: 'done'; airflowState: string | null; dagRunId: string | null; run?: { url: string; track: boolean } }
  | { state: 'pending'; nextAttemptAt: number; error: string }
  | { state: 'dead'; error: string };

export interface Inserted {
  id: string;
  duplicate: boolean;
  /** What became of each job (empty for a duplicate). */
  jobs: { route: string; state: JobState; block?: { reason: BlockReason; detail: string } }[];
  /** The event taught a DAG → pipeline edge the store had not seen. */
  newLearnedEdge: boolean;
}

/** What the store applies inside the ingest transaction. */
export interface IngestPolicy {
  breaker: BreakerPolicy;
  /** From `data.trigger.correlation.dag_id`: that DAG started this pipeline. */
  learnedEdge?: LearnedEdge;
  /** Which notifications a breaker opening in this transaction gives (DESIGN §8). */
  notify?: Notifier;
}

export interface EventFilter {
  status?: EventStatus;
  pipelineId?: string;
  type?: string;
  /** Received at or after. */
  since?: Date;
  limit: number;
  cursor?: string;
}

export interface Page<T> {
  items: T[];
  /** Absent on the last page. */
  nextCursor?: string;
}

export interface Breaker {
  sourcePipeline: string;
  target: string;
  openedAt: number;
  openUntil: number;
}

export type StoreReason = 'store_unavailable';

/** One entry per minute (start, ms), oldest first, minutes without traffic included. */
export type Activity = { minute: number; received: number; triggered: number }[];

export interface NotificationClaim {
  target: string;
  now: number;
  limit: number;
  leaseMs: number;
  owner: string;
}

export interface NotificationFilter {
  target?: string;
  state?: NotificationState;
  limit: number;
  cursor?: string;
}

export interface ClaimOptions {
  airflow: string;
  now: number;
  limit: number;
  leaseMs: number;
  owner: string;
}

/** Times (ms) before which things may go, as of one prune round (src/lifecycle/pruner.ts). */
export interface PruneCutoffs {
  now: number;
  /** Events received before this whose jobs are all done or blocked (or that have none); notifications delivered before this. */
  eventsBefore: number;
  /** A dead job that died (last updated) before this no longer keeps its event; a notification that went dead before this goes. */
  deadBefore: number;
  /** Delivery ids of pruned events kept since before this are dropped. */
  dedupeBefore: number;
}

/** One prune batch: one transaction (events with their jobs and attempts, and the dedupe copy, together). */
export interface PruneBatch {
  deleted: Record<PrunedTable, number>;
  /** Another batch may find more (the batch was full), or, on SQLite, has more free pages to give back. */
  more: boolean;
  /** Where the next batch of this round starts (received_at), so kept events are read once a round. */
  from?: string;
}

export type PrunedTable = 'events' | 'jobs' | 'attempts' | 'dedupe_keys' | 'notifications' | 'notification_attempts';
/** Every pruned table, in the order a batch reports them. */
export const PRUNED_TABLES: readonly PrunedTable[] = ['events', 'jobs', 'attempts', 'dedupe_keys', 'notifications', 'notification_attempts'];

export interface StoreStats {
  /** SQLite: page_count × page_size of the main file; PostgreSQL: pg_total_relation_size of the bridge's tables. */
  bytes: number;
  rows: Record<PrunedTable, number>;
  /** PostgreSQL reads row counts from pg_class.reltuples (as of the last VACUUM/ANALYZE). */
  estimated: boolean;
}

/** One line of `planasonix-bridge export`: an event with every job and attempt. */
export interface ExportedEvent {
  event: StoredEvent;
  jobs: (Job & { leaseOwner: string | null; leaseUntil: number | null; counted: boolean })[];
  attempts: Attempt[];
}

/**
 * The one seam between the bridge and its database. Everything is async so that the
 * PostgreSQL implementation for several replicas fits the same shape.
 */
export interface Store {
  /**
   * Commits the event, its jobs (the breaker judged in the same transaction) and a learned
   * edge — or finds the earlier delivery — before resolving.
   */
  insertEvent(event: NewEvent, jobs: readonly NewJob[], policy: IngestPolicy): Promise<Result<Inserted, StoreReason>>;
  getEvent(id: string): Promise<StoredEvent | undefined>;
  /** Due pending jobs for one Airflow instance, leased to `owner` until now + leaseMs. */
  claimJobs(options: ClaimOptions): Promise<Job[]>;
  /**
   * Records an attempt and its effect; returns the attempt's number (counted over the job's
   * whole history, replays included), or undefined if `lease` no longer holds the job.
   */
  finishAttempt(jobId: string, lease: string, attempt: Omit<Attempt, 'jobId' | 'n'>, update: JobUpdate, notify?: Notifier): Promise<number | undefined>;
  /** Gives a claimed job back unattempted (circuit open, shutting down). */
  releaseJob(jobId: string, owner: string, nextAttemptAt: number): Promise<void>;
  getJob(id: string): Promise<Job | undefined>;
  jobsOfEvent(eventId: string): Promise<Job[]>;
  attemptsOfJob(jobId: string): Promise<Attempt[]>;
  /**
   * Dead, blocked or done job → pending now, attempts counted afresh; false for a pending job
   * or one that never rendered. Replaying a job that did run is harmless: the same dag_run_id
   * meets a 409. A blocked job replayed is sent without asking the loop guard again.
   */
  replayJob(id: string, now: number): Promise<boolean>;
  /** Newest first; `cursor` is the `next_cursor` of the previous page. */
  listEvents(filter: EventFilter): Promise<Page<StoredEvent>>;
  listJobs(filter: { state?: JobState; runState?: RunState; limit: number; cursor?: string }): Promise<Page<Job>>;
  /** Open runs of an instance for one tracker, leased to `owner` until now + leaseMs (its own leases renewed). */
  claimRuns(options: ClaimOptions): Promise<TrackedRun[]>;
  /**
   * What Airflow said of runs (a poll round or a push): each done job of the run judged and
   * recorded in one transaction; returns what changed, each change once across replicas.
   */
  recordRuns(airflow: string, observations: readonly RunObservation[], judge: (run: TrackedRun, observation: RunObservation) => RunVerdict, now: number, notify?: Notifier): Promise<RunChange[]>;
  /**
   * Notifications (DESIGN §8). Each is written by the transaction of its cause — a job turning
   * dead (finishAttempt), a run finished or marked (recordRuns), a breaker opening (insertEvent,
   * addJobs) — through the `notify` function given there; (target, cause) is unique.
   */
  claimNotifications(options: NotificationClaim): Promise<Notification[]>;
  /** Records a delivery attempt and its effect; the attempt's number, or undefined if `lease` lost the row. */
  finishNotification(id: string, lease: string, attempt: Omit<NotificationAttempt, 'notificationId' | 'n'>, update: NotificationUpdate): Promise<number | undefined>;
  releaseNotification(id: string, owner: string, nextAttemptAt: number): Promise<void>;
  getNotification(id: string): Promise<Notification | undefined>;
  listNotifications(filter: NotificationFilter): Promise<Page<Notification>>;
  notificationsOfEvent(eventId: string): Promise<Notification[]>;
  attemptsOfNotification(id: string): Promise<NotificationAttempt[]>;
  /** Dead → pending now, attempts counted afresh (the same id, so receivers dedupe); false otherwise. */
  replayNotification(id: string, now: number): Promise<boolean>;
  /** When the earliest pending notification is due (ms), undefined when none is pending. */
  nextNotificationAt(): Promise<number | undefined>;
  /** Adds jobs for routes the event has none for yet (redrive); returns what was created. */
  addJobs(eventId: string, jobs: readonly NewJob[], policy: IngestPolicy): Promise<Inserted['jobs']>;
  /** Pending jobs per Airflow instance name (to find jobs whose instance left the config). */
  pendingByAirflow(): Promise<Record<string, number>>;
  /** Jobs per state, for the queue-depth gauge. */
  jobCounts(): Promise<Record<JobState, number>>;
  /** When the oldest pending job was created (ms), undefined when none is pending. */
  oldestPendingAt(): Promise<number | undefined>;
  /** Events received and triggers accepted per minute since `since` (ms), for the console. */
  activity(since: number): Promise<Activity>;
  learnedEdges(): Promise<LearnedEdge[]>;
  openBreakers(now: number): Promise<Breaker[]>;
  /** Closes a pair's breaker and restarts its count; false if it was not open. */
  resetBreaker(sourcePipeline: string, target: string, now: number): Promise<boolean>;
  /** The breaker's view of a pair right now (for explain). */
  pairState(sourcePipeline: string, target: string, now: number, windowMs: number): Promise<import('../guard/breaker.js').PairState>;
  /**
   * Resolves when a write could be committed now (readiness): a committed probe write that
   * needs new space, and no failed ingest or dispatch commit in the last few seconds without
   * a successful one since.
   */
  checkWritable(): Promise<Result<true, StoreReason>>;
  /** Events per prune transaction, as the store is best pruned (README "Retention and storage size"). */
  readonly pruneBatchSize: number;
  /**
   * Deletes up to `limit` prunable events (with jobs and attempts, keeping their delivery ids),
   * expired delivery ids, and finished notifications (with their attempts: delivered ones on
   * the `eventsBefore` clock, dead ones on `deadBefore`, both counted from done_at; never a
   * pending one), in one transaction.
   */
  pruneBatch(cutoffs: PruneCutoffs, limit: number, from?: string): Promise<PruneBatch>;
  /**
   * After a prune round that deleted rows: makes the space reusable where the database would
   * not by itself (PostgreSQL with autovacuum off: a plain VACUUM of the pruned tables past
   * autovacuum's thresholds).
   * Returns what it did, for the log; undefined when nothing was needed.
   */
  reclaim(): Promise<string | undefined>;
  /** The right to prune now, across replicas; undefined while another holds it. Call the result to give it back. */
  acquirePruneLock(): Promise<(() => Promise<void>) | undefined>;
  /** Size and rows, cheap enough for every scrape. */
  stats(): Promise<StoreStats>;
  /** Oldest first (by seq), received before `before` when given; `cursor` is the previous page's `nextCursor`. */
  exportEvents(filter: { before?: Date; cursor?: string; limit: number }): Promise<Page<ExportedEvent>>;
  close(): Promise<void>;
}
