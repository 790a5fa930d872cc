import { describe, expect, it } from 'vitest';
import { parseEvent } from '../../src/event/schema.js';
import { completionEvent } from '../helpers/sign.js';

const bytes = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value));

describe('event schema', () => {
  it('parses the DESIGN example into a typed event, keeping unknown fields', () => {
    const event = completionEvent({ future_field: { x: 1 } });
    const parsed = parseEvent(bytes(event));
    if (!parsed.ok) throw new Error(parsed.error.message);
    expect(parsed.value.data.pipeline_id).toBe('pl_8f2a9c1d4e');
    expect((parsed.value as Record<string, unknown>).future_field).toEqual({ x: 1 });
  });

  it('accepts unknown event types (stored, routed later)', () => {
    expect(parseEvent(bytes(completionEvent({ type: 'run.paused_for_lunch' }))).ok).toBe(true);
  });

  it.each([
    ['id', (e: any) => delete e.id, 'id: required'],
    ['type', (e: any) => delete e.type, 'type: required'],
    ['created_at', (e: any) => delete e.created_at, 'created_at: required'],
    ['data', (e: any) => delete e.data, 'data: required'],
    ['data.run_id', (e: any) => delete e.data.run_id, 'data.run_id: required'],
    ['data.pipeline_id', (e: any) => delete e.data.pipeline_id, 'data.pipeline_id: required'],
    ['data.status', (e: any) => delete e.data.status, 'data.status: required'],
  ])('names the missing field %s', (_name, mutate, message) => {
    const event = structuredClone(completionEvent());
    mutate(event);
    expect(parseEvent(bytes(event))).toEqual({ ok: false, error: { reason: 'invalid_event', message } });
  });

  it('gives the JSON path of the first wrongly typed field', () => {
    const asString = parseEvent(bytes({ ...completionEvent(), data: 'oops' }));
    expect(asString.ok || asString.error.message).toMatch(/^data: .*expected object/);
    const tags = completionEvent();
    (tags.data as any).tags = { team: 7 };
    expect(parseEvent(bytes(tags))).toMatchObject({ ok: false, error: { message: expect.stringMatching(/^data\.tags\.team: /) } });
    const date = parseEvent(bytes({ ...completionEvent(), created_at: 'yesterday' }));
    expect(date.ok || date.error.message).toMatch(/^created_at: /);
  });

  it('refuses a body that is not JSON, not an object, or not UTF-8', () => {
    expect(parseEvent(bytes('{"id":'))).toMatchObject({ ok: false, error: { reason: 'invalid_json' } });
    expect(parseEvent(bytes('[1,2]'))).toMatchObject({ ok: false, error: { reason: 'invalid_event' } });
    expect(parseEvent(Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]))).toEqual({ ok: false, error: { reason: 'invalid_json', message: 'body is not valid UTF-8' } });
  });

  it('does not let __proto__ keys reach any prototype', () => {
    const text = JSON.stringify(completionEvent()).replace('{', '{"__proto__":{"polluted":true},');
    const parsed = parseEvent(bytes(text));
    expect(parsed.ok).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    if (parsed.ok) expect(Object.getPrototypeOf(parsed.value)).toBe(Object.prototype);
  });
});
