import { describe, expect, it, vi } from 'vitest';
import { newRowId } from '../../src/store/ids.js';

describe('row ids (UUIDv7)', () => {
  it('are RFC 9562 version 7 with the variant bits, carry the millisecond time, and sort by it', () => {
    vi.useFakeTimers({ now: Date.parse('2026-12-02T01:00:00.000Z'), toFake: ['Date'] });
    try {
      const first = newRowId();
      vi.setSystemTime(Date.parse('2026-12-02T01:00:00.001Z'));
      const second = newRowId();
      vi.setSystemTime(Date.parse('2027-01-01T00:00:00.000Z'));
      const third = newRowId();
      for (const id of [first, second, third]) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(parseInt(first.replace(/-/g, '').slice(0, 12), 16)).toBe(Date.parse('2026-12-02T01:00:00.000Z'));
      expect([third, first, second].sort()).toEqual([first, second, third]);
    } finally {
      vi.useRealTimers();
    }
  });

  it('are unique within one millisecond', () => {
    const ids = Array.from({ length: 10_000 }, newRowId);
    expect(new Set(ids).size).toBe(ids.length);
  });
});
