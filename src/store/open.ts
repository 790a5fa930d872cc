import { existsSync } from 'node:fs';
import { sqlitePath, type Config } from '../config/schema.js';
import { openSqliteStore } from './sqlite.js';
import type { Store } from './types.js';

/** The store is chosen by the URL scheme of `store.url`. */
export function openStore(config: Config['store']): Store {
  return openSqliteStore({ path: sqlitePath(config.url), busyTimeoutMs: config.busy_timeout });
}

/** Read-only, for tools beside a running bridge; undefined when there is no database yet. */
export function openStoreIfPresent(config: Config['store']): Store | undefined {
  const path = sqlitePath(config.url);
  if (!existsSync(path)) return undefined;
  return openSqliteStore({ path, busyTimeoutMs: config.busy_timeout, readonly: true });
}
