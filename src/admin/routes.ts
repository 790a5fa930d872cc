import express, { Router } from 'express';
import { rateLimit } from 'express-rate-limit';
import type { Config } from '../config/schema.js';
import { explainEvent } from '../guard/explain.js';
import { sendProblem } from '../ingress/problems.js';
import type { Store } from '../store/types.js';
import { requireAdmin } from './auth.js';

export interface AdminDeps {
  tokens: readonly string[];
  config: () => Config;
  store: Store;
  clock: () => number;
}

/** `/v1`: the operator's API. Rate limited apart from the webhooks. */
export function adminRouter(deps: AdminDeps): Router {
  const router = Router();
  router.use(
    requireAdmin(deps.tokens),
    rateLimit({
      windowMs: 60_000,
      limit: 600,
      standardHeaders: 'draft-8',
      legacyHeaders: false,
      validate: { xForwardedForHeader: false },
      handler: (_req, res) => sendProblem(res, 'rate_limited', 'more than 600 admin requests in 60s; retry after the Retry-After seconds'),
    }),
  );

  router.post('/explain', express.raw({ type: () => true, limit: '1mb' }), async (req, res) => {
    const config = deps.config();
    const source = typeof req.query.source === 'string' ? req.query.source : Object.keys(config.sources)[0]!;
    if (!(source in config.sources)) return sendProblem(res, 'bad_request', `no source "${source}"`);
    const body: Buffer = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const result = await explainEvent(body, source, config, deps.store, deps.clock());
    if (!result.ok) return sendProblem(res, result.error.reason, result.error.message);
    res.json(result.value);
  });

  return router;
}
