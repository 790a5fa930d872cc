import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import express, { Router, type ErrorRequestHandler, type Express, type RequestHandler } from 'express';
import { pinoHttp } from 'pino-http';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import type { Store } from '../store/types.js';
import type { Clock } from '../verify/types.js';
import type { SendCommandFn } from 'rate-limit-redis';
import { adminAuth } from '../admin/auth.js';
import { adminRouter, type AdminDeps } from '../admin/routes.js';
import openapi from '../openapi.json' with { type: 'json' };
import { consoleRouter } from '../console/serve.js';
import { createMetrics, type Metrics } from '../metrics/metrics.js';
import { sendProblem } from './problems.js';
import type { Source } from './sources.js';
import { webhookHandlers } from './webhook.js';
import { pushRouter, type PushDeps } from '../track/push.js';

/** The part of the bridge a reload swaps: read per request, never cached by handlers. */
export interface Live {
  config: Config;
  sources: readonly Source[];
}

export interface AppDeps {
  live: () => Live;
  store: Store;
  logger: Logger;
  clock?: Clock;
  /** Wakes the dispatcher after jobs are committed. */
  onJobs?: () => void;
  /** Per Airflow instance, for /readyz. */
  airflowHealth?: () => Promise<Record<string, unknown>>;
  metrics?: Metrics;
  /** Bearer tokens for /v1; with none (and no admin.jwks_url) the admin API is off (404). */
  adminTokens?: readonly string[];
  /** Refreshes gauges that are read from elsewhere (queue depth, circuits) before a scrape. */
  beforeScrape?: () => Promise<void>;
  /** Operations the service owns, such as reload. */
  admin?: Pick<AdminDeps, 'reload' | 'wake' | 'wakeNotify' | 'lastPrune'>;
  /** Served on its own listener instead (config `metrics`). */
  metricsElsewhere?: boolean;
  /** Redis for shared rate-limit counts (config `server.rate_limit_redis`). */
  rateLimitRedis?: SendCommandFn;
  /** Records run states pushed by the Airflow plugin (src/track). */
  recordRuns?: PushDeps['record'];
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export function createApp(deps: AppDeps): Express {
  const clock = deps.clock ?? Date.now;
  const metrics = deps.metrics ?? createMetrics();
  const app = express();
  app.disable('x-powered-by');
  // Answers are small, uncacheable and new each time: hashing every body for an ETag cost
  // ~5 % of a webhook's CPU in the profile, and no client revalidates.
  app.set('etag', false);
  // Fixed at start, like the listening address: a reload that changes it is refused.
  app.set('trust proxy', deps.live().config.server.trust_proxy);

  app.use(
    pinoHttp({
      logger: deps.logger,
      genReqId: (req, res) => {
        const given = req.headers['x-request-id'];
        const id = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
        res.setHeader('x-request-id', id);
        return id;
      },
      // Only what helps to follow a delivery; headers are left out because they carry signatures.
      serializers: {
        req: (req: { id: string; method: string; url: string; remoteAddress?: string }) => ({ id: req.id, method: req.method, url: req.url, remote: req.remoteAddress }),
        res: (res: { statusCode: number }) => ({ status: res.statusCode }),
      },
      customProps: ((_req: IncomingMessage, res: ServerResponse) => {
        const l = (res as unknown as { locals?: Record<string, unknown> }).locals ?? {};
        const props = {
          source: l.source,
          delivery_id: l.deliveryId,
          ...(l.deliveryId === undefined && l.deliveryIdUnverified !== undefined ? { delivery_id_unverified: l.deliveryIdUnverified } : {}),
          event_id: l.eventId,
          stored_id: l.storedId,
          outcome: l.outcome,
          detail: l.detail,
          routes: l.routes,
        };
        // pino-http also calls this when the request starts, where nothing is set yet, and
        // makes a child logger of the answer (all undefined, so it logs nothing): undefined
        // skips that child, which is a third of the per-request logging cost. Same output.
        return Object.values(props).some((v) => v !== undefined) ? props : undefined;
      }) as (req: IncomingMessage, res: ServerResponse) => object,
      customLogLevel: (_req, res, err) => (err || res.statusCode >= 500 ? 'error' : 'info'),
      customSuccessMessage: (req, res) => `${req.method} ${req.url} ${res.statusCode}`,
      customErrorMessage: (req, res) => `${req.method} ${req.url} ${res.statusCode}`,
      autoLogging: { ignore: (req) => req.url === '/healthz' || req.url === '/readyz' },
    }),
  );

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  // Unauthenticated, so only reason codes: the store's and Airflow's error texts name users,
  // hosts and databases. The detail is logged when the answer changes, and is in /v1/status.
  let lastReasons = '';
  app.get('/readyz', async (req, res) => {
    const [store, airflow = {}] = await Promise.all([deps.store.checkWritable(), deps.airflowHealth?.()]);
    const unreachable = Object.entries(airflow).filter(([, h]) => !(h as { reachable?: boolean }).reachable);
    // Airflow being down does not make the bridge unready: events are still stored and wait.
    const reasons = [...(store.ok ? [] : ['store_unavailable']), ...(unreachable.length > 0 ? ['airflow_unreachable'] : [])];
    if (reasons.join() !== lastReasons) {
      lastReasons = reasons.join();
      const detail = { reasons, ...(store.ok ? {} : { store: store.error.message }), ...(unreachable.length > 0 ? { airflow: Object.fromEntries(unreachable) } : {}) };
      if (reasons.length > 0) req.log.warn(detail, `readiness: ${reasons.join(', ')}`);
      else req.log.info(detail, 'readiness: ready');
    }
    res.status(store.ok ? 200 : 503).json({ status: store.ok ? 'ready' : 'not_ready', reasons });
  });

  if (!deps.metricsElsewhere) app.get('/metrics', metricsHandler(metrics, deps.beforeScrape));

  // One count per webhook answer, by source and outcome; rejections also by reason.
  app.use((_req, res, next) => {
    res.on('finish', () => {
      const { source, outcome } = res.locals as { source?: string; outcome?: string };
      if (!source || !outcome) return;
      metrics.webhooksReceived.inc({ source, outcome });
      if (res.statusCode >= 400) metrics.webhooksRejected.inc({ reason: outcome });
    });
    next();
  });

  const auth = adminAuth(deps.adminTokens ?? [], () => deps.live().config.admin);
  app.use('/v1', adminRouter({ auth, config: () => deps.live().config, store: deps.store, clock, ...deps.admin, airflowHealth: deps.airflowHealth }));
  // The console reads the admin API, so it exists only while the admin API does.
  const consolePages = consoleRouter();
  app.use('/console', (req, res, next) => (auth.enabled() ? consolePages(req, res, next) : next()));
  app.get('/openapi.json', (_req, res) => {
    res.json(openapi);
  });

  // Webhook routes follow the live config: a reload can add, move or remove a source.
  const webhookDeps = { store: deps.store, clock, config: () => deps.live().config, metrics, onJobs: deps.onJobs ?? (() => {}), ...(deps.rateLimitRedis ? { rateLimitRedis: deps.rateLimitRedis } : {}) };
  const chains = new Map<string, { key: string; handlers: RequestHandler[] }>();
  let built: { live: Live; router: Router } | undefined;
  const webhooks = (): Router => {
    const live = deps.live();
    if (built?.live === live) return built.router;
    const router = Router();
    for (const source of live.sources) {
      // An unchanged source keeps its chain, so its rate-limit counts survive the reload.
      const key = JSON.stringify([source.config, live.config.server.body_limit, live.config.server.rate_limit, live.config.server.unverified_limit]);
      let chain = chains.get(source.name);
      if (chain?.key !== key) chains.set(source.name, (chain = { key, handlers: webhookHandlers(source, { ...webhookDeps, server: live.config.server }) }));
      router.post(source.config.path, ...chain.handlers);
      router.all(source.config.path, (_req, res) => {
        res.setHeader('allow', 'POST');
        sendProblem(res, 'method_not_allowed', 'webhooks are delivered with POST');
      });
    }
    built = { live, router };
    return router;
  };
  app.use((req, res, next) => webhooks()(req, res, next));
  // The Airflow plugin's pushes follow the live config too.
  let pushes: { config: Config; router: Router } | undefined;
  app.use((req, res, next) => {
    const config = deps.live().config;
    if (!deps.recordRuns) return next();
    if (pushes?.config !== config) pushes = { config, router: pushRouter(config, { clock, bodyLimit: config.server.body_limit, record: deps.recordRuns }) };
    pushes.router(req, res, next);
  });

  app.use((req, res) => sendProblem(res, 'not_found', `no route for ${req.method} ${req.path}`));
  app.use(errorHandler);
  return app;
}

export function metricsHandler(metrics: Metrics, beforeScrape?: () => Promise<void>): RequestHandler {
  return async (_req, res) => {
    await beforeScrape?.();
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  };
}

// body-parser's errors carry a `type`; anything else is a bug and is logged with its stack.
const errorHandler: ErrorRequestHandler = (err: { type?: string; status?: number; message?: string }, req, res, _next) => {
  if (res.headersSent) return;
  switch (err.type) {
    case 'entity.too.large':
      return sendProblem(res, 'body_too_large', `body is larger than the ${(err as { limit?: number }).limit ?? ''} byte limit`);
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return sendProblem(res, 'unsupported_media_type', err.message ?? 'unsupported encoding');
  }
  // Any other client-side body error (aborted upload, wrong length) is the sender's, not ours.
  if (err.type && (err.status ?? 500) < 500) return sendProblem(res, 'bad_request', err.message ?? 'unreadable body');
  req.log.error({ err }, 'unhandled error');
  sendProblem(res, 'internal_error', 'internal error; see the bridge logs for this request id');
};
