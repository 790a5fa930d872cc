import type { Config } from '../config/schema.js';
import type { Breaker } from '../store/types.js';
import { breakerKey } from './breaker.js';
import { cycleVerdict, loopCycles, parseNode, targetNode, type Cycle, type LearnedEdge } from './graph.js';

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
  /** For DELETE /v1/loop-guard/breakers/:key. */
  key: string;
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

export function graphView(config: Pick<Config, 'routes' | 'loop_guard'>, learned: readonly LearnedEdge[], breakers: readonly Pick<Breaker, 'sourcePipeline' | 'target' | 'openUntil'>[]): GraphView {
  const { routes, loop_guard: guard } = config;
  const { graph: g, cycles } = loopCycles(routes, guard, learned);
  const component = new Map<string, number>();
  cycles.forEach((c, i) => c.nodes.forEach((n) => component.set(n, i)));
  const open = new Map(breakers.map((b) => [breakerKey(b.sourcePipeline, b.target), new Date(b.openUntil).toISOString()]));
  const drawn = new Set<string>();

  const edges: ViewEdge[] = g.edges().map((e) => {
    const label = g.edge(e) as { kind: ViewEdge['kind']; route?: string; assumption?: string };
    const from = parseNode(e.v);
    const key = from.kind === 'pipeline' ? breakerKey(from.name, e.w) : undefined;
    const until = key ? open.get(key) : undefined;
    if (until) drawn.add(key!);
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
  const routed = new Set(edges.map((e) => e.route));
  for (const route of routes.filter((r) => !routed.has(r.name))) {
    const id = `match:${route.name}`;
    const to = targetNode(route.target);
    nodes.set(id, { id, kind: 'match', label: matchLabel(route) });
    nodes.set(to, nodes.get(to) ?? nodeOf(to));
    edges.push({ from: id, to, kind: 'route', route: route.name, cycle: false });
  }
  const bound = `lineage (max_depth ${guard.max_depth}) and the breaker (${guard.breaker.max_triggers} triggers per ${guard.breaker.window / 1000}s per pipeline → target)`;
  const boundedBy: Record<ReturnType<typeof cycleVerdict>, (c: Cycle) => string> = {
    refused: (c) => `not allowed by route(s) ${c.refusing.join(', ')} (a learned edge closed it): the next config load refuses it; until then ${bound} bound it`,
    external: () => 'no route of this bridge on it (Planasonix chaining only)',
    allowed: (c) => `allow_cycle on ${c.routes.join(', ')}: bounded by ${bound}`,
  };
  return {
    nodes: [...nodes.values()],
    edges,
    breakers: breakers.map((b) => {
      const key = breakerKey(b.sourcePipeline, b.target);
      return { key, source_pipeline: b.sourcePipeline, target: b.target, open_until: open.get(key)!, drawn: drawn.has(key) };
    }),
    cycles: cycles.map((c) => ({ path: c.path, nodes: c.nodes, bounded_by: boundedBy[cycleVerdict(c)](c) })),
  };
}

function nodeOf(id: string): ViewNode {
  const { kind, name } = parseNode(id);
  return { id, kind, label: name };
}
/** "type=run.succeeded pipeline_name=nightly_*" — what the route listens for. */
function matchLabel(route: Config['routes'][number]): string {
  const tests = route.match.tests.map((t) => `${t.field}=${Array.isArray(t.pattern) ? t.pattern.join('|') : t.pattern}`);
  if (route.match.where) tests.push(`where ${route.match.where.text}`);
  return tests.length > 0 ? tests.join(' ') : 'every event';
}
