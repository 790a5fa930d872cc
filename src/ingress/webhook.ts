import type { IncomingMessage, ServerResponse } from 'node:http';
import { MemoryStore, type ClientRateLimitInfo, type Options as RateLimitOptions, type Store as RateLimitStore } from 'express-rate-limit';
import getRawBody from 'raw-body';
import { RedisStore, type SendCommandFn } from 'rate-limit-redis';
import type { Config } from '../config/schema.js';
import { parseEvent } from '../event/schema.js';
import { planEvent } from '../guard/plan.js';
import { reportGuard } from '../guard/report.js';
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import type { Store } from '../store/types.js';
import type { Clock } from '../verify/types.js';
import { bodyProblem, sendJson, sendProblem } from './problems.js';
import type { Source } from './sources.js';
import { requestLog, traceOf, type Trace } from './trace.js';

export interface WebhookDeps {
  store: Store;
  clock: Clock;
  server: Config['server'];
  /** Read per request, so a reloaded config applies to the next delivery. */
  config: () => Pick<Config, 'routes' | 'loop_guard'>;
  metrics: Metrics;
  logger: Logger;
  /** The client's address as `server.trust_proxy` says to read it (express's `req.ip`). */
  clientAddress: (req: IncomingMessage) => string;
  /** Sends a command to the shared Redis for rate-limit counts (several replicas). */
  rateLimitRedis?: SendCommandFn;
  /** Told after a commit that created jobs, so dispatch starts without polling delay. */
  onJobs: () => void;
}

export type WebhookHandler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

/**
 * DESIGN §1 order: content type → size → signature → rate limits → schema → dedupe + insert.
 * Two budgets (DESIGN §2), so that junk cannot starve the sender: a request that fails
 * verification counts per client against `server.unverified_limit` (429 past it, never
 * touching the sender's budget); a verified delivery counts per source against `rate_limit`
 * and is never refused by the first. Verifying first costs one MAC per configured secret.
 *
 * On node:http's request and response, not express's: this is the hot path, and express's
 * routing and request set-up cost more than the rest of it together (see README,
 * Performance). The app calls it directly for a source's exact path, and through express for
 * the variants express also routes there (trailing slash, other case).
 */
export function webhookHandler(source: Source, deps: WebhookDeps): WebhookHandler {
  const limits = source.config.rate_limit ?? deps.server.rate_limit;
  const junk = deps.server.unverified_limit;
  // Per client address (so behind proxies it needs server.trust_proxy).
  const unverifiedLimit = limiter(deps, `unverified:${source.name}`, junk, {
    key: (req) => deps.clientAddress(req),
    message: `more than ${junk.max} requests that failed verification in ${junk.window / 1000}s from this address; retry after the Retry-After seconds`,
  });
  // One budget for the source, whichever address the deliveries come from.
  const sourceLimit = limiter(deps, source.name, limits, {
    key: () => source.name,
    message: `more than ${limits.max} deliveries in ${limits.window / 1000}s for source ${source.name}; retry after the Retry-After seconds`,
  });
  const accept = acceptor(source, deps);

  return async (req, res) => {
    const trace = traceOf(res);
    trace.source = source.name;
    // Logged on rejections too, marked unverified: it helps find a delivery in the sender's logs.
    const claimed = req.headers['webhook-id'];
    if (typeof claimed === 'string') trace.deliveryIdUnverified = claimed.slice(0, 200);

    const media = mediaProblem(req);
    if (media) return sendProblem(res, 'unsupported_media_type', media);
    const body = await readBody(req, deps.server.body_limit);
    if (!Buffer.isBuffer(body)) {
      const problem = bodyProblem(body);
      if (problem) return sendProblem(res, problem.reason, problem.message);
      throw body;
    }
    const verified = await source.verify({ body, headers: req.headers });
    if (!verified.ok) {
      // A verifier that could not run (JWKS down, 503) is ours to fix, not the client's junk.
      if (verified.error.reason !== 'verifier_unavailable' && !(await unverifiedLimit(req, res))) return;
      return sendProblem(res, verified.error.reason, verified.error.message, verified.error.cause);
    }
    if (!(await sourceLimit(req, res))) return;
    await accept(req, res, body, verified.value.deliveryId, trace);
  };
}

/** A body read whole up to the limit, or raw-body's error (with its `type`) to answer with. */
const readBody = (req: IncomingMessage, limit: number): Promise<Buffer | { type?: string; status?: number; message?: string; limit?: number }> =>
  getRawBody(req, { limit, length: req.headers['content-length'] }).catch((err: { type?: string }) => err);

type Limit = (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;

/**
 * A budget counted by express-rate-limit's memory store, or rate-limit-redis's store shared by
 * the replicas: true when the request is within it; otherwise the 429 is sent. The
 * middleware itself is not used here because it answers through express's response
 * (`res.append`, `res.status`), which this path does not have; what is left by hand is the
 * IETF draft-8 headers it would write (without the optional `pk`).
 */
function limiter(deps: WebhookDeps, name: string, limits: Config['server']['rate_limit'], options: { key: (req: IncomingMessage) => string; message: string }): Limit {
  const store: RateLimitStore = deps.rateLimitRedis ? new RedisStore({ sendCommand: deps.rateLimitRedis, prefix: `bridge:rl:${name}:` }) : new MemoryStore();
  void store.init?.({ windowMs: limits.window } as RateLimitOptions);
  const windowSeconds = Math.ceil(limits.window / 1000);
  const policy = `"${name}"; q=${limits.max}; w=${windowSeconds}`;
  return async (req, res) => {
    let hit: ClientRateLimitInfo;
    try {
      hit = await store.increment(options.key(req));
    } catch {
      // Only the Redis store fails, and its client logs the outage. Requests pass meanwhile:
      // refusing webhooks (and making Planasonix drop or delay them) is worse than a moment
      // without a limit.
      return true;
    }
    const reset = hit.resetTime ? Math.max(0, Math.ceil((hit.resetTime.getTime() - Date.now()) / 1000)) : windowSeconds;
    res.setHeader('ratelimit', `"${name}"; r=${Math.max(limits.max - hit.totalHits, 0)}; t=${reset}`);
    res.setHeader('ratelimit-policy', policy);
    if (hit.totalHits <= limits.max) return true;
    res.setHeader('retry-after', String(reset));
    sendProblem(res, 'rate_limited', options.message);
    return false;
  };
}

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json$/i;

/** JSON in UTF-8 only (RFC 8259 §8.1): any other charset would be read wrongly. Uncompressed only: the signature covers the bytes as sent. */
function mediaProblem(req: IncomingMessage): string | undefined {
  const given = req.headers['content-type'];
  if (!given) return 'no content type; send application/json';
  const [type = '', ...params] = given.split(';').map((p) => p.trim());
  const charset = params.find((p) => /^charset=/i.test(p))?.slice(8).replace(/"/g, '').toLowerCase();
  if (!JSON_TYPE.test(type)) return `content type ${JSON.stringify(given.slice(0, 100))} is not JSON; send application/json`;
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') return `charset ${JSON.stringify(charset.slice(0, 40))} is not supported; send UTF-8`;
  const encoding = (req.headers['content-encoding'] ?? 'identity').toLowerCase();
  if (encoding !== 'identity') return `content encoding unsupported (${JSON.stringify(encoding.slice(0, 40))}): send the body uncompressed`;
  return undefined;
}

function acceptor(source: Source, deps: WebhookDeps) {
  return async (req: IncomingMessage, res: ServerResponse, body: Buffer, verifiedDeliveryId: string | undefined, trace: Trace) => {
    const event = parseEvent(body);
    if (!event.ok) return sendProblem(res, event.error.reason, event.error.message);

    const deliveryId = verifiedDeliveryId ?? event.value.id;
    trace.deliveryId = deliveryId;
    trace.eventId = event.value.id;

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

    trace.outcome = stored.value.duplicate ? 'duplicate' : 'accepted';
    trace.storedId = stored.value.id;
    trace.routes = plan.jobs.map((j) => j.route);
    if (plan.jobs.length === 0 && !stored.value.duplicate) trace.whyNot = Object.fromEntries(plan.decisions.map((d) => [d.route, d.reason]));
    sendJson(res, stored.value.duplicate ? 200 : 202, { id: stored.value.id, event_id: event.value.id, duplicate: stored.value.duplicate });
    if (!stored.value.duplicate) await reportGuard(plan, stored.value, event.value.id, { store: deps.store, config, logger: () => requestLog(req) ?? deps.logger, metrics: deps.metrics });
  };
}

function keptHeaders(req: IncomingMessage, names: readonly string[]): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const name of names) {
    const value = req.headers[name];
    if (value !== undefined) kept[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return kept;
}
