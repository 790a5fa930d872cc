import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import express, { Router, type ErrorRequestHandler, type Express, type RequestHandler } from 'express';
import proxyAddr from 'proxy-addr';
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
import { bodyProblem, sendProblem } from './problems.js';
import type { Source } from './sources.js';
import { accessLog, requestLog } from './trace.js';
import { webhookHandler, type WebhookHandler } from './webhook.js';
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

/** A request listener (for node:http, or supertest), `listen` like express's, and the express app behind it (for what walks its routes). */
export type App = RequestListener & { listen(port: number, host: string, done?: (err?: Error) => void): Server; express: Express };

export function createApp(deps: AppDeps): App {
  const clock = deps.clock ?? Date.now;
  const metrics = deps.metrics ?? createMetrics();
  const app = express();
  app.disable('x-powered-by');
  // Answers are small, uncacheable and new each time: hashing every body for an ETag cost
  // ~5 % of a webhook's CPU in the profile, and no client revalidates.
  app.set('etag', false);
  // Fixed at start, like the listening address: a reload that changes it is refused.
  app.set('trust proxy', deps.live().config.server.trust_proxy);

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
      if (reasons.length > 0) deps.logger.warn(detail, `readiness: ${reasons.join(', ')}`);
      else deps.logger.info(detail, 'readiness: ready');
    }
    res.status(store.ok ? 200 : 503).json({ status: store.ok ? 'ready' : 'not_ready', reasons });
  });

  if (!deps.metricsElsewhere) app.get('/metrics', metricsHandler(metrics, deps.beforeScrape));

  const auth = adminAuth(deps.adminTokens ?? [], () => deps.live().config.admin);
  app.use('/v1', adminRouter({ auth, config: () => deps.live().config, store: deps.store, clock, ...deps.admin, airflowHealth: deps.airflowHealth }));
  // The console reads the admin API, so it exists only while the admin API does.
  const consolePages = consoleRouter();
  app.use('/console', (req, res, next) => (auth.enabled() ? consolePages(req, res, next) : next()));
  app.get('/openapi.json', (_req, res) => {
    res.json(openapi);
  });

  // Webhook routes follow the live config: a reload can add, move or remove a source.
  const trust = app.get('trust proxy fn') as Parameters<typeof proxyAddr>[1];
  const webhookDeps = {
    store: deps.store,
    clock,
    config: () => deps.live().config,
    metrics,
    logger: deps.logger,
    clientAddress: (req: IncomingMessage) => proxyAddr(req, trust),
    onJobs: deps.onJobs ?? (() => {}),
    ...(deps.rateLimitRedis ? { rateLimitRedis: deps.rateLimitRedis } : {}),
  };
  const handlers = new Map<string, { key: string; handle: WebhookHandler }>();
  let built: { live: Live; router: Router; byPath: Map<string, WebhookHandler> } | undefined;
  const webhooks = () => {
    const live = deps.live();
    if (built?.live === live) return built;
    const router = Router();
    const byPath = new Map<string, WebhookHandler>();
    for (const source of live.sources) {
      // An unchanged source keeps its handler, so its rate-limit counts survive the reload.
      const key = JSON.stringify([source.config, live.config.server.body_limit, live.config.server.rate_limit, live.config.server.unverified_limit]);
      let handler = handlers.get(source.name);
      if (handler?.key !== key) handlers.set(source.name, (handler = { key, handle: webhookHandler(source, { ...webhookDeps, server: live.config.server }) }));
      const handle = handler.handle;
      byPath.set(source.config.path, handle);
      router.post(source.config.path, (req, res, next) => handle(req, res).catch(next));
      router.all(source.config.path, (_req, res) => {
        res.setHeader('allow', 'POST');
        sendProblem(res, 'method_not_allowed', 'webhooks are delivered with POST');
      });
    }
    built = { live, router, byPath };
    return built;
  };
  app.use((req, res, next) => webhooks().router(req, res, next));
  // The Airflow plugin's pushes follow the live config too.
  let pushes: { config: Config; router: Router } | undefined;
  app.use((req, res, next) => {
    const config = deps.live().config;
    if (!deps.recordRuns) return next();
    if (pushes?.config !== config) pushes = { config, router: pushRouter(config, { clock, bodyLimit: config.server.body_limit, record: deps.recordRuns }) };
    pushes.router(req, res, next);
  });

  app.use((req, res) => sendProblem(res, 'not_found', `no route for ${req.method} ${req.path}`));
  app.use(errorHandler(deps.logger));

  const log = accessLog(deps.logger, metrics);
  const handle: RequestListener = (req, res) => {
    log(req, res);
    // A delivery to a source's exact path skips express (its routing and request set-up);
    // everything else, webhooks at a variant of the path included, goes through it.
    const webhook = req.method === 'POST' ? webhooks().byPath.get(pathOf(req.url)) : undefined;
    if (!webhook) return void app(req, res);
    webhook(req, res).catch((err: unknown) => unhandled(err, req, res, deps.logger));
  };
  return Object.assign(handle, {
    express: app,
    listen: (port: number, host: string, done?: (err?: Error) => void) => {
      const server = createServer(handle);
      if (!done) return server.listen(port, host);
      server.once('error', done);
      return server.listen(port, host, () => {
        server.off('error', done);
        done();
      });
    },
  });
}

const pathOf = (url = '/'): string => {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
};

function unhandled(err: unknown, req: IncomingMessage, res: ServerResponse, logger: Logger): void {
  (requestLog(req) ?? logger).error({ err }, 'unhandled error');
  if (!res.headersSent) sendProblem(res, 'internal_error', 'internal error; see the bridge logs for this request id');
}


export function metricsHandler(metrics: Metrics, beforeScrape?: () => Promise<void>): RequestHandler {
  return async (_req, res) => {
    await beforeScrape?.();
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  };
}

// body-parser's errors carry a `type`; anything else is a bug and is logged with its stack.
const errorHandler =
  (logger: Logger): ErrorRequestHandler =>
  (err: { type?: string; status?: number; message?: string }, req, res, _next) => {
    if (res.headersSent) return;
    const problem = bodyProblem(err);
    if (problem) return sendProblem(res, problem.reason, problem.message);
    unhandled(err, req, res, logger);
  };
