import { alg, Graph, type Edge } from '@dagrejs/graphlib';
import type { Config } from '../config/schema.js';

// Layer 1 of the loop guard: the orchestration graph and its cycles.
//
// Nodes are concrete pipelines (`planasonix:<pipeline_id>`) and DAGs (`airflow:<dag_id>`).
// Routes match *patterns*, so a route becomes an edge from every known pipeline its pattern
// could match. Only pipelines that some edge leads into can be on a cycle, so the pipelines
// named by declared and learned edges are all the graph needs.

export interface LearnedEdge {
  dagId: string;
  pipelineId: string;
  pipelineName: string | null;
}

type EdgeKind = 'route' | 'edge' | 'learned';

interface EdgeLabel {
  kind: EdgeKind;
  route?: string;
  /** Why this route edge is an assumption rather than a certainty. */
  assumption?: string;
}

export interface Cycle {
  /** `pl_a --route sales-to-dbt--> dag_b --edge--> pl_a` */
  path: string;
  nodes: string[];
  /** Routes on the printed path. */
  routes: string[];
  /** Routes in the cycle's component that do not set allow_cycle. */
  refusing: string[];
  /** Route edges in the component that exist only because a pattern could match. */
  assumptions: string[];
  /** For every route in the component, a cycle through that route's own edge. */
  byRoute: Record<string, string>;
}

export const pipelineNode = (id: string) => `planasonix:${id}`;
export const dagNode = (id: string) => `airflow:${id}`;

/** The other way: a node's kind and its own name (a pipeline id, a DAG id, an asset). */
export function parseNode(node: string): { kind: 'pipeline' | 'dag' | 'asset'; name: string } {
  const colon = node.indexOf(':');
  const prefix = node.slice(0, colon);
  return { kind: prefix === 'planasonix' ? 'pipeline' : prefix === 'airflow' ? 'dag' : 'asset', name: node.slice(colon + 1) };
}

/** A route's target as a node: its DAG, or its asset (by uri template text or id). */
export const targetNode = (t: Config['routes'][number]['target']) =>
  t.kind === 'dag_run' ? dagNode(t.dag_id) : `asset:${t.asset_id ?? t.uri!.text}`;

type Routes = Config['routes'];
type Guard = Config['loop_guard'];

export function buildGraph(routes: Routes, guard: Guard, learned: readonly LearnedEdge[]): Graph {
  const g = new Graph({ directed: true, multigraph: true });
  const names = new Map<string, string | null>();
  const addEdge = (from: string, to: string, label: EdgeLabel) => g.setEdge(from, to, label, `${label.kind}:${label.route ?? ''}`);

  for (const edge of guard.edges) {
    const from = 'dag_id' in edge.from ? dagNode(edge.from.dag_id) : pipelineNode(edge.from.pipeline_id);
    addEdge(from, pipelineNode(edge.to.pipeline_id), { kind: 'edge' });
    names.set(edge.to.pipeline_id, names.get(edge.to.pipeline_id) ?? null);
    if ('pipeline_id' in edge.from) names.set(edge.from.pipeline_id, names.get(edge.from.pipeline_id) ?? null);
  }
  for (const edge of learned) {
    addEdge(dagNode(edge.dagId), pipelineNode(edge.pipelineId), { kind: 'learned' });
    names.set(edge.pipelineId, edge.pipelineName ?? names.get(edge.pipelineId) ?? null);
  }
  for (const route of routes) {
    for (const [id, name] of names) {
      const verdict = couldMatch(route, id, name);
      if (verdict.matches) addEdge(pipelineNode(id), targetNode(route.target), { kind: 'route', route: route.name, ...(verdict.assumption ? { assumption: verdict.assumption } : {}) });
    }
  }
  return g;
}

/** Whether a route could fire for a pipeline; when only assumed, says why. */
function couldMatch(route: Routes[number], id: string, name: string | null): { matches: boolean; assumption?: string } {
  const byId = route.match.tests.find((t) => t.field === 'pipeline_id');
  const byName = route.match.tests.find((t) => t.field === 'pipeline_name');
  if (byId && !byId.test(id)) return { matches: false };
  if (byName) {
    if (name !== null) return byName.test(name) ? { matches: true } : { matches: false };
    if (!byId) return { matches: true, assumption: `route ${route.name} is assumed to match ${id}: its pipeline_name is unknown until an event from it arrives` };
  }
  if (!byId && !byName) return { matches: true, assumption: `route ${route.name} names no pipeline, so it is assumed to match ${id}` };
  return { matches: true };
}

export function findCycles(g: Graph, allowCycle: (route: string) => boolean): Cycle[] {
  const cycles: Cycle[] = [];
  for (const component of alg.tarjan(g).map((c) => [...c].sort())) {
    const members = new Set(component);
    const inside = g.edges().filter((e) => members.has(e.v) && members.has(e.w));
    if (component.length === 1 && !inside.some((e) => e.v === e.w)) continue;
    const labels = inside.map((e) => ({ e, label: g.edge(e) as EdgeLabel }));
    const routeEdges = labels.filter((l) => l.label.kind === 'route');
    const refusing = [...new Set(routeEdges.filter((l) => !allowCycle(l.label.route!)).map((l) => l.label.route!))].sort();
    // Print a cycle through the first refusing route (the one to fix), else through any edge.
    const through = routeEdges.find((l) => refusing.includes(l.label.route!)) ?? routeEdges[0] ?? labels[0]!;
    const steps = cycleThrough(g, members, through.e);
    const byRoute: Record<string, string> = {};
    for (const { e, label } of routeEdges) byRoute[label.route!] ??= describe(g, cycleThrough(g, members, e));
    cycles.push({
      byRoute,
      path: describe(g, steps),
      nodes: component,
      routes: [...new Set(steps.map((e) => (g.edge(e) as EdgeLabel).route).filter((r): r is string => r !== undefined))],
      refusing,
      assumptions: [...new Set(routeEdges.map((l) => l.label.assumption).filter((a): a is string => a !== undefined))],
    });
  }
  return cycles;
}

/** The shortest way back from the edge's head to its tail, inside the component. */
function cycleThrough(g: Graph, members: Set<string>, first: Edge): Edge[] {
  const back = new Map<string, Edge>();
  const queue = [first.w];
  const seen = new Set([first.w]);
  while (queue.length > 0 && !seen.has(first.v)) {
    const node = queue.shift()!;
    for (const e of (g.outEdges(node) ?? []).sort((a, b) => (a.w < b.w ? -1 : 1))) {
      if (!members.has(e.w) || seen.has(e.w)) continue;
      seen.add(e.w);
      back.set(e.w, e);
      queue.push(e.w);
    }
  }
  const path: Edge[] = [];
  for (let node = first.v; node !== first.w; ) {
    const e = back.get(node)!;
    path.unshift(e);
    node = e.v;
  }
  return [first, ...path];
}

function describe(g: Graph, steps: Edge[]): string {
  const short = (node: string) => node.replace(/^(planasonix|airflow):/, ''); // assets keep their "asset:"
  let out = short(steps[0]!.v);
  for (const e of steps) {
    const label = g.edge(e) as EdgeLabel;
    out += ` --${label.kind === 'route' ? `route ${label.route}` : label.kind}--> ${short(e.w)}`;
  }
  return out;
}

/** A cycle through a DAG → pipeline edge (just learned), if the pipeline leads back to the DAG. */
export function cycleThroughEdge(routes: Routes, guard: Guard, learned: readonly LearnedEdge[], dagId: string, pipelineId: string): string | undefined {
  const g = buildGraph(routes, guard, learned);
  const edge = (g.outEdges(dagNode(dagId), pipelineNode(pipelineId)) ?? [])[0];
  if (!edge) return undefined;
  const component = alg.tarjan(g).find((c) => c.includes(edge.v) && c.includes(edge.w));
  return component ? describe(g, cycleThrough(g, new Set(component), edge)) : undefined;
}

export interface LoopReport {
  /** Cycles with a route that does not allow them: the config is refused. */
  errors: { route: string; message: string }[];
  /** Cycles every route on allows (bounded by lineage and breaker), or with no route at all. */
  warnings: string[];
}

/** The graph and its cycles, each route's allow_cycle applied: what the guard judges. */
export function loopCycles(routes: Routes, guard: Guard, learned: readonly LearnedEdge[]): { graph: Graph; cycles: Cycle[] } {
  const allowed = new Map(routes.map((r) => [r.name, r.allow_cycle]));
  const graph = buildGraph(routes, guard, learned);
  return { graph, cycles: findCycles(graph, (r) => allowed.get(r) ?? false) };
}

/**
 * refused: a route on it does not allow it (the config is refused); external: only
 * Planasonix's own chaining, no route of this bridge; allowed: lineage and the breaker bound it.
 */
export function cycleVerdict(cycle: Cycle): 'refused' | 'external' | 'allowed' {
  if (cycle.refusing.length > 0) return 'refused';
  return cycle.routes.length === 0 && !cycle.nodes.some((n) => n.startsWith('airflow:')) ? 'external' : 'allowed';
}

export function checkLoops(routes: Routes, guard: Guard, learned: readonly LearnedEdge[] = []): LoopReport {
  const report: LoopReport = { errors: [], warnings: [] };
  for (const cycle of loopCycles(routes, guard, learned).cycles) {
    const assumed = cycle.assumptions.length > 0 ? ` (${cycle.assumptions.join('; ')})` : '';
    const verdict = cycleVerdict(cycle);
    if (verdict === 'refused') {
      for (const route of cycle.refusing) {
        const path = cycle.byRoute[route]!;
        const onIt = cycle.refusing.filter((r) => path.includes(`--route ${r}-->`));
        report.errors.push({ route, message: `cycle: ${path}; set allow_cycle: true on every route on it (${onIt.join(', ')}) to let lineage and the breaker bound it${assumed}` });
      }
    } else if (verdict === 'external') {
      report.warnings.push(`cycle without a route of this bridge (Planasonix chaining only): ${cycle.path}`);
    } else {
      report.warnings.push(`cycle allowed by allow_cycle, bounded by lineage (max_depth ${guard.max_depth}) and the breaker: ${cycle.path}${assumed}`);
    }
  }
  return report;
}
