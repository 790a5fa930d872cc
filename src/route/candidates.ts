import picomatch from 'picomatch';
import type { RouteConfig } from '../config/schema.js';
import type { PlanasonixEvent } from '../event/schema.js';
import type { FieldTest, Pattern } from './match.js';

// With a route per pipeline a bridge has hundreds of routes, and testing each one against
// every event made ingest cost grow with the config (1,000 routes: 76 req/s). An event
// meets only the routes that can match it: each route is filed under one of its fields by
// the exact values or the literal prefixes of its patterns, and an event looks up its own
// values there. Routes with no such field (only `where`, a negated glob…) are always tried.

/** Most selective first: a pipeline's id or name tells routes apart, `type` rarely does. */
const PREFERENCE = ['pipeline_id', 'pipeline_name', 'workspace_id', 'organization_id', 'tags.', 'type', 'status', 'environment', 'trigger_type'];
const rank = (field: string) => {
  const i = PREFERENCE.findIndex((p) => (p.endsWith('.') ? field.startsWith(p) : field === p));
  return i === -1 ? PREFERENCE.length : i;
};

type Key = { exact: string } | { prefix: string };

/** The keys a value must hit for the pattern to match it; undefined when some alternative could match anything. */
function keysOf(pattern: Pattern): Key[] | undefined {
  const keys: Key[] = [];
  for (const p of Array.isArray(pattern) ? pattern : [pattern]) {
    if (!picomatch.scan(p).isGlob) {
      keys.push({ exact: p });
      continue;
    }
    const prefix = /^[^*?[\]{}()!+@\\]*/.exec(p)![0];
    if (prefix === '') return undefined;
    keys.push({ prefix });
  }
  return keys;
}

interface FieldIndex {
  read: FieldTest['read'];
  exact: Map<string, number[]>;
  prefix: Map<string, number[]>;
  lengths: number[];
}

export interface RouteIndex {
  /** The routes `event` can match, in config order (so jobs keep their order). */
  candidates(event: PlanasonixEvent): RouteConfig[];
}

const built = new WeakMap<readonly RouteConfig[], RouteIndex>();

/** Built once per config (routes are replaced whole on reload, so the array is the key). */
export function routeIndex(routes: readonly RouteConfig[]): RouteIndex {
  const cached = built.get(routes);
  if (cached) return cached;
  const always: number[] = [];
  const fields = new Map<string, FieldIndex>();
  const add = (map: Map<string, number[]>, key: string, i: number) => {
    const list = map.get(key);
    if (list) list.push(i);
    else map.set(key, [i]);
  };
  routes.forEach((route, i) => {
    const indexable = route.match.tests
      .map((test) => ({ test, keys: keysOf(test.pattern) }))
      .filter((t): t is { test: FieldTest; keys: Key[] } => t.keys !== undefined)
      .sort((a, b) => rank(a.test.field) - rank(b.test.field));
    const best = indexable[0];
    if (!best) return void always.push(i);
    let index = fields.get(best.test.field);
    if (!index) fields.set(best.test.field, (index = { read: best.test.read, exact: new Map(), prefix: new Map(), lengths: [] }));
    for (const key of best.keys) {
      if ('exact' in key) add(index.exact, key.exact, i);
      else {
        add(index.prefix, key.prefix, i);
        if (!index.lengths.includes(key.prefix.length)) index.lengths.push(key.prefix.length);
      }
    }
  });
  const indexes = [...fields.values()];
  const index: RouteIndex = {
    candidates(event) {
      const hits = new Set(always);
      for (const f of indexes) {
        const value = f.read(event);
        if (value === undefined) continue;
        for (const i of f.exact.get(value) ?? []) hits.add(i);
        for (const length of f.lengths) for (const i of f.prefix.get(value.slice(0, length)) ?? []) hits.add(i);
      }
      return [...hits].sort((a, b) => a - b).map((i) => routes[i]!);
    },
  };
  built.set(routes, index);
  return index;
}
