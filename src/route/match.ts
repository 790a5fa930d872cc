import { Environment } from '@marcbachmann/cel-js';
import picomatch from 'picomatch';
import type { PlanasonixEvent } from '../event/schema.js';

/** A match field: an exact value, a glob, or a list of either (any of). */
export type Pattern = string | string[];

/** Own properties only: a key like "constructor" must not reach Object.prototype. */
export const own = (record: Record<string, string> | undefined, key: string): string | undefined =>
  record !== undefined && Object.hasOwn(record, key) ? record[key] : undefined;

export const MATCH_FIELDS = {
  type: (e: PlanasonixEvent) => e.type,
  pipeline_id: (e: PlanasonixEvent) => e.data.pipeline_id,
  pipeline_name: (e: PlanasonixEvent) => e.data.pipeline_name,
  environment: (e: PlanasonixEvent) => e.data.environment,
  status: (e: PlanasonixEvent) => e.data.status,
  workspace_id: (e: PlanasonixEvent) => e.workspace_id,
  organization_id: (e: PlanasonixEvent) => e.organization_id,
  trigger_type: (e: PlanasonixEvent) => e.data.trigger?.type,
} as const;
export type MatchField = keyof typeof MATCH_FIELDS;

export interface FieldTest {
  /** `pipeline_id` or `tags.team`, as written in the config. */
  field: string;
  read: (e: PlanasonixEvent) => string | undefined;
  pattern: Pattern;
  test: (value: string) => boolean;
}

export function compilePattern(pattern: Pattern): (value: string) => boolean {
  const alternatives = (Array.isArray(pattern) ? pattern : [pattern]).map((p) => {
    if (!picomatch.scan(p).isGlob) return (value: string) => value === p;
    // bash mode: `*` also crosses "/", since these are names, not paths.
    return picomatch(p, { bash: true, dot: true, nobrace: false });
  });
  return (value) => alternatives.some((test) => test(value));
}

export type WhereResult = { ok: true; value: boolean } | { ok: false; message: string };
export type Where = { text: string; evaluate(scope: Record<string, unknown>): WhereResult };

// `where` sees exactly these; an unknown name or function is a config error, not a route
// that silently never matches.
const CEL = new Environment().registerVariable('event', 'dyn').registerVariable('data', 'dyn');

/** CEL, parsed and type-checked at config load. Returns an error message instead of throwing. */
export function compileWhere(text: string): { ok: true; where: Where } | { ok: false; message: string } {
  let program: ReturnType<typeof CEL.parse>;
  try {
    program = CEL.parse(text);
  } catch (err) {
    return { ok: false, message: `not a valid CEL expression: ${(err as Error).message.split('\n')[0]}` };
  }
  const checked = program.check();
  if (!checked.valid) return { ok: false, message: `CEL: ${checked.error?.message.split('\n')[0] ?? 'invalid'} (where sees event and data)` };
  if (checked.type !== 'bool' && checked.type !== 'dyn') return { ok: false, message: `CEL: the expression gives ${checked.type}, not bool` };
  return {
    ok: true,
    where: {
      text,
      evaluate(scope) {
        try {
          const value = program(scope);
          if (typeof value !== 'boolean') return { ok: false, message: `where gave ${typeof value} ${String(value)}, not true or false` };
          return { ok: true, value };
        } catch (err) {
          return { ok: false, message: `where could not be evaluated: ${(err as Error).message.split('\n')[0]}` };
        }
      },
    },
  };
}
