// The six findings of the security review (issue 16), each reproduced as it was found and
// held shut here. Real SQLite and PostgreSQL; "Airflow" is the labelled fault-injection fake,
// since what is tested is what the bridge logs and answers, not Airflow.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { clearTextWarnings, loadConfig, parseConfig } from '../../src/config/load.js';
import { configSchema } from '../../src/config/schema.js';
import { createLogger } from '../../src/log/logger.js';
import { createBridge, RESTART_ONLY, startService } from '../../src/service.js';
import { startFaultAirflow } from '../dispatch/fault-airflow.js';
import { SECRET, tempDir } from '../helpers/app.js';
import { completionEvent, standardWebhookHeaders } from '../helpers/sign.js';
import { freshPostgresDatabase } from '../helpers/stores.js';

const ADMIN = 'admin-token-for-the-findings-suite-0123456789';
let cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

const logSink = () => {
  const lines: string[] = [];
  return { lines, logger: createLogger('debug', new Writable({ write: (c, _e, done) => (lines.push(String(c)), done()) })) };
};

const signedWebhook = (app: Parameters<typeof request>[0], path = '/webhooks/planasonix', secret = SECRET) => {
  const body = JSON.stringify(completionEvent({ data: { run_id: `r${Math.random()}`, pipeline_id: 'pl_sales', status: 'succeeded' } }));
  return request(app).post(path).set({ 'content-type': 'application/json', ...standardWebhookHeaders(secret, `m${Math.random()}`, Math.floor(Date.now() / 1000), body) }).send(body);
};
const junk = (app: Parameters<typeof request>[0], headers: Record<string, string> = {}) =>
  request(app).post('/webhooks/planasonix').set({ 'content-type': 'application/json', ...headers }).send('{"id":"x"}');

async function bridgeOf(yaml: string, options: { adminTokens?: string[]; file?: string } = {}) {
  const parsed = parseConfig(yaml, {});
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.problems));
  const created = await createBridge(parsed.config, createLogger('silent'), { adminTokens: options.adminTokens ?? [], ...(options.file ? { configFile: options.file } : {}) });
  if (!created.ok) throw new Error(JSON.stringify(created.problems));
  cleanups.push(() => created.bridge.close());
  return created.bridge;
}

const base = (dir: string, extra = '') => `
store: { url: "sqlite:${join(dir, 'bridge.db')}" }
sources: { planasonix: { path: /webhooks/planasonix, verify: { scheme: standard-webhooks, secrets: ["${SECRET}"] } } }
${extra}`;

describe('1. no credential in logs, answers or check-config output', () => {
  it('a full start → webhook → trigger → reload → stop cycle on PostgreSQL logs none of the secrets', async () => {
    const db = await freshPostgresDatabase();
    cleanups.push(() => db.drop());
    const airflow = await startFaultAirflow();
    cleanups.push(() => airflow.close());
    const secrets = { pg: 'PgUrlPassw0rd-findings', urlUser: 'AirflowUrlPassw0rd', airflowPassword: 'AirflowAuthPassw0rd', webhook: SECRET.slice(6), admin: ADMIN };
    // Trust auth on the test server: the password in the URL is sent nowhere, only logged (or not).
    const storeUrl = db.url.replace('postgres://postgres@', `postgres://postgres:${secrets.pg}@`);
    const airflowUrl = airflow.url.replace('http://', `http://bridge:${secrets.urlUser}@`);
    const dir = tempDir().dir;
    const file = join(dir, 'bridge.yaml');
    const yaml = (routeName: string) => `
server: { host: 127.0.0.1, port: 0 }
store: { url: "${storeUrl}" }
log: { level: debug }
dispatch: { poll_interval: 0.02s }
sources: { planasonix: { path: /webhooks/planasonix, verify: { scheme: standard-webhooks, secrets: ["${SECRET}"] } } }
airflow: { default: { url: "${airflowUrl}", auth: { type: password, username: admin, password: "${secrets.airflowPassword}" } } }
routes: [ { name: ${routeName}, match: { pipeline_id: pl_sales }, trigger: { dag_id: dbt_sales_models } } ]
`;
    writeFileSync(file, yaml('sales'));
    const loaded = await loadConfig(file);
    if (!loaded.ok) throw new Error(JSON.stringify(loaded.problems));
    const { lines, logger } = logSink();
    process.env.BRIDGE_ADMIN_TOKEN = ADMIN;
    cleanups.push(() => delete process.env.BRIDGE_ADMIN_TOKEN);
    const started = await startService(loaded.config, logger, file);
    if (!started.ok) throw new Error(JSON.stringify(started.problems));
    const { running } = started;
    let stopped = false;
    cleanups.push(() => (stopped ? undefined : running.stop()));

    const answer = await signedWebhook(running.url);
    expect(answer.status).toBe(202);
    const deadline = Date.now() + 10_000;
    while (!airflow.seen.some((s) => s.path.endsWith('/dagRuns')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(airflow.seen.some((s) => s.path.endsWith('/dagRuns'))).toBe(true);
    const status = await request(running.url).get('/v1/status').set('authorization', `Bearer ${ADMIN}`);
    expect(status.status).toBe(200);
    writeFileSync(file, yaml('sales-renamed'));
    expect(await running.reload()).toMatchObject({ ok: true });
    await running.stop();
    stopped = true;

    const everything = [...lines, JSON.stringify(status.body)].join('\n');
    // The lines that would carry them are there, with the credentials replaced.
    expect(everything).toContain('"msg":"bridge listening"');
    expect(everything).toContain(`postgres://***@127.0.0.1:5432/`);
    expect(everything).toContain(`http://***@127.0.0.1:`);
    expect(everything).toContain('config reloaded');
    for (const [name, secret] of Object.entries(secrets)) expect(everything.includes(secret), `${name} found in the logs or /v1/status`).toBe(false);
  });

  it('check-config prints its warnings with URLs redacted', () => {
    const dir = tempDir().dir;
    const file = join(dir, 'bridge.yaml');
    writeFileSync(file, base(dir, `airflow: { default: { url: "http://svc:UrlSecret99@airflow.internal:8080", auth: { type: password, username: u, password: AuthSecret99 } } }`));
    const out = spawnSync(process.execPath, [join(import.meta.dirname, '../../dist/cli/main.js'), 'check-config', file], { encoding: 'utf8' });
    expect(out.status).toBe(0);
    expect(out.stdout).toContain('warning: airflow.default.url: http://***@airflow.internal:8080 is plain http off loopback');
    expect(out.stdout + out.stderr).not.toMatch(/UrlSecret99|AuthSecret99/);
  });
});

describe('2. reloads really apply (or are refused with their path)', () => {
  // One change per top-level key of the config, and what a reload must say of it.
  const AIRFLOW = 'default: { url: "http://127.0.0.1:9", auth: { type: none } }';
  const CASES: Record<string, { edit: (dir: string) => string; expect: { changed: string[] } | { refused: string[] } }> = {
    server: { edit: () => 'server: { body_limit: 1kb }', expect: { changed: ['server'] } },
    store: { edit: (dir) => `store: { url: "sqlite:${join(dir, 'bridge.db')}", busy_timeout: 2s }`, expect: { refused: ['store.busy_timeout'] } },
    log: { edit: () => 'log: { level: warn }', expect: { changed: ['log'] } },
    sources: { edit: () => `sources: { planasonix: { path: /hooks/moved, verify: { scheme: standard-webhooks, secrets: ["${SECRET}"] } } }`, expect: { changed: ['sources'] } },
    airflow: { edit: () => `airflow: { ${AIRFLOW}, other: { url: "http://127.0.0.1:9", auth: { type: none } } }`, expect: { changed: ['airflow'] } },
    routes: { edit: () => 'routes: [ { name: r, match: { pipeline_id: p }, trigger: { airflow: default, dag_id: d } } ]', expect: { changed: ['routes', 'route r added'] } },
    dispatch: { edit: () => 'dispatch: { poll_interval: 2s }', expect: { changed: ['dispatch'] } },
    loop_guard: { edit: () => 'loop_guard: { max_depth: 3 }', expect: { changed: ['loop_guard'] } },
    admin: { edit: () => `admin: { tokens: ["${'t'.repeat(40)}"] }`, expect: { changed: ['admin'] } },
    metrics: { edit: () => 'metrics: { port: 19464 }', expect: { refused: ['metrics'] } },
    notify: { edit: () => 'notify: [ { name: chat, url: "http://127.0.0.1:9/hook", format: slack } ]', expect: { changed: ['notify'] } },
  };

  it('covers every top-level key of the config schema', () => {
    expect(Object.keys(CASES).sort()).toEqual(Object.keys(configSchema.shape).sort());
    expect(RESTART_ONLY.filter((p) => !p.includes('.')).sort()).toEqual(['metrics']);
    expect(RESTART_ONLY.filter((p) => p.startsWith('store.')).sort()).toEqual(['store.busy_timeout', 'store.pool_size', 'store.url']);
  });

  for (const [key, c] of Object.entries(CASES)) {
    it(`${key}: ${'changed' in c.expect ? 'applies live and is listed in changed' : `refused as restart-only (${c.expect.refused.join(', ')})`}`, async () => {
      const dir = tempDir().dir;
      const file = join(dir, 'bridge.yaml');
      const sections = (edit?: string) => {
        const all: Record<string, string> = {
          store: `store: { url: "sqlite:${join(dir, 'bridge.db')}" }`,
          sources: `sources: { planasonix: { path: /webhooks/planasonix, verify: { scheme: standard-webhooks, secrets: ["${SECRET}"] } } }`,
          airflow: `airflow: { ${AIRFLOW} }`,
        };
        if (edit) all[key] = edit;
        return Object.values(all).join('\n');
      };
      writeFileSync(file, sections());
      const bridge = await bridgeOf(sections(), { file });
      writeFileSync(file, sections(c.edit(dir)));
      const result = await bridge.reloadFromFile();
      if ('changed' in c.expect) {
        expect(result).toEqual({ ok: true, changed: c.expect.changed });
        // Live: the outbox and the stores' notifier read the running config.
        if (key === 'notify') expect(bridge.live().config.notify.map((t) => t.name)).toEqual(['chat']);
      } else {
        expect(result.ok).toBe(false);
        if (!result.ok) expect(result.problems.map((p) => p.path).sort()).toEqual([...c.expect.refused].sort());
      }
    });
  }

  it('store.retention applies live: the next prune round uses the reloaded retention (store.url and the rest stay restart-only)', async () => {
    const dir = tempDir().dir;
    const file = join(dir, 'bridge.yaml');
    const withRetention = (retention: string) => `
store: { url: "sqlite:${join(dir, 'bridge.db')}", retention: ${retention} }
sources: { planasonix: { path: /webhooks/planasonix, verify: { scheme: standard-webhooks, secrets: ["${SECRET}"] } } }`;
    writeFileSync(file, withRetention('{ events: 30d }'));
    const bridge = await bridgeOf(withRetention('{ events: 30d }'), { file });
    const hourAgo = new Date(Date.now() - 3_600_000);
    const stored = await bridge.store.insertEvent(
      { source: 'planasonix', deliveryId: 'm1', scheme: 'standard-webhooks', eventId: 'evt_1', type: 'run.succeeded', pipelineId: 'p', runId: 'r', headers: {}, body: Buffer.from('{}'), receivedAt: hourAgo, routing: [] },
      [],
      { breaker: { maxTriggers: 10, windowMs: 60_000 } },
    );
    expect(stored.ok).toBe(true);
    expect((await bridge.pruner.runOnce())!.rows.events).toBe(0);
    writeFileSync(file, withRetention('{ events: 10m, dedupe: 10m }'));
    expect(await bridge.reloadFromFile()).toEqual({ ok: true, changed: ['store'] });
    expect((await bridge.pruner.runOnce())!.rows).toEqual({ events: 1, jobs: 0, attempts: 0, dedupe_keys: 0, notifications: 0, notification_attempts: 0 });
    writeFileSync(file, withRetention('false'));
    expect(await bridge.reloadFromFile()).toEqual({ ok: true, changed: ['store'] });
    expect(await bridge.pruner.runOnce()).toBeUndefined();
    // dedupe shorter than a source's tolerance (5m by default) is refused with its path.
    writeFileSync(file, withRetention('{ dedupe: 1m }'));
    const refused = await bridge.reloadFromFile();
    expect(refused.ok === false && refused.problems.map((p) => p.path)).toEqual(['store.retention.dedupe']);
  });

  it('removing admin: or changing its audience revokes tokens and JWTs at once; the console goes with it', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k', alg: 'ES256' };
    const idp: Server = createServer((_q, s) => s.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] })));
    await new Promise<void>((r) => idp.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise((r) => idp.close(r)));
    const jwks = `http://127.0.0.1:${(idp.address() as AddressInfo).port}/jwks`;
    const jwt = await new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: 'k' }).setIssuer('https://idp.example').setAudience('bridge-admin').setIssuedAt().setExpirationTime('5m').sign(privateKey);
    const token = 'a-config-token-long-enough-0123456789';
    const dir = tempDir().dir;
    const file = join(dir, 'bridge.yaml');
    const withAdmin = (audience: string) => base(dir, `admin: { tokens: ["${token}"], jwks_url: "${jwks}", issuer: https://idp.example, audience: ${audience} }`);
    writeFileSync(file, withAdmin('bridge-admin'));
    const bridge = await bridgeOf(withAdmin('bridge-admin'), { file });
    const as = (bearer: string) => request(bridge.app).get('/v1/jobs').set('authorization', `Bearer ${bearer}`);
    expect((await as(jwt)).status).toBe(200);
    expect((await as(token)).status).toBe(200);
    expect((await request(bridge.app).get('/console/')).status).toBe(200);

    writeFileSync(file, withAdmin('another-audience'));
    expect(await bridge.reloadFromFile()).toEqual({ ok: true, changed: ['admin'] });
    expect((await as(jwt)).status).toBe(401);
    expect((await as(token)).status).toBe(200);

    writeFileSync(file, base(dir));
    expect(await bridge.reloadFromFile()).toEqual({ ok: true, changed: ['admin'] });
    expect((await as(token)).status).toBe(404);
    expect((await as(jwt)).status).toBe(404);
    expect((await request(bridge.app).get('/console/')).status).toBe(404);
  });

  it('log level and the socket timeouts follow a reload of a running service', async () => {
    const dir = tempDir().dir;
    const file = join(dir, 'bridge.yaml');
    const yaml = (level: string, timeout: string) => base(dir, `server: { host: 127.0.0.1, port: 0, request_timeout: ${timeout}, max_connections: 7 }\nlog: { level: ${level} }`);
    writeFileSync(file, yaml('info', '30s'));
    const loaded = await loadConfig(file);
    if (!loaded.ok) throw new Error(JSON.stringify(loaded.problems));
    const { logger } = logSink();
    const started = await startService(loaded.config, logger, file);
    if (!started.ok) throw new Error('not started');
    cleanups.push(() => started.running.stop());
    expect(started.running.server.requestTimeout).toBe(30_000);
    writeFileSync(file, yaml('warn', '12s'));
    expect(await started.running.reload()).toEqual({ ok: true, changed: ['server', 'log'] });
    expect(started.running.server.requestTimeout).toBe(12_000);
    expect(logger.level).toBe('warn');
  });
});

describe('3. per-client limits cannot be escaped with X-Forwarded-For; admin tokens are long', () => {
  it('trust_proxy: true is refused with what it would allow; a hop count or subnets are the safe forms', () => {
    const check = (v: string) => parseConfig(`server: { trust_proxy: ${v} }\n${base('/tmp')}`, {});
    const refused = check('true');
    expect(refused.ok).toBe(false);
    if (!refused.ok) expect(refused.problems).toEqual([{ path: 'server.trust_proxy', message: expect.stringContaining('any client picks its own address') }]);
    expect(check('1').ok).toBe(true);
    expect(check('"10.0.0.0/8"').ok).toBe(true);
  });

  it('behind one trusted proxy, a rotating X-Forwarded-For still meets the per-client limits (webhooks and admin)', async () => {
    const bridge = await bridgeOf(base(tempDir().dir, 'server: { trust_proxy: 1, unverified_limit: { window: 1m, max: 5 } }'), { adminTokens: [ADMIN] });
    // The proxy appends the address it saw; the client controls only what comes before it.
    const via = (i: number) => ({ 'x-forwarded-for': `198.51.100.${i % 250}, 203.0.113.7` });
    const hooks = [];
    for (let i = 0; i < 8; i++) hooks.push((await junk(bridge.app, via(i))).status);
    expect(hooks).toEqual([401, 401, 401, 401, 401, 429, 429, 429]);
    const answers = await Promise.all(Array.from({ length: 620 }, (_, i) => request(bridge.app).get('/v1/jobs').set({ ...via(i), authorization: 'Bearer wrong' }).then((r) => r.status)));
    expect(answers.filter((s) => s === 401)).toHaveLength(600);
    expect(answers.filter((s) => s === 429)).toHaveLength(20);
  });

  it('an admin token shorter than 32 characters stops the start (BRIDGE_ADMIN_TOKEN) or the config (admin.tokens)', async () => {
    const dir = tempDir().dir;
    const config = parseConfig(base(dir, 'server: { host: 127.0.0.1, port: 0 }'), {});
    if (!config.ok) throw new Error('invalid');
    process.env.BRIDGE_ADMIN_TOKEN = 'short';
    cleanups.push(() => delete process.env.BRIDGE_ADMIN_TOKEN);
    const started = await startService(config.config, createLogger('silent'));
    expect(started).toEqual({ ok: false, problems: [{ path: 'BRIDGE_ADMIN_TOKEN', message: expect.stringContaining('shorter than 32 characters') }] });
    const short = parseConfig(base(dir, 'admin: { tokens: [short-token] }'), {});
    expect(short.ok ? [] : short.problems.map((p) => p.path)).toEqual(['admin.tokens[0]']);
  });
});

describe('4. unsigned junk has its own budget', () => {
  it('a flood of 401s gets 429 while correctly signed deliveries from the same address are still accepted', async () => {
    const bridge = await bridgeOf(base(tempDir().dir, 'server: { rate_limit: { window: 1m, max: 5 }, unverified_limit: { window: 1m, max: 5 } }'));
    const statuses = [];
    for (let i = 0; i < 8; i++) statuses.push((await junk(bridge.app)).status);
    expect(statuses).toEqual([401, 401, 401, 401, 401, 429, 429, 429]);
    const limited = await junk(bridge.app);
    expect(limited.body.message).toMatch(/failed verification/);
    // The sender's own budget is untouched: all five go in, the sixth meets rate_limit.
    const signed = [];
    for (let i = 0; i < 6; i++) signed.push((await signedWebhook(bridge.app)).status);
    expect(signed).toEqual([202, 202, 202, 202, 202, 429]);
  });

  it('verified deliveries share one budget per source, whatever address they come from', async () => {
    const bridge = await bridgeOf(base(tempDir().dir, 'server: { trust_proxy: 1, rate_limit: { window: 1m, max: 3 } }'));
    const statuses = [];
    for (let i = 0; i < 4; i++) {
      const body = JSON.stringify(completionEvent());
      statuses.push((await request(bridge.app).post('/webhooks/planasonix').set({ 'content-type': 'application/json', 'x-forwarded-for': `192.0.2.${i}`, ...standardWebhookHeaders(SECRET, `m${i}${Math.random()}`, Math.floor(Date.now() / 1000), body) }).send(body)).status);
    }
    expect(statuses).toEqual([202, 202, 202, 429]);
  });
});

describe('5. JWKS only over https (plain http only to a parsed loopback host)', () => {
  const jws = (url: string) => `sources: { j: { path: /webhooks/j, verify: { scheme: jws, issuer: i, audience: a, jwks_url: "${url}" } } }`;
  const adminJwks = (url: string) => `${base('/tmp')}\nadmin: { jwks_url: "${url}", issuer: i, audience: a }`;
  const paths = (yaml: string) => {
    const r = parseConfig(yaml, {});
    return r.ok ? [] : r.problems.map((p) => `${p.path}: ${p.message}`);
  };
  it.each([
    ['http://localhost:80@idp.example/jwks', false],
    ['http://127.0.0.1.idp.example/jwks', false],
    ['http://idp.example/jwks', false],
    ['https://idp.example/jwks', true],
    ['http://127.0.0.1:9/jwks', true],
    ['http://localhost:9/jwks', true],
    ['http://[::1]:9/jwks', true],
  ])('%s → accepted: %s (webhook jws and admin alike)', (url, ok) => {
    expect(paths(jws(url)).length === 0).toBe(ok);
    expect(paths(adminJwks(url)).length === 0).toBe(ok);
    if (!ok) {
      expect(paths(jws(url))).toEqual([expect.stringMatching(/^sources\.j\.verify\.jwks_url: must be https/)]);
      expect(paths(adminJwks(url))).toEqual([expect.stringMatching(/^admin\.jwks_url: must be https/)]);
    }
  });
});

describe('6. nothing internal without authentication; no default credentials', () => {
  it('/readyz gives reason codes only; the detail is in the log and behind /v1/status', async () => {
    const dir = tempDir().dir;
    const bridge = await bridgeOf(base(dir, 'airflow: { default: { url: "http://127.0.0.1:9", auth: { type: none }, timeout: 0.5s } }').replace('bridge.db" }', 'bridge.db", busy_timeout: 0.05s }'), { adminTokens: [ADMIN] });
    const ready = await request(bridge.app).get('/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body).toEqual({ status: 'ready', reasons: ['airflow_unreachable'] });
    const status = await request(bridge.app).get('/v1/status').set('authorization', `Bearer ${ADMIN}`);
    expect(status.body.airflow.default).toMatchObject({ reachable: false, detail: expect.stringMatching(/ECONNREFUSED|connect/) });
    expect(status.body.store).toMatchObject({ writable: true, detail: 'ok', rows: { events: expect.any(Number) }, last_prune: null });
    // A store that cannot commit (another process holds the write lock): 503 with the code,
    // not the database's error text.
    const blocker = new Database(join(dir, 'bridge.db'));
    blocker.exec('BEGIN EXCLUSIVE');
    const broken = await request(bridge.app).get('/readyz');
    blocker.exec('ROLLBACK');
    blocker.close();
    expect(broken.status).toBe(503);
    expect(broken.body).toEqual({ status: 'not_ready', reasons: ['store_unavailable', 'airflow_unreachable'] });
    expect((await request(bridge.app).get('/readyz')).status).toBe(200);
  });

  it('the example config names a missing AIRFLOW_PASSWORD instead of falling back to admin/admin', async () => {
    const env = { PLANASONIX_WEBHOOK_SECRET: SECRET, AIRFLOW_USER: 'someone' };
    const example = join(import.meta.dirname, '../../config/example.yaml');
    const missing = await loadConfig(example, env);
    expect(missing.ok ? [] : missing.problems).toEqual([{ path: 'airflow.default.auth.password', message: 'environment variable AIRFLOW_PASSWORD is not set' }]);
    const given = await loadConfig(example, { ...env, AIRFLOW_PASSWORD: 'p' });
    expect(given.ok).toBe(true);
  });

  it('credentials over plain http off loopback are a warning, not silence; https and loopback are quiet', () => {
    const warnings = (url: string, auth: string) => {
      const r = parseConfig(base('/tmp', `airflow: { default: { url: "${url}", auth: ${auth} } }`), {});
      if (!r.ok) throw new Error(JSON.stringify(r.problems));
      return clearTextWarnings(r.config);
    };
    expect(warnings('http://airflow.internal:8080', '{ type: bearer, token: t }')).toEqual([expect.stringMatching(/^airflow\.default\.url: http:\/\/airflow\.internal:8080 is plain http off loopback, and auth bearer sends the token in clear text/)]);
    expect(warnings('http://airflow.internal:8080', '{ type: password, username: u, password: p }')).toHaveLength(1);
    expect(warnings('http://airflow.internal:8080', '{ type: none }')).toEqual([]);
    expect(warnings('https://airflow.internal', '{ type: password, username: u, password: p }')).toEqual([]);
    expect(warnings('http://127.0.0.1:8080', '{ type: password, username: u, password: p }')).toEqual([]);
  });
});
