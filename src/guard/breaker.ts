import type { Block } from './lineage.js';

// Layer 3 of the loop guard: per (source pipeline, target) pair, more than `max_triggers`
// within `window` opens a breaker for that pair until the window has passed or an operator
// resets it. The counts live in the store (same transaction as the jobs), this is the rule.

export interface BreakerPolicy {
  maxTriggers: number;
  windowMs: number;
}

export interface PairState {
  /** Triggers (not blocked jobs) for the pair within the window, since the last reset. */
  count: number;
  /** The breaker is open until then (null: closed). */
  openUntil: number | null;
}

export type BreakerVerdict = { block: false } | { block: true; openUntil: number; opened: boolean };

export function breakerVerdict(state: PairState, now: number, policy: BreakerPolicy): BreakerVerdict {
  if (state.openUntil !== null && now < state.openUntil) return { block: true, openUntil: state.openUntil, opened: false };
  if (state.count >= policy.maxTriggers) return { block: true, openUntil: now + policy.windowMs, opened: true };
  return { block: false };
}

/**
 * The breaker's judgement of a new job whose lineage did not already block it; `opened`
 * when this job opens the breaker (the store records it).
 */
export function judgeJob(job: { sourcePipeline: string; target: string; block?: Block; request?: unknown }, state: () => PairState, now: number, policy: BreakerPolicy): { block?: Block; openedUntil?: number } {
  if (job.block || !job.request) return job.block ? { block: job.block } : {};
  const verdict = breakerVerdict(state(), now, policy);
  if (!verdict.block) return {};
  return { block: { reason: 'breaker_open', detail: describeBreaker(job.sourcePipeline, job.target, policy, verdict.openUntil) }, ...(verdict.opened ? { openedUntil: verdict.openUntil } : {}) };
}

export function describeBreaker(source: string, target: string, policy: BreakerPolicy, openUntil: number): string {
  return `more than ${policy.maxTriggers} triggers from ${source} to ${target} within ${policy.windowMs / 1000}s: breaker open until ${new Date(openUntil).toISOString()} (or an operator resets it)`;
}

/** How an operator names a breaker (GET /v1/loop-guard, DELETE …/breakers/:key, the console). */
export const breakerKey = (source: string, target: string) => `${source},${target}`;
