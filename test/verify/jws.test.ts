import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configFrom, verifierFor } from '../helpers/app.js';
import { bodySha256 } from '../helpers/sign.js';
import { buildVerifier } from '../../src/verify/build.js';

const NOW = 1_764_000_000;
const body = Buffer.from('{"id":"evt_1","data":{}}');

const verifier = (verify: Record<string, unknown>) => verifierFor('jws', verify, () => NOW * 1000);

async function token(key: CryptoKey, opts: { kid?: string; iat?: number; exp?: number; iss?: string; aud?: string; claims?: Record<string, unknown>; alg?: string } = {}) {
  const jwt = new SignJWT({ body_sha256: bodySha256(body), ...opts.claims })
    .setProtectedHeader({ alg: opts.alg ?? 'ES256', ...(opts.kid ? { kid: opts.kid } : {}) })
    .setIssuedAt(opts.iat ?? NOW)
    .setExpirationTime(opts.exp ?? NOW + 300)
    .setIssuer(opts.iss ?? 'https://planasonix.example')
    .setAudience(opts.aud ?? 'airflow-bridge');
  return jwt.sign(key);
}

let a: { privateKey: CryptoKey; publicKey: CryptoKey };
let b: { privateKey: CryptoKey; publicKey: CryptoKey };
let pemA: string;
let pemB: string;

beforeAll(async () => {
  a = await generateKeyPair('ES256', { extractable: true });
  b = await generateKeyPair('ES256', { extractable: true });
  pemA = await exportSPKI(a.publicKey);
  pemB = await exportSPKI(b.publicKey);
});

const base = () => ({ public_keys: [pemA], issuer: 'https://planasonix.example', audience: 'airflow-bridge' });
const req = (t: string, payload = body) => ({ body: payload, headers: { 'x-planasonix-jws': t } });

describe('jws with static keys', () => {
  it('accepts a token bound to the body, with or without "Bearer "', async () => {
    const t = await token(a.privateKey);
    expect(await verifier(base())(req(t))).toEqual({ ok: true, value: {} });
    expect((await verifier(base())(req(`Bearer ${t}`))).ok).toBe(true);
  });

  it('rejects a body that differs from the hash claim, and a token without the claim', async () => {
    const t = await token(a.privateKey);
    const changed = await verifier(base())(req(t, Buffer.from('{"id":"evt_2","data":{}}')));
    expect(changed).toEqual({ ok: false, error: { reason: 'signature_invalid', message: 'claim "body_sha256" does not match the SHA-256 of the body' } });
    const noClaim = await token(a.privateKey, { claims: { body_sha256: undefined } });
    expect(await verifier(base())(req(noClaim))).toEqual({ ok: false, error: { reason: 'signature_invalid', message: 'token in header x-planasonix-jws has no "body_sha256" claim' } });
  });

  it('checks iss and aud, naming the claim', async () => {
    const iss = await verifier(base())(req(await token(a.privateKey, { iss: 'https://evil.example' })));
    expect(iss).toMatchObject({ ok: false, error: { reason: 'signature_invalid', message: expect.stringContaining('"iss"') } });
    const aud = await verifier(base())(req(await token(a.privateKey, { aud: 'someone-else' })));
    expect(aud).toMatchObject({ ok: false, error: { reason: 'signature_invalid', message: expect.stringContaining('"aud"') } });
  });

  it('refuses a token without exp (it would never expire) and one issued in the future', async () => {
    const noExp = await new SignJWT({ body_sha256: bodySha256(body) }).setProtectedHeader({ alg: 'ES256' }).setIssuedAt(NOW)
      .setIssuer('https://planasonix.example').setAudience('airflow-bridge').sign(a.privateKey);
    expect(await verifier(base())(req(noExp))).toMatchObject({ ok: false, error: { message: expect.stringContaining('"exp"') } });
    const future = await token(a.privateKey, { iat: NOW + 301, exp: NOW + 900 });
    expect(await verifier(base())(req(future))).toMatchObject({ ok: false, error: { reason: 'timestamp_out_of_tolerance' } });
    const withinSkew = await token(a.privateKey, { iat: NOW + 300, exp: NOW + 900 });
    expect((await verifier(base())(req(withinSkew))).ok).toBe(true);
  });

  it('applies the exp tolerance exactly (a token is expired from the second exp + tolerance names)', async () => {
    const justInside = await token(a.privateKey, { iat: NOW - 900, exp: NOW - 299 });
    const justOutside = await token(a.privateKey, { iat: NOW - 900, exp: NOW - 300 });
    expect((await verifier(base())(req(justInside))).ok).toBe(true);
    const late = await verifier(base())(req(justOutside));
    expect(late.ok || late.error.reason).toBe('timestamp_out_of_tolerance');
  });

  it('refuses tokens older than max_age plus the clock tolerance', async () => {
    const options = { ...base(), max_age: '60s', tolerance: '10s' };
    expect((await verifier(options)(req(await token(a.privateKey, { iat: NOW - 70 })))).ok).toBe(true);
    const old = await verifier(options)(req(await token(a.privateKey, { iat: NOW - 71 })));
    expect(old.ok || old.error.reason).toBe('timestamp_out_of_tolerance');
  });

  it('rotates: with two PEM keys (no kid) either signer passes; a removed key fails', async () => {
    const both = verifier({ ...base(), public_keys: [pemA, pemB] });
    expect((await both(req(await token(a.privateKey)))).ok).toBe(true);
    expect((await both(req(await token(b.privateKey)))).ok).toBe(true);
    expect(await verifier(base())(req(await token(b.privateKey)))).toMatchObject({ ok: false, error: { reason: 'signature_invalid', message: expect.stringContaining('signature verification failed') } });
  });

  it('accepts JWK keys and refuses an algorithm outside the allow-list', async () => {
    const jwk = JSON.stringify({ ...(await exportJWK(a.publicKey)), kid: 'k1' });
    expect((await verifier({ ...base(), public_keys: [jwk] })(req(await token(a.privateKey, { kid: 'k1' })))).ok).toBe(true);
    const refused = await verifier({ ...base(), public_keys: [jwk], algorithms: ['RS256'] })(req(await token(a.privateKey, { kid: 'k1' })));
    expect(refused).toMatchObject({ ok: false, error: { reason: 'signature_invalid', message: expect.stringContaining('"alg"') } });
  });

  it('names the header when missing or malformed', async () => {
    expect(await verifier(base())({ body, headers: {} })).toEqual({ ok: false, error: { reason: 'signature_missing', message: 'missing header x-planasonix-jws' } });
    const bad = await verifier(base())(req('not-a-jws'));
    expect(bad.ok || bad.error.reason).toBe('signature_malformed');
  });

  it('refuses an unparseable key at build time with its path', () => {
    const config = configFrom(`sources: { s: { path: /s, verify: { scheme: jws, issuer: i, audience: a, public_keys: ["-----BEGIN PUBLIC KEY-----\\nnope\\n-----END PUBLIC KEY-----"] } } }`);
    const built = buildVerifier(config.sources.s!.verify, { clock: Date.now });
    expect(built.ok || built.problems[0]!.path).toBe('public_keys[0]');
  });
});

describe('jws with a JWKS URL (real HTTP server on loopback)', () => {
  let server: Server;
  let keys: JWK[] = [];
  let fetches = 0;
  let up = true;
  let url = '';

  beforeAll(async () => {
    keys = [{ ...(await exportJWK(a.publicKey)), kid: 'a', alg: 'ES256' }];
    server = createServer((_req, res) => {
      fetches++;
      if (!up) return res.writeHead(503).end();
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('fetches once, caches, and refetches when a token names an unknown kid', async () => {
    const v = verifier({ ...base(), public_keys: [], jwks_url: url, jwks_refresh_cooldown: 0 });
    fetches = 0;
    expect((await v(req(await token(a.privateKey, { kid: 'a' })))).ok).toBe(true);
    expect((await v(req(await token(a.privateKey, { kid: 'a' })))).ok).toBe(true);
    expect(fetches).toBe(1);
    keys = [...keys, { ...(await exportJWK(b.publicKey)), kid: 'b', alg: 'ES256' }];
    expect((await v(req(await token(b.privateKey, { kid: 'b' })))).ok).toBe(true);
    expect(fetches).toBe(2);
  });

  it('answers verifier_unavailable (so the sender retries) when the JWKS cannot be fetched', async () => {
    up = false;
    const v = verifier({ ...base(), public_keys: [], jwks_url: url });
    const result = await v(req(await token(a.privateKey, { kid: 'a' })));
    up = true;
    expect(result).toMatchObject({ ok: false, error: { reason: 'verifier_unavailable', message: 'the keys to verify header x-planasonix-jws cannot be fetched now; retry later' } });
    // The cause is for the log only: it names the key server, which the sender must not learn.
    expect(!result.ok && result.error.cause).toMatch(/^JWKS: /);
    expect(!result.ok && result.error.message).not.toContain('127.0.0.1');
  });
});
