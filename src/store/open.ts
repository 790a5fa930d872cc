import { existsSync } from 'node:fs';
import { sqlitePath, type Config } from '../config/schema.js';
import { openPostgresStore, type PostgresStore } from './postgres.js';
import { openSqliteStore } from './sqlite.js';
import type { Store } from './types.js';
import type { Logger } from '../log/logger.js';

export const isPostgresUrl = (url: string) => /^postgres(ql)?:\/\//.test(url);

/** The store is chosen by the URL scheme of `store.url`. */
export async function openStore(config: Config['store'], logger?: Logger): Promise<Store & Partial<Pick<PostgresStore, 'subscribe'>>> {
  if (isPostgresUrl(config.url)) return openPostgresStore({ url: config.url, poolSize: config.pool_size });
  return openSqliteStore({ path: sqlitePath(config.url), busyTimeoutMs: config.busy_timeout, ...(logger ? { log: (level, message, fields) => logger[level]({ component: 'store', ...fields }, message) } : {}) });
}

/**
 * For tools beside a running bridge (explain): SQLite read-only, undefined when there is no
 * database yet. PostgreSQL needs no special mode: reading takes no lease.
 */
export async function openStoreIfPresent(config: Config['store']): Promise<Store | undefined> {
  if (isPostgresUrl(config.url)) return openPostgresStore({ url: config.url, poolSize: 2 });
  const path = sqlitePath(config.url);
  if (!existsSync(path)) return undefined;
  return openSqliteStore({ path, busyTimeoutMs: config.busy_timeout, readonly: true });
}
