import type { KeyObject } from 'node:crypto';
import { fail, ok } from '../errors/result.js';
import type { VerifyConfig } from '../config/schema.js';
import { decodeBase64, ed25519PublicKey, ed25519Verify, equalBytes, hmacSha256 } from './crypto.js';
import { checkTimestamp, header, type Clock, type Verifier } from './types.js';
import type { BuildResult, KeyProblem } from './build.js';

type Config = Extract<VerifyConfig, { scheme: 'standard-webhooks' }>;

/** Bounds the work an unauthenticated request can cause; rotation needs two or three. */
const MAX_SIGNATURES = 10;

// Hand-written on purpose: the `standardwebhooks` npm package takes a single secret and
// no v1a keys, and we need rotation, Ed25519 and reasons a user can act on. It follows the
// reference library line by line otherwise.
export function standardWebhooksVerifier(config: Config, clock: Clock): BuildResult {
  const problems: KeyProblem[] = [];
  const secrets: Buffer[] = [];
  config.secrets.forEach((secret, i) => {
    const key = decodeBase64(secret.replace(/^whsec_/, ''));
    if (!key) problems.push({ path: `secrets[${i}]`, message: 'not base64 (expected whsec_<base64>)' });
    else if (key.length < 16) problems.push({ path: `secrets[${i}]`, message: `only ${key.length} bytes: use at least 16 (openssl rand -base64 32)` });
    else secrets.push(key);
  });
  const publicKeys: KeyObject[] = [];
  config.public_keys.forEach((pk, i) => {
    const raw = decodeBase64(pk.replace(/^whpk_/, ''));
    if (raw && raw.length === 32) publicKeys.push(ed25519PublicKey(raw));
    else problems.push({ path: `public_keys[${i}]`, message: 'not a base64 Ed25519 public key of 32 bytes (expected whpk_<base64>)' });
  });
  if (problems.length > 0) return { ok: false, problems };

  const verifier: Verifier = async ({ body, headers }) => {
    const id = header(headers, 'webhook-id');
    const timestamp = header(headers, 'webhook-timestamp');
    const signatures = header(headers, 'webhook-signature');
    for (const [name, value] of [['webhook-id', id], ['webhook-timestamp', timestamp], ['webhook-signature', signatures]] as const) {
      if (!value) return fail('signature_missing', `missing header ${name}`);
    }
    const late = checkTimestamp(timestamp!, 'webhook-timestamp', config.tolerance, clock);
    if (late) return fail(late.reason, late.message);

    const entries = signatures!.split(' ').filter(Boolean);
    if (entries.length > MAX_SIGNATURES) {
      return fail('signature_malformed', `header webhook-signature lists ${entries.length} signatures; at most ${MAX_SIGNATURES} are read`);
    }
    const prefix = Buffer.from(`${id}.${timestamp}.`);
    // Each secret's MAC is computed once, however many signatures the header lists.
    let macs: Buffer[] | undefined;
    let wellFormed = 0;
    for (const entry of entries) {
      // split's limit also drops the trailing "," left when a repeated header was joined with ", ".
      const [version, encoded] = entry.split(',', 2);
      const signature = encoded === undefined ? undefined : decodeBase64(encoded);
      if (!signature) continue;
      wellFormed++;
      if (version === 'v1' && signature.length === 32) {
        macs ??= secrets.map((secret) => hmacSha256(secret, prefix, body));
        if (macs.some((mac) => equalBytes(mac, signature))) return ok({ deliveryId: id! });
      } else if (version === 'v1a' && signature.length === 64) {
        if (publicKeys.some((key) => ed25519Verify(key, signature, prefix, body))) return ok({ deliveryId: id! });
      }
    }
    return wellFormed === 0
      ? fail('signature_malformed', 'header webhook-signature holds no "<version>,<base64>" entry')
      : fail('signature_invalid', `no signature in header webhook-signature matches a configured ${describe(secrets.length, publicKeys.length)}`);
  };
  return { ok: true, verifier };
}

function describe(secrets: number, keys: number): string {
  const parts = [];
  if (secrets > 0) parts.push(`v1 secret (${secrets})`);
  if (keys > 0) parts.push(`v1a key (${keys})`);
  return parts.join(' or ');
}
