// DESIGN §7: a trigger counts as done only when Airflow's answer proves the run exists.
// A 2xx from something in front of Airflow (an SSO login page, an empty answer, a cache)
// proves nothing; these checks say what the body would have to be, and what it was instead.

export interface Answered {
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/** What a 2xx body fell short of (`problem` reads after "answered 200 …"), or what it proved. */
export type Proof<T> = { ok: true; value: T } | { ok: false; problem: string; hint: 'not-api' | 'other' };

const EXCERPT = 60;

/** Airflow 3 (DAGRunResponse) and Airflow 2 (DAGRunSchema) both answer the run with `dag_run_id` and `state`. */
export function provesRun(answer: Answered, dagRunId: string, secrets: readonly string[]): Proof<{ state: string | null }> {
  const body = parseJson(answer.text);
  if (!isObject(body) || typeof body.dag_run_id !== 'string') {
    return { ok: false, problem: `but not with a DAG run (${describeBody(answer, secrets)})`, hint: 'not-api' };
  }
  if (body.dag_run_id !== dagRunId) {
    return { ok: false, problem: `with DAG run "${safeExcerpt(body.dag_run_id, secrets)}" instead of "${dagRunId}"`, hint: 'other' };
  }
  return { ok: true, value: { state: typeof body.state === 'string' ? body.state : null } };
}

/** Airflow 3 AssetEventResponse has `id` and `asset_id`; Airflow 2 DatasetEventSchema has `dataset_uri`/`dataset_id`. */
export function provesAssetEvent(answer: Answered, api: 'v1' | 'v2', secrets: readonly string[]): Proof<{ id: number | null }> {
  const body = parseJson(answer.text);
  const ok =
    isObject(body) &&
    (api === 'v2'
      ? typeof body.id === 'number' && typeof body.asset_id === 'number'
      : typeof body.dataset_uri === 'string' || typeof body.dataset_id === 'number');
  if (!ok) return { ok: false, problem: `but not with ${api === 'v2' ? 'an asset' : 'a dataset'} event (${describeBody(answer, secrets)})`, hint: 'not-api' };
  return { ok: true, value: { id: typeof body.id === 'number' ? body.id : null } };
}

/** The sentence a dead letter ends with: the configuration most likely at fault. */
export function hintFor(name: string, hint: 'not-api' | 'other'): string {
  return hint === 'not-api'
    ? `does airflow.${name}.url point at Airflow's API, not a login page or proxy?`
    : `does airflow.${name}.url point at Airflow's API, not a cache or proxy answering for it?`;
}

/** `content-type text/html; starts "<!DOCTYPE html>…"`, or `…; empty body`. */
export function describeBody(answer: Answered, secrets: readonly string[]): string {
  const raw = answer.headers['content-type'];
  const type = (Array.isArray(raw) ? raw[0] : raw)?.split(';')[0]?.trim();
  const kind = type ? `content-type ${safeExcerpt(type, secrets)}` : 'no content-type';
  const text = answer.text.trim();
  return text ? `${kind}; starts "${safeExcerpt(text, secrets)}"` : `${kind}; empty body`;
}

/** A short, single-line excerpt with the configured secrets and anything token-like blanked out. */
export function safeExcerpt(text: string, secrets: readonly string[]): string {
  let flat = text;
  for (const secret of secrets) if (secret.length >= 4) flat = flat.split(secret).join('***');
  flat = flat
    .replace(/eyJ[\w-]*\.[\w-]*(?:\.[\w-]*)?/g, '***') // JWTs
    .replace(/\b(Bearer|Basic)\s+[\w.~+/=-]+/gi, '$1 ***')
    .replace(/[\u0000-\u001f\u007f]+/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  return flat.length > EXCERPT ? `${flat.slice(0, EXCERPT)}…` : flat;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
