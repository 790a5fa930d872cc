// The one module that touches key material: every HMAC, hash, signature check and
// secret comparison in the bridge goes through here.
import { createHash, createHmac, createPublicKey, timingSafeEqual, verify, type KeyObject } from 'node:crypto';

export function hmacSha256(key: Uint8Array, ...parts: (string | Uint8Array)[]): Buffer {
  const mac = createHmac('sha256', key);
  for (const part of parts) mac.update(part);
  return mac.digest();
}

export function sha256(data: Uint8Array): Buffer {
  return createHash('sha256').update(data).digest();
}

/** Constant time for equal lengths; a length mismatch returns early, which only leaks the length. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Constant-time comparison of two strings (tokens, digests in text form). */
export function equalStrings(a: string, b: string): boolean {
  // Hash first so the comparison is constant time whatever the lengths.
  return timingSafeEqual(sha256(Buffer.from(a)), sha256(Buffer.from(b)));
}

export function ed25519PublicKey(raw: Uint8Array): KeyObject {
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(raw).toString('base64url') }, format: 'jwk' });
}

export function ed25519Verify(key: KeyObject, signature: Uint8Array, ...parts: Uint8Array[]): boolean {
  return signature.length === 64 && verify(null, Buffer.concat(parts), key, signature);
}

/** Strict base64 (standard alphabet, padded as needed): Node's decoder silently skips junk. */
export function decodeBase64(text: string): Buffer | undefined {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 === 1) return undefined;
  return Buffer.from(text, 'base64');
}

export function decodeHex(text: string): Buffer | undefined {
  return /^(?:[0-9a-fA-F]{2})*$/.test(text) ? Buffer.from(text, 'hex') : undefined;
}
