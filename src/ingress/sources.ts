import type { Config, SourceConfig } from '../config/schema.js';
import type { ConfigProblem } from '../config/load.js';
import { buildVerifier } from '../verify/build.js';
import type { Clock, Verifier } from '../verify/types.js';

export interface Source {
  name: string;
  config: SourceConfig;
  verify: Verifier;
  /** Headers stored with the event for debugging: never signatures or credentials. */
  keptHeaders: readonly string[];
}

const ALWAYS_KEPT = ['content-type', 'user-agent', 'x-request-id', 'webhook-id', 'webhook-timestamp'];

/** Builds each source's verifier once; key problems come back with their config path. */
export function buildSources(config: Config, clock: Clock): { ok: true; sources: Source[] } | { ok: false; problems: ConfigProblem[] } {
  const sources: Source[] = [];
  const problems: ConfigProblem[] = [];
  for (const [name, source] of Object.entries(config.sources)) {
    const built = buildVerifier(source.verify, { clock });
    if (!built.ok) {
      problems.push(...built.problems.map((p) => ({ path: `sources.${name}.verify.${p.path}`, message: p.message })));
      continue;
    }
    const extra = source.verify.scheme === 'hmac-sha256' ? [source.verify.timestamp_header] : [];
    sources.push({
      name,
      config: source,
      verify: built.verifier,
      keptHeaders: [...new Set([...ALWAYS_KEPT, ...extra.filter((h): h is string => h !== undefined)])],
    });
  }
  // The plugin's push secrets, checked as a source's are (a bad key is a config error with its path).
  for (const [name, instance] of Object.entries(config.airflow)) {
    if (instance.track === false || !instance.track.push) continue;
    const built = buildVerifier({ scheme: 'standard-webhooks', secrets: instance.track.push.secrets, public_keys: [], tolerance: 300_000 }, { clock });
    if (!built.ok) problems.push(...built.problems.map((p) => ({ path: `airflow.${name}.track.push.${p.path}`, message: p.message })));
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, sources };
}
