import { randomUUID } from 'node:crypto';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import type { Job, JobUpdate, Store } from '../store/types.js';
import type { AirflowClient, TriggerOutcome } from './airflow.js';
import { retryDelay } from './backoff.js';
import { createCircuit, type Circuit } from './circuit.js';
import { isAssetRequest } from '../route/route.js';
import { statusClass, type Metrics } from '../metrics/metrics.js';
import { runUrl } from '../track/run.js';
import { notifierFor } from '../notify/notifier.js';

export interface DispatcherDeps {
  store: Store;
  /** Read on every round, so a reloaded config applies to the next claims. */
  config: () => Config;
  /** Read per round: a reload may replace an instance's client. */
  clients: () => ReadonlyMap<string, AirflowClient>;
  metrics?: Metrics;
  logger: Logger;
  clock?: () => number;
  random?: () => number;
  /** Lease owner id; one per process. */
  owner?: string;
  /** Told after a job turned dead was recorded (its notifications are due now). */
  onDead?: () => void;
}

export interface Dispatcher {
  /** Look for due jobs now (after a commit that created jobs, or a replay). */
  wake(): void;
  start(): void;
  /** Stops claiming and waits for in-flight attempts to be recorded. */
  stop(): Promise<void>;
  circuitState(airflow: string): 'closed' | 'open' | 'half-open' | undefined;
}

/**
 * The outbox loop: claim due jobs per Airflow instance (up to its free slots), send each,
 * record the attempt and what it did to the job in one transaction, repeat. A claim is a
 * lease, so a process that dies mid-attempt leaves a job that is claimed again later — and
 * the deterministic dag_run_id turns that second attempt into a harmless 409.
 */
export function createDispatcher(deps: DispatcherDeps): Dispatcher {
  const clock = deps.clock ?? Date.now;
  const random = deps.random ?? Math.random;
  const owner = deps.owner ?? `bridge-${randomUUID()}`;
  const log = deps.logger.child({ component: 'dispatch' });
  const inFlight = new Map<string, number>();
  const circuits = new Map<string, Circuit>();
  const active = new Set<Promise<void>>();
  let running = false;
  let again = false;
  let stopped = true;
  let timer: NodeJS.Timeout | undefined;

  const circuitOf = (name: string, instance: Config['airflow'][string]) => {
    let circuit = circuits.get(name);
    if (!circuit) circuits.set(name, (circuit = createCircuit(instance.circuit_breaker.failures, instance.circuit_breaker.cooldown)));
    return circuit;
  };

  let rounds = 0;
  let current: Promise<void> | undefined;

  function wake(): void {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    running = true;
    current = round()
      .catch((err: unknown) => log.error({ err }, 'dispatch round failed; retrying at the next poll'))
      .finally(() => {
        running = false;
        // Through the event loop, never as a microtask chain: a round that finds nothing to
        // send must not starve timers and sockets.
        if (again) setImmediate(wake);
      });
  }

  async function round(): Promise<void> {
    do {
      again = false;
      const config = deps.config();
      for (const [name, instance] of Object.entries(config.airflow)) {
        const client = deps.clients().get(name);
        if (!client || stopped) continue;
        const circuit = circuitOf(name, instance);
        const now = clock();
        const state = circuit.state(now);
        if (state === 'open') continue;
        const free = instance.max_in_flight - (inFlight.get(name) ?? 0);
        const limit = state === 'half-open' ? Math.min(1, free) : free;
        if (limit <= 0) continue;
        // A lease token per round: a job re-claimed after its lease ran out cannot have its
        // outcome written by the older attempt (finishAttempt checks the token).
        const lease = `${owner}/${++rounds}`;
        const jobs = await deps.store.claimJobs({ airflow: name, now, limit, leaseMs: config.dispatch.lease, owner: lease });
        for (const job of jobs) {
          inFlight.set(name, (inFlight.get(name) ?? 0) + 1);
          let freed = false;
          const freeSlot = () => {
            if (freed) return;
            freed = true;
            inFlight.set(name, (inFlight.get(name) ?? 1) - 1);
          };
          track(attempt(job, lease, client, instance, circuit, config.dispatch.lease, freeSlot).finally(freeSlot));
        }
      }
    } while (again && !stopped);
  }

  function track(work: Promise<void>): void {
    active.add(work);
    void work
      .catch((err: unknown) => log.error({ err }, 'dispatch attempt failed; the job is retried when its lease runs out'))
      .finally(() => {
        active.delete(work);
        setImmediate(wake);
      });
  }

  /** `freeSlot` gives the instance's slot back once Airflow has answered (before the record commits). */
  async function attempt(job: Job, lease: string, client: AirflowClient, instance: Config['airflow'][string], circuit: Circuit, leaseMs: number, freeSlot: () => void): Promise<void> {
    const ctx = { event_id: job.eventId, job_id: job.id, route: job.route, airflow: client.name, dag_id: job.dagId, dag_run_id: job.dagRunId };
    const now = clock();
    if (!circuit.allow(now)) {
      await deps.store.releaseJob(job.id, lease, Math.max(circuit.openUntil(), now + deps.config().dispatch.poll_interval));
      return;
    }
    const startedAt = now;
    // The whole attempt (login, trigger, 409 check) ends before its lease does, so no other
    // claim can overlap it.
    const deadline = AbortSignal.timeout(Math.max(1000, leaseMs - Math.min(5000, leaseMs / 10)));
    const request = job.request!;
    const outcome = isAssetRequest(request) ? await client.assetEvent(request, deadline) : await client.trigger(job.dagId, request, deadline);
    const finishedAt = clock();
    const update = decide(job, outcome, job.attempts + 1, instance, finishedAt);
    if (outcome.kind === 'retry') circuit.failure(finishedAt);
    else if (outcome.kind !== 'dead') circuit.success();

    const recorded = deps.store.finishAttempt(
      job.id,
      lease,
      {
        startedAt,
        durationMs: finishedAt - startedAt,
        httpStatus: outcome.status,
        outcome: outcome.kind === 'retry' && update.state === 'dead' ? 'dead' : outcome.kind,
        detail: outcome.detail,
        nextRetryAt: update.state === 'pending' ? update.nextAttemptAt : null,
      },
      update,
      // A job turning dead is notified from the transaction that records it (DESIGN §8).
      notifierFor(deps.config()),
    );
    // The slot limits requests to Airflow, and this one is answered: claiming the next job
    // now puts the claim in the same group commit as this record — one fsync for both
    // instead of one each, which is what bounded dispatch throughput (README, Performance).
    freeSlot();
    wake();
    const n = await recorded;
    const line = { ...ctx, attempt: n, status: outcome.status, outcome: outcome.kind, detail: outcome.detail };
    deps.metrics?.attempts.inc({ airflow: client.name, status_class: statusClass(outcome.status) });
    if (n !== undefined && update.state !== 'pending') deps.metrics?.triggers.inc({ route: job.route, outcome: update.state === 'dead' ? 'dead' : outcome.kind });
    if (n !== undefined && outcome.kind === 'triggered') deps.metrics?.dispatchLatency.observe((finishedAt - job.receivedAt) / 1000);
    if (n === undefined) log.warn(line, 'lease lost before the attempt was recorded; another claim will settle the job');
    else if (update.state === 'done') {
      log.info({ ...line, latency_ms: finishedAt - job.receivedAt, airflow_state: update.airflowState }, outcome.kind === 'exists' ? 'DAG run already existed' : 'DAG run triggered');
    } else if (update.state === 'pending') log.warn({ ...line, next_attempt_at: new Date(update.nextAttemptAt).toISOString() }, 'trigger failed; will retry');
    else {
      log.error({ ...line, error: update.error }, 'trigger dead-lettered');
      deps.onDead?.();
    }
    // After the record, off the attempt's clock: a paused DAG keeps the run queued.
    if (outcome.kind === 'triggered' && job.dagId) {
      void client.pausedOnce(job.dagId).then((paused) => {
        if (paused) log.warn(ctx, `DAG ${job.dagId} is paused in Airflow "${client.name}": the run stays queued until it is unpaused`);
      });
    }
  }

  function decide(job: Job, outcome: TriggerOutcome, n: number, instance: Config['airflow'][string], now: number): JobUpdate {
    switch (outcome.kind) {
      case 'triggered':
      case 'exists': {
        const dagRunId = outcome.kind === 'triggered' ? outcome.dagRunId || null : job.dagRunId;
        // A DAG run is followed to its end from here (src/track); an asset event has no run.
        const run = job.dagId && dagRunId ? { url: runUrl(instance.url, instance.api, job.dagId, dagRunId), track: instance.track !== false } : undefined;
        return { state: 'done', airflowState: outcome.state, dagRunId, ...(run ? { run } : {}) };
      }
      case 'dead':
        return { state: 'dead', error: outcome.detail };
      case 'retry':
        if (n >= instance.retry.max_attempts) return { state: 'dead', error: `gave up after ${n} attempts; last: ${outcome.detail}` };
        return { state: 'pending', nextAttemptAt: now + retryDelay(n, instance.retry, random, outcome.retryAfterMs), error: outcome.detail };
    }
  }

  return {
    wake,
    start() {
      if (!stopped) return;
      stopped = false;
      timer = setInterval(wake, deps.config().dispatch.poll_interval);
      timer.unref();
      wake();
    },
    async stop() {
      stopped = true;
      clearInterval(timer);
      // A round in progress may still start attempts: wait for it, then for them.
      await current;
      await Promise.allSettled([...active]);
    },
    circuitState(airflow) {
      return circuits.get(airflow)?.state(clock());
    },
  };
}
