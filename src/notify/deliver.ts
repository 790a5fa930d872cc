import { randomUUID } from 'node:crypto';
import { request } from 'undici';
import type { Config, NotifyTargetConfig } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import type { Store } from '../store/types.js';
import { parseRetryAfter, retryDelay } from '../dispatch/backoff.js';
import { createCircuit, type Circuit } from '../dispatch/circuit.js';
import { standardWebhooksSigner } from '../verify/sign.js';
import { slackMessage } from './format.js';
import type { Notification, NotificationBody, NotificationUpdate } from './types.js';

export interface DelivererDeps {
  store: Store;
  /** Read every round: a reload changes targets, secrets and retry policies at once. */
  config: () => Config;
  logger: Logger;
  metrics?: Metrics;
  clock?: () => number;
  random?: () => number;
  owner?: string;
}

export interface Deliverer {
  wake(): void;
  start(): void;
  stop(): Promise<void>;
}

export interface SendResult {
  status: number | null;
  kind: 'delivered' | 'retry' | 'dead';
  detail: string;
  body: string;
  retryAfterMs?: number;
}

/** Answers a receiver may get better from; anything else non-2xx is its configuration (dead, replayable). */
const RETRYABLE = (status: number) => status === 408 || status === 425 || status === 429 || status >= 500;

/**
 * One POST of a notification to its target: the same `webhook-id` (the notification's id) on
 * every try, signed afresh (the timestamp is the try's) with the bridge's one signer.
 */
export async function sendNotification(target: NotifyTargetConfig, body: NotificationBody, now: number): Promise<SendResult> {
  const payload = Buffer.from(JSON.stringify(target.format === 'slack' ? slackMessage(body) : body));
  const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': 'planasonix-airflow-bridge' };
  if (target.format === 'standard-webhooks') Object.assign(headers, await standardWebhooksSigner(target.secret!)(payload, body.id, new Date(now)));
  try {
    const res = await request(target.url, {
      method: 'POST',
      headers,
      body: payload,
      headersTimeout: target.timeout,
      bodyTimeout: target.timeout,
      signal: AbortSignal.timeout(target.timeout),
    });
    const text = (await res.body.text().catch(() => '')).slice(0, 2000);
    const status = res.statusCode;
    const retryAfterMs = parseRetryAfter(res.headers['retry-after'], Date.now());
    const detail = `${status}${text ? `: ${text.slice(0, 300)}` : ''}`;
    if (status >= 200 && status < 300) return { status, kind: 'delivered', detail, body: text };
    return { status, kind: RETRYABLE(status) ? 'retry' : 'dead', detail, body: text, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };
  } catch (err) {
    const e = err as Error & { code?: string; cause?: { code?: string; message?: string } };
    return { status: null, kind: 'retry', detail: `network: ${e.cause?.code ?? e.code ?? e.name}: ${e.cause?.message ?? e.message}`, body: '' };
  }
}

/**
 * The notifications outbox, like the dispatcher's: claim due rows per target with a lease
 * (FOR UPDATE SKIP LOCKED on PostgreSQL), POST, record the attempt and its effect in one
 * transaction; backoff with jitter and Retry-After, a circuit per target, dead after the
 * target's `retry.max_attempts`.
 */
export function createDeliverer(deps: DelivererDeps): Deliverer {
  const clock = deps.clock ?? Date.now;
  const random = deps.random ?? Math.random;
  const owner = deps.owner ?? `notify-${randomUUID()}`;
  const log = deps.logger.child({ component: 'notify' });
  const circuits = new Map<string, { key: string; circuit: Circuit }>();
  const active = new Set<Promise<void>>();
  const inFlight = new Map<string, number>();
  let stopped = true;
  let running = false;
  let again = false;
  let current: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let rounds = 0;
  const MAX_IN_FLIGHT = 8;

  const circuitOf = (t: NotifyTargetConfig) => {
    const key = JSON.stringify(t.circuit_breaker);
    let held = circuits.get(t.name);
    if (!held || held.key !== key) circuits.set(t.name, (held = { key, circuit: createCircuit(t.circuit_breaker.failures, t.circuit_breaker.cooldown) }));
    return held.circuit;
  };

  function wake(): void {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    running = true;
    current = round()
      .catch((err: unknown) => log.error({ err }, 'notification round failed; retrying at the next poll'))
      .finally(() => {
        running = false;
        if (again) setImmediate(wake);
      });
  }

  async function round(): Promise<void> {
    do {
      again = false;
      for (const target of deps.config().notify) {
        if (stopped) return;
        const circuit = circuitOf(target);
        const now = clock();
        const state = circuit.state(now);
        if (state === 'open') continue;
        const free = MAX_IN_FLIGHT - (inFlight.get(target.name) ?? 0);
        const limit = state === 'half-open' ? Math.min(1, free) : free;
        if (limit <= 0) continue;
        const lease = `${owner}/${++rounds}`;
        const rows = await deps.store.claimNotifications({ target: target.name, now, limit, leaseMs: Math.max(30_000, 3 * target.timeout), owner: lease });
        for (const row of rows) {
          inFlight.set(target.name, (inFlight.get(target.name) ?? 0) + 1);
          const work = attempt(row, lease, target, circuit)
            .catch((err: unknown) => log.error({ err, notification_id: row.id }, 'notification attempt failed; retried when its lease runs out'))
            .finally(() => {
              inFlight.set(target.name, (inFlight.get(target.name) ?? 1) - 1);
              active.delete(work);
              setImmediate(wake);
            });
          active.add(work);
        }
      }
    } while (again && !stopped);
  }

  async function attempt(row: Notification, lease: string, target: NotifyTargetConfig, circuit: Circuit): Promise<void> {
    const startedAt = clock();
    if (!circuit.allow(startedAt)) {
      await deps.store.releaseNotification(row.id, lease, Math.max(circuit.openUntil(), startedAt + 1000));
      return;
    }
    const sent = await sendNotification(target, row.body, startedAt);
    const finishedAt = clock();
    if (sent.kind === 'retry') circuit.failure(finishedAt);
    else circuit.success();
    const n = row.attempts + 1;
    const update: NotificationUpdate =
      sent.kind === 'delivered'
        ? { state: 'done' }
        : sent.kind === 'dead'
          ? { state: 'dead', error: sent.detail }
          : n >= target.retry.max_attempts
            ? { state: 'dead', error: `gave up after ${n} attempts; last: ${sent.detail}` }
            : { state: 'pending', nextAttemptAt: finishedAt + retryDelay(n, target.retry, random, sent.retryAfterMs), error: sent.detail };
    const outcome = update.state === 'done' ? 'delivered' : update.state === 'dead' ? 'dead' : 'retry';
    const recorded = await deps.store.finishNotification(
      row.id,
      lease,
      { startedAt, durationMs: finishedAt - startedAt, httpStatus: sent.status, outcome, detail: sent.detail, nextRetryAt: update.state === 'pending' ? update.nextAttemptAt : null },
      update,
    );
    const ctx = { notification_id: row.id, target: target.name, type: row.type, event_id: row.eventId, attempt: recorded, status: sent.status };
    if (recorded === undefined) return log.warn(ctx, 'lease lost before the notification attempt was recorded');
    deps.metrics?.notifications.inc({ target: target.name, type: row.type, outcome: outcome === 'retry' ? 'retried' : outcome });
    if (outcome === 'delivered') log.info({ ...ctx, latency_ms: finishedAt - row.createdAt }, 'notification delivered');
    else if (outcome === 'retry') log.warn({ ...ctx, detail: sent.detail, next_attempt_at: new Date((update as { nextAttemptAt: number }).nextAttemptAt).toISOString() }, 'notification failed; will retry');
    else log.error({ ...ctx, error: (update as { error: string }).error }, 'notification dead-lettered');
  }

  /** A cheap read decides whether a round (a write: the claim) is worth it. */
  async function tick(): Promise<void> {
    if (stopped || running || deps.config().notify.length === 0) return;
    const due = await deps.store.nextNotificationAt().catch(() => undefined);
    if (due !== undefined && due <= clock()) wake();
  }

  return {
    wake,
    start() {
      if (!stopped) return;
      stopped = false;
      timer = setInterval(() => void tick(), Math.min(250, deps.config().dispatch.poll_interval));
      timer.unref();
      wake();
    },
    async stop() {
      stopped = true;
      clearInterval(timer);
      await current;
      await Promise.allSettled([...active]);
    },
  };
}
