import { randomUUID } from 'node:crypto';
import express, { type ErrorRequestHandler, type Express } from 'express';
import { pinoHttp } from 'pino-http';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import type { Store } from '../store/types.js';
import type { Clock } from '../verify/types.js';
import { adminRouter } from '../admin/routes.js';
import { createMetrics, type Metrics } from '../metrics/metrics.js';
import { sendProblem } from './problems.js';
import type { Source } from './sources.js';
import { webhookHandlers } from './webhook.js';

export interface AppDeps {
  config: Config;
  sources: Source[];
  store: Store;
  logger: Logger;
  clock?: Clock;
  /** Wakes the dispatcher after jobs are committed. */
  onJobs?: () => void;
  /** Per Airflow instance, for /readyz. */
  airflowHealth?: () => Promise<Record<string, unknown>>;
  metrics?: Metrics;
  /** Bearer tokens for /v1; none = the admin API is off (404). */
  adminTokens?: readonly string[];
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export function createApp(deps: AppDeps): Express {
  const clock = deps.clock ?? Date.now;
  const metrics = deps.metrics ?? createMetrics();
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', deps.config.server.trust_proxy);

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
      customProps: (_req, res) => {
        const l = (res as unknown as { locals?: Record<string, unknown> }).locals ?? {};
        return {
          source: l.source,
          delivery_id: l.deliveryId,
          ...(l.deliveryId === undefined && l.deliveryIdUnverified !== undefined ? { delivery_id_unverified: l.deliveryIdUnverified } : {}),
          event_id: l.eventId,
          stored_id: l.storedId,
          outcome: l.outcome,
          detail: l.detail,
          routes: l.routes,
        };
      },
      customLogLevel: (_req, res, err) => (err || res.statusCode >= 500 ? 'error' : 'info'),
      customSuccessMessage: (req, res) => `${req.method} ${req.url} ${res.statusCode}`,
      customErrorMessage: (req, res) => `${req.method} ${req.url} ${res.statusCode}`,
      autoLogging: { ignore: (req) => req.url === '/healthz' || req.url === '/readyz' },
    }),
  );

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    const [store, airflow] = await Promise.all([deps.store.checkWritable(), deps.airflowHealth?.()]);
    const body = { status: store.ok ? 'ready' : 'not_ready', config: 'loaded', store: store.ok ? 'ok' : store.error.message, ...(airflow ? { airflow } : {}) };
    res.status(store.ok ? 200 : 503).json(body);
  });

  app.get('/metrics', async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  app.use('/v1', adminRouter({ tokens: deps.adminTokens ?? [], config: () => deps.config, store: deps.store, clock }));

  for (const source of deps.sources) {
    app.post(source.config.path, ...webhookHandlers(source, { store: deps.store, clock, server: deps.config.server, config: () => deps.config, metrics, onJobs: deps.onJobs ?? (() => {}) }));
    app.all(source.config.path, (_req, res) => {
      res.setHeader('allow', 'POST');
      sendProblem(res, 'method_not_allowed', 'webhooks are delivered with POST');
    });
  }

  app.use((req, res) => sendProblem(res, 'not_found', `no route for ${req.method} ${req.path}`));
  app.use(errorHandler);
  return app;
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
