import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** One registry per bridge (not prom-client's global), so tests and replicas do not share counts. */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    registry,
    webhooksReceived: new Counter({ name: 'bridge_webhooks_received_total', help: 'Webhook requests by source and outcome (accepted, duplicate or the rejection reason)', labelNames: ['source', 'outcome'] as const, registers }),
    webhooksRejected: new Counter({ name: 'bridge_webhook_rejected_total', help: 'Rejected webhook requests by reason', labelNames: ['reason'] as const, registers }),
    triggers: new Counter({ name: 'bridge_triggers_total', help: 'Trigger jobs settled or created, by route and outcome (triggered, exists, dead, blocked)', labelNames: ['route', 'outcome'] as const, registers }),
    attempts: new Counter({ name: 'bridge_trigger_attempts_total', help: 'Requests to Airflow by instance and status class (2xx, 4xx, 5xx, network)', labelNames: ['airflow', 'status_class'] as const, registers }),
    dispatchLatency: new Histogram({
      name: 'bridge_dispatch_latency_seconds',
      help: 'From the webhook received to Airflow accepting the run',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800],
      registers,
    }),
    queueDepth: new Gauge({ name: 'bridge_queue_depth', help: 'Trigger jobs by state', labelNames: ['state'] as const, registers }),
    circuitOpen: new Gauge({ name: 'bridge_airflow_circuit_open', help: '1 while the circuit to an Airflow instance is open', labelNames: ['airflow'] as const, registers }),
    triggersBlocked: new Counter({ name: 'bridge_triggers_blocked_total', help: 'Trigger jobs refused by the loop guard', labelNames: ['reason'] as const, registers }),
    learnedCycles: new Counter({ name: 'bridge_loop_learned_cycles_total', help: 'Learned DAG → pipeline edges that closed a cycle', registers }),
    dagRunsFinished: new Counter({ name: 'bridge_dag_runs_finished_total', help: 'Triggered DAG runs seen to their end, by route and state (success, failed, missing)', labelNames: ['route', 'state'] as const, registers }),
    loadToRunEnd: new Histogram({
      name: 'bridge_load_to_run_end_seconds',
      help: "From the Planasonix run's end (data.finished_at, else the webhook's receipt) to the end of the DAG run it triggered",
      buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400],
      registers,
    }),
    slaMissed: new Counter({ name: 'bridge_sla_missed_total', help: "Triggered DAG runs that missed their route's expect (kind: started, finished)", labelNames: ['route', 'kind'] as const, registers }),
    notifications: new Counter({ name: 'bridge_notifications_total', help: 'Outbound notification attempts settled, by target, type and outcome (delivered, retried, dead)', labelNames: ['target', 'type', 'outcome'] as const, registers }),
    reloads: new Counter({ name: 'bridge_config_reloads_total', help: 'Config reloads by outcome (applied, refused)', labelNames: ['outcome'] as const, registers }),
    // Set at each scrape (beforeScrape), for alerting: see deploy/prometheus/alerts.yaml.
    airflowUp: new Gauge({ name: 'bridge_airflow_up', help: '1 when the last health probe (shared, cached 3 s) reached the Airflow instance', labelNames: ['airflow'] as const, registers }),
    ready: new Gauge({ name: 'bridge_ready', help: '1 when the store can commit a write now (what /readyz checks)', registers }),
    oldestPendingAge: new Gauge({ name: 'bridge_oldest_pending_age_seconds', help: 'Age of the oldest pending trigger job since it was created (0 when none is pending)', registers }),
    breakersOpen: new Gauge({ name: 'bridge_breakers_open', help: 'Loop-guard breakers open now', registers }),
    // Data lifecycle (README "Retention and storage size").
    storeBytes: new Gauge({ name: 'bridge_store_bytes', help: 'Size of the store: SQLite page_count × page_size; PostgreSQL pg_total_relation_size of the bridge tables', registers }),
    storeRows: new Gauge({ name: 'bridge_store_rows', help: 'Rows per table (PostgreSQL: the planner estimate pg_class.reltuples)', labelNames: ['table'] as const, registers }),
    prunedRows: new Counter({ name: 'bridge_pruned_rows_total', help: 'Rows deleted by retention, per table (dedupe_keys: expired delivery ids)', labelNames: ['table'] as const, registers }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

export function statusClass(status: number | null): string {
  return status === null ? 'network' : `${Math.floor(status / 100)}xx`;
}
