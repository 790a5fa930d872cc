import { createPublicKey } from 'node:crypto';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  errors,
  jwtVerify,
  type JWK,
  type JWTVerifyGetKey,
  type JWTVerifyOptions,
} from 'jose';
import { fail, ok } from '../errors/result.js';
import type { VerifyConfig } from '../config/schema.js';
import { equalStrings, sha256 } from './crypto.js';
import { header, type Clock, type Verifier } from './types.js';
import type { BuildResult, KeyProblem } from './build.js';

type Config = Extract<VerifyConfig, { scheme: 'jws' }>;

/** A JWT in a header, verified with jose; its body-hash claim binds it to these exact bytes. */
export function jwsVerifier(config: Config, clock: Clock): BuildResult {
  const resolved = keySet(config);
  if (!resolved.ok) return resolved;
  const getKey = resolved.getKey;

  const verifier: Verifier = async ({ body, headers }) => {
    const raw = header(headers, config.header);
    if (!raw) return fail('signature_missing', `missing header ${config.header}`);
    const token = raw.replace(/^Bearer\s+/i, '').trim();
    if (!/^[\w-]+\.[\w-]+\.[\w-]+$/.test(token)) {
      return fail('signature_malformed', `header ${config.header} is not a compact JWS (header.payload.signature)`);
    }
    const now = clock();
    const options: JWTVerifyOptions = {
      algorithms: config.algorithms,
      clockTolerance: Math.floor(config.tolerance / 1000),
      currentDate: new Date(now),
      issuer: config.issuer,
      audience: config.audience,
      // A token without exp would be valid forever; iat is needed to refuse future-dated ones.
      requiredClaims: ['exp', 'iat'],
      ...(config.max_age !== undefined ? { maxTokenAge: Math.floor(config.max_age / 1000) } : {}),
    };
    let payload: Record<string, unknown>;
    try {
      payload = await verifyTrying(token, getKey, options);
    } catch (err) {
      return explain(err, config.header, config.jwks_url !== undefined);
    }
    if (typeof payload.iat === 'number' && payload.iat * 1000 > now + config.tolerance) {
      return fail('timestamp_out_of_tolerance', `token in header ${config.header}: "iat" is in the future beyond the tolerance`);
    }
    const claimed = payload[config.body_hash_claim];
    if (typeof claimed !== 'string') {
      return fail('signature_invalid', `token in header ${config.header} has no "${config.body_hash_claim}" claim`);
    }
    if (!equalStrings(claimed, sha256(body).toString('base64url'))) {
      return fail('signature_invalid', `claim "${config.body_hash_claim}" does not match the SHA-256 of the body`);
    }
    return ok({});
  };
  return { ok: true, verifier };
}

function keySet(config: Config): { ok: true; getKey: JWTVerifyGetKey } | { ok: false; problems: KeyProblem[] } {
  if (config.jwks_url) {
    // jose caches the set and refetches on an unknown `kid`, at most once per cooldown.
    const options = { timeoutDuration: 5000, cacheMaxAge: 10 * 60_000, cooldownDuration: config.jwks_refresh_cooldown };
    return { ok: true, getKey: createRemoteJWKSet(new URL(config.jwks_url), options) };
  }
  const problems: KeyProblem[] = [];
  const keys: JWK[] = [];
  config.public_keys.forEach((text, i) => {
    try {
      const trimmed = text.trim();
      const key = trimmed.startsWith('{')
        ? createPublicKey({ key: JSON.parse(trimmed) as import('node:crypto').JsonWebKey, format: 'jwk' })
        : createPublicKey(trimmed);
      const kid = trimmed.startsWith('{') ? (JSON.parse(trimmed) as { kid?: string }).kid : undefined;
      keys.push({ ...(key.export({ format: 'jwk' }) as JWK), ...(kid ? { kid } : {}) });
    } catch (err) {
      problems.push({ path: `public_keys[${i}]`, message: `not a PEM public key or JWK (${(err as Error).message})` });
    }
  });
  if (problems.length > 0) return { ok: false, problems };
  return { ok: true, getKey: createLocalJWKSet({ keys }) };
}

// Several keys without `kid` (rotation with PEM keys) match the same token: try each.
async function verifyTrying(token: string, getKey: JWTVerifyGetKey, options: JWTVerifyOptions) {
  try {
    return (await jwtVerify(token, getKey, options)).payload;
  } catch (err) {
    if (!(err instanceof errors.JWKSMultipleMatchingKeys)) throw err;
    for await (const key of err) {
      try {
        return (await jwtVerify(token, key, options)).payload;
      } catch (inner) {
        if (!(inner instanceof errors.JWSSignatureVerificationFailed)) throw inner;
      }
    }
    throw new errors.JWSSignatureVerificationFailed();
  }
}

function explain(err: unknown, headerName: string, remote: boolean) {
  // jose lets fetch's own errors through, so with a JWKS URL anything that is not a JOSEError
  // came from the request; an invalid key set is the key server's fault, not the sender's.
  const jwksDown =
    remote &&
    (!(err instanceof errors.JOSEError) ||
      err instanceof errors.JWKSTimeout ||
      err instanceof errors.JWKSInvalid ||
      (err.code === 'ERR_JOSE_GENERIC' && /JSON Web Key Set/.test(err.message)));
  if (jwksDown) {
    // The client gets a fixed text; the cause (which may name internal hosts) goes to the log.
    return { ok: false as const, error: { reason: 'verifier_unavailable' as const, message: `the keys to verify header ${headerName} cannot be fetched now; retry later`, cause: `JWKS: ${(err as Error).message}` } };
  }
  if (!(err instanceof errors.JOSEError)) throw err;
  if (err instanceof errors.JWTExpired || (err instanceof errors.JWTClaimValidationFailed && /iat|nbf/.test(err.claim))) {
    return fail('timestamp_out_of_tolerance', `token in header ${headerName}: ${err.message}`);
  }
  return fail('signature_invalid', `token in header ${headerName}: ${err.message} (${err.code})`);
}
