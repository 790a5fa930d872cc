import type { RequestHandler } from 'express';
import { createRemoteJWKSet, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { ADMIN_TOKEN_MIN, type Config } from '../config/schema.js';
import { sendProblem } from '../ingress/problems.js';
import { requestLog } from '../ingress/trace.js';
import { equalStrings } from '../verify/crypto.js';

/** Tokens from BRIDGE_ADMIN_TOKEN, comma-separated so one can be rotated while the other works. */
export function adminTokens(env: NodeJS.ProcessEnv = process.env): string[] {
  return (env.BRIDGE_ADMIN_TOKEN ?? '').split(',').map((t) => t.trim()).filter((t) => t.length > 0);
}

/** A reason not to start, or undefined: a short static token can be guessed. */
export function weakAdminToken(tokens: readonly string[]): string | undefined {
  const short = tokens.filter((t) => t.length < ADMIN_TOKEN_MIN).length;
  return short === 0 ? undefined : `${short} token(s) shorter than ${ADMIN_TOKEN_MIN} characters: too easy to guess (make one with: openssl rand -base64 32)`;
}

export interface AdminAuth {
  /** False when neither tokens nor a JWKS are configured: the admin API does not exist. */
  enabled(): boolean;
  middleware: RequestHandler;
}

/**
 * Bearer auth for /v1: a static token (constant-time compared against every configured
 * one) or, with `admin.jwks_url`, a JWT verified with jose (issuer and audience required).
 * With neither configured every /v1 path is 404: never open by default. `admin` is read per
 * request, so a reload that removes a token, the JWKS or changes issuer/audience revokes at once.
 */
export function adminAuth(envTokens: readonly string[], admin: () => Config['admin']): AdminAuth {
  // One key set per URL: kept across reloads that leave the URL alone (its cache stays warm).
  let jwks: { url: string; keys: JWTVerifyGetKey } | undefined;
  const keysFor = (url: string) => (jwks?.url === url ? jwks : (jwks = { url, keys: createRemoteJWKSet(new URL(url), { timeoutDuration: 5000 }) })).keys;
  const tokensNow = () => [...envTokens, ...(admin()?.tokens ?? [])];
  const enabled = () => tokensNow().length > 0 || admin()?.jwks_url !== undefined;
  const middleware: RequestHandler = async (req, res, next) => {
    const jwt = admin();
    const tokens = tokensNow();
    if (tokens.length === 0 && jwt?.jwks_url === undefined) {
      return sendProblem(res, 'not_found', `no route for ${req.method} ${req.originalUrl.split('?')[0]} (the admin API is off: set BRIDGE_ADMIN_TOKEN, admin.tokens or admin.jwks_url)`);
    }
    const given = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1]?.trim();
    const deny = (message: string) => {
      res.setHeader('www-authenticate', 'Bearer');
      sendProblem(res, 'unauthorized', message);
    };
    if (given === undefined) return deny('missing Authorization: Bearer <token>');
    // Every token is compared, so the time taken does not tell which one was close.
    if (tokens.map((t) => equalStrings(t, given)).includes(true)) return next();
    if (jwt?.jwks_url && jwt.issuer && jwt.audience && given.split('.').length === 3) {
      try {
        await jwtVerify(given, keysFor(jwt.jwks_url), { issuer: jwt.issuer, audience: jwt.audience, clockTolerance: 30, requiredClaims: ['exp'] });
        return next();
      } catch (err) {
        requestLog(req)?.warn({ reason: (err as Error).message }, 'admin JWT refused');
        return deny('the bearer token is not valid');
      }
    }
    deny('the bearer token is not valid');
  };
  return { enabled, middleware };
}
