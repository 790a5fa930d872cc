// The express floor: express 5 + express.raw + the same Standard Webhooks HMAC check as the
// node:http baseline, 204, nothing stored: what the bridge's framework costs by itself.
import { createHmac, timingSafeEqual } from 'node:crypto';
import express from 'express';

const key = Buffer.from(process.env.SECRET!.replace(/^whsec_/, ''), 'base64');
const app = express();
app.post('/webhooks/planasonix', express.raw({ type: 'application/json', limit: '256kb' }), (req, res) => {
  const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
  const expected = createHmac('sha256', key).update(`${req.get('webhook-id')}.${req.get('webhook-timestamp')}.`).update(body).digest();
  const given = Buffer.from(String(req.get('webhook-signature') ?? '').slice(3), 'base64');
  res.status(given.length === expected.length && timingSafeEqual(given, expected) ? 204 : 401).end();
});
const server = app.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ msg: 'bridge listening', url: `http://127.0.0.1:${(server.address() as import('node:net').AddressInfo).port}` })}\n`));
