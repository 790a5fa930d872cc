import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { dispatchRig } from '../helpers/dispatch.js';
import { startFaultAirflow, type FaultAirflow } from './fault-airflow.js';

let airflow: FaultAirflow;
let rig: ReturnType<typeof dispatchRig> | undefined;
beforeEach(async () => {
  airflow = await startFaultAirflow();
});
afterEach(async () => {
  await rig?.close();
  rig = undefined;
  await airflow.close();
});

const DAG_RUNS = '/api/v2/dags/dbt_sales_models/dagRuns';

function start(extra: { retry?: string; timeout?: string; breaker?: string; auth?: string; api?: string; conf?: string } = {}) {
  rig = dispatchRig(`
airflow:
  default:
    url: ${airflow.url}
    api: ${extra.api ?? 'v2'}
    auth: ${extra.auth ?? '{ type: password, username: admin, password: admin }'}
    timeout: ${extra.timeout ?? '2s'}
    retry: ${extra.retry ?? '{ max_attempts: 5, initial_delay: 0.01s, max_delay: 0.05s }'}
    circuit_breaker: ${extra.breaker ?? '{ failures: 50, cooldown: 30s }'}
dispatch: { poll_interval: 0.02s, lease: 10s }
routes:
  - name: sales-to-dbt
    match: { type: run.succeeded, pipeline_id: pl_8f2a9c1d4e }
    trigger:
      dag_id: dbt_sales_models
      conf: ${extra.conf ?? `{ business_date: "{{ data.parameters.business_date | default: 'none' }}", run: "{{ data.run_id }}" }`}
      note: "Triggered by Planasonix run {{ data.run_id }}"
`);
  rig.dispatcher.start();
  return rig;
}

const triggers = () => airflow.seen.filter((s) => s.method === 'POST' && s.path === DAG_RUNS);

describe('dispatcher (against the fault-injection fake)', () => {
  it('sends exactly the v2 body, with the token from /auth/token, and stores done with Airflow\'s state', async () => {
    const r = start();
    const id = await r.submit({ data: { run_id: 'run_1', pipeline_id: 'pl_8f2a9c1d4e', status: 'succeeded', parameters: { business_date: '2026-11-23' } } });
    const [job] = await r.settled(id);
    expect(job).toMatchObject({ state: 'done', attempts: 1, airflowState: 'queued', dagRunId: 'planasonix__run_1__sales-to-dbt' });
    expect(triggers()).toHaveLength(1);
    expect(triggers()[0]).toEqual({
      method: 'POST',
      path: DAG_RUNS,
      authorization: 'Bearer token-1',
      body: {
        dag_run_id: 'planasonix__run_1__sales-to-dbt',
        logical_date: null,
        conf: { business_date: '2026-11-23', run: 'run_1', planasonix_bridge: { chain_id: expect.any(String), depth: 1, path: ['planasonix:pl_8f2a9c1d4e', 'airflow:dbt_sales_models'], event_id: expect.any(String), route: 'sales-to-dbt' } },
        note: 'Triggered by Planasonix run run_1',
      },
    });
    expect(Object.keys(triggers()[0]!.body as object)).toEqual(['dag_run_id', 'logical_date', 'conf', 'note']);
  });

  it('retries a 503 burst, honouring Retry-After, then lands once; every attempt is recorded', async () => {
    airflow.script(DAG_RUNS, { status: 503, body: { detail: 'busy' }, headers: { 'retry-after': '1' } }, { status: 503, body: { detail: 'busy' } });
    const r = start();
    const id = await r.submit();
    const [job] = await r.settled(id);
    expect(job).toMatchObject({ state: 'done', attempts: 3 });
    const attempts = await r.store.attemptsOfJob(job!.id);
    expect(attempts.map((a) => [a.n, a.httpStatus, a.outcome])).toEqual([[1, 503, 'retry'], [2, 503, 'retry'], [3, 200, 'triggered']]);
    expect(attempts[0]!.detail).toContain('503: busy');
    // Retry-After: 1 beats the 10–50 ms backoff; the second 503 had none, so backoff applies.
    expect(attempts[0]!.nextRetryAt! - (attempts[0]!.startedAt + attempts[0]!.durationMs)).toBeGreaterThanOrEqual(1000);
    expect(attempts[1]!.startedAt).toBeGreaterThanOrEqual(attempts[0]!.nextRetryAt!);
    expect(attempts[1]!.nextRetryAt! - (attempts[1]!.startedAt + attempts[1]!.durationMs)).toBeLessThanOrEqual(50);
  });

  it('retries timeouts and dropped connections', async () => {
    airflow.script(DAG_RUNS, { delayMs: 1500 }, { drop: true });
    const r = start({ timeout: '0.5s' });
    const id = await r.submit();
    const [job] = await r.settled(id);
    expect(job!.state).toBe('done');
    const attempts = await r.store.attemptsOfJob(job!.id);
    expect(attempts.map((a) => a.outcome)).toEqual(['retry', 'retry', 'triggered']);
    expect(attempts[0]!.detail).toMatch(/timed out/);
    expect(attempts[1]!.httpStatus).toBeNull();
  });

  it('treats 409 as success once the run with this id is confirmed (an earlier attempt made it)', async () => {
    airflow.script(DAG_RUNS, { status: 409, body: { detail: { reason: 'Unique constraint violation' } } });
    const r = start();
    const [job] = await r.settled(await r.submit({ data: { run_id: 'run_409', pipeline_id: 'pl_8f2a9c1d4e', status: 'succeeded' } }));
    expect(job).toMatchObject({ state: 'done', attempts: 1, dagRunId: 'planasonix__run_409__sales-to-dbt', airflowState: 'success' });
    expect((await r.store.attemptsOfJob(job!.id))[0]).toMatchObject({ outcome: 'exists', detail: 'run planasonix__run_409__sales-to-dbt already exists (success)' });
    expect(airflow.seen.at(-1)!.path).toBe(`${DAG_RUNS}/planasonix__run_409__sales-to-dbt`);
  });

  it('a 409 for another run (same logical_date, different id) is a dead letter, not a success', async () => {
    airflow.script(DAG_RUNS, { status: 409, body: { detail: 'DAGRun with DAG ID and logical date already exists' } });
    airflow.script(`${DAG_RUNS}/planasonix__run_other__sales-to-dbt`, { status: 404, body: { detail: 'not found' } });
    const r = start();
    const [job] = await r.settled(await r.submit({ data: { run_id: 'run_other', pipeline_id: 'pl_8f2a9c1d4e', status: 'succeeded' } }));
    expect(job).toMatchObject({ state: 'dead', attempts: 1 });
    expect(job!.lastError).toMatch(/^Airflow answered 409 but has no run planasonix__run_other__sales-to-dbt: another run holds this logical_date\?/);
  });

  it('half-open with a backlog: exactly one probe goes out, then the backlog drains (the loop never spins)', async () => {
    airflow.script(DAG_RUNS, { status: 503 }, { status: 503 }, { status: 200, body: 'run', delayMs: 300 });
    const r = start({ breaker: '{ failures: 2, cooldown: 0.5s }', retry: '{ max_attempts: 20, initial_delay: 0.01s, max_delay: 0.02s }' });
    const ids = [await r.submit()];
    while (r.dispatcher.circuitState('default') !== 'open') await new Promise((resolve) => setTimeout(resolve, 10));
    for (let i = 0; i < 5; i++) ids.push(await r.submit());
    // The cooldown ends while six jobs wait; a timer must still fire during the probe.
    const late = await new Promise<number>((resolve) => {
      const due = Date.now() + 700;
      setTimeout(() => resolve(Date.now() - due), 700);
    });
    expect(late).toBeLessThan(200);
    const sentDuringProbe = triggers().length;
    expect(sentDuringProbe).toBe(3);
    for (const id of ids) expect((await r.settled(id))[0]!.state).toBe('done');
    expect(triggers()).toHaveLength(2 + 6);
  });

  it('never has more than max_in_flight requests open to one instance', async () => {
    airflow.script(DAG_RUNS, ...Array(6).fill({ status: 200, body: 'run', delayMs: 200 }));
    rig = dispatchRig(`
airflow: { default: { url: ${airflow.url}, auth: { type: none }, max_in_flight: 2, timeout: 2s } }
dispatch: { poll_interval: 0.02s, lease: 10s }
routes: [ { name: r, match: {}, trigger: { dag_id: dbt_sales_models } } ]
`);
    rig.dispatcher.start();
    const ids = [];
    for (let i = 0; i < 6; i++) ids.push(await rig.submit());
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(triggers()).toHaveLength(2);
    for (const id of ids) await rig.settled(id);
    expect(triggers()).toHaveLength(6);
  });

  it('stop() waits for in-flight attempts to be recorded', async () => {
    airflow.script(DAG_RUNS, { status: 200, body: 'run', delayMs: 300 });
    const r = start();
    const id = await r.submit();
    await new Promise((resolve) => setTimeout(resolve, 100));
    await r.dispatcher.stop();
    expect((await r.store.jobsOfEvent(id))[0]).toMatchObject({ state: 'done', attempts: 1 });
  });

  it.each([
    [400, { detail: 'bad' }],
    [403, { detail: 'Forbidden' }],
    [404, { detail: "Dag with dag_id: 'dbt_sales_models' not found" }],
    [422, { detail: [{ type: 'missing', loc: ['body', 'logical_date'], msg: 'Field required' }] }],
  ])('dead-letters a %i at once, keeping Airflow\'s detail', async (status, body) => {
    airflow.script(DAG_RUNS, { status, body });
    const r = start();
    const [job] = await r.settled(await r.submit());
    expect(job).toMatchObject({ state: 'dead', attempts: 1 });
    expect(job!.lastError).toContain(`answered ${status}`);
    expect(job!.lastError).toContain(typeof body.detail === 'string' ? body.detail : 'Field required');
    expect(triggers()).toHaveLength(1);
  });

  it('gives up after max_attempts with the last reason', async () => {
    airflow.script(DAG_RUNS, ...Array(3).fill({ status: 500, body: { detail: 'boom' } }));
    const r = start({ retry: '{ max_attempts: 3, initial_delay: 0.01s, max_delay: 0.02s }' });
    const [job] = await r.settled(await r.submit());
    expect(job).toMatchObject({ state: 'dead', attempts: 3 });
    expect(job!.lastError).toMatch(/^gave up after 3 attempts; last: .*500: boom/);
    expect(triggers()).toHaveLength(3);
  });

  it('renews the token on 401 "Token Expired" and retries within the same attempt', async () => {
    airflow.script('/auth/token', { status: 201, body: { access_token: 'old' } }, { status: 201, body: { access_token: 'new' } });
    airflow.script(DAG_RUNS, { status: 401, body: { detail: 'Token Expired' } });
    const r = start();
    const [job] = await r.settled(await r.submit());
    expect(job).toMatchObject({ state: 'done', attempts: 1 });
    expect(triggers().map((t) => t.authorization)).toEqual(['Bearer old', 'Bearer new']);
  });

  it('accepts jwt_token from older FAB versions', async () => {
    airflow.script('/auth/token', { status: 200, body: { jwt_token: 'fab-token' } });
    const r = start();
    await r.settled(await r.submit());
    expect(triggers()[0]!.authorization).toBe('Bearer fab-token');
  });

  it('dead-letters with a clear auth reason when /auth/token refuses the password', async () => {
    airflow.script('/auth/token', { status: 401, body: { detail: 'Invalid credentials' } });
    const r = start();
    const [job] = await r.settled(await r.submit());
    expect(job!.state).toBe('dead');
    expect(job!.lastError).toBe('Airflow "default" refused the configured username/password at POST /auth/token (401: {"detail":"Invalid credentials"})');
    expect(triggers()).toHaveLength(0);
  });

  it('v1: basic auth, no logical_date or note when null', async () => {
    const r = start({ api: 'v1', auth: '{ type: password, username: admin, password: s3cr3t }' });
    (rig!.config.routes[0]!.target as { note?: unknown }).note = undefined;
    await r.settled(await r.submit({ data: { run_id: 'run_v1', pipeline_id: 'pl_8f2a9c1d4e', status: 'succeeded' } }));
    const [sent] = airflow.seen.filter((s) => s.path === '/api/v1/dags/dbt_sales_models/dagRuns');
    expect(sent!.authorization).toBe(`Basic ${Buffer.from('admin:s3cr3t').toString('base64')}`);
    expect(sent!.body).toEqual({ dag_run_id: 'planasonix__run_v1__sales-to-dbt', conf: { business_date: 'none', run: 'run_v1', planasonix_bridge: expect.objectContaining({ depth: 1 }) } });
  });

  it('opens the circuit after consecutive failures: nothing is sent during the cooldown', async () => {
    airflow.script(DAG_RUNS, ...Array(20).fill({ status: 503, body: { detail: 'down' } }));
    const r = start({ breaker: '{ failures: 2, cooldown: 30s }', retry: '{ max_attempts: 10, initial_delay: 0.01s, max_delay: 0.02s }' });
    const id = await r.submit();
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(triggers()).toHaveLength(2);
    expect(r.dispatcher.circuitState('default')).toBe('open');
    const [job] = await r.store.jobsOfEvent(id);
    expect(job).toMatchObject({ state: 'pending', attempts: 2 });
  });

  it('warns once, naming the DAG, when it is paused (the run is still accepted)', async () => {
    airflow.script('/api/v2/dags/dbt_sales_models', { status: 200, body: { is_paused: true } });
    const r = start();
    await r.settled(await r.submit());
    await r.settled(await r.submit());
    const warnings = r.logLines.filter((l) => typeof l.msg === 'string' && (l.msg as string).includes('is paused'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.msg).toContain('DAG dbt_sales_models is paused');
  });

  it('a render failure is a dead job with the reason, and nothing is sent', async () => {
    const r = start({ conf: '{ w: "{{ data.parameters.watermark }}" }' });
    const [job] = await r.settled(await r.submit());
    expect(job).toMatchObject({ state: 'dead', attempts: 0 });
    expect(job!.lastError).toBe('conf: {{ data.parameters.watermark }}: data.parameters.watermark is missing (add "| default: …" if it is optional)');
    expect(triggers()).toHaveLength(0);
  });
});

describe('proof of trigger (DESIGN §7): a 2xx counts only when it is the requested run', () => {
  const RUN_ID = 'planasonix__run_1__sales-to-dbt';
  const LOGIN_PAGE = '<!DOCTYPE html>\n<html lang="en">\n  <head><title>Sign in · Example SSO</title></head><body><form action="/login">…</form></body></html>';
  const NOT_API = "does airflow.default.url point at Airflow's API, not a login page or proxy?";
  const auths = {
    password: '{ type: password, username: admin, password: pw-s3cr3t-42 }',
    bearer: '{ type: bearer, token: tok-s3cr3t-42 }',
    none: '{ type: none }',
  };
  const answers: [string, { raw?: string; body?: unknown; headers?: Record<string, string> }, string][] = [
    ['HTML (a login page)', { raw: LOGIN_PAGE, headers: { 'content-type': 'text/html; charset=utf-8' } }, `answered 200 but not with a DAG run (content-type text/html; starts "<!DOCTYPE html> <html lang="en"> <head><title>Sign in · Exam…"): ${NOT_API}`],
    ['an empty body', { raw: '' }, `answered 200 but not with a DAG run (content-type application/json; empty body): ${NOT_API}`],
    ['JSON of another run', { body: { dag_run_id: 'manual__2026-11-30T00:00:00', state: 'queued' } }, `answered 200 with DAG run "manual__2026-11-30T00:00:00" instead of "${RUN_ID}": does airflow.default.url point at Airflow's API, not a cache or proxy answering for it?`],
    ['JSON that is not a run ({})', { body: {} }, `answered 200 but not with a DAG run (content-type application/json; starts "{}"): ${NOT_API}`],
    ['JSON that is a list', { body: [{ dag_run_id: RUN_ID }] }, `answered 200 but not with a DAG run (content-type application/json; starts "[{"dag_run_id":"${RUN_ID}"}]"): ${NOT_API}`],
  ];
  const submitRun1 = (r: NonNullable<typeof rig>) => r.submit({ data: { run_id: 'run_1', pipeline_id: 'pl_8f2a9c1d4e', status: 'succeeded' } });
  const cases = Object.entries(auths).flatMap(([auth, yaml]) => answers.map(([what, answer, reason]) => [auth, what, yaml, answer, reason] as const));

  it.each(cases)('auth %s, a 200 with %s: dead with the reason, asked once, logged as dead-lettered', async (auth, _what, yaml, answer, reason) => {
    airflow.script(DAG_RUNS, { status: 200, ...answer });
    const r = start({ auth: yaml });
    const [job] = await r.settled(await submitRun1(r));
    expect(job).toMatchObject({ state: 'dead', attempts: 1 });
    expect(job!.lastError).toBe(`POST ${DAG_RUNS} ${reason}`);
    expect(triggers()).toHaveLength(1);
    expect(triggers()[0]!.authorization).toBe({ password: 'Bearer token-1', bearer: 'Bearer tok-s3cr3t-42', none: undefined }[auth]);
    expect(airflow.seen.filter((s) => s.path === '/auth/token')).toHaveLength(auth === 'password' ? 1 : 0);
    expect((await r.store.attemptsOfJob(job!.id)).map((a) => [a.httpStatus, a.outcome])).toEqual([[200, 'dead']]);
    expect(r.logLines.filter((l) => l.msg === 'trigger dead-lettered')).toEqual([expect.objectContaining({ dag_run_id: RUN_ID, error: job!.lastError })]);
    expect(r.logLines.some((l) => l.msg === 'DAG run triggered' || l.msg === 'DAG run already existed')).toBe(false);
  });

  it('an HTML answer at /auth/token is dead with the reason, and no trigger is sent', async () => {
    airflow.script('/auth/token', { status: 200, raw: LOGIN_PAGE, headers: { 'content-type': 'text/html' } });
    const r = start();
    const [job] = await r.settled(await submitRun1(r));
    expect(job).toMatchObject({ state: 'dead', attempts: 1 });
    expect(job!.lastError).toBe(`POST /auth/token answered 200 but not with a token (content-type text/html; starts "<!DOCTYPE html> <html lang="en"> <head><title>Sign in · Exam…"): ${NOT_API}`);
    expect(triggers()).toHaveLength(0);
  });

  it('the excerpt never shows the configured credential (or anything JWT-like)', async () => {
    airflow.script(DAG_RUNS, { status: 200, raw: 'token=tok-s3cr3t-42 jwt=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig', headers: { 'content-type': 'text/plain' } });
    const r = start({ auth: auths.bearer });
    const [job] = await r.settled(await submitRun1(r));
    expect(job!.lastError).toBe(`POST ${DAG_RUNS} answered 200 but not with a DAG run (content-type text/plain; starts "token=*** jwt=***"): ${NOT_API}`);
  });

  it('a 409 whose confirmation read is HTML is dead, not "already existed"', async () => {
    airflow.script(DAG_RUNS, { status: 409, body: { detail: { reason: 'Unique constraint violation' } } });
    airflow.script(`${DAG_RUNS}/${RUN_ID}`, { status: 200, raw: LOGIN_PAGE, headers: { 'content-type': 'text/html' } });
    const r = start();
    const [job] = await r.settled(await submitRun1(r));
    expect(job).toMatchObject({ state: 'dead', attempts: 1 });
    expect(job!.lastError).toBe(`GET ${DAG_RUNS}/${RUN_ID} (after a 409) answered 200 but not with a DAG run (content-type text/html; starts "<!DOCTYPE html> <html lang="en"> <head><title>Sign in · Exam…"): ${NOT_API}`);
    expect(triggers()).toHaveLength(1);
  });

  it('a 409 whose confirmation read is another run is dead', async () => {
    airflow.script(DAG_RUNS, { status: 409, body: { detail: 'exists' } });
    airflow.script(`${DAG_RUNS}/${RUN_ID}`, { status: 200, body: { dag_run_id: 'other', state: 'success' } });
    const r = start();
    const [job] = await r.settled(await submitRun1(r));
    expect(job!.state).toBe('dead');
    expect(job!.lastError).toMatch(new RegExp(`^GET .* \\(after a 409\\) answered 200 with DAG run "other" instead of "${RUN_ID}": `));
  });

  const assetRig = (api: 'v1' | 'v2') => {
    rig = dispatchRig(`
airflow: { default: { url: ${airflow.url}, api: ${api}, auth: { type: none }, timeout: 2s } }
dispatch: { poll_interval: 0.02s, lease: 10s }
routes: [ { name: a, match: {}, asset_event: { ${api === 'v2' ? 'asset_id: 7' : 'uri: "planasonix://bridge/x"'} } } ]
`);
    rig.dispatcher.start();
    return rig;
  };

  it.each([
    ['v2', '/api/v2/assets/events', { id: 11, asset_id: 7, uri: 'planasonix://bridge/x', extra: {}, source_map_index: -1, created_dagruns: [], timestamp: '2026-12-01T00:00:00Z' }, 'asset event 11'],
    ['v1', '/api/v1/datasets/events', { id: 12, dataset_id: 3, dataset_uri: 'planasonix://bridge/x', extra: {}, created_dagruns: [] }, 'asset event 12'],
  ] as const)('asset event (%s): the event itself is done', async (api, path, body, state) => {
    airflow.script(path, { status: 200, body });
    const r = assetRig(api);
    const [job] = await r.settled(await submitRun1(r));
    expect(job).toMatchObject({ state: 'done', airflowState: state });
  });

  it.each([
    ['v2', '/api/v2/assets/events', { body: { dag_run_id: 'x', state: 'queued' } }, 'but not with an asset event (content-type application/json; starts "{"dag_run_id":"x","state":"queued"}")'],
    ['v1', '/api/v1/datasets/events', { raw: LOGIN_PAGE, headers: { 'content-type': 'text/html' } }, 'but not with a dataset event (content-type text/html; starts "<!DOCTYPE html> <html lang="en"> <head><title>Sign in · Exam…")'],
  ] as const)('asset event (%s): a 200 that is not an event is dead with the reason', async (api, path, answer, problem) => {
    airflow.script(path, { status: 200, ...answer });
    const r = assetRig(api);
    const [job] = await r.settled(await submitRun1(r));
    expect(job).toMatchObject({ state: 'dead', attempts: 1 });
    expect(job!.lastError).toBe(`POST ${path} answered 200 ${problem}: ${NOT_API}`);
    expect(airflow.seen.filter((s) => s.path === path)).toHaveLength(1);
  });
});
