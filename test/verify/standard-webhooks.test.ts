import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { configFrom, verifierFor } from '../helpers/app.js';
import { ed25519Signature, standardWebhookHeaders, vectors } from '../helpers/sign.js';
import { buildVerifier } from '../../src/verify/build.js';

const sym = vectors.symmetric;
const asym = vectors.asymmetric_ed25519;
const at = (seconds: number) => () => seconds * 1000;

const verifier = (verify: Record<string, unknown>, clock = at(sym.timestamp)) => verifierFor('standard-webhooks', verify, clock);

const request = (headers: Record<string, string>, payload: string = sym.payload) => ({ body: Buffer.from(payload), headers });
const symHeaders = (signature = sym.signature) => ({ 'webhook-id': sym.id, 'webhook-timestamp': String(sym.timestamp), 'webhook-signature': signature });

describe('standard-webhooks: the shared vectors', () => {
  it('accepts the good v1 signature alone, and reports the delivery id', async () => {
    const result = await verifier({ secrets: [sym.secret] })(request(symHeaders()));
    expect(result).toEqual({ ok: true, value: { deliveryId: sym.id } });
  });

  it('accepts the secret with or without its whsec_ prefix', async () => {
    expect((await verifier({ secrets: [sym.secret_without_prefix] })(request(symHeaders()))).ok).toBe(true);
    expect((await verifier({ secrets: [sym.secret] })(request(symHeaders()))).ok).toBe(true);
  });

  it('accepts several space-separated signatures when one is good', async () => {
    const bad = 'v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=';
    const list = `${bad} v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= ${sym.signature} ${bad}`;
    expect((await verifier({ secrets: [sym.secret] })(request(symHeaders(list)))).ok).toBe(true);
  });

  it('accepts the v1a Ed25519 vector with or without the whpk_ prefix', async () => {
    const headers = { 'webhook-id': asym.id, 'webhook-timestamp': String(asym.timestamp), 'webhook-signature': asym.signature };
    for (const key of [asym.public_key_base64, `${asym.public_key_prefix}${asym.public_key_base64}`]) {
      expect(await verifier({ public_keys: [key] })(request(headers, asym.payload))).toEqual({ ok: true, value: { deliveryId: asym.id } });
    }
  });

  it('re-derives the v1a vector from its seed (the test signer agrees with the vector)', () => {
    expect(ed25519Signature(asym.private_seed_base64, asym.id, asym.timestamp, asym.payload)).toBe(asym.signature);
  });

  it.each(['webhook-id', 'webhook-timestamp', 'webhook-signature'])('rejects a request missing %s, naming it', async (name) => {
    const headers: Record<string, string> = symHeaders();
    delete headers[name];
    const result = await verifier({ secrets: [sym.secret] })(request(headers));
    expect(result).toEqual({ ok: false, error: { reason: 'signature_missing', message: `missing header ${name}` } });
  });

  it('rejects a timestamp that is not an integer', async () => {
    const result = await verifier({ secrets: [sym.secret] })(request({ ...symHeaders(), 'webhook-timestamp': 'hello' }));
    expect(result.ok || result.error.reason).toBe('timestamp_invalid');
  });

  it.each([
    ['old by tolerance', sym.timestamp + 300, true],
    ['old by tolerance + 1 s', sym.timestamp + 301, false],
    ['new by tolerance', sym.timestamp - 300, true],
    ['new by tolerance + 1 s', sym.timestamp - 301, false],
  ])('tolerance edge: %s', async (_label, now, accepted) => {
    const result = await verifier({ secrets: [sym.secret] }, at(now))(request(symHeaders()));
    expect(result.ok).toBe(accepted);
    if (!result.ok) expect(result.error.reason).toBe('timestamp_out_of_tolerance');
  });

  it('honours a configured tolerance', async () => {
    const v = verifier({ secrets: [sym.secret], tolerance: '10s' }, at(sym.timestamp + 11));
    expect((await v(request(symHeaders()))).ok).toBe(false);
    expect((await verifier({ secrets: [sym.secret], tolerance: '10s' }, at(sym.timestamp + 10))(request(symHeaders()))).ok).toBe(true);
  });

  it.each([
    ['wrong', 'v1,dawfeoifkpqwoekfpqoekf'],
    ['cut to "v1,"', 'v1,'],
    ['cut to its first 8 characters', sym.signature.slice(0, 8)],
  ])('rejects a %s signature without printing the expected one', async (_label, signature) => {
    const result = await verifier({ secrets: [sym.secret] })(request(symHeaders(signature)));
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(['signature_invalid', 'signature_malformed']).toContain(result.error.reason);
    expect(result.error.message).toContain('webhook-signature');
    expect(result.error.message).not.toContain(sym.signature.slice(3));
    expect(result.error.message).not.toContain(sym.secret_without_prefix);
  });

  it('rejects the payload changed by one byte after signing', async () => {
    const changed = sym.payload.replace('2432232314', '2432232315');
    const result = await verifier({ secrets: [sym.secret] })(request(symHeaders(), changed));
    expect(result.ok || result.error.reason).toBe('signature_invalid');
  });

  it('rejects a v1a signature presented as v1 and vice versa', async () => {
    const asV1 = asym.signature.replace('v1a,', 'v1,');
    const headers = { 'webhook-id': asym.id, 'webhook-timestamp': String(asym.timestamp), 'webhook-signature': asV1 };
    expect((await verifier({ public_keys: [asym.public_key_base64] })(request(headers, asym.payload))).ok).toBe(false);
    expect((await verifier({ secrets: [sym.secret] })(request(symHeaders(sym.signature.replace('v1,', 'v1a,'))))).ok).toBe(false);
  });
});

describe('standard-webhooks: rotation', () => {
  const old = sym.secret;
  const next = 'whsec_' + Buffer.from('a brand new secret of 32 bytes!!').toString('base64');
  const signed = (secret: string) => request(standardWebhookHeaders(secret, sym.id, sym.timestamp, sym.payload));

  it('accepts both the old and the new secret while both are configured', async () => {
    const v = verifier({ secrets: [old, next] });
    expect((await v(signed(old))).ok).toBe(true);
    expect((await v(signed(next))).ok).toBe(true);
  });

  it('rejects the old secret once it is removed', async () => {
    const v = verifier({ secrets: [next] });
    expect((await v(signed(old))).ok).toBe(false);
    expect((await v(signed(next))).ok).toBe(true);
  });

  it('accepts a v1 secret and a v1a key side by side', async () => {
    const v = verifier({ secrets: [next], public_keys: [asym.public_key_base64] });
    const headers = { 'webhook-id': asym.id, 'webhook-timestamp': String(asym.timestamp), 'webhook-signature': asym.signature };
    expect((await v(request(headers, asym.payload))).ok).toBe(true);
    expect((await v(signed(next))).ok).toBe(true);
  });

  it('refuses a secret shorter than 16 bytes', () => {
    const config = configFrom(`sources: { s: { path: /s, verify: { scheme: standard-webhooks, secrets: ["whsec_AA=="] } } }`);
    const built = buildVerifier(config.sources.s!.verify, { clock: Date.now });
    expect(built.ok || built.problems).toEqual([{ path: 'secrets[0]', message: 'only 1 bytes: use at least 16 (openssl rand -base64 32)' }]);
  });

  it('refuses unusable keys at build time with their path', () => {
    const config = configFrom(`sources: { s: { path: /s, verify: { scheme: standard-webhooks, secrets: ["whsec_%%%"], public_keys: ["whpk_AAAA"] } } }`);
    const built = buildVerifier(config.sources.s!.verify, { clock: Date.now });
    expect(built.ok).toBe(false);
    if (!built.ok) expect(built.problems.map((p) => p.path)).toEqual(['secrets[0]', 'public_keys[0]']);
  });
});

describe('standard-webhooks: property', () => {
  const v = verifier({ secrets: [sym.secret] });
  const good = symHeaders();

  it('flipping, inserting or deleting any one byte of the body breaks a good signature', async () => {
    const original = Buffer.from(sym.payload);
    const edit = fc.oneof(
      fc.record({ kind: fc.constant('flip' as const), at: fc.nat(original.length - 1), bit: fc.integer({ min: 0, max: 7 }) }),
      fc.record({ kind: fc.constant('insert' as const), at: fc.nat(original.length), byte: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ kind: fc.constant('delete' as const), at: fc.nat(original.length - 1), byte: fc.constant(0) }),
    );
    await fc.assert(
      fc.asyncProperty(edit, async (e) => {
        const bytes = [...original];
        if (e.kind === 'flip') bytes[e.at] = bytes[e.at]! ^ (1 << (e as { bit: number }).bit);
        if (e.kind === 'insert') bytes.splice(e.at, 0, (e as { byte: number }).byte);
        if (e.kind === 'delete') bytes.splice(e.at, 1);
        expect((await v({ body: Buffer.from(bytes), headers: good })).ok).toBe(false);
      }),
      { numRuns: 300 },
    );
  });

  it('any change to body, id or timestamp breaks a good signature', async () => {
    const mutation = fc.oneof(
      fc.record({ field: fc.constant('body' as const), value: fc.string({ minLength: 0, maxLength: 64 }) }),
      fc.record({ field: fc.constant('id' as const), value: fc.string({ minLength: 1, maxLength: 40 }).filter((s) => !/[\r\n]/.test(s)) }),
      fc.record({ field: fc.constant('timestamp' as const), value: fc.integer({ min: sym.timestamp - 300, max: sym.timestamp + 300 }).map(String) }),
    );
    await fc.assert(
      fc.asyncProperty(mutation, async ({ field, value }) => {
        const headers = { ...good };
        let payload = sym.payload;
        if (field === 'body') payload = value;
        if (field === 'id') headers['webhook-id'] = value;
        if (field === 'timestamp') headers['webhook-timestamp'] = value;
        const unchanged = payload === sym.payload && headers['webhook-id'] === sym.id && headers['webhook-timestamp'] === String(sym.timestamp);
        fc.pre(!unchanged);
        expect((await v(request(headers, payload))).ok).toBe(false);
      }),
      { numRuns: 300 },
    );
  });

  it('any correctly signed body, id and timestamp within tolerance is accepted', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string(), fc.stringMatching(/^[A-Za-z0-9_]{1,40}$/), fc.integer({ min: -300, max: 300 }), async (payload, id, skew) => {
        const headers = standardWebhookHeaders(sym.secret, id, sym.timestamp + skew, payload);
        expect((await v(request(headers, payload))).ok).toBe(true);
      }),
      { numRuns: 200 },
    );
  });
});
