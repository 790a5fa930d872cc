import type { Config } from '../config/schema.js';
import { parseEvent } from '../event/schema.js';
import { fail, ok, type Result } from '../errors/result.js';
import type { Store } from '../store/types.js';
import { judgeJob } from './breaker.js';
import { buildGraph, findCycles, type LearnedEdge } from './graph.js';
import type { Block, Lineage } from './lineage.js';
import { planEvent } from './plan.js';
import { isAssetRequest } from '../route/route.js';

/** What would happen to an event, route by route — computed exactly as ingest does, stored nowhere. */
export interface Explanation {
  event: { id: string; type: string; pipeline_id: string; pipeline_name: string | null };
  lineage: { incoming: Lineage | null; warning?: string };
  learned_edge: LearnedEdge | null;
  routes: RouteExplanation[];
  would_trigger: number;
}

export interface RouteExplanation {
  route: string;
  matched: boolean;
  /** Why not: the field or expression that failed, with the actual value. */
  reason?: string;
  target?: string;
  dag_run_id?: string;
  conf?: Record<string, unknown>;
  note?: string | null;
  logical_date?: string | null;
  asset?: { uri: string } | { asset_id: number };
  extra?: Record<string, unknown>;
  render_error?: string;
  decision?: 'trigger' | 'blocked' | 'dead';
  block?: Block;
  breaker?: { count: number; max_triggers: number; window_s: number; open_until: string | null } | 'unknown (no store)';
  /** A static cycle this route is on (allowed, or the config would not have loaded). */
  static_cycle?: string;
}

export type ExplainReason = 'invalid_json' | 'invalid_event';

export async function explainEvent(
  body: Uint8Array,
  source: string,
  config: Pick<Config, 'routes' | 'loop_guard'>,
  store: Store | undefined,
  now: number,
): Promise<Result<Explanation, ExplainReason>> {
  const parsed = parseEvent(body);
  if (!parsed.ok) return fail(parsed.error.reason, parsed.error.message);
  const event = parsed.value;
  const plan = planEvent(event, source, config);
  const learned = (await store?.learnedEdges()) ?? [];
  const edge = plan.policy.learnedEdge;
  const cycles = findCycles(buildGraph(config.routes, config.loop_guard, edge ? [...learned, edge] : learned), () => true);
  const { breaker } = plan.policy;

  const routes: RouteExplanation[] = [];
  // Ingest judges the jobs of one event in turn, each counting the ones before it: so here.
  const sentBefore = new Map<string, number>();
  for (const decision of plan.decisions) {
    if (!decision.matched) {
      routes.push({ route: decision.route, matched: false, reason: decision.reason! });
      continue;
    }
    const job = plan.jobs.find((j) => j.route === decision.route)!;
    const cycle = cycles.find((c) => c.routes.includes(job.route));
    const explained: RouteExplanation = { route: job.route, matched: true, target: job.target, ...(cycle ? { static_cycle: cycle.path } : {}) };
    if (!job.request) {
      routes.push({ ...explained, decision: 'dead', render_error: job.error! });
      continue;
    }
    const r = job.request;
    Object.assign(explained, isAssetRequest(r) ? { asset: r.asset, extra: r.extra } : { dag_run_id: r.dag_run_id, conf: r.conf, note: r.note, logical_date: r.logical_date });
    let block = job.block;
    if (store) {
      const pairKey = `${job.sourcePipeline}\u0000${job.target}`;
      const stored = await store.pairState(job.sourcePipeline, job.target, now, breaker.windowMs);
      const state = { ...stored, count: stored.count + (sentBefore.get(pairKey) ?? 0) };
      explained.breaker = { count: state.count, max_triggers: breaker.maxTriggers, window_s: breaker.windowMs / 1000, open_until: state.openUntil && state.openUntil > now ? new Date(state.openUntil).toISOString() : null };
      block = judgeJob(job, () => state, now, breaker).block;
      if (!block) sentBefore.set(pairKey, (sentBefore.get(pairKey) ?? 0) + 1);
    } else {
      explained.breaker = 'unknown (no store)';
    }
    routes.push({ ...explained, decision: block ? 'blocked' : 'trigger', ...(block ? { block } : {}) });
  }
  return ok({
    event: { id: event.id, type: event.type, pipeline_id: event.data.pipeline_id, pipeline_name: event.data.pipeline_name ?? null },
    lineage: { incoming: plan.incoming ?? null, ...(plan.warnings[0] ? { warning: plan.warnings[0] } : {}) },
    learned_edge: edge ?? null,
    routes,
    would_trigger: routes.filter((r) => r.decision === 'trigger').length,
  });
}

/** The CLI's human-readable form. */
export function formatExplanation(x: Explanation): string {
  const lines = [`event ${x.event.id} (${x.event.type}, pipeline ${x.event.pipeline_id}${x.event.pipeline_name ? ` "${x.event.pipeline_name}"` : ''})`];
  const incoming = x.lineage.incoming;
  lines.push(incoming ? `lineage: chain ${incoming.chain_id}, depth ${incoming.depth}, path ${incoming.path.join(' → ')}` : `lineage: none (a new chain starts at depth 1)${x.lineage.warning ? ` — ${x.lineage.warning}` : ''}`);
  if (x.learned_edge) lines.push(`teaches: DAG ${x.learned_edge.dagId} starts pipeline ${x.learned_edge.pipelineId}`);
  for (const r of x.routes) {
    if (!r.matched) {
      lines.push(`  ✗ ${r.route}: no match — ${r.reason}`);
      continue;
    }
    const verdict = r.decision === 'trigger' ? 'would trigger' : r.decision === 'blocked' ? `BLOCKED (${r.block!.reason}): ${r.block!.detail}` : `would fail: ${r.render_error}`;
    lines.push(`  ${r.decision === 'trigger' ? '✓' : '!'} ${r.route} → ${r.target}: ${verdict}`);
    if (r.dag_run_id) lines.push(`      dag_run_id: ${r.dag_run_id}`, `      conf: ${JSON.stringify(r.conf)}`);
    if (r.asset) lines.push(`      asset event: ${JSON.stringify(r.asset)}`, `      extra: ${JSON.stringify(r.extra)}`);
    if (r.note) lines.push(`      note: ${r.note}`);
    if (r.logical_date) lines.push(`      logical_date: ${r.logical_date}`);
    if (r.breaker && typeof r.breaker === 'object') lines.push(`      breaker: ${r.breaker.count}/${r.breaker.max_triggers} in ${r.breaker.window_s}s${r.breaker.open_until ? `, open until ${r.breaker.open_until}` : ''}`);
    if (r.static_cycle) lines.push(`      on an allowed cycle: ${r.static_cycle}`);
  }
  lines.push(`${x.would_trigger} route(s) would trigger; nothing was stored or sent.`);
  return lines.join('\n');
}
