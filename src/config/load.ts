import { readFile } from 'node:fs/promises';
import { parseDocument } from 'yaml';
import { substituteEnv, formatPath, type Env } from './env.js';
import { checkLoops } from '../guard/graph.js';
import { configSchema, type Config } from './schema.js';
import { httpsOrLoopback } from './urls.js';
import { redactUrls } from '../log/redact.js';

export interface ConfigProblem {
  path: string;
  message: string;
}

/** `warnings` are worth logging at start but do not stop it (e.g. a cycle every route allows). */
export type ConfigResult = { ok: true; config: Config; warnings: string[] } | { ok: false; problems: ConfigProblem[] };

/** Every problem is reported at once, each with the path of the value to fix. */
export function parseConfig(text: string, env: Env): ConfigResult {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    return { ok: false, problems: doc.errors.map((e) => ({ path: '(yaml)', message: (e.message.split('\n')[0] ?? e.message).replace(/:$/, '') })) };
  }
  const { value, substitutedPaths, problems } = substituteEnv(doc.toJS(), env);
  const parsed = configSchema.safeParse(value ?? {});
  const schemaProblems = parsed.success
    ? []
    : parsed.error.issues.flatMap((issue): ConfigProblem[] => {
        if (issue.code === 'unrecognized_keys') {
          return issue.keys.map((key) => ({ path: formatPath([...issue.path, key]), message: 'unknown key (misspelt, or not supported by this version)' }));
        }
        const path = formatPath(issue.path);
        let message = issue.message === 'empty' && substitutedPaths.has(path) ? 'empty after substitution' : issue.message;
        if (issue.code === 'invalid_type' && /received undefined$/.test(issue.message)) message = 'required';
        return [{ path, message }];
      });
  // A missing variable also surfaces as an "empty" schema issue at the same path; say it once.
  const missing = new Set(problems.map((p) => p.path));
  const all = [...problems, ...schemaProblems.filter((p) => !(missing.has(p.path) && p.message === 'empty after substitution'))];
  if (all.length > 0 || !parsed.success) return { ok: false, problems: all };
  // The loop guard's static check needs the whole, typed config: it runs last.
  const loops = checkLoops(parsed.data.routes, parsed.data.loop_guard);
  if (loops.errors.length > 0) {
    const index = new Map(parsed.data.routes.map((r, i) => [r.name, i]));
    return { ok: false, problems: loops.errors.map((e) => ({ path: `routes[${index.get(e.route)}]`, message: e.message })) };
  }
  return { ok: true, config: parsed.data, warnings: loops.warnings };
}

/**
 * Credentials sent over plain http off this host can be read on the way: allowed (a private
 * network may be trusted), never silent. Logged at start and reload, printed by check-config.
 */
export function clearTextWarnings(config: Config): string[] {
  return Object.entries(config.airflow)
    .filter(([, a]) => a.auth.type !== 'none' && !httpsOrLoopback(a.url))
    .map(([name, a]) => `airflow.${name}.url: ${redactUrls(a.url)} is plain http off loopback, and auth ${a.auth.type} sends ${a.auth.type === 'password' ? 'the password' : 'the token'} in clear text on every request; use https`);
}

export async function loadConfig(file: string, env: Env = process.env): Promise<ConfigResult> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    return { ok: false, problems: [{ path: file, message: `cannot read config file: ${(err as NodeJS.ErrnoException).code ?? String(err)}` }] };
  }
  return parseConfig(text, env);
}

export function formatProblems(problems: readonly ConfigProblem[]): string {
  return problems.map((p) => `${p.path}: ${p.message}`).join('\n');
}
