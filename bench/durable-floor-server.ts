// The durable floor: what any server that keeps the bridge's promise (a 2xx only after the
// event is committed and fsynced) costs on this machine, with nothing else. node:http, the
// same Standard Webhooks HMAC check as the baseline, JSON.parse, one SQLite row per event
// (better-sqlite3, WAL, synchronous = FULL), group commit: the requests of one event-loop turn
// share one transaction (flushed by setImmediate), each answered 202 only after that commit.
// A delivery id seen before is answered 200 (INSERT OR IGNORE), like the bridge's dedupe.
// Env: SECRET (whsec_…), FLOOR_DB (the database file; the benchmark counts its rows after).
import { createServer, type ServerResponse } from 'node:http';
import Database from 'better-sqlite3';
import { announce, readBody, signedBy } from './floor-common.js';

const db = new Database(process.env.FLOOR_DB!);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = FULL');
db.exec('CREATE TABLE IF NOT EXISTS events (delivery_id TEXT PRIMARY KEY, event_id TEXT NOT NULL, body BLOB NOT NULL, received_at INTEGER NOT NULL)');
const insert = db.prepare('INSERT OR IGNORE INTO events (delivery_id, event_id, body, received_at) VALUES (?, ?, ?, ?)');

interface Pending { res: ServerResponse; deliveryId: string; eventId: string; body: Buffer }
let batch: Pending[] = [];
const commit = db.transaction((items: Pending[]) => items.map((p) => insert.run(p.deliveryId, p.eventId, p.body, Date.now()).changes));

function flush() {
  const items = batch;
  batch = [];
  let changes: number[];
  try {
    changes = commit(items);
  } catch {
    for (const p of items) p.res.writeHead(503).end();
    return;
  }
  items.forEach((p, i) => p.res.writeHead(changes[i] ? 202 : 200, { 'content-type': 'application/json' }).end(`{"id":${JSON.stringify(p.eventId)}}`));
}

const server = createServer((req, res) =>
  readBody(req, (body) => {
    if (!signedBy(req.headers, body)) return void res.writeHead(401).end();
    let event: { id?: unknown };
    try {
      event = JSON.parse(body.toString('utf8'));
    } catch {
      return void res.writeHead(400).end();
    }
    if (typeof event?.id !== 'string') return void res.writeHead(400).end();
    if (batch.length === 0) setImmediate(flush);
    batch.push({ res, deliveryId: String(req.headers['webhook-id']), eventId: event.id, body });
  }),
);
server.listen(0, '127.0.0.1', () => announce(server));
process.on('SIGTERM', () => server.close(() => (db.close(), process.exit(0))));
