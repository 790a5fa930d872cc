// The store contract: the same behaviour from SQLite (one process) and PostgreSQL (replicas).
import { describe, expect, it } from 'vitest';
import type { IngestPolicy, NewEvent, NewJob, Store } from '../../src/store/types.js';
import { bareJob, pruneAll as pruneEvery, STORE_KINDS, storesOf } from '../helpers/stores.js';

const POLICY: IngestPolicy = { breaker: { maxTriggers: 3, windowMs: 60_000 } };
const NO_BREAKER: IngestPolicy = { breaker: { maxTriggers: 1_000_000, windowMs: 60_000 } };
const job = (route = 'r', dagId = 'dag_a', extra: Partial<NewJob> = {}): NewJob => ({ ...bareJob(`run__${route}__${dagId}`, dagId, route), ...extra });
let n = 0;
const event = (deliveryId = `d${++n}`, source = 'planasonix'): NewEvent => ({
  source, deliveryId, scheme: 'standard-webhooks', eventId: `evt_${deliveryId}`, type: 'run.succeeded', pipelineId: 'pl_1', runId: `run_${deliveryId}`,
  headers: { 'webhook-id': deliveryId }, body: Buffer.from('{"exact":  "bytes"}'), receivedAt: new Date('2026-11-30T00:00:00.123Z'),
  routing: [{ route: 'r', matched: true }],
});

describe.each(STORE_KINDS)('store contract: $name', (kind) => {
  let now = Date.parse('2026-12-01T00:00:00Z');
  const clock = () => now;
  // Closed after each test: every store opened, then its location.
  const open = storesOf(kind, clock);

  it('stores exact bytes, dedupes on (source, delivery id), reads back', async () => {
    const { store } = await open();
    const first = await store.insertEvent(event('d1'), [job()], POLICY);
    const again = await store.insertEvent(event('d1'), [job()], POLICY);
    const other = await store.insertEvent(event('d1', 'elsewhere'), [], POLICY);
    if (!first.ok || !again.ok || !other.ok) throw new Error('insert failed');
    expect(first.value).toMatchObject({ duplicate: false, jobs: [{ route: 'r', state: 'pending' }] });
    expect(again.value).toEqual({ id: first.value.id, duplicate: true, jobs: [], newLearnedEdge: false });
    expect(other.value.duplicate).toBe(false);
    const back = await store.getEvent(first.value.id);
    expect(back).toMatchObject({ deliveryId: 'd1', status: 'routed', headers: { 'webhook-id': 'd1' }, routing: [{ route: 'r', matched: true }] });
    expect(back!.body.toString()).toBe('{"exact":  "bytes"}');
    expect(await store.jobsOfEvent(first.value.id)).toHaveLength(1);
  });

  it('stores a job that could not render as dead, and one the guard blocked as blocked', async () => {
    const { store } = await open();
    const { request: _r, ...unrendered } = job('broken');
    const r = await store.insertEvent(event(), [{ ...unrendered, error: 'conf: missing' }, job('looping', 'dag_x', { block: { reason: 'cycle', detail: 'on the path' } })], POLICY);
    if (!r.ok) throw new Error(r.error.message);
    const jobs = await store.jobsOfEvent(r.value.id);
    expect(jobs.map((j) => [j.route, j.state, j.lastError, j.blockReason])).toEqual([['broken', 'dead', 'conf: missing', null], ['looping', 'blocked', 'on the path', 'cycle']]);
  });

  it('leases: one claimer at a time, reclaimed after the lease, a lost lease cannot record', async () => {
    const { store, again } = await open();
    const replicaB = await again();
    await store.insertEvent(event(), [job()], POLICY);
    const claim = (s: Store, owner: string) => s.claimJobs({ airflow: 'default', now, limit: 10, leaseMs: 30_000, owner });
    const [claimed] = await claim(store, 'A');
    expect(claimed).toBeDefined();
    expect(await claim(replicaB, 'B')).toEqual([]);
    now += 30_000;
    expect((await claim(replicaB, 'B'))[0]!.id).toBe(claimed!.id);
    const attempt = { startedAt: now, durationMs: 5, httpStatus: 200, outcome: 'triggered' as const, detail: 'ok', nextRetryAt: null };
    expect(await store.finishAttempt(claimed!.id, 'A', attempt, { state: 'done', airflowState: 'queued', dagRunId: 'x' })).toBeUndefined();
    expect(await replicaB.finishAttempt(claimed!.id, 'B', attempt, { state: 'done', airflowState: 'queued', dagRunId: 'x' })).toBe(1);
    expect(await store.getJob(claimed!.id)).toMatchObject({ state: 'done', attempts: 1, airflowState: 'queued', doneAt: now });
    expect(await store.attemptsOfJob(claimed!.id)).toEqual([{ jobId: claimed!.id, n: 1, ...attempt }]);
  });

  it('two replicas claiming at once never get the same job', async () => {
    const { store, again } = await open();
    const replicaB = await again();
    for (let i = 0; i < 20; i++) await store.insertEvent(event(), [job()], NO_BREAKER);
    const [a, b] = await Promise.all([
      store.claimJobs({ airflow: 'default', now, limit: 12, leaseMs: 30_000, owner: 'A' }),
      replicaB.claimJobs({ airflow: 'default', now, limit: 12, leaseMs: 30_000, owner: 'B' }),
    ]);
    const ids = [...a, ...b].map((j) => j.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toHaveLength(20);
  });

  it('claims only due jobs, per instance, up to the limit; retries come back when due; replay', async () => {
    const { store } = await open();
    await store.insertEvent(event(), [job('r1'), job('r2'), job('r3', 'dag_a', { airflow: 'other' })], POLICY);
    const [first] = await store.claimJobs({ airflow: 'default', now, limit: 1, leaseMs: 1000, owner: 'A' });
    await store.finishAttempt(first!.id, 'A', { startedAt: now, durationMs: 1, httpStatus: 503, outcome: 'retry', detail: 'busy', nextRetryAt: now + 5000 }, { state: 'pending', nextAttemptAt: now + 5000, error: 'busy' });
    expect((await store.claimJobs({ airflow: 'default', now, limit: 10, leaseMs: 1000, owner: 'A' })).map((j) => j.route)).toEqual(['r2']);
    now += 5000;
    // r1 is due again; r2's lease (1 s) has run out, so it is claimable too.
    const retried = await store.claimJobs({ airflow: 'default', now, limit: 10, leaseMs: 1000, owner: 'A2' });
    expect(retried.map((j) => j.route).sort()).toEqual(['r1', 'r2']);
    const retry = retried.find((j) => j.route === 'r1');
    await store.finishAttempt(retry!.id, 'A2', { startedAt: now, durationMs: 1, httpStatus: 404, outcome: 'dead', detail: 'no dag', nextRetryAt: null }, { state: 'dead', error: 'no dag' });
    expect(await store.replayJob(retry!.id, now + 1)).toBe(true);
    expect(await store.getJob(retry!.id)).toMatchObject({ state: 'pending', attempts: 0, nextAttemptAt: now + 1 });
    expect(await store.replayJob(retry!.id, now + 2)).toBe(false);
    expect(await store.jobCounts()).toEqual({ pending: 3, done: 0, dead: 0, blocked: 0 });
    expect(await store.pendingByAirflow()).toEqual({ default: 2, other: 1 });
  });

  it('oldestPendingAt: the creation time of the oldest pending job; done, dead and blocked ones do not count', async () => {
    const { store } = await open();
    expect(await store.oldestPendingAt()).toBeUndefined();
    const start = now;
    await store.insertEvent(event(), [job('r1'), job('looping', 'dag_x', { block: { reason: 'cycle', detail: 'on the path' } })], NO_BREAKER);
    now += 5000;
    await store.insertEvent(event(), [job('r2')], NO_BREAKER);
    expect(await store.oldestPendingAt()).toBe(start);
    const [first] = await store.claimJobs({ airflow: 'default', now, limit: 1, leaseMs: 1000, owner: 'A' });
    expect(first!.route).toBe('r1');
    await store.finishAttempt(first!.id, 'A', { startedAt: now, durationMs: 1, httpStatus: 200, outcome: 'triggered', detail: 'queued', nextRetryAt: null }, { state: 'done', airflowState: 'queued', dagRunId: 'x' });
    expect(await store.oldestPendingAt()).toBe(start + 5000);
    const [second] = await store.claimJobs({ airflow: 'default', now, limit: 1, leaseMs: 1000, owner: 'A' });
    await store.finishAttempt(second!.id, 'A', { startedAt: now, durationMs: 1, httpStatus: 404, outcome: 'dead', detail: 'no dag', nextRetryAt: null }, { state: 'dead', error: 'no dag' });
    expect(await store.oldestPendingAt()).toBeUndefined();
  });

  it('activity: events received and triggers accepted per minute, empty minutes included', async () => {
    // On a minute boundary, so the events below fall in known minutes (other tests move `now`).
    now = Math.ceil(now / 60_000) * 60_000;
    const { store } = await open();
    const at = (msAgo: number, d: string) => ({ ...event(d), receivedAt: new Date(now - msAgo) });
    await store.insertEvent(at(3_600_000, 'old'), [], POLICY);
    await store.insertEvent(at(150_000, 'a'), [job('r1')], NO_BREAKER);
    await store.insertEvent(at(130_000, 'b'), [], POLICY);
    await store.insertEvent(at(10_000, 'c'), [], POLICY);
    const [claimed] = await store.claimJobs({ airflow: 'default', now, limit: 1, leaseMs: 1000, owner: 'A' });
    await store.finishAttempt(claimed!.id, 'A', { startedAt: now, durationMs: 3, httpStatus: 200, outcome: 'triggered', detail: 'queued', nextRetryAt: null }, { state: 'done', airflowState: 'queued', dagRunId: 'x' });
    const minute = (agoMs: number) => Math.floor((now - agoMs) / 60_000) * 60_000;
    expect(await store.activity(now - 4 * 60_000)).toEqual([
      { minute: minute(240_000), received: 0, triggered: 0 },
      { minute: minute(180_000), received: 2, triggered: 0 },
      { minute: minute(120_000), received: 0, triggered: 0 },
      { minute: minute(60_000), received: 1, triggered: 0 },
      { minute: minute(0), received: 0, triggered: 1 },
    ]);
  });

  it('breaker: N triggers pass, N+1 is blocked, open until the window passes, reset restarts the count', async () => {
    const { store } = await open();
    const trigger = async () => {
      const r = await store.insertEvent(event(), [job()], POLICY);
      if (!r.ok) throw new Error(r.error.message);
      return r.value.jobs[0]!;
    };
    for (let i = 0; i < 3; i++) expect((await trigger()).state).toBe('pending');
    expect(await trigger()).toMatchObject({ state: 'blocked', block: { reason: 'breaker_open' } });
    expect(await store.openBreakers(now)).toEqual([{ sourcePipeline: 'pl_1', target: 'airflow:dag_a', openedAt: now, openUntil: now + 60_000 }]);
    now += 59_999;
    expect((await trigger()).state).toBe('blocked');
    now += 1;
    expect((await trigger()).state).toBe('pending');
    for (let i = 0; i < 3; i++) await trigger();
    expect(await store.resetBreaker('pl_1', 'airflow:dag_a', now)).toBe(true);
    now += 1;
    expect((await trigger()).state).toBe('pending');
    expect(await store.pairState('pl_1', 'airflow:dag_a', now, 60_000)).toEqual({ count: 1, openUntil: null });
  });

  it('breaker: jobs never sent (templates failed) do not count; a blocked job is never claimed until replayed', async () => {
    const { store } = await open();
    const { request: _unsent, ...unrendered } = job();
    for (let i = 0; i < 5; i++) await store.insertEvent(event(), [{ ...unrendered, error: 'conf: missing' }], POLICY);
    for (let i = 0; i < 3; i++) expect((await store.insertEvent(event(), [job()], POLICY)).ok).toBe(true);
    const r = await store.insertEvent(event(), [job()], POLICY);
    const [blocked] = await store.jobsOfEvent(r.ok ? r.value.id : '');
    expect(blocked).toMatchObject({ state: 'blocked', blockReason: 'breaker_open', lastError: expect.stringContaining('breaker open') });
    const claimed = await store.claimJobs({ airflow: 'default', now: now + 1, limit: 100, leaseMs: 1000, owner: 'o' });
    expect(claimed).toHaveLength(3);
    expect(claimed.map((j) => j.id)).not.toContain(blocked!.id);
    expect(await store.replayJob(blocked!.id, now)).toBe(true);
    expect(await store.getJob(blocked!.id)).toMatchObject({ state: 'pending', blockReason: null });
  });

  it('breaker counts across replicas: opened through one, enforced by the other', async () => {
    const { store, again } = await open();
    const replicaB = await again();
    for (let i = 0; i < 3; i++) await store.insertEvent(event(), [job()], POLICY);
    const viaB = await replicaB.insertEvent(event(), [job()], POLICY);
    expect(viaB.ok && viaB.value.jobs[0]!.state).toBe('blocked');
  });

  it('breaker exact under concurrency: 120 triggers of one pair at once through two replicas, max 50 → exactly 50 sent', async () => {
    const { store, again } = await open();
    const replicaB = await again();
    const policy: IngestPolicy = { breaker: { maxTriggers: 50, windowMs: 60_000 } };
    const results = await Promise.all(Array.from({ length: 120 }, (_, i) => (i % 2 ? replicaB : store).insertEvent(event(), [job()], policy)));
    const states = results.map((r) => (r.ok ? r.value.jobs[0]!.state : r.error.message));
    expect(states.filter((s) => s === 'pending')).toHaveLength(50);
    expect(states.filter((s) => s === 'blocked')).toHaveLength(70);
    expect(await store.pairState('pl_1', 'airflow:dag_a', now, 60_000)).toEqual({ count: 50, openUntil: now + 60_000 });
  });

  it('breaker exact for many pairs at once: 80 events through two replicas, each to four DAGs in its own order, max 20 → exactly 20 per pair, none failed', async () => {
    const { store, again } = await open();
    const replicaB = await again();
    const policy: IngestPolicy = { breaker: { maxTriggers: 20, windowMs: 60_000 } };
    const dags = ['dag_a', 'dag_b', 'dag_c', 'dag_d'];
    // The pairs exist before the burst: a pair's first row is created by one replica while the
    // other waits on it, so only existing pairs show that the lock (not the insert) keeps the count.
    expect((await store.insertEvent(event(), dags.map((d) => job(`r_${d}`, d)), policy)).ok).toBe(true);
    // Rotated per event, so batches of both replicas meet the pairs in different orders (a
    // lock order that followed the jobs would deadlock here).
    const results = await Promise.all(
      Array.from({ length: 80 }, (_, i) => (i % 2 ? replicaB : store).insertEvent(event(), [...dags.slice(i % 4), ...dags.slice(0, i % 4)].map((d) => job(`r_${d}`, d)), policy)),
    );
    const failed = results.filter((r) => !r.ok);
    expect(failed).toEqual([]);
    for (const dag of dags) {
      const states = results.map((r) => (r.ok ? r.value.jobs.find((j) => j.route === `r_${dag}`)!.state : 'failed'));
      expect(states.filter((s) => s === 'pending')).toHaveLength(19);
      expect(await store.pairState('pl_1', `airflow:${dag}`, now, 60_000)).toEqual({ count: 20, openUntil: now + 60_000 });
    }
  });

  it('breaker count slides with the window: jobs leave it one by one, whatever the window held', async () => {
    const { store } = await open();
    const policy: IngestPolicy = { breaker: { maxTriggers: 1000, windowMs: 10_000 } };
    const start = now;
    for (let i = 0; i < 10; i++) {
      await store.insertEvent(event(), [job()], policy);
      now += 1000;
    }
    // Jobs made at start+0s … start+9s; the window is (now − 10s, now] = (0s, 10s].
    expect(await store.pairState('pl_1', 'airflow:dag_a', now, 10_000)).toEqual({ count: 9, openUntil: null });
    now = start + 13_500;
    expect((await store.insertEvent(event(), [job()], policy)).ok).toBe(true);
    // 0s–3s left the window; 4s–9s stay, plus the new one.
    expect(await store.pairState('pl_1', 'airflow:dag_a', now, 10_000)).toEqual({ count: 7, openUntil: null });
    expect(await store.pairState('pl_1', 'airflow:dag_a', now, 60_000)).toEqual({ count: 11, openUntil: null });
    now = start + 60_000;
    expect((await store.insertEvent(event(), [job()], policy)).ok).toBe(true);
    expect(await store.pairState('pl_1', 'airflow:dag_a', now, 10_000)).toEqual({ count: 1, openUntil: null });
  });

  it('the same delivery twice in one batch is one event and one duplicate', async () => {
    const { store } = await open();
    const [a, b] = await Promise.all([store.insertEvent(event('same'), [job()], POLICY), store.insertEvent(event('same'), [job()], POLICY)]);
    if (!a.ok || !b.ok) throw new Error('insert failed');
    expect([a.value.duplicate, b.value.duplicate].sort()).toEqual([false, true]);
    expect(a.value.id).toBe(b.value.id);
    expect((await store.jobsOfEvent(a.value.id)).length).toBe(1);
  });

  it('learns edges once, lists them; pages events and jobs with cursors; redrive adds only missing routes', async () => {
    const { store } = await open();
    const edge = { dagId: 'dag_b', pipelineId: 'pl_1', pipelineName: 'nightly' };
    const first = await store.insertEvent(event(), [], { ...POLICY, learnedEdge: edge });
    const second = await store.insertEvent(event(), [], { ...POLICY, learnedEdge: edge });
    expect(first.ok && first.value.newLearnedEdge).toBe(true);
    expect(second.ok && second.value.newLearnedEdge).toBe(false);
    expect(await store.learnedEdges()).toEqual([edge]);
    for (let i = 0; i < 3; i++) await store.insertEvent(event(), [job()], NO_BREAKER);
    const page1 = await store.listEvents({ limit: 3 });
    const page2 = await store.listEvents({ limit: 3, cursor: page1.nextCursor! });
    expect(page1.items).toHaveLength(3);
    expect(page2.items).toHaveLength(2);
    expect(page2.nextCursor).toBeUndefined();
    expect((await store.listEvents({ limit: 10, status: 'unrouted' })).items).toHaveLength(2);
    const jobs1 = await store.listJobs({ limit: 2 });
    expect((await store.listJobs({ limit: 2, cursor: jobs1.nextCursor! })).items).toHaveLength(1);
    const unrouted = first.ok ? first.value.id : '';
    expect(await store.addJobs(unrouted, [job('late', 'dag_late')], POLICY)).toEqual([{ route: 'late', state: 'pending' }]);
    expect(await store.addJobs(unrouted, [job('late', 'dag_late')], POLICY)).toEqual([]);
    expect((await store.getEvent(unrouted))!.status).toBe('routed');
  });

  // Data lifecycle (issue 14): prune batches, delivery ids kept after pruning, export, stats.
  const at = (ms: number) => ({ ...event(), receivedAt: new Date(ms) });
  const attempt = (outcome: 'triggered' | 'dead') => ({ startedAt: now, durationMs: 3, httpStatus: outcome === 'dead' ? 404 : 200, outcome, detail: outcome, nextRetryAt: null });
  async function settle(store: Store, outcome: 'done' | 'dead') {
    for (const claimed of await store.claimJobs({ airflow: 'default', now, limit: 100, leaseMs: 30_000, owner: 'w' })) {
      await store.finishAttempt(claimed.id, 'w', attempt(outcome === 'done' ? 'triggered' : 'dead'), outcome === 'done' ? { state: 'done', airflowState: 'queued', dagRunId: claimed.dagRunId } : { state: 'dead', error: 'not found' });
    }
  }
  const HOUR = 3_600_000;
  const cutoffs = () => ({ now, eventsBefore: now - HOUR, deadBefore: now - 3 * HOUR, dedupeBefore: now - 5 * HOUR });
  async function pruneAll(store: Store) {
    const { events, jobs, attempts, dedupe_keys } = await pruneEvery(store, cutoffs, 2);
    return { events, jobs, attempts, dedupe_keys };
  }

  it('prune: done, blocked and unrouted events go with their jobs and attempts; pending kept; dead on its own clock; delivery ids kept, then dropped', async () => {
    const { store } = await open();
    const old = now - 2 * HOUR;
    const ids = async (e: NewEvent, jobs: NewJob[]) => {
      const r = await store.insertEvent(e, jobs, NO_BREAKER);
      if (!r.ok) throw new Error(r.error.message);
      return { id: r.value.id, e };
    };
    const done = await ids(at(old), [job('a', 'dag_a')]);
    await settle(store, 'done');
    const dead = await ids(at(old), [job('d', 'dag_d')]);
    await settle(store, 'dead');
    const pending = await ids(at(old), [job('p', 'dag_p')]);
    const blocked = await ids(at(old), [job('b', 'dag_b', { block: { reason: 'cycle', detail: 'x' } })]);
    const unrouted = await ids(at(old), []);
    const recent = await ids(at(now - 10 * 60_000), []);
    expect((await store.attemptsOfJob((await store.jobsOfEvent(done.id))[0]!.id)).length).toBe(1);

    expect(await pruneAll(store)).toEqual({ events: 3, jobs: 2, attempts: 1, dedupe_keys: 0 });
    for (const gone of [done, blocked, unrouted]) expect(await store.getEvent(gone.id)).toBeUndefined();
    for (const kept of [dead, pending, recent]) expect(await store.getEvent(kept.id)).toBeDefined();
    expect(await store.jobCounts()).toEqual({ pending: 1, done: 0, dead: 1, blocked: 0 });
    expect((await store.stats()).rows).toMatchObject({ events: 3, jobs: 2, attempts: 1, dedupe_keys: 3 });
    // A redelivery of a pruned event: still the duplicate of the stored id, nothing created.
    const again = await store.insertEvent(done.e, [job('a', 'dag_a')], NO_BREAKER);
    expect(again.ok && again.value).toEqual({ id: done.id, duplicate: true, jobs: [], newLearnedEdge: false });
    expect(await store.jobCounts()).toEqual({ pending: 1, done: 0, dead: 1, blocked: 0 });

    now += 4 * HOUR; // the dead letter died 4 h ago (> dead: 3 h); pending still waits
    expect(await pruneAll(store)).toMatchObject({ events: 2, jobs: 1, attempts: 1 });
    expect(await store.getEvent(dead.id)).toBeUndefined();
    expect(await store.getEvent(pending.id)).toBeDefined();

    now += 2 * HOUR; // the first delivery ids were kept 6 h (> dedupe: 5 h)
    expect((await pruneAll(store)).dedupe_keys).toBe(3);
    const fresh = await store.insertEvent(done.e, [], NO_BREAKER);
    expect(fresh.ok && fresh.value.duplicate).toBe(false);
    expect(fresh.ok && fresh.value.id).not.toBe(done.id);
  });

  it('prune: counted jobs pruned before their pair is judged again leave its kept count (a quiet pair does not come back over its limit)', async () => {
    const { store } = await open();
    const twoAMinute: IngestPolicy = { breaker: { maxTriggers: 2, windowMs: 60_000 } };
    const states = async () => {
      const r = await store.insertEvent(at(now), [job()], twoAMinute);
      if (!r.ok) throw new Error(r.error.message);
      return r.value.jobs.map((j) => j.state);
    };
    expect([...(await states()), ...(await states())]).toEqual(['pending', 'pending']);
    await settle(store, 'done');
    now += 2 * HOUR; // past the window and the retention; nothing of the pair was judged since
    expect((await pruneAll(store)).jobs).toBe(2);
    expect([...(await states()), ...(await states()), ...(await states())]).toEqual(['pending', 'pending', 'blocked']);
  });

  it('export: every event with its jobs and attempts, oldest first, in pages, before a date', async () => {
    const { store } = await open();
    const first = await store.insertEvent(at(now - 3 * HOUR), [job('a', 'dag_a'), job('b', 'dag_b')], NO_BREAKER);
    await settle(store, 'done');
    const second = await store.insertEvent(at(now - 2 * HOUR), [], NO_BREAKER);
    const third = await store.insertEvent(at(now - HOUR), [job('c', 'dag_c')], NO_BREAKER);
    if (!first.ok || !second.ok || !third.ok) throw new Error('insert failed');
    const lines = [];
    let cursor: string | undefined;
    do {
      const page = await store.exportEvents({ limit: 2, ...(cursor ? { cursor } : {}) });
      lines.push(...page.items);
      cursor = page.nextCursor;
    } while (cursor);
    expect(lines.map((l) => l.event.id)).toEqual([first.value.id, second.value.id, third.value.id]);
    for (const line of lines) {
      expect(line.event).toEqual(await store.getEvent(line.event.id));
      const jobs = await store.jobsOfEvent(line.event.id);
      expect(line.jobs.map(({ leaseOwner: _o, leaseUntil: _u, counted: _c, ...j }) => j)).toEqual(jobs);
      expect(line.attempts).toEqual((await Promise.all(jobs.map((j) => store.attemptsOfJob(j.id)))).flat().sort((x, y) => (x.jobId < y.jobId ? -1 : 1)));
    }
    expect(lines[0]!.attempts).toHaveLength(2);
    expect(lines[0]!.jobs.every((j) => j.counted && j.leaseOwner === null)).toBe(true);
    const before = await store.exportEvents({ limit: 10, before: new Date(now - 2 * HOUR + 1) });
    expect(before.items.map((l) => l.event.id)).toEqual([first.value.id, second.value.id]);
  });

  it('prune lock: one replica at a time; stats and the readiness probe', async () => {
    const { store, again } = await open();
    const other = await again();
    const release = await store.acquirePruneLock();
    expect(release).toBeDefined();
    if (kind.name === 'postgres') expect(await other.acquirePruneLock()).toBeUndefined();
    await release!();
    const next = await other.acquirePruneLock();
    expect(next).toBeDefined();
    await next!();
    expect(await store.checkWritable()).toEqual({ ok: true, value: true });
    const stats = await store.stats();
    expect(stats.bytes).toBeGreaterThan(0);
    expect(stats.estimated).toBe(kind.name === 'postgres');
    // SQLite gave pages back per batch; PostgreSQL vacuums only where autovacuum is off (as on this machine's server).
    const reclaimed = await store.reclaim();
    if (kind.name === 'sqlite') expect(reclaimed).toBeUndefined();
    else expect(reclaimed === undefined || /autovacuum is off/.test(reclaimed)).toBe(true); // postgres-reclaim.test.ts: what it vacuums
  });

  it.runIf(kind.name === 'postgres')('new pending jobs wake the other replicas, not the one that made them (it woke its own dispatcher)', async () => {
    const { store, again } = await open();
    const other = await again();
    const woke = { self: 0, other: 0 };
    const subscribe = (s: Store, key: keyof typeof woke) => (s as Store & { subscribe(l: () => void): Promise<() => Promise<void>> }).subscribe(() => woke[key]++);
    const stops = [await subscribe(store, 'self'), await subscribe(other, 'other')];
    await store.insertEvent(event(), [job()], NO_BREAKER);
    await store.insertEvent(event(), [], NO_BREAKER);
    await expect.poll(() => woke.other, { timeout: 5000 }).toBe(1);
    await other.insertEvent(event(), [job('r2')], NO_BREAKER);
    await expect.poll(() => woke.self, { timeout: 5000 }).toBe(1);
    // A store's own notification arrives within milliseconds on this loopback server.
    await new Promise((r) => setTimeout(r, 300));
    expect(woke).toEqual({ self: 1, other: 1 });
    for (const s of stops) await s();
  });
});
