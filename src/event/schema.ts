import { z } from 'zod';
import { formatPath } from '../config/env.js';
import { fail, ok, type Result } from '../errors/result.js';

// DESIGN §2: required fields are checked, known optional fields are type-checked, and
// anything else (new fields, unknown types) is kept so it can be stored and routed later.
// Optional fields may be null or (for text) empty: senders emit both for "not set", and a 400
// would make every retry of the completion fail too.
const text = z.string().min(1);
const optionalText = z.string().nullish().transform((v) => (v ? v : undefined));
const optional = <T extends z.ZodType>(schema: T) => schema.nullish().transform((v) => v ?? undefined);

export const eventSchema = z.looseObject({
  id: text,
  type: text,
  created_at: z.iso.datetime({ offset: true }),
  organization_id: optionalText,
  workspace_id: optionalText,
  data: z.looseObject({
    run_id: text,
    pipeline_id: text,
    status: text,
    pipeline_name: optionalText,
    environment: optionalText,
    trigger: optional(
      z.looseObject({
        type: optionalText,
        correlation: optional(z.record(z.string(), z.unknown())),
      }),
    ),
    parameters: optional(z.record(z.string(), z.unknown())),
    tags: optional(z.record(z.string(), z.string())),
    started_at: optional(z.iso.datetime({ offset: true })),
    finished_at: optional(z.iso.datetime({ offset: true })),
    metrics: optional(z.record(z.string(), z.unknown())),
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
