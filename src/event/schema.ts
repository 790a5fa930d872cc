import { z } from 'zod';
import { formatPath } from '../config/env.js';
import { fail, ok, type Result } from '../errors/result.js';

// DESIGN §2: required fields are checked, known optional fields are type-checked, and
// anything else (new fields, unknown types) is kept so it can be stored and routed later.
const text = z.string().min(1);

export const eventSchema = z.looseObject({
  id: text,
  type: text,
  created_at: z.iso.datetime({ offset: true }),
  organization_id: text.optional(),
  workspace_id: text.optional(),
  data: z.looseObject({
    run_id: text,
    pipeline_id: text,
    status: text,
    pipeline_name: text.optional(),
    environment: text.optional(),
    trigger: z
      .looseObject({
        type: text.optional(),
        correlation: z.record(z.string(), z.unknown()).optional(),
      })
      .optional(),
    parameters: z.record(z.string(), z.unknown()).optional(),
    tags: z.record(z.string(), z.string()).optional(),
    started_at: z.iso.datetime({ offset: true }).optional(),
    finished_at: z.iso.datetime({ offset: true }).optional(),
    metrics: z.record(z.string(), z.unknown()).optional(),
  }),
});

export type PlanasonixEvent = z.output<typeof eventSchema>;

export type EventReason = 'invalid_json' | 'invalid_event';

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/** Raw bytes → typed event, once, at the boundary. */
export function parseEvent(body: Uint8Array): Result<PlanasonixEvent, EventReason> {
  let json: unknown;
  try {
    json = JSON.parse(utf8.decode(body));
  } catch (err) {
    const why = err instanceof TypeError ? 'body is not valid UTF-8' : `body is not JSON (${(err as Error).message})`;
    return fail('invalid_json', why);
  }
  const parsed = eventSchema.safeParse(json, { reportInput: true });
  if (parsed.success) return ok(parsed.data);
  const issue = parsed.error.issues[0];
  const where = issue ? formatPath(issue.path) : '(root)';
  const detail = issue?.code === 'invalid_type' && issue.input === undefined ? 'required' : (issue?.message ?? 'invalid');
  return fail('invalid_event', `${where}: ${detail}`);
}
