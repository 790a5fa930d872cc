import { describe, expect, it } from 'vitest';
import { backoffDelay, MAX_RETRY_AFTER, parseRetryAfter, retryDelay } from '../../src/dispatch/backoff.js';
import { createCircuit } from '../../src/dispatch/circuit.js';

describe('backoff', () => {
  it('is full jitter over a doubling ceiling, capped', () => {
    expect([1, 2, 3, 4, 10].map((n) => backoffDelay(n, 1000, 5000, () => 0.999999))).toEqual([999, 1999, 3999, 4999, 4999]);
    expect(backoffDelay(5, 1000, 5000, () => 0)).toBe(0);
  });

  it('never retries earlier than Retry-After, which is bounded to an hour', () => {
    const policy = { initial_delay: 1000, max_delay: 5000 };
    expect(retryDelay(1, policy, () => 0.5, 30_000)).toBe(30_000);
    expect(retryDelay(3, policy, () => 0.5, 10)).toBe(2000);
    expect(retryDelay(1, policy, () => 0.5, 10 * 24 * 3600_000)).toBe(MAX_RETRY_AFTER);
  });

  it('reads Retry-After as seconds or an HTTP date', () => {
    const now = Date.parse('2026-11-25T12:00:00Z');
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter('Wed, 25 Nov 2026 12:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });
});

describe('circuit breaker', () => {
  it('opens after N consecutive failures, lets one probe through after the cooldown, closes on its success', () => {
    const c = createCircuit(3, 1000);
    c.failure(0);
    c.failure(0);
    c.success();
    c.failure(10);
    c.failure(10);
    expect(c.state(10)).toBe('closed');
    c.failure(10);
    expect(c.state(500)).toBe('open');
    expect(c.allow(500)).toBe(false);
    expect(c.state(1010)).toBe('half-open');
    expect(c.allow(1010)).toBe(true);
    expect(c.allow(1010)).toBe(false);
    c.failure(1020);
    expect(c.state(1500)).toBe('open');
    expect(c.allow(2020)).toBe(true);
    c.success();
    expect(c.state(2021)).toBe('closed');
    expect(c.allow(2021)).toBe(true);
  });
});
