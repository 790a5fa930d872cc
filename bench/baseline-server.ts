// The physical limit on this machine: node:http, the same Standard Webhooks HMAC check, 204,
// nothing stored. The bridge's ingest is reported as a ratio of this.
import { createServer } from 'node:http';
import { announce, readBody, signedBy } from './floor-common.js';

const server = createServer((req, res) => readBody(req, (body) => res.writeHead(signedBy(req.headers, body) ? 204 : 401).end()));
server.listen(0, '127.0.0.1', () => announce(server));
