import { decodeJwt } from 'jose';
import { errors as undiciErrors, Pool } from 'undici';
import type { AirflowConfig } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import type { AssetRequest, TriggerRequest } from '../route/route.js';
import { parseRetryAfter } from './backoff.js';
import { describeBody, hintFor, provesAssetEvent, provesRun, type Proof } from './proof.js';

/** What one trigger attempt came to, in DESIGN §5's terms. */
export type TriggerOutcome =
  | { kind: 'triggered'; status: number; dagRunId: string; state: string | null; detail: string }
  | { kind: 'exists'; status: number; state: string | null; detail: string }
  | { kind: 'retry'; status: number | null; detail: string; retryAfterMs?: number }
  | { kind: 'dead'; status: number | null; detail: string };

export interface AirflowClient {
  readonly name: string;
  /** Never throws; `signal` bounds the whole attempt (login, trigger, 409 check). */
  trigger(dagId: string, request: TriggerRequest, signal?: AbortSignal): Promise<TriggerOutcome>;
  /** Posts an asset (v1: dataset) event; never throws. */
  assetEvent(request: AssetRequest, signal?: AbortSignal): Promise<TriggerOutcome>;
  /** True the first time (per TTL) a DAG is found paused; one check per DAG at a time. */
  pausedOnce(dagId: string): Promise<boolean>;
  /**
   * An authenticated call under `/api/<v>` (`path` starts with `/`), for other stages
   * (run tracking); credentials renewed as for triggers. Never throws.
   */
  call(method: 'GET' | 'POST', path: string, body: unknown, signal?: AbortSignal): Promise<{ status: number; text: string } | { kind: 'failed'; detail: string }>;
  /** Reachability for /readyz: never throws. */
  health(): Promise<{ reachable: boolean; detail: string }>;
  close(): Promise<void>;
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

const RETRYABLE = new Set([408, 425, 429]);
const EXCERPT = 500;
const PAUSE_CHECK_TTL = 10 * 60_000;
/** /readyz must answer quickly even when Airflow hangs. */
const HEALTH_TIMEOUT = 2_000;
/** Renew the JWT this long before it expires (or a tenth of its life, if shorter). */
const RENEW_BEFORE = 30_000;

export interface ClientDeps {
  clock?: () => number;
  logger?: Logger;
}

export function createAirflowClient(name: string, config: AirflowConfig, deps: ClientDeps = {}): AirflowClient {
  const clock = deps.clock ?? Date.now;
  const url = new URL(config.url);
  const prefix = url.pathname.replace(/\/+$/, '');
  const pool = new Pool(url.origin, {
    connections: config.max_in_flight,
    connectTimeout: config.timeout,
    headersTimeout: config.timeout,
    bodyTimeout: config.timeout,
  });
  const api = `${prefix}/api/${config.api}`;
  const pausedChecked = new Map<string, { at: number; check: Promise<boolean> }>();
  const assetIds = new Map<string, number>();

  async function send(method: 'GET' | 'POST', path: string, body: unknown, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<Answer> {
    const res = await pool.request({
      method,
      path,
      ...(signal ? { signal } : {}),
      headers: { accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
  }

  // --- credentials -------------------------------------------------------------------
  let token: { value: string; renewAt: number } | undefined;
  /** Never to appear in an excerpt of an answer. */
  const secrets = (): string[] => [
    ...(config.auth.type === 'bearer' ? [config.auth.token] : []),
    ...(config.auth.type === 'password' ? [config.auth.password] : []),
    ...(token ? [token.value] : []),
  ];
  /** A 2xx that proves nothing (DESIGN §7): dead, naming the likely misconfiguration. */
  const unproven = (what: string, status: number, proof: Extract<Proof<unknown>, { ok: false }>): TriggerOutcome => ({
    kind: 'dead',
    status,
    detail: `${what} answered ${status} ${proof.problem}: ${hintFor(name, proof.hint)}`,
  });
  let login: Promise<LoginResult> | undefined;
  type LoginResult = { ok: true; value: string } | { ok: false; outcome: TriggerOutcome };

  /** `rejected`: the token Airflow just refused; if another request already replaced it, reuse the new one. */
  async function freshToken(rejected: string | undefined, signal: AbortSignal | undefined): Promise<LoginResult> {
    if (config.auth.type !== 'password') return { ok: true, value: '' };
    if (token && token.value !== rejected && clock() < token.renewAt) return { ok: true, value: token.value };
    // One login at a time: concurrent jobs wait for the same answer.
    login ??= (async (): Promise<LoginResult> => {
      const auth = config.auth as Extract<AirflowConfig['auth'], { type: 'password' }>;
      let answer: Answer;
      try {
        answer = await send('POST', `${prefix}/auth/token`, { username: auth.username, password: auth.password }, {}, signal);
      } catch (err) {
        return { ok: false, outcome: { kind: 'retry', status: null, detail: `POST /auth/token: ${networkDetail(err)}` } };
      }
      if (answer.status === 200 || answer.status === 201) {
        const body = parseJson(answer.text) as { access_token?: string; jwt_token?: string } | undefined;
        const value = body?.access_token ?? body?.jwt_token;
        if (value) {
          token = { value, renewAt: renewAt(value) };
          return { ok: true, value };
        }
        const proof = { ok: false as const, problem: `but not with a token (${describeBody(answer, secrets())})`, hint: 'not-api' as const };
        return { ok: false, outcome: unproven('POST /auth/token', answer.status, proof) };
      }
      const outcome = classify(answer, 'POST /auth/token', clock);
      if (answer.status === 401 || answer.status === 403) {
        return { ok: false, outcome: { kind: 'dead', status: answer.status, detail: `Airflow "${name}" refused the configured username/password at POST /auth/token (${answer.status}: ${excerpt(answer.text)})` } };
      }
      return { ok: false, outcome: outcome.kind === 'retry' ? outcome : { ...outcome, kind: 'dead' } };
    })().finally(() => {
      login = undefined;
    });
    return login;
  }

  function renewAt(jwt: string): number {
    try {
      const { exp, iat } = decodeJwt(jwt);
      if (exp === undefined) return Number.POSITIVE_INFINITY;
      const life = iat === undefined ? Number.POSITIVE_INFINITY : (exp - iat) * 1000;
      return exp * 1000 - Math.min(RENEW_BEFORE, life / 10);
    } catch {
      // Not a JWT we can read: use it until Airflow answers 401.
      return Number.POSITIVE_INFINITY;
    }
  }

  function authHeader(bearer: string): Record<string, string> {
    switch (config.auth.type) {
      case 'none':
        return {};
      case 'bearer':
        return { authorization: `Bearer ${config.auth.token}` };
      case 'password':
        return config.api === 'v1'
          ? { authorization: `Basic ${Buffer.from(`${config.auth.username}:${config.auth.password}`).toString('base64')}` }
          : { authorization: `Bearer ${bearer}` };
    }
  }

  /** An authenticated call; on a 401 with a password login, logs in again once and retries. */
  async function authed(method: 'GET' | 'POST', path: string, body: unknown, signal: AbortSignal | undefined): Promise<Answer | TriggerOutcome> {
    const renewing = config.api === 'v2' && config.auth.type === 'password';
    let rejected: string | undefined;
    for (let round = 0; round < 2; round++) {
      const credential = renewing ? await freshToken(rejected, signal) : { ok: true as const, value: '' };
      if (!credential.ok) return credential.outcome;
      const answer = await send(method, path, body, authHeader(credential.value), signal);
      if (answer.status !== 401 || !renewing || round > 0) return answer;
      rejected = credential.value;
      deps.logger?.info({ airflow: name, detail: detailOf(answer.text) }, `Airflow "${name}" answered 401; logging in again`);
    }
    throw new Error('unreachable');
  }

  // --- the trigger ---------------------------------------------------------------------
  async function checkPaused(dagId: string): Promise<boolean> {
    try {
      const answer = await authed('GET', `${api}/dags/${encodeURIComponent(dagId)}`, undefined, AbortSignal.timeout(config.timeout));
      return 'text' in answer && answer.status === 200 && (parseJson(answer.text) as { is_paused?: boolean } | undefined)?.is_paused === true;
    } catch {
      return false; // only a warning is at stake; the run itself was accepted
    }
  }

  /**
   * A 409 says a run with this id — or, with a logical_date, a run for that date — exists.
   * Only the first means the trigger is done, so ask for the run by id.
   */
  async function confirmExisting(dagId: string, request: TriggerRequest, conflict: Answer, signal: AbortSignal | undefined): Promise<TriggerOutcome> {
    const path = `${api}/dags/${encodeURIComponent(dagId)}/dagRuns/${encodeURIComponent(request.dag_run_id)}`;
    const answer = await authed('GET', path, undefined, signal);
    if ('kind' in answer) return answer;
    if (answer.status === 200) {
      const proof = provesRun(answer, request.dag_run_id, secrets());
      if (!proof.ok) return unproven(`GET ${path} (after a 409)`, answer.status, proof);
      const state = proof.value.state;
      return { kind: 'exists', status: 409, state, detail: `run ${request.dag_run_id} already exists (${state ?? 'state unknown'})` };
    }
    if (answer.status === 404) {
      return { kind: 'dead', status: 409, detail: `Airflow answered 409 but has no run ${request.dag_run_id}: another run holds this logical_date? (${detailOf(conflict.text)})` };
    }
    return classify(answer, `GET ${path}`, clock);
  }

  /** Airflow 3 posts events by asset id: find it by uri once (`uri_pattern` is a substring match). */
  async function assetId(uri: string, signal: AbortSignal | undefined): Promise<number | TriggerOutcome> {
    const known = assetIds.get(uri);
    if (known !== undefined) return known;
    const path = `${api}/assets?uri_pattern=${encodeURIComponent(uri)}&limit=100`;
    const answer = await authed('GET', path, undefined, signal);
    if ('kind' in answer) return answer;
    if (answer.status !== 200) return classify(answer, `GET ${path}`, clock);
    const found = (parseJson(answer.text) as { assets?: { id: number; uri: string }[] } | undefined)?.assets?.find((a) => a.uri === uri);
    if (!found) return { kind: 'dead', status: 200, detail: `Airflow "${name}" has no asset with uri ${uri} (an asset exists once a DAG declares it)` };
    assetIds.set(uri, found.id);
    return found.id;
  }

  return {
    name,

    async assetEvent(request, signal) {
      try {
        let path: string;
        let body: Record<string, unknown>;
        if (config.api === 'v1') {
          if (!('uri' in request.asset)) return { kind: 'dead', status: null, detail: 'Airflow 2 takes dataset events by uri only' };
          path = `${api}/datasets/events`;
          body = { dataset_uri: request.asset.uri, extra: request.extra };
        } else {
          const id = 'asset_id' in request.asset ? request.asset.asset_id : await assetId(request.asset.uri, signal);
          if (typeof id !== 'number') return id;
          path = `${api}/assets/events`;
          body = { asset_id: id, extra: request.extra };
        }
        const answer = await authed('POST', path, body, signal);
        if ('kind' in answer) return answer;
        if (answer.status >= 200 && answer.status < 300) {
          const proof = provesAssetEvent(answer, config.api, secrets());
          if (!proof.ok) return unproven(`POST ${path}`, answer.status, proof);
          const id = proof.value.id;
          return { kind: 'triggered', status: answer.status, dagRunId: '', state: id !== null ? `asset event ${id}` : null, detail: excerpt(answer.text) };
        }
        if (answer.status === 401) return { kind: 'dead', status: 401, detail: `Airflow "${name}" answered 401 after renewing credentials: ${detailOf(answer.text)}` };
        return classify(answer, `POST ${path}`, clock);
      } catch (err) {
        return { kind: 'retry', status: null, detail: networkDetail(err) };
      }
    },

    async trigger(dagId, request, signal) {
      const path = `${api}/dags/${encodeURIComponent(dagId)}/dagRuns`;
      try {
        const answer = await authed('POST', path, bodyFor(config.api, request), signal);
        if ('kind' in answer) return answer;
        if (answer.status >= 200 && answer.status < 300) {
          const proof = provesRun(answer, request.dag_run_id, secrets());
          if (!proof.ok) return unproven(`POST ${path}`, answer.status, proof);
          return { kind: 'triggered', status: answer.status, dagRunId: request.dag_run_id, state: proof.value.state, detail: excerpt(answer.text) };
        }
        if (answer.status === 409) return await confirmExisting(dagId, request, answer, signal);
        if (answer.status === 401) {
          return { kind: 'dead', status: 401, detail: `Airflow "${name}" answered 401 after renewing credentials: ${detailOf(answer.text)}` };
        }
        return classify(answer, `POST ${path}`, clock);
      } catch (err) {
        return { kind: 'retry', status: null, detail: networkDetail(err) };
      }
    },

    pausedOnce(dagId) {
      const cached = pausedChecked.get(dagId);
      if (cached && clock() - cached.at < PAUSE_CHECK_TTL) return cached.check.then(() => false);
      const check = checkPaused(dagId);
      pausedChecked.set(dagId, { at: clock(), check });
      return check;
    },

    async call(method, path, body, signal) {
      try {
        const answer = await authed(method, `${api}${path}`, body, signal);
        return 'kind' in answer ? { kind: 'failed' as const, detail: answer.detail } : answer;
      } catch (err) {
        return { kind: 'failed' as const, detail: networkDetail(err) };
      }
    },

    async health() {
      const path = config.api === 'v2' ? `${prefix}/api/v2/monitor/health` : `${prefix}/health`;
      try {
        const answer = await send('GET', path, undefined, {}, AbortSignal.timeout(HEALTH_TIMEOUT));
        return { reachable: answer.status === 200, detail: answer.status === 200 ? 'ok' : `${path} answered ${answer.status}` };
      } catch (err) {
        return { reachable: false, detail: networkDetail(err) };
      }
    },

    close: () => pool.close(),
  };
}

/** v2's model is strict (exactly these keys); Airflow 2 rejects null for logical_date and note. */
function bodyFor(api: 'v1' | 'v2', request: TriggerRequest): Record<string, unknown> {
  if (api === 'v2') return { dag_run_id: request.dag_run_id, logical_date: request.logical_date, conf: request.conf, note: request.note };
  return {
    dag_run_id: request.dag_run_id,
    conf: request.conf,
    ...(request.logical_date === null ? {} : { logical_date: request.logical_date }),
    ...(request.note === null ? {} : { note: request.note }),
  };
}

function classify(answer: Answer, what: string, clock: () => number): Extract<TriggerOutcome, { kind: 'retry' | 'dead' }> {
  const detail = `${what} answered ${answer.status}: ${detailOf(answer.text)}`;
  if (RETRYABLE.has(answer.status) || answer.status >= 500) {
    const retryAfterMs = parseRetryAfter(answer.headers['retry-after'], clock());
    return { kind: 'retry', status: answer.status, detail, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) };
  }
  return { kind: 'dead', status: answer.status, detail };
}

/** FastAPI's `detail` (a string or validation errors) or RFC 7807's `title`/`detail`. */
function detailOf(text: string): string {
  const body = parseJson(text) as { detail?: unknown; title?: string } | undefined;
  if (body && body.detail !== undefined) {
    const detail = typeof body.detail === 'string' ? body.detail : JSON.stringify(body.detail);
    return excerpt(body.title && body.title !== detail ? `${body.title}: ${detail}` : detail);
  }
  return excerpt(text);
}

function networkDetail(err: unknown): string {
  if (err instanceof DOMException && (err.name === 'TimeoutError' || err.name === 'AbortError')) return 'timed out: the attempt ran past its lease';
  if (err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.BodyTimeoutError) return `timed out: ${err.message}`;
  if (err instanceof undiciErrors.ConnectTimeoutError) return `connect timed out: ${err.message}`;
  const cause = (err as { cause?: { code?: string; message?: string }; code?: string; message?: string }) ?? {};
  return `${cause.code ?? cause.cause?.code ?? 'network error'}: ${cause.message ?? String(err)}`;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function excerpt(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > EXCERPT ? `${flat.slice(0, EXCERPT)}…` : flat;
}
