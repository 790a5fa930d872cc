import { fail, ok } from '../errors/result.js';
import type { VerifyConfig } from '../config/schema.js';
import { decodeBase64, decodeHex, equalBytes, hmacSha256 } from './crypto.js';
import { checkTimestamp, header, type Clock, type Verifier } from './types.js';
import type { BuildResult } from './build.js';

type Config = Extract<VerifyConfig, { scheme: 'hmac-sha256' }>;

/** GitHub-style: an HMAC-SHA256 of the raw body (optionally `${timestamp}.${body}`) in one header. */
export function hmacSha256Verifier(config: Config, clock: Clock): BuildResult {
  // Secrets here are used as their UTF-8 bytes, as GitHub, Shopify and most senders do.
  const secrets = config.secrets.map((s) => Buffer.from(s, 'utf8'));
  const decode = config.encoding === 'hex' ? decodeHex : decodeBase64;

  const verifier: Verifier = async ({ body, headers }) => {
    let value = header(headers, config.header);
    if (!value) return fail('signature_missing', `missing header ${config.header}`);
    if (config.prefix && value.startsWith(config.prefix)) value = value.slice(config.prefix.length);
    const signature = decode(value.trim());
    if (!signature || signature.length !== 32) {
      return fail('signature_malformed', `header ${config.header} is not a ${config.encoding} SHA-256 digest`);
    }

    const parts: (string | Buffer)[] = [body];
    if (config.timestamp_header) {
      const timestamp = header(headers, config.timestamp_header);
      if (!timestamp) return fail('signature_missing', `missing header ${config.timestamp_header}`);
      const late = checkTimestamp(timestamp, config.timestamp_header, config.tolerance, clock);
      if (late) return fail(late.reason, late.message);
      parts.unshift(`${timestamp}.`);
    }

    // No delivery id: an unsigned header could be changed to slip a replay past dedupe, so
    // dedupe uses the event `id`, which the signature covers.
    for (const secret of secrets) {
      if (equalBytes(hmacSha256(secret, ...parts), signature)) return ok({});
    }
    return fail('signature_invalid', `header ${config.header} does not match any of the ${secrets.length} configured secret(s)`);
  };
  return { ok: true, verifier };
}
