// The physical limit on this machine: node:http, the same Standard Webhooks HMAC check, 204,
// nothing stored. The bridge's ingest is reported as a ratio of this.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';

const key = Buffer.from(process.env.SECRET!.replace(/^whsec_/, ''), 'base64');
const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    const expected = createHmac('sha256', key).update(`${req.headers['webhook-id']}.${req.headers['webhook-timestamp']}.`).update(body).digest();
    const given = Buffer.from(String(req.headers['webhook-signature'] ?? '').slice(3), 'base64');
    res.writeHead(given.length === expected.length && timingSafeEqual(given, expected) ? 204 : 401).end();
  });
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ msg: 'bridge listening', url: `http://127.0.0.1:${(server.address() as import('node:net').AddressInfo).port}` })}\n`));
