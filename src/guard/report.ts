import type { Config } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import type { Inserted, Store } from '../store/types.js';
import { cycleThroughEdge } from './graph.js';
import type { Plan } from './plan.js';

export interface GuardReportDeps {
  store: Store;
  config: Pick<Config, 'routes' | 'loop_guard'>;
  /** Called only when there is something to log: a request's child logger costs its making. */
  logger: () => Logger;
  metrics: Metrics;
}

/**
 * After the commit: one warn line and a count per blocked job, and a cycle check when an edge
 * was learned. Why an event matched no route is on its access-log line (`why_not`).
 */
export async function reportGuard(plan: Plan, inserted: Inserted, eventId: string, deps: GuardReportDeps): Promise<void> {
  for (const warning of plan.warnings) deps.logger().warn({ event_id: eventId }, warning);
  for (const job of inserted.jobs) {
    if (!job.block) continue;
    const planned = plan.jobs.find((j) => j.route === job.route);
    deps.metrics.triggersBlocked.inc({ reason: job.block.reason });
    deps.metrics.triggers.inc({ route: job.route, outcome: 'blocked' });
    deps.logger().warn(
      { event_id: eventId, route: job.route, target: planned?.target, reason: job.block.reason, chain_id: planned?.lineage.chain_id, depth: planned?.lineage.depth },
      `trigger blocked by the loop guard (${job.block.reason}): ${job.block.detail}`,
    );
  }
  const edge = plan.policy.learnedEdge;
  if (!inserted.newLearnedEdge || !edge) return;
  deps.logger().info({ event_id: eventId, dag_id: edge.dagId, pipeline_id: edge.pipelineId }, `learned edge: DAG ${edge.dagId} starts pipeline ${edge.pipelineId}`);
  const cycle = cycleThroughEdge(deps.config.routes, deps.config.loop_guard, await deps.store.learnedEdges(), edge.dagId, edge.pipelineId);
  if (cycle === undefined) return;
  deps.metrics.learnedCycles.inc();
  deps.logger().warn({ event_id: eventId, dag_id: edge.dagId, pipeline_id: edge.pipelineId }, `a learned edge closes a cycle; lineage and the breaker judge its triggers: ${cycle}`);
}
