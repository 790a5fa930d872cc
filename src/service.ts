import type { Server } from 'node:http';
import express from 'express';
import type { AddressInfo } from 'node:net';
import type { Config } from './config/schema.js';
import { createApp, metricsHandler, type App, type Live } from './ingress/app.js';
import { buildSources } from './ingress/sources.js';
import type { Logger } from './log/logger.js';
import { openStore } from './store/open.js';
import type { Store } from './store/types.js';
import type { ConfigProblem } from './config/load.js';
import { createAirflowClient, type AirflowClient } from './dispatch/airflow.js';
import { createDispatcher, type Dispatcher } from './dispatch/dispatcher.js';
import { createTracker, type Tracker } from './track/tracker.js';
import { createDeliverer, type Deliverer } from './notify/deliver.js';
import { createMetrics, type Metrics } from './metrics/metrics.js';
import { clearTextWarnings, loadConfig } from './config/load.js';
import { redactUrls } from './log/redact.js';
import type { RedisReply } from 'rate-limit-redis';
import { adminTokens, weakAdminToken } from './admin/auth.js';
import { checkLoops } from './guard/graph.js';
import { createPruner, type Pruner } from './lifecycle/pruner.js';

export interface Running {
  url: string;
  /** The separate metrics listener's URL, when configured. */
  metricsUrl?: string;
  server: Server;
  store: Store;
  /** Re-reads the config file (SIGHUP). */
  reload(): Promise<ReloadResult>;
  /** Stops accepting, lets in-flight requests finish (up to the shutdown timeout), closes the store. */
  stop(): Promise<void>;
}

export type StartResult = { ok: true; running: Running } | { ok: false; problems: ConfigProblem[] };

/** Everything but the listening socket: what `serve` runs and what end-to-end tests drive. */
export interface Bridge {
  app: App;
  store: Store;
  dispatcher: Dispatcher;
  tracker: Tracker;
  /** The notifications outbox (DESIGN §8). */
  deliverer: Deliverer;
  /** Retention rounds; `serve` starts it next to the dispatcher. */
  pruner: Pruner;
  metrics: Metrics;
  live(): Live;
  clients(): ReadonlyMap<string, AirflowClient>;
  /** Swaps in a validated config; refuses changes that need a restart. The old one stays on refusal. */
  reload(next: Config): Promise<ReloadResult>;
  /** Re-reads `configFile` (refused, with a reason, when there is none). */
  reloadFromFile(): Promise<ReloadResult>;
  /** Refreshes the gauges read from the store and the dispatcher. */
  beforeScrape(): Promise<void>;
  /** Stops dispatch (in-flight attempts are recorded), closes Airflow connections and the store. */
  close(): Promise<void>;
}

export type ReloadResult = { ok: true; changed: string[] } | { ok: false; problems: ConfigProblem[] };

export interface BridgeOptions {
  /** Clock for Airflow token expiry (tests skew it to meet a real "Token Expired"). */
  airflowClock?: () => number;
  /** Default: BRIDGE_ADMIN_TOKEN. */
  adminTokens?: readonly string[];
  /** Where POST /v1/config/reload and SIGHUP read the config again. */
  configFile?: string;
  /** Told after a reload applied, for what the caller owns (the listening socket's timeouts). */
  onApplied?: (config: Config) => void;
}

/** How long one probe of the Airflow instances answers for (they may take up to their timeout). */
const HEALTH_TTL_MS = 3000;

/**
 * Settings bound at start: the sockets, the store's connection, how client addresses are read
 * (`store.retention` applies live: the pruner reads it each round). A reload
 * that changes one is refused with its path; everything else applies live.
 */
export const RESTART_ONLY = ['server.host', 'server.port', 'server.trust_proxy', 'server.rate_limit_redis', 'store.url', 'store.busy_timeout', 'store.pool_size', 'metrics'] as const;

const at = (config: Config, path: string): unknown => path.split('.').reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key], config);

/** The leaf paths under `path` whose values differ, so a refusal names `store.url`, not `store`. */
function changedPaths(before: unknown, after: unknown, path: string): string[] {
  const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
  if (isObject(before) && isObject(after)) {
    return [...new Set([...Object.keys(before), ...Object.keys(after)])].flatMap((k) => changedPaths(before[k], after[k], `${path}.${k}`));
  }
  return JSON.stringify(before) === JSON.stringify(after) ? [] : [path];
}

export async function createBridge(config: Config, logger: Logger, options: BridgeOptions = {}): Promise<{ ok: true; bridge: Bridge } | { ok: false; problems: ConfigProblem[] }> {
  const built = buildSources(config, Date.now);
  if (!built.ok) return built;
  const store = await openStore(config.store, logger);
  const newClient = (name: string, instance: Config['airflow'][string]) =>
    createAirflowClient(name, instance, { logger, ...(options.airflowClock ? { clock: options.airflowClock } : {}) });
  let live: Live = { config, sources: built.sources };
  let clients = new Map(Object.entries(config.airflow).map(([name, instance]) => [name, newClient(name, instance)]));
  const retired = new Set<AirflowClient>();
  const metrics = createMetrics();
  const deliverer = createDeliverer({ store, config: () => live.config, logger, metrics });
  const dispatcher = createDispatcher({ store, config: () => live.config, clients: () => clients, logger, metrics, onDead: () => deliverer.wake() });
  const tracker = createTracker({ store, config: () => live.config, clients: () => clients, logger, metrics, onChanges: () => deliverer.wake() });
  // Retention follows a reload: the pruner reads store.retention each round.
  const pruner = createPruner({ store, retention: () => live.config.store.retention, logger, metrics });
  // Other replicas' new jobs wake this one at once (PostgreSQL LISTEN/NOTIFY).
  const unsubscribe = store.subscribe ? await store.subscribe(dispatcher.wake) : undefined;
  let reloadFromFile: (() => Promise<ReloadResult>) | undefined;

  const reload = async (next: Config): Promise<ReloadResult> => {
    const fixed = RESTART_ONLY.flatMap((path) => changedPaths(at(live.config, path), at(next, path), path));
    if (fixed.length > 0) return { ok: false, problems: fixed.map((path) => ({ path, message: 'cannot change while running; restart the bridge to apply it' })) };
    const sources = buildSources(next, Date.now);
    if (!sources.ok) return sources;
    // Unchanged instances keep their client (and its token and connections); replaced ones
    // finish their in-flight attempts and are closed after the longest attempt could last.
    const nextClients = new Map<string, AirflowClient>();
    for (const [name, instance] of Object.entries(next.airflow)) {
      const same = JSON.stringify(instance) === JSON.stringify(live.config.airflow[name]);
      nextClients.set(name, same && clients.has(name) ? clients.get(name)! : newClient(name, instance));
    }
    for (const old of clients.values()) {
      if ([...nextClients.values()].includes(old)) continue;
      retired.add(old);
      setTimeout(() => void old.close().finally(() => retired.delete(old)), next.dispatch.lease).unref();
    }
    const changed = describeChanges(live.config, next);
    await warnOrphans(next);
    live = { config: next, sources: sources.sources };
    clients = nextClients;
    logger.level = next.log.level;
    options.onApplied?.(next);
    metrics.reloads.inc({ outcome: 'applied' });
    logger.info({ changed }, 'config reloaded');
    dispatcher.wake();
    deliverer.wake();
    pruner.reconfigured();
    return { ok: true, changed };
  };

  if (options.configFile) {
    const file = options.configFile;
    reloadFromFile = async () => {
      const loaded = await loadConfig(file);
      const result = loaded.ok ? await reload(loaded.config) : loaded;
      if (!result.ok) {
        metrics.reloads.inc({ outcome: 'refused' });
        logger.error({ file, problems: result.problems }, 'config reload refused; the running config is kept');
      } else if (loaded.ok) {
        logWarnings(logger, loaded.warnings, loaded.config);
      }
      return result;
    };
  }

  // Pending jobs of an Airflow instance that is no longer configured are never dispatched:
  // say so at start and on reload, rather than let them wait silently.
  const warnOrphans = async (c: Config) => {
    for (const [name, n] of Object.entries(await store.pendingByAirflow())) {
      if (!(name in c.airflow)) logger.warn({ airflow: name, pending: n }, `${n} pending job(s) target Airflow instance "${name}", which is not in the config: they wait until it is added back`);
    }
  };
  await warnOrphans(config);
  // Probed at most every HEALTH_TTL_MS: /readyz, /v1/status, /metrics and every open console tab share one answer.
  let probed: { at: number; value: ReturnType<typeof probeAirflow> } | undefined;
  const reachability = () => {
    if (!probed || Date.now() - probed.at >= HEALTH_TTL_MS) probed = { at: Date.now(), value: probeAirflow(clients) };
    return probed.value;
  };
  const beforeScrape = async () => {
    // A store that cannot be read still gets a scrape: bridge_ready 0, the store's gauges keep their last values.
    const [writable, reached, stored, stats] = await Promise.all([
      store.checkWritable().catch(() => undefined),
      reachability(),
      Promise.all([store.jobCounts(), store.oldestPendingAt(), store.openBreakers(Date.now())]).catch(() => undefined),
      store.stats().catch(() => undefined),
    ]);
    if (stats) {
      metrics.storeBytes.set(stats.bytes);
      for (const [table, n] of Object.entries(stats.rows)) metrics.storeRows.set({ table }, n);
    }
    metrics.ready.set(writable?.ok && stored ? 1 : 0);
    for (const name of clients.keys()) metrics.circuitOpen.set({ airflow: name }, dispatcher.circuitState(name) === 'open' ? 1 : 0);
    for (const name of clients.keys()) metrics.airflowUp.set({ airflow: name }, reached.get(name)?.reachable ? 1 : 0);
    if (!stored) return;
    const [counts, oldest, breakers] = stored;
    for (const [state, n] of Object.entries(counts)) metrics.queueDepth.set({ state }, n);
    metrics.oldestPendingAge.set(oldest === undefined ? 0 : Math.max(0, (Date.now() - oldest) / 1000));
    metrics.breakersOpen.set(breakers.length);
  };
  // One Redis connection per replica for shared rate-limit counts.
  // Loaded only when configured: the client library is ~4 MB of heap that stays live.
  const redis = config.server.rate_limit_redis ? (await import('redis')).createClient({ url: config.server.rate_limit_redis }) : undefined;
  redis?.on('error', (err: Error) => logger.warn({ err: err.message }, 'rate-limit Redis unavailable; requests pass unlimited meanwhile'));
  await redis?.connect().catch(() => {});
  const app = createApp({
    live: () => live,
    ...(redis ? { rateLimitRedis: (...args: string[]) => redis.sendCommand(args) as Promise<RedisReply> } : {}),
    store,
    logger,
    metrics,
    recordRuns: tracker.record,
    adminTokens: options.adminTokens ?? adminTokens(),
    onJobs: dispatcher.wake,
    airflowHealth: async () => {
      const reached = await reachability();
      // The circuit is the dispatcher's own state, always current; only the network probe is shared.
      return Object.fromEntries([...clients.keys()].map((name) => [name, { ...reached.get(name), circuit: dispatcher.circuitState(name) ?? 'closed' }]));
    },
    beforeScrape,
    metricsElsewhere: config.metrics !== undefined,
    admin: { ...(reloadFromFile ? { reload: reloadFromFile } : {}), wake: dispatcher.wake, wakeNotify: deliverer.wake, lastPrune: pruner.last },
  });
  const close = async () => {
    await unsubscribe?.();
    await redis?.close().catch(() => {});
    await pruner.stop();
    await dispatcher.stop();
    await tracker.stop();
    await deliverer.stop();
    await Promise.all([...clients.values(), ...retired].map((c) => c.close()));
    await store.close();
  };
  return {
    ok: true,
    bridge: { app, store, dispatcher, tracker, deliverer, pruner, metrics, live: () => live, clients: () => clients, reload, reloadFromFile: reloadFromFile ?? (async () => ({ ok: false, problems: [{ path: '(config)', message: 'not started from a file' }] })), close, beforeScrape },
  };
}

/** Which top-level parts differ, for the reload log line and answer. */
function describeChanges(before: Config, after: Config): string[] {
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])] as (keyof Config)[];
  const changed = keys.filter((k) => JSON.stringify(before[k], replacer) !== JSON.stringify(after[k], replacer));
  const beforeRoutes = new Set(before.routes.map((r) => r.name));
  const afterRoutes = new Set(after.routes.map((r) => r.name));
  const added = [...afterRoutes].filter((r) => !beforeRoutes.has(r)).map((r) => `route ${r} added`);
  const removed = [...beforeRoutes].filter((r) => !afterRoutes.has(r)).map((r) => `route ${r} removed (its pending jobs are still dispatched)`);
  return [...changed, ...added, ...removed];
}

// Compiled templates and matchers are functions: compare them by their source text.
function replacer(_key: string, value: unknown): unknown {
  if (typeof value === 'function') return undefined;
  if (value && typeof value === 'object' && 'text' in value && 'render' in value) return (value as { text: string }).text;
  return value;
}

export async function startService(config: Config, logger: Logger, configFile?: string): Promise<StartResult> {
  const weak = weakAdminToken(adminTokens());
  if (weak) return { ok: false, problems: [{ path: 'BRIDGE_ADMIN_TOKEN', message: weak }] };
  let server: Server | undefined;
  // Timeouts of the listening socket follow a reload; its address does not (RESTART_ONLY).
  const applyServer = (c: Config) => {
    if (!server) return;
    server.requestTimeout = c.server.request_timeout;
    server.headersTimeout = Math.min(c.server.request_timeout, 20_000);
    server.maxConnections = c.server.max_connections;
  };
  const created = await createBridge(config, logger, { ...(configFile ? { configFile } : {}), onApplied: applyServer });
  if (!created.ok) return created;
  const bridge = created.bridge;
  const { app, store, dispatcher } = bridge;
  // Cycles through edges learned in earlier runs: warnings (lineage and the breaker bound
  // them), never a reason not to start.
  const loops = checkLoops(config.routes, config.loop_guard, await store.learnedEdges());
  logWarnings(logger, [...loops.errors.map((e) => e.message), ...loops.warnings], config);

  const listening = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(config.server.port, config.server.host, (err?: Error) => (err ? reject(err) : resolve(s)));
  }).catch(async (err: Error) => {
    await bridge.close();
    throw err;
  });
  server = listening;
  // A client may send FIN right after its request (HTTP allows it; some proxies do). By
  // default node:http then aborts the request unless the answer is already written, so an
  // event stored after an async step would get no answer; this lets the answer go out first.
  // The switch is node:http's own but not in its typings; test/cli checks it still works.
  (listening as Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
  applyServer(config);
  let draining = false;
  // While draining, every answer begun closes its connection: a keep-alive client must not
  // keep sending on a socket that is about to be cut (stop() closes it once idle).
  listening.on('request', (_req, res: import('node:http').ServerResponse) => {
    if (draining && !res.headersSent) res.setHeader('connection', 'close');
  });
  const url = urlOf(listening);
  // /metrics on its own listener keeps the webhook port public-only.
  let metricsServer: Server | undefined;
  if (config.metrics) {
    const metricsApp = express();
    metricsApp.get(config.metrics.path, metricsHandler(bridge.metrics, bridge.beforeScrape));
    metricsServer = await new Promise<Server>((resolve, reject) => {
      const s = metricsApp.listen(config.metrics!.port, config.metrics!.host, (err?: Error) => (err ? reject(err) : resolve(s)));
    });
  }
  dispatcher.start();
  bridge.tracker.start();
  bridge.deliverer.start();
  bridge.pruner.start();
  logger.info(
    {
      url,
      sources: Object.entries(config.sources).map(([name, s]) => ({ name, path: s.path, scheme: s.verify.scheme })),
      routes: config.routes.map((r) => r.name),
      airflow: Object.fromEntries(Object.entries(config.airflow).map(([name, a]) => [name, `${redactUrls(a.url)} (${a.api})`])),
      store: redactUrls(config.store.url),
      ...(metricsServer ? { metrics: `${urlOf(metricsServer)}${config.metrics!.path}` } : {}),
    },
    'bridge listening',
  );

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      logger.info('shutting down: no new connections, finishing in-flight requests');
      draining = true;
      const closed = new Promise<void>((resolve) => listening.close(() => resolve()));
      listening.closeIdleConnections();
      const timeout = bridge.live().config.server.shutdown_timeout;
      const timer = setTimeout(() => {
        logger.warn({ timeout_ms: timeout }, 'shutdown timeout: closing remaining connections');
        listening.closeAllConnections();
      }, timeout);
      // Every connection is closed once its answer is out, those busy at the signal included,
      // rather than left to the client's keep-alive (the server's keepAliveTimeout, 5 s).
      const idle = setInterval(() => listening.closeIdleConnections(), 50);
      await closed;
      clearInterval(idle);
      clearTimeout(timer);
      metricsServer?.closeAllConnections();
      await new Promise((resolve) => (metricsServer ? metricsServer.close(resolve) : resolve(undefined)));
      await bridge.close();
      logger.info('stopped');
    })());

  return { ok: true, running: { url, ...(metricsServer ? { metricsUrl: urlOf(metricsServer) } : {}), server: listening, store, stop, reload: bridge.reloadFromFile } };
}

/** Loop-guard warnings and credentials sent in clear text: at start and on every reload. */
function logWarnings(logger: Logger, loopWarnings: readonly string[], config: Config): void {
  for (const warning of loopWarnings) logger.warn({ component: 'loop_guard' }, warning);
  for (const warning of clearTextWarnings(config)) logger.warn({ component: 'config' }, warning);
}

function urlOf(server: Server): string {
  const address = server.address() as AddressInfo;
  return `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
}

/** Reported by /readyz without failing readiness: while Airflow is down, the queue holds. */
async function probeAirflow(clients: ReadonlyMap<string, AirflowClient>) {
  return new Map(await Promise.all([...clients.values()].map(async (client) => [client.name, await client.health()] as const)));
}
