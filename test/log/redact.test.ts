import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { redactDeep, redactUrls } from '../../src/log/redact.js';

describe('redactUrls', () => {
  it.each([
    ['postgres://bridge:s3cret@db:5432/bridge', 'postgres://***@db:5432/bridge'],
    ['postgresql://bridge@db/bridge?sslmode=require&password=s3cret', 'postgresql://***@db/bridge?sslmode=require&password=***'],
    ['redis://:s3cret@cache:6379', 'redis://***@cache:6379'],
    ['https://user:pa%40ss@airflow.example/api', 'https://***@airflow.example/api'],
    ['connect to http://a:b@h:1 failed; retry http://c:d@h:2', 'connect to http://***@h:1 failed; retry http://***@h:2'],
    ['https://hooks.example/x?token=abc&ok=1', 'https://hooks.example/x?token=***&ok=1'],
    ['http://127.0.0.1:8080', 'http://127.0.0.1:8080'],
    ['sqlite:./data/bridge.db', 'sqlite:./data/bridge.db'],
    ['GET /v1/events?limit=5 200', 'GET /v1/events?limit=5 200'],
  ])('%s → %s', (given, expected) => {
    expect(redactUrls(given)).toBe(expected);
  });

  it('never lets the password of a URL through, whatever it is', () => {
    const secret = fc.stringMatching(/^[A-Za-z0-9._~!$&'()*+,;=%-]{6,30}$/);
    fc.assert(
      fc.property(fc.constantFrom('postgres', 'https', 'redis', 'http'), fc.stringMatching(/^[a-z]{1,10}$/), secret, (scheme, user, password) => {
        fc.pre(!password.includes('@'));
        const out = redactUrls(`failed: ${scheme}://${user}:${password}@host.example:1/db`);
        expect(out).toBe(`failed: ${scheme}://***@host.example:1/db`);
      }),
    );
  });

  it('walks objects and arrays, leaving what has nothing to hide as the same object', () => {
    const clean = { a: 'x', b: [1, 'y'] };
    expect(redactDeep(clean)).toBe(clean);
    expect(redactDeep({ store: 'postgres://u:p@h/d', list: ['redis://:p@h'], n: 1 })).toEqual({ store: 'postgres://***@h/d', list: ['redis://***@h'], n: 1 });
  });
});
