import type { VerifyConfig } from '../config/schema.js';
import { hmacSha256Verifier } from './hmac-sha256.js';
import { jwsVerifier } from './jws.js';
import { standardWebhooksVerifier } from './standard-webhooks.js';
import type { Clock, Verifier } from './types.js';

/** A key that parses in the schema but is unusable; `path` is relative to the source's `verify`. */
export interface KeyProblem {
  path: string;
  message: string;
}

export type BuildResult = { ok: true; verifier: Verifier } | { ok: false; problems: KeyProblem[] };

export interface VerifierDeps {
  clock: Clock;
}

/** The scheme table: one verifier per source, built once at config load. */
export function buildVerifier(config: VerifyConfig, deps: VerifierDeps): BuildResult {
  switch (config.scheme) {
    case 'standard-webhooks':
      return standardWebhooksVerifier(config, deps.clock);
    case 'hmac-sha256':
      return hmacSha256Verifier(config, deps.clock);
    case 'jws':
      return jwsVerifier(config, deps.clock);
  }
}
