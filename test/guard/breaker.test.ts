import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { IngestPolicy, NewEvent, NewJob } from '../../src/store/types.js';
import { tempDir } from '../helpers/app.js';

const policy: IngestPolicy = { breaker: { maxTriggers: 3, windowMs: 60_000 } };
let now = Date.parse('2026-12-01T00:00:00Z');
let n = 0;
let cleanup: (() => void) | undefined;
afterEach(() => cleanup?.());

function store() {
  const temp = tempDir();
  cleanup = temp.cleanup;
  return openSqliteStore({ path: join(temp.dir, 'b.db'), busyTimeoutMs: 100, clock: () => now });
}

const event = (): NewEvent => ({ source: 's', deliveryId: `d${++n}`, scheme: 'x', eventId: `e${n}`, type: 'run.succeeded', pipelineId: 'pl_a', runId: `r${n}`, headers: {}, body: Buffer.from('{}'), receivedAt: new Date(now), routing: [] });
const job = (target = 'dag_b'): NewJob => ({
  route: 'loop', airflow: 'default', dagId: target, request: { dag_run_id: `run_${n}`, logical_date: null, conf: {}, note: null },
  sourcePipeline: 'pl_a', target: `airflow:${target}`, lineage: { chain_id: `c${n}`, depth: 1, path: [], event_id: 'e', route: 'loop' },
});

async function trigger(s: ReturnType<typeof store>, target?: string) {
  const r = await s.insertEvent(event(), [job(target)], policy);
  if (!r.ok) throw new Error(r.error.message);
  return r.value.jobs[0]!;
}

describe('breaker (in the store, injected clock)', () => {
  it('lets max_triggers through and blocks the next one (N+1), per pair', async () => {
    const s = store();
    for (let i = 0; i < 3; i++) expect((await trigger(s)).state).toBe('pending');
    const fourth = await trigger(s);
    expect(fourth).toMatchObject({ state: 'blocked', block: { reason: 'breaker_open', detail: expect.stringContaining('more than 3 triggers from pl_a to airflow:dag_b within 60s') } });
    expect((await trigger(s, 'dag_other')).state).toBe('pending');
    expect(await s.openBreakers(now)).toEqual([{ sourcePipeline: 'pl_a', target: 'airflow:dag_b', openedAt: now, openUntil: now + 60_000 }]);
    await s.close();
  });

  it('stays open until the window has passed, then closes', async () => {
    const s = store();
    for (let i = 0; i < 4; i++) await trigger(s);
    now += 59_999;
    expect((await trigger(s)).state).toBe('blocked');
    now += 1;
    expect((await trigger(s)).state).toBe('pending');
    expect(await s.openBreakers(now)).toEqual([]);
    await s.close();
  });

  it('an operator reset closes it at once and restarts the count', async () => {
    const s = store();
    for (let i = 0; i < 4; i++) await trigger(s);
    expect(await s.resetBreaker('pl_a', 'airflow:dag_b', now)).toBe(true);
    now += 1;
    for (let i = 0; i < 3; i++) expect((await trigger(s)).state).toBe('pending');
    expect((await trigger(s)).state).toBe('blocked');
    expect(await s.resetBreaker('pl_a', 'airflow:nothing', now)).toBe(false);
    await s.close();
  });

  it('does not count jobs that were never sent (templates failed)', async () => {
    const s = store();
    const { request: _unsent, ...failed } = job();
    for (let i = 0; i < 5; i++) await s.insertEvent(event(), [{ ...failed, error: 'conf: missing' }], policy);
    expect((await trigger(s)).state).toBe('pending');
    await s.close();
  });

  it('a blocked job is never claimed, and an operator can force-replay it', async () => {
    const s = store();
    for (let i = 0; i < 3; i++) await trigger(s);
    const r = await s.insertEvent(event(), [job()], policy);
    const eventId = r.ok ? r.value.id : '';
    const [blocked] = await s.jobsOfEvent(eventId);
    expect(blocked).toMatchObject({ state: 'blocked', blockReason: 'breaker_open', lastError: expect.stringContaining('breaker open') });
    const claimed = await s.claimJobs({ airflow: 'default', now: now + 1, limit: 100, leaseMs: 1000, owner: 'o' });
    expect(claimed.map((j) => j.id)).not.toContain(blocked!.id);
    expect(await s.replayJob(blocked!.id, now)).toBe(true);
    expect(await s.getJob(blocked!.id)).toMatchObject({ state: 'pending', blockReason: null });
    await s.close();
  });
});
