import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile, type Template } from '../../src/route/template.js';

function template(source: unknown): Template {
  const compiled = compile(source);
  if (!compiled.ok) throw new Error(JSON.stringify(compiled.problems));
  return compiled.template;
}

const scope = {
  event: { id: 'evt_1', type: 'run.succeeded' },
  data: { run_id: 'run_7Hc2', parameters: { business_date: '2026-11-23', n: 3, nested: { a: [1, 2] } }, tags: { team: 'sales' }, finished_at: '2026-11-24T02:14:07Z', nothing: null },
  route: { name: 'sales-to-dbt' },
  source: { name: 'planasonix' },
};

describe('templates', () => {
  it('interpolates paths into strings', () => {
    expect(template('planasonix__{{ data.run_id }}__{{ route.name }}').render(scope)).toEqual({ ok: true, value: 'planasonix__run_7Hc2__sales-to-dbt' });
  });

  it('keeps the JSON type of a value that is a whole {{ x }}', () => {
    expect(template('{{ data.parameters }}').render(scope)).toEqual({ ok: true, value: scope.data.parameters });
    expect(template('{{ data.parameters.n }}').render(scope)).toEqual({ ok: true, value: 3 });
    expect(template('{{data.parameters.nested.a[1]}}').render(scope)).toEqual({ ok: true, value: 2 });
    expect(template('n={{ data.parameters.n }}').render(scope)).toEqual({ ok: true, value: 'n=3' });
  });

  it('renders a conf tree, templates inside, other values as they are', () => {
    const conf = template({ business_date: '{{ data.parameters.business_date }}', fixed: 1, list: ['{{ data.tags.team | upper }}', true], deep: { x: '{{ event.id }}' } });
    expect(conf.render(scope)).toEqual({ ok: true, value: { business_date: '2026-11-23', fixed: 1, list: ['SALES', true], deep: { x: 'evt_1' } } });
  });

  it('applies the filters: default, json, upper, lower, date', () => {
    const r = (t: string) => template(t).render(scope);
    expect(r('{{ data.missing | default: "none" }}')).toEqual({ ok: true, value: 'none' });
    expect(r('{{ data.nothing | default: 5 }}')).toEqual({ ok: true, value: 5 });
    expect(r('{{ data.run_id | default: "x" }}')).toEqual({ ok: true, value: 'run_7Hc2' });
    expect(r('{{ data.parameters.nested | json }}')).toEqual({ ok: true, value: '{"a":[1,2]}' });
    expect(r('{{ data.tags.team | upper }}')).toEqual({ ok: true, value: 'SALES' });
    expect(r("{{ event.type | lower }}")).toEqual({ ok: true, value: 'run.succeeded' });
    expect(r('{{ data.finished_at | date }}')).toEqual({ ok: true, value: '2026-11-24T02:14:07Z' });
    expect(r('{{ data.finished_at | date: "YYYY-MM-DD" }}')).toEqual({ ok: true, value: '2026-11-24' });
    expect(r("{{ data.finished_at | date: 'YYYYMMDD_HHmmss' }}")).toEqual({ ok: true, value: '20261124_021407' });
    expect(r('{{ data.missing | default: "n/a" | upper }}')).toEqual({ ok: true, value: 'N/A' });
  });

  it('fails with a clear reason for a missing path without default, and for a filter on the wrong type', () => {
    expect(template('{{ data.parameters.watermark }}').render(scope)).toEqual({
      ok: false,
      message: '{{ data.parameters.watermark }}: data.parameters.watermark is missing (add "| default: …" if it is optional)',
    });
    expect(template('{{ data.parameters.n | upper }}').render(scope)).toMatchObject({ ok: false, message: expect.stringContaining('upper needs a string') });
    expect(template('{{ data.run_id | date }}').render(scope)).toMatchObject({ ok: false, message: expect.stringContaining('date needs') });
  });

  it('reports syntax errors at compile time with their place in a tree', () => {
    const bad = compile({ ok: '{{ data.run_id }}', a: ['x', '{{ data.run_id | shout }}'], b: '{{ oops.x }}', c: '{{ data.x', d: '{{ }}' });
    expect(bad.ok).toBe(false);
    if (bad.ok) return;
    expect(bad.problems).toEqual([
      { path: ['a', 1], message: expect.stringContaining('unknown filter "shout"') },
      { path: ['b'], message: expect.stringContaining('unknown root "oops"') },
      { path: ['c'], message: expect.stringContaining('without a closing "}}"') },
      { path: ['d'], message: 'empty {{ }}' },
    ]);
  });

  it('lets a missing value pass other filters until a default; numeric keys; quoted literals with escapes', () => {
    const r = (t: string, s: Record<string, unknown> = scope) => template(t).render(s);
    expect(r('{{ data.missing | upper | default: "X" }}')).toEqual({ ok: true, value: 'X' });
    expect(r('{{ data.missing | upper }}')).toMatchObject({ ok: false, message: expect.stringContaining('data.missing is missing') });
    expect(r('{{ data.a.1.5 }}', { data: { a: { 1: { 5: 'deep' } } } })).toEqual({ ok: true, value: 'deep' });
    expect(r(`{{ data.missing | default: 'it\\'s "quoted" \\\\ ok' }}`)).toEqual({ ok: true, value: `it's "quoted" \\ ok` });
    expect(compile('{{ data.x | default: "C:\\path" }}')).toMatchObject({ ok: false, problems: [{ message: expect.stringContaining('escapes are allowed') }] });
  });

  it('never reaches a prototype through __proto__ or constructor', () => {
    expect(template('{{ data.__proto__ | default: "safe" }}').render(scope)).toEqual({ ok: true, value: 'safe' });
    expect(template('{{ data.constructor.name | default: "safe" }}').render(scope)).toEqual({ ok: true, value: 'safe' });
  });

  it('property: event values are data — a value containing {{ }} or ${} is copied literally, never re-parsed', () => {
    const t = template('x-{{ data.value }}-y');
    const whole = template('{{ data.value }}');
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.constantFrom('{{ data.secret }}', '${HOME}', '{{', '}}', '{{ event.id | upper }}')), (value) => {
        const s = { ...scope, data: { value, secret: 'LEAK' } };
        expect(t.render(s)).toEqual({ ok: true, value: `x-${value}-y` });
        expect(whole.render(s)).toEqual({ ok: true, value });
      }),
      { numRuns: 300 },
    );
  });

  it('property: a whole {{ x }} returns any JSON value unchanged', () => {
    const whole = template('{{ data.value }}');
    fc.assert(
      fc.property(fc.jsonValue().filter((v) => v !== null), (value) => {
        expect(whole.render({ ...scope, data: { value } })).toEqual({ ok: true, value });
      }),
      { numRuns: 200 },
    );
  });
});
