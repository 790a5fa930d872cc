import type { Config } from '../config/schema.js';
import { buildGraph, findCycles, targetNode, type LearnedEdge } from './graph.js';

// The orchestration graph as the console draws it: the loop guard's own graph (so what is
// red on screen is exactly what the guard reasons about), plus one "match" node per route
// whose pattern names no pipeline the guard knows, so that every route has an arrow.

export type NodeKind = 'pipeline' | 'dag' | 'asset' | 'match';

export interface ViewNode {
  id: string;
  kind: NodeKind;
  label: string;
}

export interface ViewEdge {
  from: string;
  to: string;
  kind: 'route' | 'edge' | 'learned';
  route?: string;
  assumption?: string;
  /** On a cycle (both ends in one strongly connected component). */
  cycle: boolean;
  /** Set when the loop-guard breaker of this pipeline → target pair is open. */
  breaker_open_until?: string;
}

export interface ViewCycle {
  path: string;
  nodes: string[];
  /** What bounds it: allow_cycle with lineage and breaker, or why the config would be refused. */
  bounded_by: string;
}

export interface ViewBreaker {
  source_pipeline: string;
  target: string;
  open_until: string;
  /** Whether an arrow shows it (a rendered asset uri, or a pipeline only a pattern names, has none). */
  drawn: boolean;
}

export interface GraphView {
  nodes: ViewNode[];
  edges: ViewEdge[];
  cycles: ViewCycle[];
  /** Every open breaker, drawn or not. */
  breakers: ViewBreaker[];
}

export interface OpenBreaker {
  sourcePipeline: string;
  target: string;
  openUntil: number;
}

export function graphView(config: Pick<Config, 'routes' | 'loop_guard'>, learned: readonly LearnedEdge[], breakers: readonly OpenBreaker[]): GraphView {
  const { routes, loop_guard: guard } = config;
  const g = buildGraph(routes, guard, learned);
  const allowed = new Map(routes.map((r) => [r.name, r.allow_cycle]));
  const cycles = findCycles(g, (r) => allowed.get(r) ?? false);
  const component = new Map<string, number>();
  cycles.forEach((c, i) => c.nodes.forEach((n) => component.set(n, i)));
  const breakerBound = `the breaker (${guard.breaker.max_triggers} triggers per ${guard.breaker.window / 1000}s per pipeline → target)`;
  const openUntil = new Map(breakers.map((b) => [`${b.sourcePipeline}\n${b.target}`, new Date(b.openUntil).toISOString()]));

  const edges: ViewEdge[] = g.edges().map((e) => {
    const label = g.edge(e) as { kind: ViewEdge['kind']; route?: string; assumption?: string };
    const until = e.v.startsWith('planasonix:') ? openUntil.get(`${e.v.slice('planasonix:'.length)}\n${e.w}`) : undefined;
    return {
      from: e.v,
      to: e.w,
      kind: label.kind,
      ...(label.route ? { route: label.route } : {}),
      ...(label.assumption ? { assumption: label.assumption } : {}),
      cycle: component.has(e.v) && component.get(e.v) === component.get(e.w),
      ...(until ? { breaker_open_until: until } : {}),
    };
  });
  const nodes = new Map<string, ViewNode>(g.nodes().map((id) => [id, nodeOf(id)]));
  for (const route of routes) {
    if (edges.some((e) => e.kind === 'route' && e.route === route.name)) continue;
    const id = `match:${route.name}`;
    const to = targetNode(route.target);
    nodes.set(id, { id, kind: 'match', label: matchLabel(route) });
    nodes.set(to, nodes.get(to) ?? nodeOf(to));
    edges.push({ from: id, to, kind: 'route', route: route.name, cycle: false });
  }
  const drawn = new Set(edges.filter((e) => e.breaker_open_until).map((e) => `${e.from.slice('planasonix:'.length)}\n${e.to}`));
  return {
    nodes: [...nodes.values()],
    edges,
    breakers: breakers.map((b) => ({ source_pipeline: b.sourcePipeline, target: b.target, open_until: new Date(b.openUntil).toISOString(), drawn: drawn.has(`${b.sourcePipeline}\n${b.target}`) })),
    cycles: cycles.map((c) => ({
      path: c.path,
      nodes: c.nodes,
      bounded_by:
        c.refusing.length > 0
          ? `not allowed by route(s) ${c.refusing.join(', ')} (a learned edge closed it): the next config load refuses it; until then lineage (max_depth ${guard.max_depth}) and ${breakerBound} bound it`
          : c.routes.length === 0
            ? 'no route of this bridge on it (Planasonix chaining only)'
            : `allow_cycle on ${c.routes.join(', ')}: bounded by lineage (max_depth ${guard.max_depth}) and ${breakerBound}`,
    })),
  };
}

function nodeOf(id: string): ViewNode {
  const colon = id.indexOf(':');
  const prefix = id.slice(0, colon);
  const kind: NodeKind = prefix === 'planasonix' ? 'pipeline' : prefix === 'airflow' ? 'dag' : 'asset';
  return { id, kind, label: id.slice(colon + 1) };
}

/** "type=run.succeeded pipeline_name=nightly_*" — what the route listens for. */
function matchLabel(route: Config['routes'][number]): string {
  const tests = route.match.tests.map((t) => `${t.field}=${Array.isArray(t.pattern) ? t.pattern.join('|') : t.pattern}`);
  if (route.match.where) tests.push(`where ${route.match.where.text}`);
  return tests.length > 0 ? tests.join(' ') : 'every event';
}
