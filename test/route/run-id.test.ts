import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AIRFLOW_RUN_ID, sanitiseRunId } from '../../src/route/run-id.js';

describe('dag_run_id sanitising', () => {
  it('keeps an id that is already valid', () => {
    expect(sanitiseRunId('planasonix__run_7Hc2__sales-to-dbt')).toBe('planasonix__run_7Hc2__sales-to-dbt');
  });

  it('replaces forbidden characters and collapses "..", adding a hash so distinct inputs stay distinct', () => {
    const a = sanitiseRunId('run/1 a..b');
    const b = sanitiseRunId('run_1_a.b');
    expect(a).toMatch(/^run_1_a\.b~[0-9a-f]{16}$/);
    expect(b).toBe('run_1_a.b');
    expect(a).not.toBe(b);
  });

  it('an input that already ends like a hash suffix is hashed too, so it cannot collide with a sanitised id', () => {
    const sanitised = sanitiseRunId('a/');
    expect(sanitiseRunId(sanitised)).not.toBe(sanitised);
  });

  it('cuts long ids to 250 characters with a hash suffix', () => {
    const long = sanitiseRunId('x'.repeat(300));
    expect(long).toHaveLength(250);
    expect(sanitiseRunId('x'.repeat(299))).not.toBe(long);
  });

  it('property: always matches Airflow\'s pattern, never has "..", at most 250 characters, and is injective', () => {
    const seen = new Map<string, string>();
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 400 }), (input) => {
        const id = sanitiseRunId(input);
        expect(id).toMatch(AIRFLOW_RUN_ID);
        expect(id).not.toContain('..');
        expect(id.length).toBeLessThanOrEqual(250);
        const earlier = seen.get(id);
        if (earlier !== undefined) expect(earlier).toBe(input);
        seen.set(id, input);
      }),
      { numRuns: 2000 },
    );
  });
});
