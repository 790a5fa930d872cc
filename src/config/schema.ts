import bytes from 'bytes';
import ms from 'ms';
import { isIP } from 'node:net';
import { z } from 'zod';
import { compilePattern, compileWhere, MATCH_FIELDS, own, type FieldTest, type MatchField } from '../route/match.js';
import { compile, type Template } from '../route/template.js';
import { HTTPS_OR_LOOPBACK, httpsOrLoopback } from './urls.js';
import { NOTIFY_TYPES } from '../notify/types.js';
import { decodeBase64 } from '../verify/crypto.js';

// Values that may come from `${VAR}` arrive as strings, so numbers accept digit strings too.
const integer = (min: number) =>
  z.union([z.number(), z.string().regex(/^\d+$/, 'expected an integer').transform(Number)]).pipe(z.number().int().min(min));

const duration = z
  .union([z.number().int().min(0), z.string()])
  .transform((value, ctx) => {
    // A bare number is seconds, also when it arrives as a string from `${VAR}`.
    if (typeof value === 'number' || /^\d+$/.test(value)) return Number(value) * 1000;
    const parsed = ms(value as ms.StringValue);
    if (typeof parsed !== 'number' || !Number.isFinite(parsed) || parsed < 0) {
      ctx.addIssue({ code: 'custom', message: `"${value}" is not a duration (examples: 30s, 5m, 1h; a bare number is seconds)` });
      return z.NEVER;
    }
    return parsed;
  });

const size = z.union([z.number().int().min(1), z.string()]).transform((value, ctx) => {
  const parsed = typeof value === 'number' ? value : bytes.parse(value);
  if (parsed === null || !Number.isFinite(parsed) || parsed < 1) {
    ctx.addIssue({ code: 'custom', message: `"${value}" is not a size (examples: 256kb, 1mb)` });
    return z.NEVER;
  }
  return parsed;
});

const nonEmpty = z.string().min(1, 'empty');

/** Shorter tokens can be guessed within the admin API's rate limit over weeks. */
export const ADMIN_TOKEN_MIN = 32;
const adminToken = z.string().min(ADMIN_TOKEN_MIN, `shorter than ${ADMIN_TOKEN_MIN} characters: too easy to guess (openssl rand -base64 32)`);
const headerName = z
  .string()
  .regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'not a valid HTTP header name')
  .transform((h) => h.toLowerCase());

// true/false/a hop count/a list of subnets, also as strings from `${VAR}`; checked here so
// a bad value names its path instead of crashing express at start.
const TRUST_ALL = 'true trusts every X-Forwarded-For entry, so any client picks its own address and escapes every per-client limit; give the number of proxies in front (e.g. 1) or their addresses/subnets';
const trustProxy = z.union([z.boolean(), z.number().int().min(0), z.string()]).transform((value, ctx) => {
  if (value === true || value === 'true') {
    ctx.addIssue({ code: 'custom', message: TRUST_ALL });
    return z.NEVER;
  }
  if (typeof value !== 'string') return value;
  if (value === 'false') return false;
  if (/^\d+$/.test(value)) return Number(value);
  const names = ['loopback', 'linklocal', 'uniquelocal'];
  const bad = value.split(',').map((v) => v.trim()).filter((v) => !names.includes(v) && !isIP(v.replace(/\/\d+$/, '')));
  if (bad.length === 0) return value;
  ctx.addIssue({ code: 'custom', message: `${bad.map((b) => JSON.stringify(b)).join(', ')}: expected true, false, a hop count, loopback/linklocal/uniquelocal or IP addresses/subnets` });
  return z.NEVER;
});

const rateLimit = z.strictObject({
  window: duration.default(60_000),
  max: integer(1).default(1200),
});

const standardWebhooks = z
  .strictObject({
    scheme: z.literal('standard-webhooks'),
    /** `v1` HMAC-SHA256 secrets, `whsec_` prefix optional. */
    secrets: z.array(nonEmpty).default([]),
    /** `v1a` Ed25519 public keys, `whpk_` prefix optional. */
    public_keys: z.array(nonEmpty).default([]),
    tolerance: duration.default(300_000),
  })
  .refine((v) => v.secrets.length + v.public_keys.length > 0, {
    message: 'give at least one of secrets (v1) or public_keys (v1a)',
    path: ['secrets'],
  });

const hmacSha256 = z.strictObject({
  scheme: z.literal('hmac-sha256'),
  secrets: z.array(nonEmpty.min(16, 'shorter than 16 characters: too easy to guess')).min(1, 'give at least one secret'),
  header: headerName.default('x-planasonix-signature'),
  encoding: z.enum(['hex', 'base64']).default('hex'),
  /** Stripped from the header value when present, e.g. `sha256=`. */
  prefix: z.string().default(''),
  /** When set, the signed content is `${timestamp}.${body}` and the timestamp must be within tolerance. */
  timestamp_header: headerName.optional(),
  tolerance: duration.default(300_000),
});

const jws = z
  .strictObject({
    scheme: z.literal('jws'),
    /** Compact JWS; a leading `Bearer ` is accepted so `authorization` works too. */
    header: headerName.default('x-planasonix-jws'),
    /** PEM (SPKI) or JWK JSON; several for rotation. */
    public_keys: z.array(nonEmpty).default([]),
    jwks_url: z
      .url({ protocol: /^https?$/ })
      .refine(httpsOrLoopback, `${HTTPS_OR_LOOPBACK}: keys fetched in clear text could be swapped`)
      .optional(),
    /** Least time between two JWKS fetches caused by an unknown `kid` (a flood of bad kids cannot hammer the IdP). */
    jwks_refresh_cooldown: duration.default(30_000),
    algorithms: z.array(nonEmpty).min(1).default(['RS256', 'PS256', 'ES256', 'EdDSA']),
    /** Required: without them, a token minted for another service by the same key would pass. */
    issuer: nonEmpty,
    audience: nonEmpty,
    /** Clock skew allowed on `exp`, `nbf` and `iat`. */
    tolerance: duration.default(300_000),
    /** Oldest `iat` accepted; tokens without `iat` are refused when set. */
    max_age: duration.optional(),
    /** Claim holding the base64url (no padding) SHA-256 of the raw body. */
    body_hash_claim: nonEmpty.default('body_sha256'),
  })
  .refine((v) => (v.public_keys.length > 0) !== (v.jwks_url !== undefined), {
    message: 'give exactly one of public_keys or jwks_url',
    path: ['public_keys'],
  });

export const verifySchema = z.discriminatedUnion('scheme', [standardWebhooks, hmacSha256, jws]);

const source = z.strictObject({
  path: z
    .string()
    .regex(/^\/[A-Za-z0-9._~\/-]*$/, 'must start with / and contain only URL path characters'),
  verify: verifySchema,
  rate_limit: rateLimit.optional(),
});

const sqliteUrl = /^sqlite:(.+)$/;

/** Backoff of an outbox (triggers and notifications): the same shape and defaults for both. */
const retry = z
  .strictObject({
    max_attempts: integer(1).default(10),
    initial_delay: duration.pipe(z.number().min(10, 'at least 10ms')).default(1_000),
    max_delay: duration.default(300_000),
  })
  .refine((r) => r.max_delay >= r.initial_delay, { message: 'max_delay must not be below initial_delay', path: ['max_delay'] })
  .prefault({});

// --- Airflow instances --------------------------------------------------------------

const airflowAuth = z.discriminatedUnion('type', [
  /** v2: exchanged for a JWT at /auth/token and renewed; v1: HTTP basic auth. */
  z.strictObject({ type: z.literal('password'), username: nonEmpty, password: nonEmpty }),
  z.strictObject({ type: z.literal('bearer'), token: nonEmpty }),
  z.strictObject({ type: z.literal('none') }),
]);

const airflowInstance = z.strictObject({
  url: z.url({ protocol: /^https?$/ }).transform((u) => u.replace(/\/+$/, '')),
  api: z.enum(['v2', 'v1']).default('v2'),
  auth: airflowAuth,
  /** Per request: connect, headers and body each. 0 would switch undici's timeouts off. */
  timeout: duration.pipe(z.number().min(100, 'at least 100ms')).default(10_000),
  max_in_flight: integer(1).default(8),
  retry,
  circuit_breaker: z
    .strictObject({
      failures: integer(1).default(5),
      cooldown: duration.default(30_000),
    })
    .prefault({}),
  /** Following triggered runs to their end (DESIGN §7); `false` turns it off. */
  track: z
    .union([
      z.literal(false),
      z.strictObject({
        /** One batched list request per round for every run this replica tracks on the instance. */
        interval: duration.pipe(z.number().min(100, 'at least 100ms')).default(15_000),
        /** A run not finished by then is no longer followed. */
        horizon: duration.default(7 * 86_400_000),
        /** State pushed by the Airflow plugin (airflow-plugin/), Standard Webhooks-signed with one of these. */
        push: z.strictObject({ path: z.string().regex(/^\/[A-Za-z0-9._~\/-]*$/, 'must start with / and contain only URL path characters').optional(), secrets: z.array(nonEmpty).min(1, 'give at least one secret') }).optional(),
      }),
    ])
    .prefault({}),
});

// --- Routes ---------------------------------------------------------------------------

const pattern = z.union([nonEmpty, z.array(nonEmpty).min(1)]);

/** A string or tree of templates, compiled here so a syntax error is a config error with its path. */
const toTemplate = (value: unknown, ctx: z.RefinementCtx): Template => {
  const compiled = compile(value);
  if (compiled.ok) return compiled.template;
  for (const problem of compiled.problems) ctx.addIssue({ code: 'custom', path: problem.path, message: problem.message });
  return z.NEVER;
};
const stringTemplate = z.string().transform(toTemplate);

const where = z.string().transform((text, ctx) => {
  const compiled = compileWhere(text);
  if (compiled.ok) return compiled.where;
  ctx.addIssue({ code: 'custom', message: compiled.message });
  return z.NEVER;
});

const match = z
  .strictObject({
    ...(Object.fromEntries(Object.keys(MATCH_FIELDS).map((f) => [f, pattern.optional()])) as Record<MatchField, z.ZodOptional<typeof pattern>>),
    tags: z.record(z.string(), pattern).optional(),
    where: where.optional(),
  })
  .transform(({ tags, where: condition, ...fields }) => {
    const tests: FieldTest[] = [];
    for (const [field, value] of Object.entries(fields) as [MatchField, z.output<typeof pattern> | undefined][]) {
      if (value !== undefined) tests.push({ field, read: MATCH_FIELDS[field], pattern: value, test: compilePattern(value) });
    }
    for (const [key, value] of Object.entries(tags ?? {})) {
      tests.push({ field: `tags.${key}`, read: (e) => own(e.data.tags, key), pattern: value, test: compilePattern(value) });
    }
    return { tests, where: condition };
  });

export const DEFAULT_DAG_RUN_ID = 'planasonix__{{ data.run_id }}__{{ route.name }}';

const trigger = z.strictObject({
  airflow: nonEmpty.default('default'),
  dag_id: z.string().regex(/^[A-Za-z0-9_.-]{1,250}$/, 'not a valid Airflow dag_id'),
  conf: z.record(z.string(), z.unknown()).transform(toTemplate).prefault({}),
  dag_run_id: stringTemplate.prefault(DEFAULT_DAG_RUN_ID),
  note: stringTemplate.optional(),
  /** Rendered, then sent as ISO 8601; null (Airflow picks "now"-less manual runs) when absent. */
  logical_date: stringTemplate.optional(),
});

/** An Airflow asset (dataset) event instead of a DAG run: `uri` (looked up) or `asset_id`. */
const assetEvent = z
  .strictObject({
    airflow: nonEmpty.default('default'),
    uri: stringTemplate.optional(),
    asset_id: integer(1).optional(),
    extra: z.record(z.string(), z.unknown()).transform(toTemplate).prefault({}),
  })
  .refine((a) => (a.uri === undefined) !== (a.asset_id === undefined), { message: 'give exactly one of uri or asset_id', path: ['uri'] });

const route = z
  .strictObject({
    name: z.string().regex(/^[A-Za-z0-9_.-]{1,100}$/, 'route names use letters, digits, _, . and -'),
    match,
    trigger: trigger.optional(),
    asset_event: assetEvent.optional(),
    /** Lets a static cycle through this route start (a warning); lineage and the breaker bound it. */
    allow_cycle: z.boolean().default(false),
    /** SLA of the triggered run, from the trigger: marked once when missed (DESIGN §7). */
    expect: z.strictObject({ started_within: duration.optional(), finished_within: duration.optional() }).optional(),
  })
  .refine((r) => (r.trigger === undefined) !== (r.asset_event === undefined), { message: 'give exactly one of trigger or asset_event', path: ['trigger'] })
  // One shape for the rest of the bridge: what the route starts, and where.
  .transform(({ trigger: t, asset_event: a, ...rest }) => ({
    ...rest,
    target: t ? ({ kind: 'dag_run', ...t } as const) : ({ kind: 'asset_event', ...a! } as const),
  }));

// --- Loop guard ---------------------------------------------------------------------

const pipelineRef = z.strictObject({ pipeline_id: nonEmpty });
const edgeEnd = z.union([z.strictObject({ dag_id: nonEmpty }), pipelineRef]);

const loopGuard = z.strictObject({
  max_depth: integer(1).default(5),
  breaker: z
    .strictObject({
      max_triggers: integer(1).default(30),
      window: duration.default(600_000),
    })
    .prefault({}),
  /** The forward integration: which DAGs start which pipelines, and Planasonix's own chaining. */
  edges: z
    .array(
      z.strictObject({ from: edgeEnd, to: pipelineRef }),
    )
    .default([]),
});

const dispatch = z.strictObject({
  /** A job claimed by a process that died is claimed again after this. */
  lease: duration.default(30_000),
  /** How often due retries are looked for; new jobs are dispatched at once, not polled. */
  poll_interval: duration.pipe(z.number().min(10, 'at least 10ms')).default(1_000),
});

// --- Outbound notifications (DESIGN §8) -------------------------------------------

const notifyTarget = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_.-]{1,100}$/, 'notification target names use letters, digits, _, . and -'),
  url: z
    .url({ protocol: /^https?$/ })
    .refine(httpsOrLoopback, `${HTTPS_OR_LOOPBACK}: notifications carry run details and a signature`),
  format: z.enum(['standard-webhooks', 'slack']).default('standard-webhooks'),
  /** standard-webhooks: the v1 HMAC secret, `whsec_` prefix optional. */
  secret: nonEmpty.optional(),
  on: z
    .array(
      z.string().superRefine((t, ctx) => {
        if (!(NOTIFY_TYPES as readonly string[]).includes(t)) ctx.addIssue({ code: 'custom', message: `unknown type "${t}" (one of: ${NOTIFY_TYPES.join(', ')})` });
      }),
    )
    .min(1, 'give at least one type')
    .default([...NOTIFY_TYPES])
    .transform((types) => types as (typeof NOTIFY_TYPES)[number][]),
  /** Only notifications about these routes' jobs (breaker openings included); all when absent. */
  routes: z.array(nonEmpty).optional(),
  retry,
  timeout: duration.pipe(z.number().min(100, 'at least 100ms')).default(10_000),
  circuit_breaker: z.strictObject({ failures: integer(1).default(5), cooldown: duration.default(30_000) }).prefault({}),
});

const retention = z.strictObject({
  /** An event whose jobs are all done or blocked (or that has none), with its jobs and attempts. */
  events: duration.default(30 * 86_400_000),
  /** Events with a dead-lettered job that was not replayed: kept this long after the job died. */
  dead: duration.default(90 * 86_400_000),
  /** Delivery ids kept after their event is pruned, so a redelivery is still a duplicate. */
  dedupe: duration.default(7 * 86_400_000),
  /** How often a prune round runs (each in small batches). */
  interval: duration.pipe(z.number().min(100, 'at least 100ms')).default(600_000),
});

export const configSchema = z
  .strictObject({
    server: z
      .strictObject({
        host: nonEmpty.default('0.0.0.0'),
        port: integer(0).pipe(z.number().max(65535)).default(8787),
        body_limit: size.default(256 * 1024),
        /** Verified deliveries per source (a source may set its own). */
        rate_limit: rateLimit.default({ window: 60_000, max: 1200 }),
        /** Requests that fail verification, per client address: their own budget, so junk cannot spend the sender's. */
        unverified_limit: rateLimit.default({ window: 60_000, max: 120 }),
        /** Shared counts for several replicas (express-rate-limit's Redis store); in memory without. */
        rate_limit_redis: z.url({ protocol: /^rediss?$/ }).optional(),
        /** Express `trust proxy`: set when a load balancer adds X-Forwarded-For, so limits are per client. */
        trust_proxy: trustProxy.default(false),
        /** Below the usual 10 s a container runtime waits before SIGKILL. */
        shutdown_timeout: duration.default(8_000),
        /** Whole request, headers included: a slow sender cannot hold a connection and its buffer. */
        request_timeout: duration.default(30_000),
        max_connections: integer(1).default(1024),
      })
      .prefault({}),
    store: z
      .strictObject({
        url: z
          .string()
          .regex(/^(sqlite:.+|postgres(ql)?:\/\/.+)$/, 'use sqlite:<path> (one process) or postgres://… (several replicas)')
          .refine((u) => !/^sqlite::memory:|mode=memory/.test(u), 'an in-memory database would acknowledge events it then loses; give a file path')
          .default('sqlite:./data/bridge.db'),
        /** better-sqlite3 waits synchronously: keep this short so a foreign lock cannot freeze the process. */
        busy_timeout: duration.default(1_000),
        /** PostgreSQL connections per replica. */
        pool_size: integer(1).default(10),
        /** What is pruned and when (README "Retention and storage size"); `false` keeps everything. Reloadable. */
        retention: z.union([z.literal(false), retention]).prefault({}),
      })
      .prefault({}),
    log: z.strictObject({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') }).prefault({}),
    sources: z.record(z.string().regex(/^[A-Za-z0-9_-]+$/, 'source names use letters, digits, _ and -'), source),
    airflow: z.record(z.string().regex(/^[A-Za-z0-9_-]+$/, 'Airflow instance names use letters, digits, _ and -'), airflowInstance).default({}),
    routes: z.array(route).default([]),
    dispatch: dispatch.prefault({}),
    loop_guard: loopGuard.prefault({}),
    /** Who may use /v1 besides BRIDGE_ADMIN_TOKEN: static tokens and/or JWTs from a JWKS. Reloadable. */
    admin: z
      .strictObject({
        tokens: z.array(adminToken).default([]),
        jwks_url: z
          .url({ protocol: /^https?$/ })
          .refine(httpsOrLoopback, `${HTTPS_OR_LOOPBACK}: keys fetched in clear text could be swapped for an attacker's`)
          .optional(),
        issuer: nonEmpty.optional(),
        audience: nonEmpty.optional(),
      })
      .superRefine((a, ctx) => {
        if (a.jwks_url === undefined) return;
        for (const key of ['issuer', 'audience'] as const) {
          if (a[key] === undefined) ctx.addIssue({ code: 'custom', path: [key], message: 'required with jwks_url: without it, a token minted for another service by the same IdP would pass' });
        }
      })
      .optional(),
    /** Where the bridge tells what happened (DESIGN §8). Reloadable. */
    notify: z.array(notifyTarget).default([]),
    /** A separate listener for /metrics, so the webhook port can stay public-only. */
    metrics: z
      .strictObject({
        host: nonEmpty.default('127.0.0.1'),
        port: integer(0).pipe(z.number().max(65535)),
        path: z.string().regex(/^\/[A-Za-z0-9._~\/-]*$/).default('/metrics'),
      })
      .optional(),
  })
  .superRefine((config, ctx) => {
    const seen = new Map<string, string>();
    for (const [name, src] of Object.entries(config.sources)) {
      const other = seen.get(src.path);
      if (other) ctx.addIssue({ code: 'custom', path: ['sources', name, 'path'], message: `same path as source "${other}"` });
      seen.set(src.path, name);
    }
    for (const [name, instance] of Object.entries(config.airflow)) {
      if (instance.track === false || !instance.track.push) continue;
      const path = instance.track.push.path ?? `/webhooks/airflow/${name}`;
      const other = seen.get(path);
      if (other) ctx.addIssue({ code: 'custom', path: ['airflow', name, 'track', 'push', 'path'], message: `same path as source "${other}"` });
    }
    const kept = config.store.retention;
    if (kept !== false) {
      // A prune takes the jobs it deletes out of their pair's breaker count: one pruned while
      // still inside the window would stop counting against the pair's limit.
      const window = config.loop_guard.breaker.window;
      for (const key of ['events', 'dead'] as const) {
        if (kept[key] < window) {
          ctx.addIssue({ code: 'custom', path: ['store', 'retention', key], message: `shorter than loop_guard.breaker.window (${window / 1000}s): triggers pruned inside the window would no longer count against their pipeline → DAG pair` });
        }
      }
      // A redelivery signed within a source's tolerance must still meet its delivery id.
      for (const [name, src] of Object.entries(config.sources)) {
        if (kept.dedupe < src.verify.tolerance) {
          ctx.addIssue({ code: 'custom', path: ['store', 'retention', 'dedupe'], message: `shorter than sources.${name}.verify.tolerance (${src.verify.tolerance / 1000}s): a redelivery inside the tolerance could be accepted twice` });
        }
      }
    }
    if (Object.keys(config.sources).length === 0) {
      ctx.addIssue({ code: 'custom', path: ['sources'], message: 'configure at least one source' });
    }
    for (const [name, instance] of Object.entries(config.airflow)) {
      // An attempt may take a login, the trigger and a pause check, each up to `timeout`.
      if (config.dispatch.lease < 3 * instance.timeout) {
        ctx.addIssue({ code: 'custom', path: ['dispatch', 'lease'], message: `must be at least 3 × airflow.${name}.timeout (${(3 * instance.timeout) / 1000}s), or a slow attempt could be claimed twice` });
      }
    }
    const routeNames = new Set(config.routes.map((r) => r.name));
    const targets = new Set<string>();
    config.notify.forEach((t, i) => {
      if (targets.has(t.name)) ctx.addIssue({ code: 'custom', path: ['notify', i, 'name'], message: `another notification target is already named "${t.name}"` });
      targets.add(t.name);
      if (t.format === 'standard-webhooks') {
        if (t.secret === undefined) ctx.addIssue({ code: 'custom', path: ['notify', i, 'secret'], message: 'required for format standard-webhooks (whsec_<base64>)' });
        else {
          const key = decodeBase64(t.secret.replace(/^whsec_/, ''));
          if (!key) ctx.addIssue({ code: 'custom', path: ['notify', i, 'secret'], message: 'not base64 (expected whsec_<base64>)' });
          else if (key.length < 16) ctx.addIssue({ code: 'custom', path: ['notify', i, 'secret'], message: `only ${key.length} bytes: use at least 16 (openssl rand -base64 32)` });
        }
      }
      t.routes?.forEach((r, k) => {
        if (!routeNames.has(r)) ctx.addIssue({ code: 'custom', path: ['notify', i, 'routes', k], message: `no route "${r}"` });
      });
    });
    const names = new Set<string>();
    config.routes.forEach((r, i) => {
      if (names.has(r.name)) ctx.addIssue({ code: 'custom', path: ['routes', i, 'name'], message: `another route is already named "${r.name}"` });
      names.add(r.name);
      if (!(r.target.airflow in config.airflow)) {
        const known = Object.keys(config.airflow);
        const key = r.target.kind === 'dag_run' ? 'trigger' : 'asset_event';
        ctx.addIssue({ code: 'custom', path: ['routes', i, key, 'airflow'], message: `no Airflow instance "${r.target.airflow}" under airflow: (${known.length ? `configured: ${known.join(', ')}` : 'none configured'})` });
      } else if (r.target.kind === 'asset_event' && r.target.asset_id !== undefined && config.airflow[r.target.airflow]!.api === 'v1') {
        ctx.addIssue({ code: 'custom', path: ['routes', i, 'asset_event', 'asset_id'], message: 'Airflow 2 (api v1) takes dataset events by uri only' });
      }
    });
  });

export type Config = z.output<typeof configSchema>;
export type SourceConfig = Config['sources'][string];
export type VerifyConfig = z.output<typeof verifySchema>;
export type RateLimitConfig = z.output<typeof rateLimit>;
export type AirflowConfig = z.output<typeof airflowInstance>;
export type RouteConfig = z.output<typeof route>;
export type LoopGuardConfig = z.output<typeof loopGuard>;
export type NotifyTargetConfig = z.output<typeof notifyTarget>;

export function sqlitePath(url: string): string {
  return (sqliteUrl.exec(url)?.[1] ?? '').replace(/^\/\/(?=\/)/, '');
}
