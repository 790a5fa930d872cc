import type { Server } from 'node:http';
import type { Express } from 'express';
import type { AddressInfo } from 'node:net';
import type { Config } from './config/schema.js';
import { createApp } from './ingress/app.js';
import { buildSources } from './ingress/sources.js';
import type { Logger } from './log/logger.js';
import { openStore } from './store/open.js';
import type { Store } from './store/types.js';
import type { ConfigProblem } from './config/load.js';
import { createAirflowClient, type AirflowClient } from './dispatch/airflow.js';
import { createDispatcher, type Dispatcher } from './dispatch/dispatcher.js';
import { createMetrics } from './metrics/metrics.js';
import { adminTokens } from './admin/auth.js';
import { checkLoops } from './guard/graph.js';

export interface Running {
  url: string;
  server: Server;
  store: Store;
  /** Stops accepting, lets in-flight requests finish (up to the shutdown timeout), closes the store. */
  stop(): Promise<void>;
}

export type StartResult = { ok: true; running: Running } | { ok: false; problems: ConfigProblem[] };

/** Everything but the listening socket: what `serve` runs and what end-to-end tests drive. */
export interface Bridge {
  app: Express;
  store: Store;
  dispatcher: Dispatcher;
  clients: ReadonlyMap<string, AirflowClient>;
  /** Stops dispatch (in-flight attempts are recorded), closes Airflow connections and the store. */
  close(): Promise<void>;
}

export interface BridgeOptions {
  /** Clock for Airflow token expiry (tests skew it to meet a real "Token Expired"). */
  airflowClock?: () => number;
  /** Default: BRIDGE_ADMIN_TOKEN. */
  adminTokens?: readonly string[];
}

export function createBridge(config: Config, logger: Logger, options: BridgeOptions = {}): { ok: true; bridge: Bridge } | { ok: false; problems: ConfigProblem[] } {
  const built = buildSources(config, Date.now);
  if (!built.ok) return built;
  const store = openStore(config.store);
  const clients = new Map(Object.entries(config.airflow).map(([name, instance]) => [name, createAirflowClient(name, instance, { logger, ...(options.airflowClock ? { clock: options.airflowClock } : {}) })]));
  const dispatcher = createDispatcher({ store, config: () => config, clients, logger });
  const metrics = createMetrics();
  const app = createApp({
    config,
    sources: built.sources,
    store,
    logger,
    metrics,
    adminTokens: options.adminTokens ?? adminTokens(),
    onJobs: dispatcher.wake,
    airflowHealth: () => airflowHealth(clients, dispatcher),
  });
  const close = async () => {
    await dispatcher.stop();
    await Promise.all([...clients.values()].map((c) => c.close()));
    await store.close();
  };
  return { ok: true, bridge: { app, store, dispatcher, clients, close } };
}

export async function startService(config: Config, logger: Logger): Promise<StartResult> {
  const created = createBridge(config, logger);
  if (!created.ok) return created;
  const bridge = created.bridge;
  const { app, store, dispatcher } = bridge;
  // Cycles through edges learned in earlier runs: warnings (lineage and the breaker bound
  // them), never a reason not to start.
  const loops = checkLoops(config.routes, config.loop_guard, await store.learnedEdges());
  for (const message of [...loops.errors.map((e) => e.message), ...loops.warnings]) logger.warn({ component: 'loop_guard' }, message);

  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(config.server.port, config.server.host, (err?: Error) => (err ? reject(err) : resolve(s)));
  }).catch(async (err: Error) => {
    await bridge.close();
    throw err;
  });
  server.requestTimeout = config.server.request_timeout;
  server.headersTimeout = Math.min(config.server.request_timeout, 20_000);
  server.maxConnections = config.server.max_connections;
  let draining = false;
  // While draining, every answer closes its connection: a keep-alive client must not keep
  // sending on a socket that is about to be cut.
  server.on('request', (_req, res: import('node:http').ServerResponse) => {
    if (!draining) return;
    if (!res.headersSent) res.setHeader('connection', 'close');
    res.on('finish', () => server.closeIdleConnections());
  });
  const address = server.address() as AddressInfo;
  const url = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
  dispatcher.start();
  logger.info(
    {
      url,
      sources: Object.entries(config.sources).map(([name, s]) => ({ name, path: s.path, scheme: s.verify.scheme })),
      routes: config.routes.map((r) => r.name),
      airflow: Object.fromEntries(Object.entries(config.airflow).map(([name, a]) => [name, `${a.url} (${a.api})`])),
      store: config.store.url,
    },
    'bridge listening',
  );

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      logger.info('shutting down: no new connections, finishing in-flight requests');
      draining = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const timer = setTimeout(() => {
        logger.warn({ timeout_ms: config.server.shutdown_timeout }, 'shutdown timeout: closing remaining connections');
        server.closeAllConnections();
      }, config.server.shutdown_timeout);
      await closed;
      clearTimeout(timer);
      await bridge.close();
      logger.info('stopped');
    })());

  return { ok: true, running: { url, server, store, stop } };
}

/** Reported by /readyz without failing readiness: while Airflow is down, the queue holds. */
async function airflowHealth(clients: ReadonlyMap<string, AirflowClient>, dispatcher: Dispatcher) {
  const entries = await Promise.all(
    [...clients.values()].map(async (client) => [client.name, { ...(await client.health()), circuit: dispatcher.circuitState(client.name) ?? 'closed' }] as const),
  );
  return Object.fromEntries(entries);
}
