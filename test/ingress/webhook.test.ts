import { connect, type AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import Database from 'better-sqlite3';
import { generateKeyPair, SignJWT } from 'jose';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { BASIC_CONFIG, SECRET, testApp } from '../helpers/app.js';
import { completionEvent, hmacHex, standardWebhookHeaders } from '../helpers/sign.js';

type TestApp = ReturnType<typeof testApp>;
let current: TestApp | undefined;
afterEach(async () => {
  await current?.close();
  current = undefined;
});
function start(options: Parameters<typeof testApp>[0] = {}): TestApp {
  current = testApp(options);
  return current;
}

const PATH = '/webhooks/planasonix';
let deliveries = 0;

function signed(body: string, options: { id?: string; timestamp?: number; secret?: string } = {}) {
  const id = options.id ?? `msg_${++deliveries}`;
  return { 'content-type': 'application/json', ...standardWebhookHeaders(options.secret ?? SECRET, id, options.timestamp ?? Math.floor(Date.now() / 1000), body) };
}

function rowCount(dbPath: string): number {
  const db = new Database(dbPath, { readonly: true });
  const { n } = db.prepare('SELECT count(*) AS n FROM events').get() as { n: number };
  db.close();
  return n;
}

describe('POST /webhooks/<source>', () => {
  it('202: stores the event, and the row is on disk when the answer arrives', async () => {
    const { app, dbPath } = start();
    const body = JSON.stringify(completionEvent());
    const res = await request(app).post(PATH).set(signed(body, { id: 'msg_disk' })).send(body);
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ id: expect.any(String), event_id: JSON.parse(body).id, duplicate: false });
    // A separate connection on the file, as another process would see it.
    const db = new Database(dbPath, { readonly: true });
    const row = db.prepare('SELECT * FROM events WHERE id = ?').get(res.body.id) as Record<string, unknown>;
    db.close();
    expect(row).toMatchObject({ source: 'planasonix', delivery_id: 'msg_disk', scheme: 'standard-webhooks', type: 'run.succeeded', pipeline_id: 'pl_8f2a9c1d4e', status: 'unrouted' });
    expect((row.body as Buffer).toString()).toBe(body);
    const headers = JSON.parse(row.headers as string);
    expect(headers).toMatchObject({ 'webhook-id': 'msg_disk', 'content-type': 'application/json' });
    expect(headers).not.toHaveProperty('webhook-signature');
  });

  it('200 duplicate: a redelivery answers with the first id and stores one row', async () => {
    const { app, dbPath } = start();
    const body = JSON.stringify(completionEvent());
    const headers = signed(body, { id: 'msg_dup' });
    const first = await request(app).post(PATH).set(headers).send(body);
    const second = await request(app).post(PATH).set(headers).send(body);
    expect(first.status).toBe(202);
    expect(second.status).toBe(200);
    expect(second.body).toEqual({ id: first.body.id, event_id: first.body.event_id, duplicate: true });
    expect(rowCount(dbPath)).toBe(1);
  });

  it('keeps the exact bytes: whitespace and key order are not re-serialised', async () => {
    const { app, store } = start();
    const body = `{ "data": {"status":"succeeded","run_id":"r","pipeline_id":"p"},\n  "type":"run.failed", "id":"e1", "created_at":"2026-11-24T02:14:09Z" }`;
    const res = await request(app).post(PATH).set(signed(body)).send(body);
    expect(res.status).toBe(202);
    expect((await store.getEvent(res.body.id))!.body.toString()).toBe(body);
  });

  it('400 with the JSON path of the first problem, nothing stored', async () => {
    const { app, dbPath } = start();
    const bad = JSON.stringify({ ...completionEvent(), data: 'a string' });
    const res = await request(app).post(PATH).set(signed(bad)).send(bad);
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: 'invalid_event', message: expect.stringMatching(/^data: /) });
    const notJson = '{"id": ';
    const res2 = await request(app).post(PATH).set(signed(notJson)).send(notJson);
    expect(res2.status).toBe(400);
    expect(res2.body.error).toBe('invalid_json');
    expect(rowCount(dbPath)).toBe(0);
  });

  it('401 for a wrong signature, naming the header and echoing no secret', async () => {
    const { app, dbPath, logLines } = start();
    const body = JSON.stringify(completionEvent());
    const headers = signed(body, { secret: 'whsec_' + Buffer.from('not the configured secret').toString('base64') });
    const res = await request(app).post(PATH).set(headers).send(body);
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('signature_invalid');
    expect(res.body.message).toContain('webhook-signature');
    const everything = JSON.stringify(res.body) + logLines.join('\n');
    expect(everything).not.toContain(SECRET.slice(6));
    expect(everything).not.toContain(headers['webhook-signature'].slice(3));
    expect(rowCount(dbPath)).toBe(0);
  });

  it('401 for a stale timestamp and for a missing header', async () => {
    const { app } = start();
    const body = JSON.stringify(completionEvent());
    const stale = await request(app).post(PATH).set(signed(body, { timestamp: Math.floor(Date.now() / 1000) - 301 })).send(body);
    expect(stale.status).toBe(401);
    expect(stale.body.error).toBe('timestamp_out_of_tolerance');
    const missing = await request(app).post(PATH).set({ 'content-type': 'application/json' }).send(body);
    expect(missing.status).toBe(401);
    expect(missing.body).toEqual({ error: 'signature_missing', message: 'missing header webhook-id' });
  });

  it('401 for a body changed by one byte after signing', async () => {
    const { app } = start();
    const body = JSON.stringify(completionEvent());
    const res = await request(app).post(PATH).set(signed(body)).send(body.replace('succeeded', 'succeedee'));
    expect(res.status).toBe(401);
  });

  it('413 when the body is over the configured limit', async () => {
    const { app, dbPath } = start({ yaml: BASIC_CONFIG.replace('server: {', 'server: { body_limit: 1kb,') });
    const body = JSON.stringify(completionEvent({ padding: 'x'.repeat(2000) }));
    const res = await request(app).post(PATH).set(signed(body)).send(body);
    expect(res.status).toBe(413);
    expect(res.body.error).toBe('body_too_large');
    expect(rowCount(dbPath)).toBe(0);
  });

  it('415 when the content type is not JSON (or missing); +json types are fine', async () => {
    const { app } = start();
    const body = JSON.stringify(completionEvent());
    const text = await request(app).post(PATH).set({ ...signed(body), 'content-type': 'text/plain' }).send(body);
    expect(text.status).toBe(415);
    expect(text.body).toEqual({ error: 'unsupported_media_type', message: 'content type "text/plain" is not JSON; send application/json' });
    const none = await request(app).post(PATH).set(standardWebhookHeaders(SECRET, 'msg_x', Math.floor(Date.now() / 1000), body)).send(Buffer.from(body));
    expect(none.status).toBe(415);
    const cloudEvents = await request(app).post(PATH).set({ ...signed(body), 'content-type': 'application/cloudevents+json; charset=utf-8' }).send(body);
    expect(cloudEvents.status).toBe(202);
  });

  it('429 with Retry-After past the per-source limit; other sources keep their own budget', async () => {
    const yaml = `
server: { rate_limit: { window: 1m, max: 2 } }
sources:
  planasonix: { path: /webhooks/planasonix, verify: { scheme: standard-webhooks, secrets: ["${SECRET}"] } }
  other: { path: /webhooks/other, verify: { scheme: hmac-sha256, secrets: [sixteen-chars-secret] }, rate_limit: { window: 1m, max: 1 } }
`;
    const { app } = start({ yaml });
    const statuses = [];
    for (let i = 0; i < 3; i++) {
      const body = JSON.stringify(completionEvent());
      statuses.push(await request(app).post(PATH).set(signed(body)).send(body));
    }
    expect(statuses.map((r) => r.status)).toEqual([202, 202, 429]);
    const limited = statuses[2]!;
    expect(limited.body.error).toBe('rate_limited');
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    expect(Number(limited.headers['retry-after'])).toBeLessThanOrEqual(60);
    const toOther = () => {
      const body = JSON.stringify(completionEvent());
      return request(app).post('/webhooks/other').set({ 'content-type': 'application/json', 'x-planasonix-signature': hmacHex('sixteen-chars-secret', body) }).send(body);
    };
    expect((await toOther()).status).toBe(202);
    expect((await toOther()).status).toBe(429);
  });

  it('503 when the store cannot write, and nothing is half-written', async () => {
    const { app, dbPath } = start({ busyTimeoutMs: 50 });
    const blocker = new Database(dbPath);
    blocker.exec('BEGIN EXCLUSIVE');
    const body = JSON.stringify(completionEvent());
    const headers = signed(body);
    const res = await request(app).post(PATH).set(headers).send(body);
    expect(res.status).toBe(503);
    expect(res.body).toEqual({ error: 'store_unavailable', message: 'the event could not be stored; retry later' });
    const ready = await request(app).get('/readyz');
    expect(ready.status).toBe(503);
    expect(ready.body).toEqual({ status: 'not_ready', reasons: ['store_unavailable'] });
    blocker.exec('ROLLBACK');
    blocker.close();
    expect(rowCount(dbPath)).toBe(0);
    // The sender's retry of the same delivery is then accepted as new, not as a duplicate.
    const retry = await request(app).post(PATH).set(headers).send(body);
    expect(retry.status).toBe(202);
  });

  it('dedupes on the event id when the scheme has no delivery id (hmac-sha256)', async () => {
    const yaml = `sources: { gh: { path: /webhooks/gh, verify: { scheme: hmac-sha256, secrets: [s3cret-for-tests-only], prefix: "sha256=" } } }`;
    const { app, dbPath } = start({ yaml });
    const body = JSON.stringify(completionEvent());
    const headers = { 'content-type': 'application/json', 'x-planasonix-signature': `sha256=${hmacHex('s3cret-for-tests-only', body)}` };
    expect((await request(app).post('/webhooks/gh').set(headers).send(body)).status).toBe(202);
    const again = await request(app).post('/webhooks/gh').set(headers).send(body);
    expect(again.status).toBe(200);
    expect(again.body.duplicate).toBe(true);
    expect(rowCount(dbPath)).toBe(1);
  });

  it('415 for a compressed body or a charset other than UTF-8: the signature covers the bytes as sent', async () => {
    const { app, dbPath } = start();
    const body = JSON.stringify(completionEvent());
    const gzip = await request(app).post(PATH).set({ ...signed(body), 'content-encoding': 'gzip' }).send(gzipSync(body));
    expect(gzip.status).toBe(415);
    const junk = await request(app).post(PATH).set({ ...signed(body), 'content-encoding': 'deflate' }).send('not deflate at all');
    expect(junk.status).toBe(415);
    const utf16 = await request(app).post(PATH).set({ ...signed(body), 'content-type': 'application/json; charset=utf-16' }).send(body);
    expect(utf16.status).toBe(415);
    expect(utf16.body.message).toContain('utf-16');
    const utf8 = await request(app).post(PATH).set({ ...signed(body), 'content-type': 'application/json; charset=UTF-8' }).send(body);
    expect(utf8.status).toBe(202);
    expect(rowCount(dbPath)).toBe(1);
  });

  it('accepts null and empty optional fields (senders use them for "not set")', async () => {
    const { app } = start();
    const event = completionEvent({ workspace_id: null });
    Object.assign(event.data as object, { pipeline_name: null, environment: '', finished_at: null, tags: null });
    const body = JSON.stringify(event);
    expect((await request(app).post(PATH).set(signed(body)).send(body)).status).toBe(202);
  });

  it('verifies a webhook-signature header sent as several lines', async () => {
    const { app } = start();
    const body = JSON.stringify(completionEvent());
    const headers = signed(body);
    const res = await new Promise<string>((resolve, reject) => {
      // supertest and node:http cannot repeat a header; a raw socket can, as a proxy might.
      const server = app.listen(0, '127.0.0.1', () => {
        const { port } = server.address() as AddressInfo;
        const socket = connect(port, '127.0.0.1', () => {
          socket.end(
            [`POST ${PATH} HTTP/1.1`, `host: 127.0.0.1:${port}`, 'content-type: application/json', `webhook-id: ${headers['webhook-id']}`,
              `webhook-timestamp: ${headers['webhook-timestamp']}`, `webhook-signature: ${headers['webhook-signature']}`, 'webhook-signature: v1,AAAA',
              `content-length: ${Buffer.byteLength(body)}`, 'connection: close', '', body].join('\r\n'),
          );
        });
        let text = '';
        socket.on('data', (d) => (text += d));
        socket.on('error', reject);
        socket.on('close', () => server.close(() => resolve(text.split('\r\n')[0]!)));
      });
    });
    expect(res).toBe('HTTP/1.1 202 Accepted');
  });

  it('401 signature_malformed when the header lists more than 10 signatures (bounded work)', async () => {
    const { app } = start();
    const body = JSON.stringify(completionEvent());
    const headers = signed(body);
    const many = `${Array(11).fill('v1,AAAA').join(' ')} ${headers['webhook-signature']}`;
    const res = await request(app).post(PATH).set({ ...headers, 'webhook-signature': many }).send(body);
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('signature_malformed');
  });

  it('logs why a 503 happened, while the client gets a fixed text', async () => {
    const { app, dbPath, logLines } = start({ busyTimeoutMs: 20 });
    const blocker = new Database(dbPath);
    blocker.exec('BEGIN EXCLUSIVE');
    const body = JSON.stringify(completionEvent());
    const res = await request(app).post(PATH).set({ ...signed(body), 'x-request-id': 'req-503' }).send(body);
    blocker.exec('ROLLBACK');
    blocker.close();
    expect(res.status).toBe(503);
    const line = logLines.map((l) => JSON.parse(l)).find((l) => l.req?.id === 'req-503');
    expect(line).toMatchObject({ outcome: 'store_unavailable', detail: expect.stringMatching(/SQLite: database is locked/) });
  });

  it('503 verifier_unavailable when the JWKS is unreachable, so the sender retries; no internal host in the answer', async () => {
    const yaml = `sources: { j: { path: /webhooks/j, verify: { scheme: jws, issuer: i, audience: a, jwks_url: "http://127.0.0.1:9/jwks.json" } } }`;
    const { app, logLines } = start({ yaml });
    const { privateKey } = await generateKeyPair('ES256');
    const jwt = await new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: 'k' }).setIssuedAt().setExpirationTime('5m').sign(privateKey);
    const res = await request(app).post('/webhooks/j').set({ 'content-type': 'application/json', 'x-planasonix-jws': jwt, 'x-request-id': 'req-jwks' }).send('{}');
    expect(res.status).toBe(503);
    expect(res.body.error).toBe('verifier_unavailable');
    expect(JSON.stringify(res.body)).not.toContain('127.0.0.1');
    const line = logLines.map((l) => JSON.parse(l)).find((l) => l.req?.id === 'req-jwks');
    expect(line.detail).toMatch(/JWKS: /);
  });

  it('404 and 405 answer JSON too', async () => {
    const { app } = start();
    const missing = await request(app).post('/webhooks/nope').send('{}');
    expect(missing.status).toBe(404);
    expect(missing.body.error).toBe('not_found');
    const get = await request(app).get(PATH);
    expect(get.status).toBe(405);
    expect(get.headers.allow).toBe('POST');
  });

  it('logs one line per request with request id, source, delivery id, outcome and latency', async () => {
    const { app, logLines } = start();
    const body = JSON.stringify(completionEvent());
    const res = await request(app).post(PATH).set({ ...signed(body, { id: 'msg_logged' }), 'x-request-id': 'req-123' }).send(body);
    expect(res.headers['x-request-id']).toBe('req-123');
    const lines = logLines.map((l) => JSON.parse(l)).filter((l) => l.req?.id === 'req-123' && l.res);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ source: 'planasonix', delivery_id: 'msg_logged', outcome: 'accepted', res: { status: 202 }, responseTime: expect.any(Number) });
    expect(JSON.stringify(lines[0])).not.toContain('webhook-signature');
  });

  it("says on that one line why an event matched no route (the near misses), and nothing of it for a routed or duplicate one", async () => {
    const yaml = `${BASIC_CONFIG}
airflow: { default: { url: "http://127.0.0.1:9", auth: { type: none } } }
routes:
  - { name: failures, match: { pipeline_id: pl_8f2a9c1d4e, type: run.failed }, trigger: { dag_id: on_failure } }
`;
    const { app, logLines } = start({ yaml });
    const send = async (event: Record<string, unknown>, id: string) => {
      const body = JSON.stringify(event);
      await request(app).post(PATH).set({ ...signed(body, { id }), 'x-request-id': id }).send(body);
      return logLines.map((l) => JSON.parse(l)).filter((l) => l.req?.id === id && l.res);
    };
    const unrouted = await send(completionEvent(), 'msg_unrouted');
    expect(unrouted).toHaveLength(1);
    expect(unrouted[0]).toMatchObject({ outcome: 'accepted', routes: [], why_not: { failures: expect.stringContaining('type') } });
    const routed = await send(completionEvent({ type: 'run.failed' }), 'msg_routed');
    expect(routed[0]).toMatchObject({ outcome: 'accepted', routes: ['failures'] });
    expect(routed[0].why_not).toBeUndefined();
    expect(logLines.filter((l) => l.includes('matched no route'))).toEqual([]);
  });
});

describe('health', () => {
  it('/healthz answers while the process runs; /readyz checks the store', async () => {
    const { app } = start();
    expect((await request(app).get('/healthz')).body).toEqual({ status: 'ok' });
    const ready = await request(app).get('/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body).toEqual({ status: 'ready', reasons: [] });
  });
});
