import type { Config } from '../config/schema.js';
import type { PlanasonixEvent } from '../event/schema.js';
import { routeEvent, type RouteDecision } from '../route/route.js';
import type { IngestPolicy } from '../store/types.js';
import { applyLineage, readLineage, type GuardedJob, type Lineage } from './lineage.js';
import { notifierFor } from '../notify/notifier.js';

export interface Plan {
  decisions: RouteDecision[];
  jobs: GuardedJob[];
  /** What the store applies in the ingest transaction: breaker and learned edge. */
  policy: IngestPolicy;
  incoming?: Lineage;
  /** e.g. lineage present but unreadable: logged, never fatal. */
  warnings: string[];
}

/** route → guard (lineage); the breaker is judged by the store in the same transaction. */
export function planEvent(event: PlanasonixEvent, source: string, config: Pick<Config, 'routes' | 'loop_guard'> & Partial<Pick<Config, 'notify'>>, decide: 'all' | 'near-misses' = 'all'): Plan {
  const routed = routeEvent(event, source, config.routes, decide);
  const { lineage, warning } = readLineage(event);
  const jobs = applyLineage(event, routed.jobs, lineage, { maxDepth: config.loop_guard.max_depth });
  // An event whose run a DAG started teaches the DAG → pipeline edge.
  const dagId = event.data.trigger?.correlation?.dag_id;
  const learnedEdge = typeof dagId === 'string' && dagId !== '' ? { dagId, pipelineId: event.data.pipeline_id, pipelineName: event.data.pipeline_name ?? null } : undefined;
  // A breaker opened in the ingest transaction is notified from it (DESIGN §8).
  const notify = config.notify ? notifierFor({ notify: config.notify }) : undefined;
  return {
    decisions: routed.decisions,
    jobs,
    policy: { breaker: { maxTriggers: config.loop_guard.breaker.max_triggers, windowMs: config.loop_guard.breaker.window }, ...(learnedEdge ? { learnedEdge } : {}), ...(notify ? { notify } : {}) },
    ...(lineage ? { incoming: lineage } : {}),
    warnings: warning ? [warning] : [],
  };
}
