import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { parseConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { createApp } from '../../src/ingress/app.js';
import { buildSources } from '../../src/ingress/sources.js';
import { createLogger } from '../../src/log/logger.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { Store } from '../../src/store/types.js';
import { buildVerifier } from '../../src/verify/build.js';
import type { Verifier } from '../../src/verify/types.js';

export const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';

export function tempDir(): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'bridge-test-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function configFrom(yaml: string, env: Record<string, string> = {}): Config {
  const parsed = parseConfig(yaml, env);
  if (!parsed.ok) throw new Error(`test config invalid: ${JSON.stringify(parsed.problems)}`);
  return parsed.config;
}

export const BASIC_CONFIG = `
server: { rate_limit: { window: 1m, max: 1000 } }
sources:
  planasonix:
    path: /webhooks/planasonix
    verify: { scheme: standard-webhooks, secrets: ["${SECRET}"] }
`;

/** A real app on a real SQLite file in a temp dir, with its log lines captured. */
export function testApp(options: { yaml?: string; clock?: () => number; busyTimeoutMs?: number; adminTokens?: string[] } = {}) {
  const temp = tempDir();
  const dbPath = join(temp.dir, 'bridge.db');
  const config = configFrom(options.yaml ?? BASIC_CONFIG);
  const clock = options.clock ?? Date.now;
  const built = buildSources(config, clock);
  if (!built.ok) throw new Error(JSON.stringify(built.problems));
  const store: Store = openSqliteStore({ path: dbPath, busyTimeoutMs: options.busyTimeoutMs ?? 200 });
  const logLines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      logLines.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  });
  const logger = createLogger('debug', sink);
  const live = { config, sources: built.sources };
  const app = createApp({ live: () => live, store, logger, clock, adminTokens: options.adminTokens ?? [] });
  return {
    app,
    store,
    dbPath,
    logLines,
    config,
    async close() {
      await store.close();
      temp.cleanup();
    },
  };
}

/** A verifier built from YAML-shaped options, exactly as config loading builds it. */
export function verifierFor(scheme: string, verify: Record<string, unknown>, clock: () => number): Verifier {
  const yaml = `sources: { s: { path: /s, verify: ${JSON.stringify({ scheme, ...verify })} } }`;
  const built = buildVerifier(configFrom(yaml).sources.s!.verify, { clock });
  if (!built.ok) throw new Error(JSON.stringify(built.problems));
  return built.verifier;
}
