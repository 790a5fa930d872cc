import express, { Router, type Request, type Response } from 'express';
import { rateLimit } from 'express-rate-limit';
import { z } from 'zod';
import type { Config } from '../config/schema.js';
import { parseEvent } from '../event/schema.js';
import { explainEvent } from '../guard/explain.js';
import { checkLoops } from '../guard/graph.js';
import { planEvent } from '../guard/plan.js';
import { graphView } from '../guard/view.js';
import { breakerKey } from '../guard/breaker.js';
import { sendProblem } from '../ingress/problems.js';
import type { ConfigProblem } from '../config/load.js';
import type { Attempt, Job, Store, StoredEvent } from '../store/types.js';
import type { AdminAuth } from './auth.js';
import { redactDeep } from '../log/redact.js';
import type { Notification, NotificationAttempt } from '../notify/types.js';
import type { PruneRound } from '../lifecycle/pruner.js';

export interface AdminDeps {
  auth: AdminAuth;
  config: () => Config;
  store: Store;
  clock: () => number;
  /** Re-reads the config file (absent when the bridge was not started from a file). */
  reload?: () => Promise<{ ok: true; changed: string[] } | { ok: false; problems: ConfigProblem[] }>;
  /** Tells the dispatcher that jobs became due (replay, redrive). */
  wake?: () => void;
  /** Tells the notifications outbox that a notification became due (replay). */
  wakeNotify?: () => void;
  /** Per Airflow instance: reachable, and the circuit's state. */
  airflowHealth?: () => Promise<Record<string, unknown>>;
  /** The last retention round this replica ran. */
  lastPrune?: () => PruneRound | undefined;
}

/** How far back GET /v1/status reports throughput: 15 minutes, the current one included. */
const ACTIVITY_MS = 14 * 60_000;

const limit = z.coerce.number().int().min(1).max(500).default(50);
const cursor = z.string().regex(/^\d+$/, 'not a cursor from a previous page').optional();
const eventQuery = z.strictObject({
  status: z.enum(['routed', 'unrouted']).optional(),
  pipeline_id: z.string().min(1).optional(),
  type: z.string().min(1).optional(),
  since: z.iso.datetime({ offset: true }).optional(),
  limit,
  cursor,
});
const notificationQuery = z.strictObject({ target: z.string().min(1).optional(), state: z.enum(['pending', 'done', 'dead']).optional(), limit, cursor });
const jobQuery = z.strictObject({ state: z.enum(['pending', 'done', 'dead', 'blocked']).optional(), run_state: z.enum(['queued', 'running', 'success', 'failed', 'missing']).optional(), limit, cursor });

/** `/v1`: the operator's API. Authenticated, and rate limited apart from the webhooks. */
export function adminRouter(deps: AdminDeps): Router {
  const router = Router();
  // The limit comes first, so guessing tokens is rate limited too.
  router.use(
    rateLimit({
      windowMs: 60_000,
      limit: 600,
      standardHeaders: 'draft-8',
      legacyHeaders: false,
      validate: { xForwardedForHeader: false },
      handler: (_req, res) => sendProblem(res, 'rate_limited', 'more than 600 admin requests in 60s; retry after the Retry-After seconds'),
    }),
    deps.auth.middleware,
    // Event bodies and headers: nothing here belongs in a browser's or a proxy's cache.
    (_req: Request, res: Response, next: () => void) => {
      res.setHeader('cache-control', 'no-store');
      next();
    },
  );

  router.get('/events', async (req, res) => {
    const q = query(eventQuery, req, res);
    if (!q) return;
    const page = await deps.store.listEvents({
      limit: q.limit,
      ...(q.status ? { status: q.status } : {}),
      ...(q.pipeline_id ? { pipelineId: q.pipeline_id } : {}),
      ...(q.type ? { type: q.type } : {}),
      ...(q.since ? { since: new Date(q.since) } : {}),
      ...(q.cursor ? { cursor: q.cursor } : {}),
    });
    res.json({ events: page.items.map(eventSummary), next_cursor: page.nextCursor ?? null });
  });

  router.get('/events/:id', async (req, res) => {
    const event = await deps.store.getEvent(req.params.id!);
    if (!event) return sendProblem(res, 'not_found', `no event ${req.params.id}`);
    const jobs = await deps.store.jobsOfEvent(event.id);
    const withAttempts = await Promise.all(jobs.map(async (j) => ({ ...jobView(j), attempts: (await deps.store.attemptsOfJob(j.id)).map(attemptView) })));
    const notifications = await Promise.all((await deps.store.notificationsOfEvent(event.id)).map(async (n) => ({ ...notificationView(n), attempts: (await deps.store.attemptsOfNotification(n.id)).map(notificationAttemptView) })));
    res.json({ ...eventSummary(event), headers: event.headers, body: bodyOf(event), routing: event.routing, jobs: withAttempts, notifications });
  });

  // "Why not", with the config running now (the stored routing is the decision at receipt).
  router.get('/events/:id/explain', async (req, res) => {
    const event = await deps.store.getEvent(req.params.id!);
    if (!event) return sendProblem(res, 'not_found', `no event ${req.params.id}`);
    const result = await explainEvent(event.body, event.source, deps.config(), deps.store, deps.clock());
    if (!result.ok) return sendProblem(res, 'bad_request', `the stored body no longer parses: ${result.error.message}`);
    res.json(result.value);
  });

  router.post('/events/:id/redrive', async (req, res) => {
    const event = await deps.store.getEvent(req.params.id!);
    if (!event) return sendProblem(res, 'not_found', `no event ${req.params.id}`);
    const parsed = parseEvent(event.body);
    if (!parsed.ok) return sendProblem(res, 'bad_request', `the stored body no longer parses: ${parsed.error.message}`);
    const plan = planEvent(parsed.value, event.source, deps.config());
    const created = await deps.store.addJobs(event.id, plan.jobs, plan.policy);
    if (created.some((j) => j.state === 'pending')) deps.wake?.();
    res.json({ event_id: event.id, routing: plan.decisions, created });
  });

  router.get('/jobs', async (req, res) => {
    const q = query(jobQuery, req, res);
    if (!q) return;
    const page = await deps.store.listJobs({ limit: q.limit, ...(q.state ? { state: q.state } : {}), ...(q.run_state ? { runState: q.run_state } : {}), ...(q.cursor ? { cursor: q.cursor } : {}) });
    res.json({ jobs: page.items.map(jobView), next_cursor: page.nextCursor ?? null });
  });

  router.post('/jobs/:id/replay', async (req, res) => {
    const job = await deps.store.getJob(req.params.id!);
    if (!job) return sendProblem(res, 'not_found', `no job ${req.params.id}`);
    if (job.state === 'pending') return res.json({ job: jobView(job), replayed: false, message: 'already pending' });
    if (!(await deps.store.replayJob(job.id, deps.clock()))) {
      return sendProblem(res, 'conflict', `job ${job.id} cannot be replayed: it has no rendered request (${job.lastError ?? 'render failed'}); fix the route and redrive the event`);
    }
    deps.wake?.();
    res.json({ job: jobView((await deps.store.getJob(job.id))!), replayed: true });
  });

  router.get('/notifications', async (req, res) => {
    const q = query(notificationQuery, req, res);
    if (!q) return;
    const page = await deps.store.listNotifications({ limit: q.limit, ...(q.target ? { target: q.target } : {}), ...(q.state ? { state: q.state } : {}), ...(q.cursor ? { cursor: q.cursor } : {}) });
    res.json({ notifications: page.items.map(notificationView), next_cursor: page.nextCursor ?? null });
  });

  router.get('/notifications/:id', async (req, res) => {
    const n = await deps.store.getNotification(req.params.id!);
    if (!n) return sendProblem(res, 'not_found', `no notification ${req.params.id}`);
    res.json({ ...notificationView(n), attempts: (await deps.store.attemptsOfNotification(n.id)).map(notificationAttemptView) });
  });

  router.post('/notifications/:id/replay', async (req, res) => {
    const n = await deps.store.getNotification(req.params.id!);
    if (!n) return sendProblem(res, 'not_found', `no notification ${req.params.id}`);
    if (!(await deps.store.replayNotification(n.id, deps.clock()))) {
      return sendProblem(res, 'conflict', `notification ${n.id} is ${n.state}: only a dead one is replayed`);
    }
    deps.wakeNotify?.();
    res.json({ notification: notificationView((await deps.store.getNotification(n.id))!), replayed: true });
  });

  router.get('/loop-guard', async (_req, res) => {
    const now = deps.clock();
    const config = deps.config();
    const learned = await deps.store.learnedEdges();
    const report = checkLoops(config.routes, config.loop_guard, learned);
    res.json({
      max_depth: config.loop_guard.max_depth,
      breaker: { max_triggers: config.loop_guard.breaker.max_triggers, window_s: config.loop_guard.breaker.window / 1000 },
      open_breakers: (await deps.store.openBreakers(now)).map((b) => ({ key: breakerKey(b.sourcePipeline, b.target), source_pipeline: b.sourcePipeline, target: b.target, opened_at: iso(b.openedAt), open_until: iso(b.openUntil) })),
      learned_edges: learned.map((e) => ({ dag_id: e.dagId, pipeline_id: e.pipelineId, pipeline_name: e.pipelineName })),
      cycles: [...report.errors.map((e) => e.message), ...report.warnings],
    });
  });

  router.get('/graph', async (_req, res) => {
    const [learned, breakers] = await Promise.all([deps.store.learnedEdges(), deps.store.openBreakers(deps.clock())]);
    const config = deps.config();
    res.json({ ...graphView(config, learned, breakers), max_depth: config.loop_guard.max_depth });
  });

  router.get('/status', async (_req, res) => {
    const now = deps.clock();
    // From the start of a minute, so the oldest bar counts a whole minute like the others.
    const since = Math.floor((now - ACTIVITY_MS) / 60_000) * 60_000;
    const [airflow, queue, activity, writable, stats] = await Promise.all([
      deps.airflowHealth?.() ?? {},
      deps.store.jobCounts(),
      deps.store.activity(since),
      deps.store.checkWritable(),
      deps.store.stats().catch(() => undefined),
    ]);
    const pruned = deps.lastPrune?.();
    const store = {
      ...(writable.ok ? { writable: true, detail: 'ok' } : { writable: false, detail: writable.error.message }),
      ...(stats ? { bytes: stats.bytes, rows: stats.rows, rows_estimated: stats.estimated } : {}),
      last_prune: pruned ? { at: iso(pruned.at), rows: pruned.rows, batches: pruned.batches, ms: pruned.ms } : null,
    };
    res.json(redactDeep({ airflow, store, queue, activity: activity.map((a) => ({ ...a, minute: iso(a.minute) })) }));
  });

  router.delete('/loop-guard/breakers/:key', async (req, res) => {
    const [source, target] = parseBreakerKey(req.params.key!);
    if (!source || !target) return sendProblem(res, 'bad_request', 'a breaker key is "<pipeline_id>,<target>", as listed by GET /v1/loop-guard');
    const wasOpen = await deps.store.resetBreaker(source, target, deps.clock());
    res.json({ key: req.params.key, reset: true, was_open: wasOpen });
  });

  router.post('/explain', (req, res, next) => express.raw({ type: () => true, limit: deps.config().server.body_limit, inflate: false })(req, res, next), async (req, res) => {
    const config = deps.config();
    const source = typeof req.query.source === 'string' ? req.query.source : Object.keys(config.sources)[0]!;
    if (!(source in config.sources)) return sendProblem(res, 'bad_request', `no source "${source}"`);
    const body: Buffer = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const result = await explainEvent(body, source, config, deps.store, deps.clock());
    if (!result.ok) return sendProblem(res, result.error.reason, result.error.message);
    res.json(result.value);
  });

  router.post('/config/reload', async (_req, res) => {
    if (!deps.reload) return sendProblem(res, 'conflict', 'this bridge was not started from a config file');
    const result = await deps.reload();
    if (!result.ok) return res.status(422).json({ error: 'invalid_config', message: 'the new config was refused; the running one is kept', problems: result.problems });
    res.json({ reloaded: true, changed: result.changed });
  });

  return router;
}

function query<T extends z.ZodType>(schema: T, req: Request, res: Response): z.output<T> | undefined {
  const parsed = schema.safeParse(req.query);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const where = issue.code === 'unrecognized_keys' ? issue.keys.join(', ') : issue.path.join('.');
  sendProblem(res, 'bad_request', `query ${where}: ${issue.code === 'unrecognized_keys' ? 'unknown parameter' : issue.message}`);
  return undefined;
}

const parseBreakerKey = (key: string) => {
  const comma = key.indexOf(',');
  return comma < 0 ? [] : [key.slice(0, comma), key.slice(comma + 1)];
};

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

function eventSummary(e: StoredEvent) {
  return { id: e.id, source: e.source, delivery_id: e.deliveryId, event_id: e.eventId, type: e.type, pipeline_id: e.pipelineId, run_id: e.runId, status: e.status, matched_routes: e.routing.filter((d) => d.matched).map((d) => d.route), received_at: e.receivedAt.toISOString() };
}

/** The body as JSON when it is (it was verified and parsed once), else its text. */
function bodyOf(e: StoredEvent): unknown {
  const text = e.body.toString('utf8');
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function jobView(j: Job) {
  return {
    id: j.id,
    event_id: j.eventId,
    route: j.route,
    airflow: j.airflow,
    dag_id: j.dagId,
    target: j.target,
    dag_run_id: j.dagRunId,
    state: j.state,
    block_reason: j.blockReason,
    attempts: j.attempts,
    next_attempt_at: j.state === 'pending' ? iso(j.nextAttemptAt) : null,
    last_error: j.lastError,
    airflow_state: j.airflowState,
    lineage: j.lineage,
    request: j.request,
    created_at: iso(j.createdAt),
    updated_at: iso(j.updatedAt),
    done_at: iso(j.doneAt),
    run: j.run && {
      state: j.run.state,
      start_date: iso(j.run.startDate),
      end_date: iso(j.run.endDate),
      duration_s: j.run.startDate !== null && j.run.endDate !== null ? (j.run.endDate - j.run.startDate) / 1000 : null,
      url: j.run.url,
      checked_at: iso(j.run.checkedAt),
      sla_missed: j.run.slaMissed,
      tracking: j.run.open,
    },
  };
}

function attemptView(a: Attempt) {
  return { n: a.n, started_at: iso(a.startedAt), duration_ms: a.durationMs, http_status: a.httpStatus, outcome: a.outcome, detail: a.detail, next_retry_at: iso(a.nextRetryAt) };
}

function notificationView(n: Notification) {
  return {
    id: n.id,
    target: n.target,
    type: n.type,
    state: n.state,
    event_id: n.eventId,
    job_id: n.jobId,
    attempts: n.attempts,
    next_attempt_at: n.state === 'pending' ? iso(n.nextAttemptAt) : null,
    last_error: n.lastError,
    created_at: iso(n.createdAt),
    updated_at: iso(n.updatedAt),
    done_at: iso(n.doneAt),
    body: n.body,
  };
}

function notificationAttemptView(a: NotificationAttempt) {
  return { n: a.n, started_at: iso(a.startedAt), duration_ms: a.durationMs, http_status: a.httpStatus, outcome: a.outcome, detail: a.detail, next_retry_at: iso(a.nextRetryAt) };
}
