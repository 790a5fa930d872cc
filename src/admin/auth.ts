import type { RequestHandler } from 'express';
import { equalStrings } from '../verify/crypto.js';
import { sendProblem } from '../ingress/problems.js';

/** Tokens from BRIDGE_ADMIN_TOKEN, comma-separated so one can be rotated while the other works. */
export function adminTokens(env: NodeJS.ProcessEnv = process.env): string[] {
  return (env.BRIDGE_ADMIN_TOKEN ?? '').split(',').map((t) => t.trim()).filter((t) => t.length > 0);
}

/**
 * Bearer-token check for /v1. With no token configured the admin API does not exist (404):
 * it is never open by default.
 */
export function requireAdmin(tokens: readonly string[]): RequestHandler {
  return (req, res, next) => {
    if (tokens.length === 0) return sendProblem(res, 'not_found', `no route for ${req.method} ${req.path} (the admin API is off: set BRIDGE_ADMIN_TOKEN)`);
    const given = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1]?.trim();
    // Every token is compared, so the time taken does not tell which one was close.
    const matches = given !== undefined && tokens.map((t) => equalStrings(t, given)).includes(true);
    if (!matches) {
      res.setHeader('www-authenticate', 'Bearer');
      return sendProblem(res, 'unauthorized', given === undefined ? 'missing Authorization: Bearer <token>' : 'the bearer token is not valid');
    }
    next();
  };
}
