// The sending side of the schemes, for `planasonix-bridge send`: the bridge's own "send test
// event" button. Signing goes through crypto.ts like verification does.
import { createPrivateKey, randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { decodeBase64, hmacSha256, sha256 } from './crypto.js';

export type Signer = (body: Buffer, deliveryId: string, now: Date) => Promise<Record<string, string>>;

export function standardWebhooksSigner(secret: string): Signer {
  const key = decodeBase64(secret.replace(/^whsec_/, ''));
  if (!key || key.length === 0) throw new Error('the secret is not whsec_<base64>');
  return async (body, deliveryId, now) => {
    const timestamp = String(Math.floor(now.getTime() / 1000));
    const signature = hmacSha256(key, `${deliveryId}.${timestamp}.`, body).toString('base64');
    return { 'webhook-id': deliveryId, 'webhook-timestamp': timestamp, 'webhook-signature': `v1,${signature}` };
  };
}

export function hmacSha256Signer(secret: string, header = 'x-planasonix-signature', prefix = ''): Signer {
  return async (body) => ({ [header]: `${prefix}${hmacSha256(Buffer.from(secret, 'utf8'), body).toString('hex')}` });
}

export function jwsSigner(privateKeyPem: string, issuer: string, audience: string, header = 'x-planasonix-jws'): Signer {
  const key = createPrivateKey(privateKeyPem);
  const alg = key.asymmetricKeyType === 'ed25519' ? 'EdDSA' : key.asymmetricKeyType === 'ec' ? 'ES256' : 'RS256';
  return async (body, _deliveryId, now) => {
    const iat = Math.floor(now.getTime() / 1000);
    const token = await new SignJWT({ body_sha256: sha256(body).toString('base64url') })
      .setProtectedHeader({ alg })
      .setIssuer(issuer)
      .setAudience(audience)
      .setIssuedAt(iat)
      .setExpirationTime(iat + 300)
      .setJti(randomUUID())
      .sign(key);
    return { [header]: token };
  };
}
