import { collectDefaultMetrics, Counter, Registry } from 'prom-client';

/** One registry per bridge (not prom-client's global), so tests and replicas do not share counts. */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    triggersBlocked: new Counter({ name: 'bridge_triggers_blocked_total', help: 'Trigger jobs refused by the loop guard', labelNames: ['reason'] as const, registers: [registry] }),
    learnedCycles: new Counter({ name: 'bridge_loop_learned_cycles_total', help: 'Learned DAG → pipeline edges that closed a cycle', registers: [registry] }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
