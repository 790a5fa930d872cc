import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { verifierFor } from '../helpers/app.js';
import { hmacHex } from '../helpers/sign.js';

const NOW = 1_764_000_000;
const SECRET = 's3cret-for-tests-only';
const OLD = 'old-secret-for-tests';
const NEW = 'new-secret-for-tests';
const OTHER = 'other-secret-for-tests';
const body = Buffer.from('{"id":"evt_1"}');

const verifier = (verify: Record<string, unknown>) => verifierFor('hmac-sha256', verify, () => NOW * 1000);

describe('hmac-sha256', () => {
  it('accepts a hex digest of the raw body in the default header', async () => {
    const v = verifier({ secrets: [SECRET] });
    expect(await v({ body, headers: { 'x-planasonix-signature': hmacHex(SECRET, body) } })).toEqual({ ok: true, value: {} });
  });

  it('accepts base64 in a configured header, with and without the sha256= prefix', async () => {
    const v = verifier({ secrets: [SECRET], header: 'X-Hub-Signature-256', encoding: 'base64', prefix: 'sha256=' });
    const digest = createHmac('sha256', SECRET).update(body).digest('base64');
    expect((await v({ body, headers: { 'x-hub-signature-256': `sha256=${digest}` } })).ok).toBe(true);
    expect((await v({ body, headers: { 'x-hub-signature-256': digest } })).ok).toBe(true);
  });

  it('folds the timestamp header into the signed content and checks its tolerance', async () => {
    const v = verifier({ secrets: [SECRET], timestamp_header: 'x-timestamp', tolerance: '5m' });
    const sign = (ts: number) => hmacHex(SECRET, Buffer.concat([Buffer.from(`${ts}.`), body]));
    expect((await v({ body, headers: { 'x-planasonix-signature': sign(NOW), 'x-timestamp': String(NOW) } })).ok).toBe(true);
    expect((await v({ body, headers: { 'x-planasonix-signature': sign(NOW - 300), 'x-timestamp': String(NOW - 300) } })).ok).toBe(true);
    const stale = await v({ body, headers: { 'x-planasonix-signature': sign(NOW - 301), 'x-timestamp': String(NOW - 301) } });
    expect(stale.ok || stale.error.reason).toBe('timestamp_out_of_tolerance');
    // The body alone, without the timestamp, is not what is signed in this mode.
    const bodyOnly = await v({ body, headers: { 'x-planasonix-signature': hmacHex(SECRET, body), 'x-timestamp': String(NOW) } });
    expect(bodyOnly.ok || bodyOnly.error.reason).toBe('signature_invalid');
    const missing = await v({ body, headers: { 'x-planasonix-signature': sign(NOW) } });
    expect(missing).toEqual({ ok: false, error: { reason: 'signature_missing', message: 'missing header x-timestamp' } });
  });

  it('rotates: every configured secret is tried; a removed one fails', async () => {
    const both = verifier({ secrets: [OLD, NEW] });
    const onlyNew = verifier({ secrets: [NEW] });
    const signedOld = { body, headers: { 'x-planasonix-signature': hmacHex(OLD, body) } };
    expect((await both(signedOld)).ok).toBe(true);
    expect((await both({ body, headers: { 'x-planasonix-signature': hmacHex(NEW, body) } })).ok).toBe(true);
    expect((await onlyNew(signedOld)).ok).toBe(false);
  });

  it('names the header when it is missing or malformed, and never prints the digest or secret', async () => {
    const v = verifier({ secrets: [SECRET] });
    expect(await v({ body, headers: {} })).toEqual({ ok: false, error: { reason: 'signature_missing', message: 'missing header x-planasonix-signature' } });
    const malformed = await v({ body, headers: { 'x-planasonix-signature': 'zz-not-hex' } });
    expect(malformed.ok || malformed.error.reason).toBe('signature_malformed');
    const wrong = await v({ body, headers: { 'x-planasonix-signature': hmacHex(OTHER, body) } });
    expect(wrong.ok).toBe(false);
    if (!wrong.ok) {
      expect(wrong.error.reason).toBe('signature_invalid');
      expect(wrong.error.message).toContain('x-planasonix-signature');
      expect(wrong.error.message).not.toContain(hmacHex(SECRET, body));
      expect(wrong.error.message).not.toContain(SECRET);
    }
  });

  it('rejects a body changed by one byte', async () => {
    const v = verifier({ secrets: [SECRET] });
    const changed = Buffer.from(body);
    changed[3] = changed[3]! ^ 1;
    expect((await v({ body: changed, headers: { 'x-planasonix-signature': hmacHex(SECRET, body) } })).ok).toBe(false);
  });
});
