/**
 * Smoke script for harness.ts (not a test file). Starts a real Airflow, exercises the REST API
 * with plain fetch and prints every observation as one JSON line (prefixed "OBS ").
 *
 *   cd /tmp && npx --yes tsx /work/main/test/airflow/harness-smoke.ts 3
 *   cd /tmp && npx --yes tsx /work/main/test/airflow/harness-smoke.ts 2
 *
 * Env: SMOKE_VERBOSE=1 streams all Airflow process output to stderr.
 */
import { startAirflow, type StartedAirflow } from './harness.js';

const major = Number(process.argv[2] ?? '3') as 2 | 3;
if (major !== 2 && major !== 3) {
  console.error('usage: harness-smoke.ts <3|2>');
  process.exit(2);
}
const JWT_EXPIRATION = 8;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** JSON.stringify with sorted object keys (Airflow 2 returns keys sorted). */
const canon = (v: unknown): string =>
  JSON.stringify(v, (_k, x) =>
    x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : 1))) : x,
  );

function obs(step: string, data: unknown) {
  console.log(`OBS ${JSON.stringify({ step, ...(data as object) })}`);
}

async function call(
  method: string,
  url: string,
  headers: Record<string, string>,
  body?: unknown,
): Promise<{ status: number; contentType: string | null; body: any; text: string; headers: Headers }> {
  const res = await fetch(url, {
    method,
    headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    body: body !== undefined ? JSON.stringify(body) : null,
  });
  const text = await res.text();
  let parsed: any = undefined;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, contentType: res.headers.get('content-type'), body: parsed, text, headers: res.headers };
}

async function v3(af: StartedAirflow) {
  const u = af.url;
  const token = async () => {
    const r = await call('POST', `${u}/auth/token`, {}, { username: af.username, password: af.password });
    return r.body.access_token as string;
  };

  const tok = await call('POST', `${u}/auth/token`, {}, { username: af.username, password: af.password });
  const claims = JSON.parse(Buffer.from(tok.body.access_token.split('.')[1], 'base64url').toString());
  obs('token', { status: tok.status, contentType: tok.contentType, bodyKeys: Object.keys(tok.body), jwtClaims: Object.keys(claims), ttl: claims.exp - claims.iat });
  const H = { authorization: `Bearer ${tok.body.access_token}` };

  const runId = `smoke-${Date.now()}`;
  const conf = { event: 'push', nested: { n: 1, list: [1, 'two', null], ok: true } };
  const trig = await call('POST', `${u}/api/v2/dags/record_conf/dagRuns`, H, { dag_run_id: runId, logical_date: null, conf, note: 'from smoke' });
  obs('trigger', { status: trig.status, keys: Object.keys(trig.body ?? {}), state: trig.body?.state, conf: trig.body?.conf, note: trig.body?.note, logical_date: trig.body?.logical_date, run_type: trig.body?.run_type, triggered_by: trig.body?.triggered_by });

  const dup = await call('POST', `${u}/api/v2/dags/record_conf/dagRuns`, H, { dag_run_id: runId, logical_date: null, conf, note: 'from smoke' });
  obs('trigger-duplicate', { status: dup.status, contentType: dup.contentType, body: dup.body });

  const noLd = await call('POST', `${u}/api/v2/dags/record_conf/dagRuns`, H, { dag_run_id: `${runId}-nold`, conf });
  obs('trigger-without-logical_date', { status: noLd.status, body: noLd.body });

  const missing = await call('POST', `${u}/api/v2/dags/no_such_dag/dagRuns`, H, { dag_run_id: 'x', logical_date: null, conf: {}, note: null });
  obs('trigger-missing-dag', { status: missing.status, body: missing.body });

  const paused = await call('POST', `${u}/api/v2/dags/paused_dag/dagRuns`, H, { dag_run_id: `${runId}-paused`, logical_date: null, conf: {}, note: null });
  const pausedDag = await call('GET', `${u}/api/v2/dags/paused_dag`, H);
  obs('trigger-paused-dag', { status: paused.status, state: paused.body?.state, dagIsPaused: pausedDag.body?.is_paused });

  const t0 = Date.now();
  let state = '';
  for (;;) {
    const r = await call('GET', `${u}/api/v2/dags/record_conf/dagRuns/${runId}`, { authorization: `Bearer ${await token()}` });
    state = r.body?.state;
    if (state === 'success' || state === 'failed' || Date.now() - t0 > 120_000) break;
    await sleep(500);
  }
  obs('run-finished', { state, msFromTrigger: Date.now() - t0 });
  const H2 = { authorization: `Bearer ${await token()}` };
  const xcom = await call('GET', `${u}/api/v2/dags/record_conf/dagRuns/${runId}/taskInstances/record/xcomEntries/return_value`, H2);
  obs('xcom', { status: xcom.status, keys: Object.keys(xcom.body ?? {}), value: xcom.body?.value, equalsConf: canon(xcom.body?.value) === canon(conf) });
  const xcomS = await call('GET', `${u}/api/v2/dags/record_conf/dagRuns/${runId}/taskInstances/record/xcomEntries/return_value?stringify=true`, H2);
  obs('xcom-stringify', { status: xcomS.status, value: xcomS.body?.value });
  const paused2 = await call('GET', `${u}/api/v2/dags/paused_dag/dagRuns/${runId}-paused`, H2);
  obs('paused-run-later', { state: paused2.body?.state });

  // auth failures
  const wrong = await call('POST', `${u}/auth/token`, {}, { username: af.username, password: 'wrong' });
  obs('token-wrong-password', { status: wrong.status, body: wrong.body });
  const noAuth = await call('GET', `${u}/api/v2/dags?limit=1`, {});
  obs('no-auth-header', { status: noAuth.status, body: noAuth.body, wwwAuthenticate: noAuth.headers.get('www-authenticate') });
  const garbage = await call('GET', `${u}/api/v2/dags?limit=1`, { authorization: 'Bearer not-a-jwt' });
  obs('garbage-token', { status: garbage.status, body: garbage.body });
  const shortTok = await token();
  const before = await call('GET', `${u}/api/v2/dags?limit=1`, { authorization: `Bearer ${shortTok}` });
  await sleep((JWT_EXPIRATION + 1) * 1000);
  const expired = await call('GET', `${u}/api/v2/dags?limit=1`, { authorization: `Bearer ${shortTok}` });
  obs('expired-token', { statusBefore: before.status, status: expired.status, body: expired.body, text: expired.text, wwwAuthenticate: expired.headers.get('www-authenticate') });
  const expiredTrig = await call('POST', `${u}/api/v2/dags/record_conf/dagRuns`, { authorization: `Bearer ${shortTok}` }, { dag_run_id: `${runId}-exp`, logical_date: null, conf: {}, note: null });
  obs('expired-token-trigger', { status: expiredTrig.status, body: expiredTrig.body });

  // assets
  const H3 = { authorization: `Bearer ${await token()}` };
  const assets = await call('GET', `${u}/api/v2/assets?uri_pattern=${encodeURIComponent('planasonix://bridge')}`, H3);
  const asset = assets.body?.assets?.[0];
  obs('assets-list', { status: assets.status, total: assets.body?.total_entries, assetKeys: Object.keys(asset ?? {}), id: asset?.id, uri: asset?.uri, name: asset?.name });
  const ev = await call('POST', `${u}/api/v2/assets/events`, H3, { asset_id: asset?.id, extra: { source: 'smoke', n: 1 } });
  obs('asset-event', { status: ev.status, body: ev.body });
  const evMissing = await call('POST', `${u}/api/v2/assets/events`, H3, { asset_id: 999999, extra: {} });
  obs('asset-event-missing', { status: evMissing.status, body: evMissing.body });
  const noMatch = await call('GET', `${u}/api/v2/assets?uri_pattern=${encodeURIComponent('does-not-exist')}`, H3);
  obs('assets-list-no-match', { status: noMatch.status, body: noMatch.body });
}

async function v2(af: StartedAirflow) {
  const u = af.url;
  const H = { authorization: `Basic ${Buffer.from(`${af.username}:${af.password}`).toString('base64')}` };
  const runId = `smoke-${Date.now()}`;
  const conf = { event: 'push', nested: { n: 1, list: [1, 'two', null], ok: true } };

  const ldNull = await call('POST', `${u}/api/v1/dags/record_conf/dagRuns`, H, { dag_run_id: `${runId}-ldnull`, logical_date: null, conf, note: 'from smoke' });
  obs('trigger-logical_date-null', { status: ldNull.status, contentType: ldNull.contentType, body: ldNull.body });

  const trig = await call('POST', `${u}/api/v1/dags/record_conf/dagRuns`, H, { dag_run_id: runId, conf, note: 'from smoke' });
  obs('trigger', { status: trig.status, keys: Object.keys(trig.body ?? {}), state: trig.body?.state, conf: trig.body?.conf, note: trig.body?.note, logical_date: trig.body?.logical_date });

  const dup = await call('POST', `${u}/api/v1/dags/record_conf/dagRuns`, H, { dag_run_id: runId, conf, note: 'from smoke' });
  obs('trigger-duplicate', { status: dup.status, contentType: dup.contentType, body: dup.body });

  const missing = await call('POST', `${u}/api/v1/dags/no_such_dag/dagRuns`, H, { dag_run_id: 'x', conf: {} });
  obs('trigger-missing-dag', { status: missing.status, contentType: missing.contentType, body: missing.body });

  const paused = await call('POST', `${u}/api/v1/dags/paused_dag/dagRuns`, H, { dag_run_id: `${runId}-paused`, conf: {} });
  const pausedDag = await call('GET', `${u}/api/v1/dags/paused_dag`, H);
  obs('trigger-paused-dag', { status: paused.status, state: paused.body?.state, dagIsPaused: pausedDag.body?.is_paused });

  const t0 = Date.now();
  let state = '';
  for (;;) {
    const r = await call('GET', `${u}/api/v1/dags/record_conf/dagRuns/${runId}`, H);
    state = r.body?.state;
    if (state === 'success' || state === 'failed' || Date.now() - t0 > 120_000) break;
    await sleep(500);
  }
  obs('run-finished', { state, msFromTrigger: Date.now() - t0 });
  const xcom = await call('GET', `${u}/api/v1/dags/record_conf/dagRuns/${runId}/taskInstances/record/xcomEntries/return_value`, H);
  obs('xcom-default', { status: xcom.status, keys: Object.keys(xcom.body ?? {}), value: xcom.body?.value });
  const xcomJ = await call('GET', `${u}/api/v1/dags/record_conf/dagRuns/${runId}/taskInstances/record/xcomEntries/return_value?stringify=false`, H);
  obs('xcom-stringify-false', { status: xcomJ.status, value: xcomJ.body?.value, equalsConf: canon(xcomJ.body?.value) === canon(conf) });
  const paused2 = await call('GET', `${u}/api/v1/dags/paused_dag/dagRuns/${runId}-paused`, H);
  obs('paused-run-later', { state: paused2.body?.state });

  const wrongH = { authorization: `Basic ${Buffer.from(`${af.username}:wrong`).toString('base64')}` };
  const wrong = await call('GET', `${u}/api/v1/dags?limit=1`, wrongH);
  obs('wrong-password-list', { status: wrong.status, contentType: wrong.contentType, body: wrong.body, wwwAuthenticate: wrong.headers.get('www-authenticate') });
  const wrongTrig = await call('POST', `${u}/api/v1/dags/record_conf/dagRuns`, wrongH, { dag_run_id: `${runId}-wrong`, conf: {} });
  obs('wrong-password-trigger', { status: wrongTrig.status, body: wrongTrig.body, wwwAuthenticate: wrongTrig.headers.get('www-authenticate') });
  const noAuth = await call('POST', `${u}/api/v1/dags/record_conf/dagRuns`, {}, { dag_run_id: `${runId}-noauth`, conf: {} });
  obs('no-auth-trigger', { status: noAuth.status, body: noAuth.body, wwwAuthenticate: noAuth.headers.get('www-authenticate') });

  const ds = await call('GET', `${u}/api/v1/datasets?uri_pattern=${encodeURIComponent('planasonix://bridge')}`, H);
  const d = ds.body?.datasets?.[0];
  obs('datasets-list', { status: ds.status, total: ds.body?.total_entries, keys: Object.keys(d ?? {}), id: d?.id, uri: d?.uri });
  const ev = await call('POST', `${u}/api/v1/datasets/events`, H, { dataset_uri: d?.uri, extra: { source: 'smoke', n: 1 } });
  obs('dataset-event', { status: ev.status, body: ev.body });
  const evMissing = await call('POST', `${u}/api/v1/datasets/events`, H, { dataset_uri: 'planasonix://missing', extra: {} });
  obs('dataset-event-missing', { status: evMissing.status, body: evMissing.body });
}

async function main() {
  const verbose = process.env.SMOKE_VERBOSE === '1';
  const t0 = Date.now();
  const af = await startAirflow({
    major,
    ...(major === 3 ? { jwtExpirationSeconds: JWT_EXPIRATION } : {}),
    log: (l) => {
      if (verbose || l.startsWith('[harness]') || l.startsWith('[install')) console.error(l);
    },
  });
  obs('started', { version: af.version, url: af.url, home: af.home, venv: af.venv, startupMs: af.startupMs, wallMs: Date.now() - t0 });
  try {
    if (major === 3) await v3(af);
    else await v2(af);
  } finally {
    const ts = Date.now();
    await af.stop();
    obs('stopped', { stopMs: Date.now() - ts });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
