import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { rateLimit } from 'express-rate-limit';
import type { Config, RouteConfig } from '../config/schema.js';
import { routeEvent } from '../route/route.js';
import { parseEvent } from '../event/schema.js';
import type { Store } from '../store/types.js';
import type { Clock } from '../verify/types.js';
import { sendProblem } from './problems.js';
import type { Source } from './sources.js';

export interface WebhookDeps {
  store: Store;
  clock: Clock;
  server: Config['server'];
  /** Read per request, so a reloaded config applies to the next delivery. */
  routes: () => readonly RouteConfig[];
  /** Told after a commit that created jobs, so dispatch starts without polling delay. */
  onJobs: () => void;
}

/** DESIGN §1 order: content type → size → rate limit → signature → schema → dedupe + insert. */
export function webhookHandlers(source: Source, deps: WebhookDeps): RequestHandler[] {
  const limits = source.config.rate_limit ?? deps.server.rate_limit;
  return [
    tagSource(source),
    requireJson,
    express.raw({ type: () => true, limit: deps.server.body_limit }),
    rateLimit({
      windowMs: limits.window,
      limit: limits.max,
      standardHeaders: 'draft-8',
      legacyHeaders: false,
      identifier: source.name,
      handler: (_req, res) => sendProblem(res, 'rate_limited', `more than ${limits.max} requests in ${limits.window / 1000}s for source ${source.name}; retry after the Retry-After seconds`),
    }),
    accept(source, deps),
  ];
}

const tagSource = (source: Source): RequestHandler => (_req, res, next) => {
  res.locals.source = source.name;
  next();
};

const requireJson: RequestHandler = (req, res, next) => {
  if (req.is(['application/json', 'application/*+json'])) return next();
  const given = req.headers['content-type'];
  sendProblem(res, 'unsupported_media_type', given ? `content type ${JSON.stringify(given.slice(0, 100))} is not JSON; send application/json` : 'no content type; send application/json');
};

function accept(source: Source, deps: WebhookDeps): RequestHandler {
  return async (req: Request, res: Response, _next: NextFunction) => {
    const body: Buffer = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);

    const verified = await source.verify({ body, headers: req.headers });
    if (!verified.ok) return sendProblem(res, verified.error.reason, verified.error.message);

    const event = parseEvent(body);
    if (!event.ok) return sendProblem(res, event.error.reason, event.error.message);

    const deliveryId = verified.value.deliveryId ?? event.value.id;
    res.locals.deliveryId = deliveryId;
    res.locals.eventId = event.value.id;

    // Routing is pure (config + event), so its decision commits in the same transaction as the event.
    const routed = routeEvent(event.value, source.name, deps.routes());
    const stored = await deps.store.insertEvent({
      source: source.name,
      deliveryId,
      scheme: source.config.verify.scheme,
      eventId: event.value.id,
      type: event.value.type,
      pipelineId: event.value.data.pipeline_id,
      runId: event.value.data.run_id,
      headers: keptHeaders(req, source.keptHeaders),
      body,
      receivedAt: new Date(deps.clock()),
    }, routed.jobs);
    if (!stored.ok) return sendProblem(res, stored.error.reason, 'the event could not be stored; retry later');
    if (!stored.value.duplicate && routed.jobs.length > 0) deps.onJobs();

    res.locals.outcome = stored.value.duplicate ? 'duplicate' : 'accepted';
    res.locals.storedId = stored.value.id;
    res.locals.routes = routed.jobs.map((j) => j.route);
    res.status(stored.value.duplicate ? 200 : 202).json({ id: stored.value.id, event_id: event.value.id, duplicate: stored.value.duplicate });
  };
}

function keptHeaders(req: Request, names: readonly string[]): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const name of names) {
    const value = req.headers[name];
    if (value !== undefined) kept[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return kept;
}
