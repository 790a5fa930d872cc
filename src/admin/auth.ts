import type { RequestHandler } from 'express';
import { createRemoteJWKSet, jwtVerify, type JWTVerifyGetKey } from 'jose';
import type { Config } from '../config/schema.js';
import { sendProblem } from '../ingress/problems.js';
import { equalStrings } from '../verify/crypto.js';

/** Tokens from BRIDGE_ADMIN_TOKEN, comma-separated so one can be rotated while the other works. */
export function adminTokens(env: NodeJS.ProcessEnv = process.env): string[] {
  return (env.BRIDGE_ADMIN_TOKEN ?? '').split(',').map((t) => t.trim()).filter((t) => t.length > 0);
}

export interface AdminAuth {
  /** False when neither tokens nor a JWKS are configured: the admin API does not exist. */
  enabled: boolean;
  middleware: RequestHandler;
}

/**
 * Bearer auth for /v1: a static token (constant-time compared against every configured
 * one) or, with `admin.jwks_url`, a JWT verified with jose (issuer and audience required).
 * With neither configured every /v1 path is 404: never open by default.
 */
export function adminAuth(tokens: readonly string[], jwt: Config['admin']): AdminAuth {
  const jwks: JWTVerifyGetKey | undefined = jwt ? createRemoteJWKSet(new URL(jwt.jwks_url), { timeoutDuration: 5000 }) : undefined;
  const enabled = tokens.length > 0 || jwks !== undefined;
  const middleware: RequestHandler = async (req, res, next) => {
    if (!enabled) return sendProblem(res, 'not_found', `no route for ${req.method} ${req.originalUrl.split('?')[0]} (the admin API is off: set BRIDGE_ADMIN_TOKEN or admin.jwks_url)`);
    const given = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1]?.trim();
    const deny = (message: string) => {
      res.setHeader('www-authenticate', 'Bearer');
      sendProblem(res, 'unauthorized', message);
    };
    if (given === undefined) return deny('missing Authorization: Bearer <token>');
    // Every token is compared, so the time taken does not tell which one was close.
    if (tokens.map((t) => equalStrings(t, given)).includes(true)) return next();
    if (jwks && jwt && given.split('.').length === 3) {
      try {
        await jwtVerify(given, jwks, { issuer: jwt.issuer, audience: jwt.audience, clockTolerance: 30, requiredClaims: ['exp'] });
        return next();
      } catch (err) {
        req.log?.warn({ reason: (err as Error).message }, 'admin JWT refused');
        return deny('the bearer token is not valid');
      }
    }
    deny('the bearer token is not valid');
  };
  return { enabled, middleware };
}
