import { randomUUID } from 'node:crypto';
import type { Config } from '../config/schema.js';
import type { AirflowClient } from '../dispatch/airflow.js';
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import type { Store } from '../store/types.js';
import { listRuns } from './list.js';
import { notifierFor } from '../notify/notifier.js';
import { judgeRun, type RunChange, type RunObservation, type TrackedRun } from './run.js';

export interface TrackerDeps {
  store: Store;
  config: () => Config;
  clients: () => ReadonlyMap<string, AirflowClient>;
  logger: Logger;
  metrics?: Metrics;
  clock?: () => number;
  /** Tracking lease owner; one per process, so a replica keeps the runs it follows. */
  owner?: string;
  /** Told of every recorded change, after its commit (the seam for notifications). */
  onChanges?: (changes: readonly RunChange[]) => void;
}

export interface Tracker {
  start(): void;
  stop(): Promise<void>;
  /** One round for an instance now (tests; a round normally runs every `track.interval`). */
  round(airflow: string): Promise<void>;
  /** Records observations that did not come from a round (the plugin's push). */
  record(airflow: string, observations: readonly RunObservation[]): Promise<RunChange[]>;
  /** List requests sent to Airflow, per instance, since start (for tests and the bench). */
  requests(airflow: string): number;
}

/** At most this many runs per instance per round; more wait for the next round. */
const CLAIM_LIMIT = 5000;

/**
 * Follows each triggered DAG run to its end (DESIGN §7): per Airflow instance, every
 * `track.interval`, claim the open runs (a lease per process, so replicas split them and a
 * dead replica's runs are taken over when its leases run out), ask Airflow for all of them
 * in one list request, and record states, SLA marks and the end of tracking in one
 * transaction.
 */
export function createTracker(deps: TrackerDeps): Tracker {
  const clock = deps.clock ?? Date.now;
  const owner = deps.owner ?? `tracker-${randomUUID()}`;
  const log = deps.logger.child({ component: 'track' });
  const last = new Map<string, number>();
  const busy = new Map<string, Promise<void>>();
  const sent = new Map<string, number>();
  const failing = new Set<string>();
  let timer: NodeJS.Timeout | undefined;
  let stopped = true;

  const judge = (now: number, horizon: number) => (run: TrackedRun, observation: RunObservation) => {
    const route = deps.config().routes.find((r) => r.name === run.route);
    return judgeRun(run, observation, route?.expect, now, horizon);
  };

  async function record(airflow: string, observations: readonly RunObservation[]): Promise<RunChange[]> {
    const instance = deps.config().airflow[airflow];
    const now = clock();
    const horizon = instance && instance.track !== false ? instance.track.horizon : 0;
    const changes = await deps.store.recordRuns(airflow, observations, judge(now, horizon), now, notifierFor(deps.config()));
    for (const change of changes) await report(change);
    if (changes.length > 0) deps.onChanges?.(changes);
    return changes;
  }

  async function report({ run, finished, slaMissed }: RunChange): Promise<void> {
    const ctx = { event_id: run.eventId, job_id: run.jobId, route: run.route, airflow: run.airflow, dag_id: run.dagId, dag_run_id: run.dagRunId, run_state: run.state };
    if (finished) {
      const duration = run.startDate !== null && run.endDate !== null ? (run.endDate - run.startDate) / 1000 : null;
      deps.metrics?.dagRunsFinished.inc({ route: run.route, state: run.state ?? 'unknown' });
      if (run.endDate !== null) deps.metrics?.loadToRunEnd.observe(Math.max(0, run.endDate - (await loadFinishedAt(run))) / 1000);
      (run.state === 'success' ? log.info.bind(log) : log.warn.bind(log))({ ...ctx, duration_s: duration }, run.state === 'missing' ? 'DAG run no longer in Airflow' : `DAG run ${run.state}`);
    }
    if (slaMissed) {
      deps.metrics?.slaMissed.inc({ route: run.route, kind: slaMissed });
      log.warn({ ...ctx, sla_missed: slaMissed }, `DAG run missed its SLA: not ${slaMissed} in time`);
    }
  }

  /** Planasonix's own end of the load (`data.finished_at`), else when the bridge received it. */
  async function loadFinishedAt(run: TrackedRun): Promise<number> {
    const event = await deps.store.getEvent(run.eventId).catch(() => undefined);
    try {
      const at = Date.parse((JSON.parse(event?.body.toString('utf8') ?? '{}') as { data?: { finished_at?: string } }).data?.finished_at ?? '');
      if (Number.isFinite(at)) return at;
    } catch {
      // an unreadable body: fall back to receipt
    }
    return run.receivedAt;
  }

  async function round(airflow: string): Promise<void> {
    const instance = deps.config().airflow[airflow];
    const client = deps.clients().get(airflow);
    if (!instance || instance.track === false || !client) return;
    const now = clock();
    const runs = await deps.store.claimRuns({ airflow, now, limit: CLAIM_LIMIT, leaseMs: 3 * instance.track.interval, owner });
    if (runs.length === 0) return;
    const listed = await listRuns(client, instance.api, runs, AbortSignal.timeout(3 * instance.timeout));
    sent.set(airflow, (sent.get(airflow) ?? 0) + listed.requests);
    if (!listed.ok) {
      if (!failing.has(airflow)) log.warn({ airflow, runs: runs.length, detail: listed.detail }, 'cannot list DAG runs; tracking retries next round (SLA clocks keep running)');
      failing.add(airflow);
    } else if (failing.delete(airflow)) log.info({ airflow }, 'listing DAG runs works again');
    // Without an answer, what is known is judged again: SLA marks and the horizon need no Airflow.
    const observations = listed.ok ? listed.observations : runs.map((r) => ({ dagId: r.dagId, dagRunId: r.dagRunId, state: r.state ?? 'queued', startDate: r.startDate, endDate: r.endDate }));
    await record(airflow, observations);
  }

  function tick(): void {
    if (stopped) return;
    const now = clock();
    for (const [name, instance] of Object.entries(deps.config().airflow)) {
      if (instance.track === false || busy.has(name) || now - (last.get(name) ?? 0) < instance.track.interval) continue;
      last.set(name, now);
      const work = round(name)
        .catch((err: unknown) => log.error({ err, airflow: name }, 'tracking round failed; retrying next round'))
        .finally(() => busy.delete(name));
      busy.set(name, work);
    }
  }

  return {
    start() {
      if (!stopped) return;
      stopped = false;
      const intervals = Object.values(deps.config().airflow).flatMap((a) => (a.track === false ? [] : [a.track.interval]));
      // Ticks often enough for the shortest interval; each instance keeps its own.
      timer = setInterval(tick, Math.max(100, Math.min(1000, ...intervals) / 4));
      timer.unref();
    },
    async stop() {
      stopped = true;
      clearInterval(timer);
      await Promise.allSettled([...busy.values()]);
    },
    round,
    record,
    requests: (airflow) => sent.get(airflow) ?? 0,
  };
}
