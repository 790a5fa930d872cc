// The express floor: express 5 + express.raw + the same Standard Webhooks HMAC check as the
// node:http baseline, 204, nothing stored: what the bridge's framework costs by itself.
import express from 'express';
import { announce, signedBy } from './floor-common.js';

const app = express();
app.post('/webhooks/planasonix', express.raw({ type: 'application/json', limit: '256kb' }), (req, res) => {
  res.status(signedBy(req.headers, Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0)) ? 204 : 401).end();
});
const server = app.listen(0, '127.0.0.1', () => announce(server));
