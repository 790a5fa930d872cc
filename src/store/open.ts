import { sqlitePath, type Config } from '../config/schema.js';
import { openSqliteStore } from './sqlite.js';
import type { Store } from './types.js';

/** The store is chosen by the URL scheme of `store.url`. */
export function openStore(config: Config['store']): Store {
  return openSqliteStore({ path: sqlitePath(config.url), busyTimeoutMs: config.busy_timeout });
}
