import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { rateLimit } from 'express-rate-limit';
import { RedisStore, type SendCommandFn } from 'rate-limit-redis';
import type { Config } from '../config/schema.js';
import { parseEvent } from '../event/schema.js';
import { planEvent } from '../guard/plan.js';
import { reportGuard } from '../guard/report.js';
import type { Metrics } from '../metrics/metrics.js';
import type { Store } from '../store/types.js';
import type { Clock } from '../verify/types.js';
import { sendProblem } from './problems.js';
import type { Source } from './sources.js';

export interface WebhookDeps {
  store: Store;
  clock: Clock;
  server: Config['server'];
  /** Read per request, so a reloaded config applies to the next delivery. */
  config: () => Pick<Config, 'routes' | 'loop_guard'>;
  metrics: Metrics;
  /** Sends a command to the shared Redis for rate-limit counts (several replicas). */
  rateLimitRedis?: SendCommandFn;
  /** Told after a commit that created jobs, so dispatch starts without polling delay. */
  onJobs: () => void;
}

/**
 * DESIGN §1 order: content type → size → signature → rate limits → schema → dedupe + insert.
 * Two budgets (DESIGN §2), so that junk cannot starve the sender: a request that fails
 * verification counts per client against `server.unverified_limit` (429 past it, never
 * touching the sender's budget); a verified delivery counts per source against `rate_limit`
 * and is never refused by the first. Verifying first costs one MAC per configured secret.
 */
export function webhookHandlers(source: Source, deps: WebhookDeps): RequestHandler[] {
  const limits = source.config.rate_limit ?? deps.server.rate_limit;
  const junk = deps.server.unverified_limit;
  return [
    tagSource(source),
    requireJson,
    // inflate: false — the signature covers the bytes as sent; a compressed body is refused (415).
    express.raw({ type: () => true, limit: deps.server.body_limit, inflate: false }),
    verify(source),
    limiter(deps, `bridge:rl:unverified:${source.name}:`, junk, {
      // Per client address (express's req.ip, so behind proxies it needs server.trust_proxy).
      // A verifier that could not run (JWKS down, 503) is ours to fix, not the client's junk.
      skip: (_req, res) => {
        const v = res.locals.verification as Verification;
        return v.ok || v.error.reason === 'verifier_unavailable';
      },
      message: `more than ${junk.max} requests that failed verification in ${junk.window / 1000}s from this address; retry after the Retry-After seconds`,
    }),
    refuseUnverified,
    limiter(deps, `bridge:rl:${source.name}:`, limits, {
      // One budget for the source, whichever address the deliveries come from.
      keyGenerator: () => source.name,
      message: `more than ${limits.max} deliveries in ${limits.window / 1000}s for source ${source.name}; retry after the Retry-After seconds`,
    }),
    accept(source, deps),
  ];
}

type Verification = Awaited<ReturnType<Source['verify']>>;

function limiter(deps: WebhookDeps, prefix: string, limits: Config['server']['rate_limit'], options: { skip?: (req: Request, res: Response) => boolean; keyGenerator?: () => string; message: string }): RequestHandler {
  return rateLimit({
    windowMs: limits.window,
    limit: limits.max,
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    ...(options.skip ? { skip: options.skip } : {}),
    ...(options.keyGenerator ? { keyGenerator: options.keyGenerator } : {}),
    // The library's checks of its own configuration run on every request and print stack
    // traces to stderr instead of log lines; the config is checked at load instead (e.g.
    // trust_proxy), and behind a proxy without trust_proxy X-Forwarded-For is simply ignored.
    validate: false,
    // Shared across replicas through Redis when configured. If Redis fails, requests pass:
    // refusing webhooks (and making Planasonix drop or delay them) is worse than a moment
    // without a limit.
    ...(deps.rateLimitRedis ? { store: new RedisStore({ sendCommand: deps.rateLimitRedis, prefix }), passOnStoreError: true } : {}),
    handler: (_req, res) => sendProblem(res, 'rate_limited', options.message),
  });
}

const verify = (source: Source): RequestHandler => async (req, res, next) => {
  const body: Buffer = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
  res.locals.verification = await source.verify({ body, headers: req.headers });
  next();
};

const refuseUnverified: RequestHandler = (_req, res, next) => {
  const verified = res.locals.verification as Verification;
  if (!verified.ok) return sendProblem(res, verified.error.reason, verified.error.message, verified.error.cause);
  next();
};

const tagSource = (source: Source): RequestHandler => (req, res, next) => {
  res.locals.source = source.name;
  // Logged on rejections too, marked unverified: it helps find a delivery in the sender's logs.
  const claimed = req.headers['webhook-id'];
  if (typeof claimed === 'string') res.locals.deliveryIdUnverified = claimed.slice(0, 200);
  next();
};

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json$/i;

/** JSON in UTF-8 only (RFC 8259 §8.1): any other charset would be read wrongly. */
const requireJson: RequestHandler = (req, res, next) => {
  const given = req.headers['content-type'];
  if (!given) return sendProblem(res, 'unsupported_media_type', 'no content type; send application/json');
  const [type = '', ...params] = given.split(';').map((p) => p.trim());
  const charset = params.find((p) => /^charset=/i.test(p))?.slice(8).replace(/"/g, '').toLowerCase();
  if (!JSON_TYPE.test(type)) {
    return sendProblem(res, 'unsupported_media_type', `content type ${JSON.stringify(given.slice(0, 100))} is not JSON; send application/json`);
  }
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
    return sendProblem(res, 'unsupported_media_type', `charset ${JSON.stringify(charset.slice(0, 40))} is not supported; send UTF-8`);
  }
  next();
};

function accept(source: Source, deps: WebhookDeps): RequestHandler {
  return async (req: Request, res: Response, _next: NextFunction) => {
    const body: Buffer = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const verified = res.locals.verification as Verification & { ok: true };

    const event = parseEvent(body);
    if (!event.ok) return sendProblem(res, event.error.reason, event.error.message);

    const deliveryId = verified.value.deliveryId ?? event.value.id;
    res.locals.deliveryId = deliveryId;
    res.locals.eventId = event.value.id;

    // Routing and lineage are pure (config + event); their decision commits in the same
    // transaction as the event, together with the breaker's.
    const config = deps.config();
    const plan = planEvent(event.value, source.name, config, 'near-misses');
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
      routing: plan.decisions,
    }, plan.jobs, plan.policy);
    if (!stored.ok) return sendProblem(res, stored.error.reason, 'the event could not be stored; retry later', stored.error.message);
    if (stored.value.jobs.some((j) => j.state === 'pending')) deps.onJobs();

    res.locals.outcome = stored.value.duplicate ? 'duplicate' : 'accepted';
    res.locals.storedId = stored.value.id;
    res.locals.routes = plan.jobs.map((j) => j.route);
    res.status(stored.value.duplicate ? 200 : 202).json({ id: stored.value.id, event_id: event.value.id, duplicate: stored.value.duplicate });
    if (!stored.value.duplicate) await reportGuard(plan, stored.value, event.value.id, { store: deps.store, config, logger: req.log, metrics: deps.metrics });
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
