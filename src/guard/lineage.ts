import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { PlanasonixEvent } from '../event/schema.js';
import { isAssetRequest, type PlannedJob } from '../route/route.js';
import { pipelineNode } from './graph.js';

// Layer 2 of the loop guard. Every DAG run the bridge starts carries
// `conf.planasonix_bridge`; a DAG that starts Planasonix forwards it, and the completion
// event brings it back. A trigger whose target is already on the path, or that would go
// deeper than max_depth, is blocked.

const lineageSchema = z.object({
  chain_id: z.string().min(1).max(200),
  depth: z.number().int().min(1),
  path: z.array(z.string().min(1).max(300)).max(1000),
  event_id: z.string(),
  route: z.string(),
});

export type Lineage = z.output<typeof lineageSchema>;

export type BlockReason = 'cycle' | 'max_depth' | 'breaker_open';

export interface Block {
  reason: BlockReason;
  detail: string;
}

/** A planned job with what the loop guard decided for it. */
export interface GuardedJob extends PlannedJob {
  sourcePipeline: string;
  /** `airflow:<dag_id>` */
  target: string;
  lineage: Lineage;
  block?: Block;
}

const LOCATIONS = [
  ['data.parameters.planasonix_bridge', (e: PlanasonixEvent) => e.data.parameters?.planasonix_bridge],
  ['data.trigger.correlation.planasonix_bridge', (e: PlanasonixEvent) => e.data.trigger?.correlation?.planasonix_bridge],
] as const;

/** The lineage an event carries back, if any. Junk is reported, never fatal. */
export function readLineage(event: PlanasonixEvent): { lineage?: Lineage; warning?: string } {
  let warning: string | undefined;
  for (const [where, read] of LOCATIONS) {
    let value = read(event);
    // Operators often forward it as a JSON string (Jinja's tojson), sometimes as an object;
    // a run the bridge did not start forwards null, which tojson renders as "null".
    if (typeof value === 'string') {
      try {
        value = JSON.parse(value);
      } catch {
        warning ??= `${where} is not JSON; lineage ignored`;
        continue;
      }
    }
    if (value === undefined || value === null || value === '') continue;
    const parsed = lineageSchema.safeParse(value);
    if (parsed.success) return { lineage: parsed.data };
    const issue = parsed.error.issues[0];
    warning ??= `${where} is not bridge lineage (${issue?.path.join('.') || 'value'}: ${issue?.message}); lineage ignored`;
  }
  return warning ? { warning } : {};
}

export interface LineageOptions {
  maxDepth: number;
  newChainId?: () => string;
}

/** Adds lineage to each job (and to its conf), blocking the ones that would loop or go too deep. */
export function applyLineage(event: PlanasonixEvent, jobs: readonly PlannedJob[], incoming: Lineage | undefined, options: LineageOptions): GuardedJob[] {
  const newChainId = options.newChainId ?? randomUUID;
  const source = pipelineNode(event.data.pipeline_id);
  // One chain per event: fan-out triggers share it.
  const chainId = incoming?.chain_id ?? newChainId();
  const before = incoming ? (incoming.path.at(-1) === source ? incoming.path : [...incoming.path, source]) : [source];
  const depth = (incoming?.depth ?? 0) + 1;

  return jobs.map((job) => {
    const target = job.target;
    const lineage: Lineage = { chain_id: chainId, depth, path: [...before, target], event_id: event.id, route: job.route };
    let block: Block | undefined;
    if (before.includes(target)) {
      block = { reason: 'cycle', detail: `${target} is already on this chain's path: ${[...before, target].join(' → ')}` };
    } else if (depth > options.maxDepth) {
      block = { reason: 'max_depth', detail: `depth ${depth} would pass loop_guard.max_depth ${options.maxDepth}: ${[...before, target].join(' → ')}` };
    }
    // DAG runs carry it in conf, asset events in extra.
    const r = job.request;
    const request = !r ? undefined : isAssetRequest(r) ? { ...r, extra: { ...r.extra, planasonix_bridge: lineage } } : { ...r, conf: { ...r.conf, planasonix_bridge: lineage } };
    return { ...job, ...(request ? { request } : {}), sourcePipeline: event.data.pipeline_id, target, lineage, ...(block ? { block } : {}) };
  });
}
