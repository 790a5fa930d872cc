import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { substituteEnv } from '../../src/config/env.js';

const SOURCE = `sources: { planasonix: { path: /webhooks/planasonix, verify: { scheme: standard-webhooks, secrets: ["\${SECRET}"] } } }`;

function problems(yaml: string, env: Record<string, string> = {}) {
  const result = parseConfig(yaml, env);
  return result.ok ? [] : result.problems.map((p) => `${p.path}: ${p.message}`);
}

describe('config: environment substitution', () => {
  it('substitutes ${VAR} and ${VAR:-default} inside strings, and keeps $${ literal', () => {
    const out = substituteEnv({ a: '${A}', b: 'x-${B:-fallback}-y', c: ['$${NOT}'], d: 5 }, { A: 'one' });
    expect(out.value).toEqual({ a: 'one', b: 'x-fallback-y', c: ['${NOT}'], d: 5 });
    expect(out.problems).toEqual([]);
  });

  it('uses the default when the variable is set but empty, like a shell', () => {
    expect(substituteEnv('${A:-d}', { A: '' }).value).toBe('d');
  });

  it('does not re-read YAML from a value: a secret with YAML syntax stays one string', () => {
    const result = parseConfig(SOURCE, { SECRET: 'whsec_AAAA"]\n  evil: [' });
    expect(result.ok && result.config.sources.planasonix!.verify).toMatchObject({ secrets: ['whsec_AAAA"]\n  evil: ['] });
  });

  it('names the path of a variable that is not set', () => {
    expect(problems(SOURCE)).toEqual(['sources.planasonix.verify.secrets[0]: environment variable SECRET is not set']);
  });

  it('says "empty after substitution" with the path when a variable is set but empty', () => {
    expect(problems(SOURCE, { SECRET: '' })).toEqual(['sources.planasonix.verify.secrets[0]: empty after substitution']);
  });

  it('reads numbers from the environment', () => {
    const result = parseConfig(`server: { port: "\${PORT}" }\n${SOURCE}`, { PORT: '9090', SECRET: 'whsec_AAAA' });
    expect(result.ok && result.config.server.port).toBe(9090);
  });
});

describe('config: validation', () => {
  it('fills the documented defaults', () => {
    const result = parseConfig(SOURCE, { SECRET: 'whsec_AAAA' });
    if (!result.ok) throw new Error(JSON.stringify(result.problems));
    expect(result.config.server).toMatchObject({ host: '0.0.0.0', port: 8787, body_limit: 262144, rate_limit: { window: 60_000, max: 1200 } });
    expect(result.config.store.url).toBe('sqlite:./data/bridge.db');
    expect(result.config.sources.planasonix!.verify).toMatchObject({ tolerance: 300_000, public_keys: [] });
  });

  it('lists every problem at once, each with its path', () => {
    const yaml = `
server: { port: 70000, body_limit: lots, rate_limit: { window: soon } }
stroe: { url: "sqlite:x.db" }
sources:
  a: { path: /same, verify: { scheme: standard-webhooks } }
  b: { path: /same, verify: { scheme: hmac-sha256, secrets: [], encoding: hex2 } }
  c: { path: nope, verify: { scheme: jws } }
  d: { path: /d, verify: { scheme: carrier-pigeon } }
`;
    expect(problems(yaml)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^server\.port: /),
        'server.body_limit: "lots" is not a size (examples: 256kb, 1mb)',
        'server.rate_limit.window: "soon" is not a duration (examples: 30s, 5m, 1h; a bare number is seconds)',
        'stroe: unknown key (misspelt, or not supported by this version)',
        'sources.a.verify.secrets: give at least one of secrets (v1) or public_keys (v1a)',
        'sources.b.verify.secrets: give at least one secret',
        expect.stringMatching(/^sources\.b\.verify\.encoding: /),
        expect.stringMatching(/^sources\.c\.path: must start with \//),
        'sources.c.verify.issuer: required',
        expect.stringMatching(/^sources\.d\.verify\.scheme: /),
      ]),
    );
  });

  it('asks for exactly one key source for jws', () => {
    const yaml = `sources: { j: { path: /j, verify: { scheme: jws, issuer: i, audience: a } } }`;
    expect(problems(yaml)).toEqual(['sources.j.verify.public_keys: give exactly one of public_keys or jwks_url']);
  });

  it('reads a bare number of seconds for durations, also from the environment', () => {
    const yaml = `server: { shutdown_timeout: "\${GRACE}" }\n${SOURCE.replace('secrets:', 'tolerance: "300", secrets:')}`;
    const result = parseConfig(yaml, { GRACE: '7', SECRET: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' });
    if (!result.ok) throw new Error(JSON.stringify(result.problems));
    expect(result.config.server.shutdown_timeout).toBe(7000);
    expect(result.config.sources.planasonix!.verify).toMatchObject({ tolerance: 300_000 });
  });

  it('coerces trust_proxy from the environment and names a bad value', () => {
    const yaml = (v: string) => `server: { trust_proxy: "${v}" }\n${SOURCE}`;
    const env = { SECRET: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' };
    const read = (v: string) => {
      const r = parseConfig(yaml(v), env);
      return r.ok ? r.config.server.trust_proxy : r.problems.map((p) => p.path);
    };
    expect(read('false')).toBe(false);
    expect(read('2')).toBe(2);
    expect(read('loopback, 10.0.0.0/8')).toBe('loopback, 10.0.0.0/8');
    expect(read('nonsense')).toEqual(['server.trust_proxy']);
  });

  it('refuses an in-memory store and short secrets', () => {
    expect(problems(`store: { url: "sqlite::memory:" }\n${SOURCE}`, { SECRET: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' })).toEqual([
      expect.stringMatching(/^store\.url: an in-memory database/),
    ]);
    expect(problems(`sources: { h: { path: /h, verify: { scheme: hmac-sha256, secrets: [short] } } }`)).toEqual([
      'sources.h.verify.secrets[0]: shorter than 16 characters: too easy to guess',
    ]);
  });

  it('refuses a retention shorter than the loop guard\'s breaker window, with its path', () => {
    const env = { SECRET: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' };
    expect(problems(`store: { retention: { events: 5m, dead: 1h } }\nloop_guard: { breaker: { window: 10m } }\n${SOURCE}`, env)).toEqual([
      'store.retention.events: shorter than loop_guard.breaker.window (600s): triggers pruned inside the window would no longer count against their pipeline → DAG pair',
    ]);
    expect(problems(`store: { retention: { events: 1h, dead: 1h } }\nloop_guard: { breaker: { window: 2h } }\n${SOURCE}`, env).map((p) => p.split(':')[0])).toEqual(['store.retention.events', 'store.retention.dead']);
    expect(problems(`store: { retention: { events: 10m } }\nloop_guard: { breaker: { window: 10m } }\n${SOURCE}`, env)).toEqual([]);
    expect(problems(`store: { retention: false }\nloop_guard: { breaker: { window: 400d } }\n${SOURCE}`, env)).toEqual([]);
  });

  it('refuses two sources on the same path', () => {
    const yaml = `sources: { a: { path: /x, verify: { scheme: hmac-sha256, secrets: [sixteen-chars-secret] } }, b: { path: /x, verify: { scheme: hmac-sha256, secrets: [sixteen-chars-secret] } } }`;
    expect(problems(yaml)).toEqual(['sources.b.path: same path as source "a"']);
  });

  it('reports YAML syntax errors with their position', () => {
    const found = problems('sources: { a: [');
    expect(found.length).toBeGreaterThan(0);
    expect(found[0]).toMatch(/^\(yaml\): .* at line 1, column 16$/);
  });

  it('refuses a config without sources', () => {
    expect(problems('server: { port: 1 }')).toEqual([expect.stringMatching(/^sources: /)]);
    expect(problems('sources: {}')).toEqual(['sources: configure at least one source']);
  });

  it('parses durations and sizes in their usual spellings', () => {
    const yaml = `server: { body_limit: 1mb, rate_limit: { window: 30s, max: "10" } }\n${SOURCE.replace('secrets:', 'tolerance: 90, secrets:')}`;
    const result = parseConfig(yaml, { SECRET: 'whsec_AAAA' });
    if (!result.ok) throw new Error(JSON.stringify(result.problems));
    expect(result.config.server.body_limit).toBe(1024 * 1024);
    expect(result.config.server.rate_limit).toEqual({ window: 30_000, max: 10 });
    expect(result.config.sources.planasonix!.verify).toMatchObject({ tolerance: 90_000 });
  });
});
