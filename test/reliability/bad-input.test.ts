// Hostile requests: each gets the right status, nothing crashes, nothing is triggered, and
// no secret appears in any log line.
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SECRET, testApp } from '../helpers/app.js';
import { completionEvent, standardWebhookHeaders } from '../helpers/sign.js';

const YAML = `
server: { body_limit: 8kb, rate_limit: { window: 1m, max: 100000 } }
sources: { planasonix: { path: /webhooks/planasonix, verify: { scheme: standard-webhooks, secrets: ["${SECRET}"] } } }
airflow: { default: { url: "http://127.0.0.1:9", auth: { type: password, username: admin, password: airflow-password-never-logged } } }
routes: [ { name: r, match: {}, trigger: { dag_id: d, conf: { from_event: "{{ data.parameters.note | default: 'none' }}" } } } ]
`;
const PATH = '/webhooks/planasonix';
const now = () => Math.floor(Date.now() / 1000);
let n = 0;
const good = (overrides: Record<string, unknown> = {}) => JSON.stringify(completionEvent(overrides));
const signed = (body: string | Buffer, opts: { id?: string; ts?: number } = {}) => ({ 'content-type': 'application/json', ...standardWebhookHeaders(SECRET, opts.id ?? `hostile_${++n}`, opts.ts ?? now(), body) });

interface Case {
  name: string;
  status: number;
  send: () => { headers: Record<string, string>; body: string | Buffer };
}

const deep = (depth: number) => '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
const cases: Case[] = [
  { name: 'no signature headers', status: 401, send: () => ({ headers: { 'content-type': 'application/json' }, body: good() }) },
  { name: 'no webhook-id', status: 401, send: () => { const b = good(); const h: Record<string, string> = signed(b); delete h['webhook-id']; return { headers: h, body: b }; } },
  { name: 'no webhook-timestamp', status: 401, send: () => { const b = good(); const h: Record<string, string> = signed(b); delete h['webhook-timestamp']; return { headers: h, body: b }; } },
  { name: 'empty signature', status: 401, send: () => { const b = good(); return { headers: { ...signed(b), 'webhook-signature': '' }, body: b }; } },
  { name: 'signature of another body', status: 401, send: () => { const b = good(); return { headers: signed(good()), body: b }; } },
  { name: 'garbage signature', status: 401, send: () => { const b = good(); return { headers: { ...signed(b), 'webhook-signature': 'v1,!!!!' }, body: b }; } },
  { name: 'v2 only', status: 401, send: () => { const b = good(); return { headers: { ...signed(b), 'webhook-signature': signed(b)['webhook-signature'].replace('v1,', 'v2,') }, body: b }; } },
  { name: '11 signatures', status: 401, send: () => { const b = good(); return { headers: { ...signed(b), 'webhook-signature': Array(11).fill(signed(b)['webhook-signature']).join(' ') }, body: b }; } },
  { name: 'stale timestamp', status: 401, send: () => { const b = good(); return { headers: signed(b, { ts: now() - 301 }), body: b }; } },
  // Well past the tolerance: under load the clock may tick several seconds before verification.
  { name: 'future timestamp', status: 401, send: () => { const b = good(); return { headers: signed(b, { ts: now() + 330 }), body: b }; } },
  { name: 'non-numeric timestamp', status: 401, send: () => { const b = good(); return { headers: { ...signed(b), 'webhook-timestamp': 'yesterday' }, body: b }; } },
  { name: 'negative timestamp', status: 401, send: () => { const b = good(); return { headers: { ...signed(b), 'webhook-timestamp': '-1' }, body: b }; } },
  { name: 'huge timestamp', status: 401, send: () => { const b = good(); return { headers: { ...signed(b), 'webhook-timestamp': '99999999999999999999' }, body: b }; } },
  { name: 'timestamp in ms', status: 401, send: () => { const b = good(); return { headers: signed(b, { ts: Date.now() }), body: b }; } },
  { name: 'text/plain', status: 415, send: () => { const b = good(); return { headers: { ...signed(b), 'content-type': 'text/plain' }, body: b }; } },
  { name: 'form encoded', status: 415, send: () => { const b = good(); return { headers: { ...signed(b), 'content-type': 'application/x-www-form-urlencoded' }, body: b }; } },
  { name: 'utf-16 charset', status: 415, send: () => { const b = good(); return { headers: { ...signed(b), 'content-type': 'application/json; charset=utf-16' }, body: b }; } },
  { name: 'gzip encoding', status: 415, send: () => { const b = good(); return { headers: { ...signed(b), 'content-encoding': 'gzip' }, body: b }; } },
  { name: 'oversize body', status: 413, send: () => { const b = good({ pad: 'x'.repeat(10_000) }); return { headers: signed(b), body: b }; } },
  { name: 'invalid UTF-8 (signed)', status: 400, send: () => { const b = Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x7d]); return { headers: signed(b), body: b }; } },
  { name: 'not JSON (signed)', status: 400, send: () => ({ headers: signed('{"id": '), body: '{"id": ' }) },
  { name: 'JSON array', status: 400, send: () => ({ headers: signed('[]'), body: '[]' }) },
  { name: 'JSON string', status: 400, send: () => ({ headers: signed('"evt"'), body: '"evt"' }) },
  { name: 'null', status: 400, send: () => ({ headers: signed('null'), body: 'null' }) },
  { name: 'deeply nested JSON', status: 400, send: () => { const b = deep(1000); return { headers: signed(b), body: b }; } },
  { name: 'huge number run_id', status: 400, send: () => { const b = good().replace(/"run_id":"[^"]+"/, '"run_id":1e999999'); return { headers: signed(b), body: b }; } },
  { name: 'data is a string', status: 400, send: () => { const b = JSON.stringify({ ...completionEvent(), data: 'x' }); return { headers: signed(b), body: b }; } },
  { name: 'missing pipeline_id', status: 400, send: () => { const e = completionEvent(); delete (e.data as Record<string, unknown>).pipeline_id; const b = JSON.stringify(e); return { headers: signed(b), body: b }; } },
  { name: 'bad created_at', status: 400, send: () => { const b = good({ created_at: 'not a date' }); return { headers: signed(b), body: b }; } },
  { name: 'tags not strings', status: 400, send: () => { const e = completionEvent(); (e.data as Record<string, unknown>).tags = { a: { b: 1 } }; const b = JSON.stringify(e); return { headers: signed(b), body: b }; } },
  { name: '__proto__ key (signed, valid)', status: 202, send: () => { const b = good().replace('{', '{"__proto__":{"polluted":true},'); return { headers: signed(b), body: b }; } },
  { name: 'constructor.prototype key', status: 202, send: () => { const b = good({ constructor: { prototype: { polluted: true } } }); return { headers: signed(b), body: b }; } },
  { name: 'template injection in a conf field', status: 202, send: () => { const e = completionEvent(); (e.data as Record<string, unknown>).parameters = { note: '{{ source.name }} ${SECRET} {{ event.__proto__ }}' }; const b = JSON.stringify(e); return { headers: signed(b), body: b }; } },
  { name: 'header injection attempt in webhook-id', status: 401, send: () => { const b = good(); return { headers: { ...signed(b, { id: 'x' }), 'webhook-id': 'x%0d%0aX-Evil: 1' }, body: b }; } },
  { name: 'duplicated content-type', status: 415, send: () => { const b = good(); return { headers: { ...signed(b), 'content-type': 'application/json, text/plain' }, body: b }; } },
  { name: 'whsec secret as signature', status: 401, send: () => { const b = good(); return { headers: { ...signed(b), 'webhook-signature': `v1,${SECRET.slice(6)}` }, body: b }; } },
  { name: 'empty body', status: 400, send: () => ({ headers: signed(''), body: '' }) },
  { name: 'very long webhook-id', status: 401, send: () => { const b = good(); return { headers: { ...signed(b), 'webhook-id': 'i'.repeat(4000) }, body: b }; } },
  { name: 'unknown event type (stored, routed by match {})', status: 202, send: () => { const b = good({ type: 'run.exploded' }); return { headers: signed(b), body: b }; } },
  { name: 'Bearer token on a webhook', status: 401, send: () => ({ headers: { 'content-type': 'application/json', authorization: 'Bearer whatever' }, body: good() }) },
  { name: 'v1a with no keys configured', status: 401, send: () => { const b = good(); return { headers: { ...signed(b), 'webhook-signature': `v1a,${Buffer.alloc(64).toString('base64')}` }, body: b }; } },
];

describe('bad input corpus', () => {
  const app = testApp({ yaml: YAML });
  beforeAll(() => expect(cases.length).toBeGreaterThanOrEqual(40));
  afterAll(() => app.close());

  it.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const { headers, body } = c.send();
    // serialize as is: superagent would JSON-encode a Buffer.
    const res = await request(app.app).post(PATH).set(headers).serialize((b: unknown) => b as string).send(body as string);
    expect(res.status).toBe(c.status);
    expect(res.headers['content-type']).toMatch(/application\/json/);
    if (c.status >= 400) expect(res.body).toEqual({ error: expect.any(String), message: expect.any(String) });
  });

  it('left the process healthy, polluted no prototype, and sent nothing to Airflow', async () => {
    expect((await request(app.app).get('/healthz')).status).toBe(200);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    // Accepted ones are queued, never dispatched here (no dispatcher): only the 202 cases made jobs.
    const counts = await app.store.jobCounts();
    expect(counts.pending).toBe(cases.filter((c) => c.status === 202).length);
    const injected = (await app.store.listJobs({ limit: 100 })).items.map((j) => JSON.stringify(j.request)).find((r) => r.includes('from_event') && r.includes('{{'));
    expect(injected).toContain('{{ source.name }} ${SECRET} {{ event.__proto__ }}'); // copied literally
  });

  it('never logs a secret or a signature', () => {
    const logs = app.logLines.join('\n');
    expect(logs).not.toContain(SECRET);
    expect(logs).not.toContain(SECRET.slice(6));
    expect(logs).not.toContain('airflow-password-never-logged');
    expect(logs).not.toMatch(/v1,[A-Za-z0-9+/]{43}=/);
  });
});
