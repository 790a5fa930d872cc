// What every floor server shares: the same Standard Webhooks HMAC check, and the
// "listening" line the bench waits for.
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import type { AddressInfo } from 'node:net';

const key = Buffer.from(process.env.SECRET!.replace(/^whsec_/, ''), 'base64');

/** Standard Webhooks v1 for one secret, as the bridge checks it (without the tolerance). */
export function signedBy(headers: IncomingMessage['headers'], body: Buffer): boolean {
  const expected = createHmac('sha256', key).update(`${headers['webhook-id']}.${headers['webhook-timestamp']}.`).update(body).digest();
  const given = Buffer.from(String(headers['webhook-signature'] ?? '').slice(3), 'base64');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** Reads a whole request body, then calls `done`. */
export function readBody(req: IncomingMessage, done: (body: Buffer) => void): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => done(Buffer.concat(chunks)));
}

export function announce(server: Server): void {
  process.stdout.write(`${JSON.stringify({ msg: 'bridge listening', url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` })}\n`);
}
