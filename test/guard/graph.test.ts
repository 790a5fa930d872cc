import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { checkLoops, cycleThroughEdge } from '../../src/guard/graph.js';
import { parse } from 'yaml';
import { configSchema } from '../../src/config/schema.js';

const HEAD = `sources: { p: { path: /p, verify: { scheme: hmac-sha256, secrets: [sixteen-chars-secret] } } }
airflow: { default: { url: "http://127.0.0.1:8080", auth: { type: none } } }
`;

/** Parses with the schema only (not parseConfig, which refuses cycles), to look at the report itself. */
function report(yaml: string, learned: { dagId: string; pipelineId: string; pipelineName: string | null }[] = []) {
  const config = configSchema.parse(parse(`${HEAD}${yaml}`));
  return checkLoops(config.routes, config.loop_guard, learned);
}

describe('static loop check', () => {
  it('2-cycle: a route into a DAG that starts the same pipeline is an error that prints the path', () => {
    const r = report(`
routes: [ { name: sales-to-dbt, match: { pipeline_id: pl_a }, trigger: { dag_id: dag_b } } ]
loop_guard: { edges: [ { from: { dag_id: dag_b }, to: { pipeline_id: pl_a } } ] }
`);
    expect(r.errors).toEqual([{ route: 'sales-to-dbt', message: expect.stringContaining('cycle: pl_a --route sales-to-dbt--> dag_b --edge--> pl_a;') }]);
  });

  it('self-loop: Planasonix chaining a pipeline to itself is reported, as no route of the bridge is on it', () => {
    const r = report(`loop_guard: { edges: [ { from: { pipeline_id: pl_a }, to: { pipeline_id: pl_a } } ] }`);
    expect(r.errors).toEqual([]);
    expect(r.warnings).toEqual(['cycle without a route of this bridge (Planasonix chaining only): pl_a --edge--> pl_a']);
  });

  it('3-cycle through a chaining edge', () => {
    const r = report(`
routes: [ { name: a-to-x, match: { pipeline_id: pl_a }, trigger: { dag_id: dag_x } } ]
loop_guard:
  edges:
    - { from: { dag_id: dag_x }, to: { pipeline_id: pl_b } }
    - { from: { pipeline_id: pl_b }, to: { pipeline_id: pl_a } }
`);
    expect(r.errors[0]!.message).toContain('cycle: pl_a --route a-to-x--> dag_x --edge--> pl_b --edge--> pl_a');
  });

  it('glob and name patterns make edges to every pipeline they could match, and say so', () => {
    const r = report(`
routes: [ { name: sales, match: { pipeline_name: "sales_*" }, trigger: { dag_id: dag_s } } ]
loop_guard: { edges: [ { from: { dag_id: dag_s }, to: { pipeline_id: pl_7 } } ] }
`);
    expect(r.errors[0]!.message).toContain('pl_7 --route sales--> dag_s --edge--> pl_7');
    expect(r.errors[0]!.message).toContain('route sales is assumed to match pl_7: its pipeline_name is unknown');
    // Once an event taught the pipeline's name, the pattern is judged exactly.
    const known = report(`
routes: [ { name: sales, match: { pipeline_name: "sales_*" }, trigger: { dag_id: dag_s } } ]
`, [{ dagId: 'dag_s', pipelineId: 'pl_7', pipelineName: 'inventory_hourly' }]);
    expect(known.errors).toEqual([]);
    const globById = report(`
routes: [ { name: any-pl, match: { pipeline_id: "pl_*" }, trigger: { dag_id: dag_s } } ]
`, [{ dagId: 'dag_s', pipelineId: 'pl_7', pipelineName: null }]);
    expect(globById.errors[0]!.message).toContain('pl_7 --route any-pl--> dag_s --learned--> pl_7');
  });

  it('no cycle in a fan-out: one pipeline to several DAGs that start other pipelines', () => {
    const r = report(`
routes:
  - { name: r1, match: { pipeline_id: pl_a }, trigger: { dag_id: d1 } }
  - { name: r2, match: { pipeline_id: pl_a }, trigger: { dag_id: d2 } }
  - { name: r3, match: { pipeline_id: pl_b }, trigger: { dag_id: d3 } }
loop_guard:
  edges:
    - { from: { dag_id: d1 }, to: { pipeline_id: pl_b } }
    - { from: { dag_id: d2 }, to: { pipeline_id: pl_c } }
`);
    expect(r).toEqual({ errors: [], warnings: [] });
  });

  it('a cycle every route allows is a warning bounded by layers 2 and 3', () => {
    const r = report(`
routes: [ { name: loop, allow_cycle: true, match: { pipeline_id: pl_a }, trigger: { dag_id: dag_b } } ]
loop_guard: { max_depth: 4, edges: [ { from: { dag_id: dag_b }, to: { pipeline_id: pl_a } } ] }
`);
    expect(r.errors).toEqual([]);
    expect(r.warnings).toEqual(['cycle allowed by allow_cycle, bounded by lineage (max_depth 4) and the breaker: pl_a --route loop--> dag_b --edge--> pl_a']);
  });

  it('prints, for each refusing route of a component with several cycles, a cycle through that route', () => {
    const r = report(`
routes:
  - { name: r1, match: { pipeline_id: pl_a }, trigger: { dag_id: d1 } }
  - { name: r2, match: { pipeline_id: pl_b }, trigger: { dag_id: d2 } }
loop_guard:
  edges:
    - { from: { dag_id: d1 }, to: { pipeline_id: pl_a } }
    - { from: { dag_id: d1 }, to: { pipeline_id: pl_b } }
    - { from: { dag_id: d2 }, to: { pipeline_id: pl_a } }
`);
    const byRoute = Object.fromEntries(r.errors.map((e) => [e.route, e.message]));
    expect(byRoute.r1).toMatch(/^cycle: pl_a --route r1--> d1 --edge--> pl_a; set allow_cycle: true on every route on it \(r1\)/);
    expect(byRoute.r2).toMatch(/^cycle: pl_b --route r2--> d2 --edge--> pl_a --route r1--> d1 --edge--> pl_b; set allow_cycle: true on every route on it \(r1, r2\)/);
  });

  it('finds the cycle a learned edge closes, and only that one', () => {
    const config = configSchema.parse(parse(`${HEAD}
routes:
  - { name: a, match: { pipeline_id: pl_a }, trigger: { dag_id: dag_b } }
  - { name: c, match: { pipeline_id: pl_c }, trigger: { dag_id: dag_b } }
`));
    expect(cycleThroughEdge(config.routes, config.loop_guard, [{ dagId: 'dag_b', pipelineId: 'pl_c', pipelineName: null }], 'dag_b', 'pl_c')).toBe('dag_b --learned--> pl_c --route c--> dag_b');
    expect(cycleThroughEdge(config.routes, config.loop_guard, [{ dagId: 'dbt', pipelineId: 'pl_1', pipelineName: null }], 'dbt', 'pl_1')).toBeUndefined();
  });

  it('is a config error with the route path at load (check-config, start, reload)', () => {
    const result = parseConfig(`${HEAD}
routes:
  - { name: fine, match: { pipeline_id: pl_z }, trigger: { dag_id: d9 } }
  - { name: sales-to-dbt, match: { pipeline_id: pl_a }, trigger: { dag_id: dag_b } }
loop_guard: { edges: [ { from: { dag_id: dag_b }, to: { pipeline_id: pl_a } } ] }
`, {});
    expect(result.ok || result.problems).toEqual([{ path: 'routes[1]', message: expect.stringMatching(/^cycle: pl_a --route sales-to-dbt--> dag_b --edge--> pl_a; set allow_cycle: true/) }]);
  });
});
