import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../metrics/metrics.js';

/**
 * What one request's log line says about it, filled in by the stages as they go: which
 * source, which delivery, what became of it. One object per request, written once when the
 * answer is sent.
 */
export interface Trace {
  id: string;
  source?: string;
  deliveryId?: string;
  /** The webhook-id header as claimed, before verification: helps find a refused delivery in the sender's logs. */
  deliveryIdUnverified?: string;
  eventId?: string;
  storedId?: string;
  outcome?: string;
  detail?: string;
  routes?: string[];
  /** For an event no route took: the near misses and why each did not match (the first thing someone asks). */
  whyNot?: Record<string, string | undefined>;
}

interface Traced {
  trace: Trace;
  log: () => Logger;
}

const traced = new WeakMap<IncomingMessage | ServerResponse, Traced>();

/** The trace of a request or its response; an empty one for a response the access log never saw (not logged). */
export const traceOf = (r: IncomingMessage | ServerResponse): Trace => traced.get(r)?.trace ?? { id: '' };

/** A logger whose lines carry the request (`req.id`, method, url), for what a handler logs by hand; undefined outside the access log. */
export const requestLog = (req: IncomingMessage): Logger | undefined => traced.get(req)?.log();

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const QUIET = new Set(['/healthz', '/readyz']);

/**
 * The access log: one line per request when its answer is done (or the client went away
 * first), with the request id, the answer's status, the latency and the trace, plus the
 * webhook counters. Written by hand rather than with pino-http: pino-http built two child
 * loggers and several closures per request and was 12–22 % of a webhook's CPU in the
 * profile; this makes one log call. The line's shape is pino-http's (`req`, `res`,
 * `responseTime`), so log queries written for it still work.
 */
export function accessLog(logger: Logger, metrics: Metrics): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const given = req.headers['x-request-id'];
    const trace: Trace = { id: typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID() };
    res.setHeader('x-request-id', trace.id);
    const started = performance.now();
    // Read now: express's mounted routers rewrite req.url on the way.
    const { method, url } = req;
    const reqFields = () => ({ id: trace.id, method, url, remote: req.socket.remoteAddress });
    let child: Logger | undefined;
    const entry: Traced = { trace, log: () => (child ??= logger.child({ req: reqFields() })) };
    traced.set(req, entry);
    traced.set(res, entry);
    res.once('close', () => {
      const { source, outcome } = trace;
      if (source && outcome) {
        metrics.webhooksReceived.inc({ source, outcome });
        if (res.statusCode >= 400) metrics.webhooksRejected.inc({ reason: outcome });
      }
      if (QUIET.has(url ?? '')) return;
      const fields = {
        req: reqFields(),
        res: { status: res.statusCode },
        responseTime: Math.round(performance.now() - started),
        source,
        delivery_id: trace.deliveryId,
        ...(trace.deliveryId === undefined && trace.deliveryIdUnverified !== undefined ? { delivery_id_unverified: trace.deliveryIdUnverified } : {}),
        event_id: trace.eventId,
        stored_id: trace.storedId,
        outcome,
        detail: trace.detail,
        routes: trace.routes,
        why_not: trace.whyNot,
      };
      if (!res.writableFinished) logger.warn(fields, `${method} ${url} aborted by the client before the answer was sent`);
      else if (res.statusCode >= 500) logger.error(fields, `${method} ${url} ${res.statusCode}`);
      else logger.info(fields, `${method} ${url} ${res.statusCode}`);
    });
  };
}
