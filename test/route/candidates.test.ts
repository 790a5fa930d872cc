import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseEvent, type PlanasonixEvent } from '../../src/event/schema.js';
import { routeIndex } from '../../src/route/candidates.js';
import { routeEvent } from '../../src/route/route.js';
import { configFrom } from '../helpers/app.js';

const HEAD = `sources: { p: { path: /p, verify: { scheme: hmac-sha256, secrets: [sixteen-chars-secret] } } }
airflow: { default: { url: "http://127.0.0.1:8080", auth: { type: none } } }
`;
const routesOf = (lines: string[]) => configFrom(`${HEAD}routes:\n${lines.join('\n')}`).routes;

// Small alphabets, so generated patterns and values often meet.
const word = fc.constantFrom('a', 'b', 'ab', 'ba', 'a_b', 'pl_1', 'pl_12', 'x');
const pattern = fc.oneof(word, word.map((w) => `${w}*`), word.map((w) => `*${w}`), fc.constant('?b'), fc.array(word, { minLength: 1, maxLength: 3 }), word.map((w) => `!(${w})`));
const field = fc.constantFrom('type', 'pipeline_id', 'pipeline_name', 'environment', 'tags.team');
const route = fc.uniqueArray(fc.tuple(field, pattern), { minLength: 0, maxLength: 3, selector: ([f]) => f });

function event(values: Record<string, string>): PlanasonixEvent {
  const parsed = parseEvent(
    Buffer.from(JSON.stringify({ id: 'e', type: values.type, created_at: '2026-11-24T02:14:09Z', data: { run_id: 'r', pipeline_id: values.pipeline_id, pipeline_name: values.pipeline_name, environment: values.environment, status: 'succeeded', tags: { team: values.team } } })),
  );
  if (!parsed.ok) throw new Error(parsed.error.message);
  return parsed.value;
}

describe('route index', () => {
  it('never rules out a route that matches: the same jobs as testing every route, for any routes and event', () => {
    fc.assert(
      fc.property(fc.array(route, { minLength: 1, maxLength: 8 }), fc.record({ type: word, pipeline_id: word, pipeline_name: word, environment: word, team: word }), (specs, values) => {
        const routes = routesOf(
          specs.map((tests, i) => {
            const fields = tests.filter(([f]) => !f.startsWith('tags.')).map(([f, p]) => `${f}: ${JSON.stringify(p)}`);
            const tags = tests.filter(([f]) => f.startsWith('tags.')).map(([, p]) => `tags: { team: ${JSON.stringify(p)} }`);
            return `  - { name: r${i}, match: { ${[...fields, ...tags].join(', ')} }, trigger: { dag_id: d${i} } }`;
          }),
        );
        const e = event(values);
        const all = routeEvent(e, 'p', routes, 'all');
        const near = routeEvent(e, 'p', routes, 'near-misses');
        expect(near.jobs).toEqual(all.jobs);
        // What it keeps is a subset of the full decisions, matches included.
        for (const d of near.decisions) expect(all.decisions).toContainEqual(d);
        expect(near.decisions.filter((d) => d.matched)).toEqual(all.decisions.filter((d) => d.matched));
      }),
      { numRuns: 400 },
    );
  });

  it('an event meets only the routes filed under its own values: 1,000 routes of other pipelines cost a few lookups', () => {
    const routes = routesOf([
      ...Array.from({ length: 1000 }, (_, i) => `  - { name: r${i}, match: { pipeline_name: "pipe_${i}_*", tags: { team: t${i} } }, trigger: { dag_id: d${i} } }`),
      '  - { name: by-where, match: { where: "true" }, trigger: { dag_id: w } }',
      '  - { name: exact-id, match: { type: run.succeeded, pipeline_id: [pl_1, pl_2] }, trigger: { dag_id: e } }',
    ]);
    const candidates = (values: Record<string, string>) => routeIndex(routes).candidates(event({ type: 'run.succeeded', pipeline_id: 'pl_0', pipeline_name: 'nightly', environment: 'p', team: 't1', ...values })).map((r) => r.name);
    expect(candidates({})).toEqual(['by-where']);
    expect(candidates({ pipeline_name: 'pipe_12_eu' })).toEqual(['r12', 'by-where']);
    expect(candidates({ pipeline_id: 'pl_2' })).toEqual(['by-where', 'exact-id']);
    expect(routeIndex(routes)).toBe(routeIndex(routes));
  });
});
