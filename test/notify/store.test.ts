// Notifications in the store contract (DESIGN §8): each row is written by its cause's
// transaction, and (target, cause) is unique, so a cause recorded again — after a restart,
// through a second replica, after a replay — gives no second notification.
import { describe, expect, it } from 'vitest';
import type { IngestPolicy, NewEvent, NewJob, Store } from '../../src/store/types.js';
import { bareJob, pruneAll as pruneEvery, STORE_KINDS, storesOf } from '../helpers/stores.js';
import { notifierFor } from '../../src/notify/notifier.js';
import { NOTIFY_TYPES } from '../../src/notify/types.js';
import { judgeRun } from '../../src/track/run.js';
import type { Config } from '../../src/config/schema.js';

const notify = notifierFor({ notify: [{ name: 'oncall', on: [...NOTIFY_TYPES] }, { name: 'only-r2', on: ['dag_run.failed'], routes: ['r2'] }] as unknown as Config['notify'] })!;
const POLICY: IngestPolicy = { breaker: { maxTriggers: 1_000_000, windowMs: 60_000 }, notify };
const job = (route = 'r', dagId = 'dag_a'): NewJob => bareJob(`run__${route}__${dagId}`, dagId, route);
let n = 0;
const event = (deliveryId = `d${++n}`): NewEvent => ({
  source: 'planasonix', deliveryId, scheme: 'standard-webhooks', eventId: `evt_${deliveryId}`, type: 'run.succeeded', pipelineId: 'pl_1', runId: `run_${deliveryId}`,
  headers: {}, body: Buffer.from('{}'), receivedAt: new Date('2026-11-30T00:00:00Z'), routing: [],
});
const attempt = (now: number) => ({ startedAt: now, durationMs: 1, httpStatus: 500, outcome: 'dead' as const, detail: 'x', nextRetryAt: null });

describe.each(STORE_KINDS)('notifications in the store: $name', (kind) => {
  let now = Date.parse('2026-12-01T00:00:00Z');
  const clock = () => now;
  // Closed after each test: every store opened, then its location.
  const open = storesOf(kind, clock);
  const settle = async (store: Store, route = 'r', dagId = 'dag_a', run = true) => {
    const r = await store.insertEvent(event(), [job(route, dagId)], POLICY);
    if (!r.ok) throw new Error(r.error.message);
    const [claimed] = await store.claimJobs({ airflow: 'default', now, limit: 10, leaseMs: 30_000, owner: 'A' });
    const dagRunId = claimed!.dagRunId!;
    if (run) await store.finishAttempt(claimed!.id, 'A', { ...attempt(now), httpStatus: 200, outcome: 'triggered' }, { state: 'done', airflowState: 'queued', dagRunId, run: { url: `http://af/dags/${dagId}/runs/${dagRunId}`, track: true } }, notify);
    return { eventId: r.value.id, jobId: claimed!.id, dagRunId };
  };
  const judge = (run: Parameters<typeof judgeRun>[0], o: Parameters<typeof judgeRun>[1]) => judgeRun(run, o, undefined, now, 86_400_000);

  it('a job turning dead writes one job.dead_lettered with the Planasonix ids, in the attempt’s transaction; claim, retry, deliver, replay', async () => {
    const { store } = await open();
    const r = await store.insertEvent(event('dead1'), [job()], POLICY);
    if (!r.ok) throw new Error();
    expect(await store.notificationsOfEvent(r.value.id)).toEqual([]);
    const [claimed] = await store.claimJobs({ airflow: 'default', now, limit: 10, leaseMs: 30_000, owner: 'A' });
    await store.finishAttempt(claimed!.id, 'A', attempt(now), { state: 'dead', error: 'Airflow said 404' }, notify);
    const [note, ...more] = await store.notificationsOfEvent(r.value.id);
    expect(more).toEqual([]);
    expect(note).toMatchObject({
      target: 'oncall', type: 'job.dead_lettered', state: 'pending', attempts: 0, jobId: claimed!.id, cause: `job.dead_lettered:${claimed!.id}:1`,
      body: { id: note!.id, type: 'job.dead_lettered', data: { route: 'r', airflow: 'default', dag_id: 'dag_a', dag_run_id: 'run__r__dag_a', state: 'dead', detail: 'Airflow said 404', planasonix: { event_id: 'evt_dead1', run_id: 'run_dead1', pipeline_id: 'pl_1' } } },
    });
    expect(note!.id).toMatch(/^msg_[0-9a-f]{32}$/);

    const claim = (owner: string) => store.claimNotifications({ target: 'oncall', now, limit: 10, leaseMs: 30_000, owner });
    const [c1] = await claim('L1');
    expect(c1!.id).toBe(note!.id);
    expect(await claim('L2')).toEqual([]);
    const a = { startedAt: now, durationMs: 3, httpStatus: 500, outcome: 'retry' as const, detail: '500', nextRetryAt: now + 1000 };
    expect(await store.finishNotification(note!.id, 'L2', a, { state: 'pending', nextAttemptAt: now + 1000, error: '500' })).toBeUndefined();
    expect(await store.finishNotification(note!.id, 'L1', a, { state: 'pending', nextAttemptAt: now + 1000, error: '500' })).toBe(1);
    expect(await claim('L3')).toEqual([]);
    now += 1000;
    const [c2] = await claim('L3');
    expect(c2).toMatchObject({ id: note!.id, attempts: 1 });
    expect(await store.finishNotification(note!.id, 'L3', { ...a, httpStatus: 410, outcome: 'dead', nextRetryAt: null }, { state: 'dead', error: '410' })).toBe(2);
    expect(await store.listNotifications({ state: 'dead', limit: 10 })).toMatchObject({ items: [{ id: note!.id, state: 'dead', lastError: '410' }] });
    expect(await store.listNotifications({ target: 'only-r2', limit: 10 })).toEqual({ items: [] });
    expect(await store.replayNotification(note!.id, now)).toBe(true);
    expect(await store.replayNotification(note!.id, now)).toBe(false);
    const [c3] = await claim('L4');
    expect(c3!.id).toBe(note!.id);
    expect(await store.finishNotification(note!.id, 'L4', { ...a, httpStatus: 200, outcome: 'delivered', nextRetryAt: null }, { state: 'done' })).toBe(3);
    expect(await store.getNotification(note!.id)).toMatchObject({ state: 'done', doneAt: now, attempts: 1 });
    expect((await store.attemptsOfNotification(note!.id)).map((x) => [x.n, x.httpStatus, x.outcome])).toEqual([[1, 500, 'retry'], [2, 410, 'dead'], [3, 200, 'delivered']]);
    expect(await store.nextNotificationAt()).toBeUndefined();
  });

  it('a run that fails writes one dag_run.failed per target that wants it; recorded again after a replay, through another instance, it writes none', async () => {
    const { store, again } = await open();
    const { eventId, jobId, dagRunId } = await settle(store, 'r2', 'dag_b');
    const failed = { dagId: 'dag_b', dagRunId, state: 'failed', startDate: now - 5000, endDate: now };
    const changes = await store.recordRuns('default', [failed], judge, now, notify);
    expect(changes).toMatchObject([{ finished: true }]);
    const notes = await store.notificationsOfEvent(eventId);
    expect(notes.map((x) => [x.target, x.type, x.cause]).sort()).toEqual([['oncall', 'dag_run.failed', `dag_run.failed:${jobId}`], ['only-r2', 'dag_run.failed', `dag_run.failed:${jobId}`]]);
    expect(notes[0]!.body.data).toMatchObject({ state: 'failed', url: `http://af/dags/dag_b/runs/${dagRunId}`, planasonix: { pipeline_id: 'pl_1' } });

    // The operator replays the job: a 409, the run followed again, seen failed again elsewhere.
    const other = await again();
    expect(await other.replayJob(jobId, now)).toBe(true);
    const [claimed] = await other.claimJobs({ airflow: 'default', now, limit: 10, leaseMs: 30_000, owner: 'B' });
    await other.finishAttempt(claimed!.id, 'B', { ...attempt(now), httpStatus: 409, outcome: 'exists' }, { state: 'done', airflowState: 'queued', dagRunId, run: { url: 'http://af/x', track: true } }, notify);
    expect(await other.recordRuns('default', [failed], judge, now, notify)).toMatchObject([{ finished: true }]);
    expect(await other.notificationsOfEvent(eventId)).toHaveLength(2);
  });

  it('an SLA mark and a breaker opening each write theirs; a success only for targets that want it', async () => {
    const { store } = await open();
    const { eventId, dagRunId } = await settle(store);
    const sla = (run: Parameters<typeof judgeRun>[0], o: Parameters<typeof judgeRun>[1]) => judgeRun(run, o, { finished_within: 1000 }, now + 5000, 86_400_000);
    await store.recordRuns('default', [{ dagId: 'dag_a', dagRunId, state: 'running', startDate: now, endDate: null }], sla, now, notify);
    await store.recordRuns('default', [{ dagId: 'dag_a', dagRunId, state: 'success', startDate: now, endDate: now + 9000 }], judge, now, notify);
    expect((await store.notificationsOfEvent(eventId)).map((x) => [x.target, x.type])).toEqual([['oncall', 'dag_run.sla_missed'], ['oncall', 'dag_run.succeeded']]);

    const tight: IngestPolicy = { breaker: { maxTriggers: 1, windowMs: 60_000 }, notify };
    await store.insertEvent(event(), [job('b', 'dag_c')], tight);
    const opening = await store.insertEvent(event(), [job('b', 'dag_c')], tight);
    const still = await store.insertEvent(event(), [job('b', 'dag_c')], tight);
    if (!opening.ok || !still.ok) throw new Error();
    expect(opening.value.jobs[0]!.state).toBe('blocked');
    expect((await store.notificationsOfEvent(opening.value.id)).map((x) => [x.type, x.body.data.route, x.body.data.state])).toEqual([['loop_guard.breaker_opened', 'b', 'open']]);
    expect(await store.notificationsOfEvent(still.value.id)).toEqual([]);
  });

  it('retention: delivered notifications go on the events clock, dead ones on the dead clock, with their attempts; pending and replayed ones stay', async () => {
    const { store } = await open();
    const HOUR = 3_600_000;
    // One job.dead_lettered notification (target oncall) per dead job.
    const noteOfDeadJob = async () => {
      const r = await store.insertEvent(event(), [job()], POLICY);
      const [claimed] = await store.claimJobs({ airflow: 'default', now, limit: 10, leaseMs: 30_000, owner: 'A' });
      await store.finishAttempt(claimed!.id, 'A', attempt(now), { state: 'dead', error: 'x' }, notify);
      if (!r.ok) throw new Error();
      return (await store.notificationsOfEvent(r.value.id))[0]!.id;
    };
    const finish = async (id: string, state: 'done' | 'dead') => {
      const [claimed] = await store.claimNotifications({ target: 'oncall', now, limit: 1, leaseMs: 30_000, owner: 'N' });
      expect(claimed!.id).toBe(id);
      const a = { startedAt: now, durationMs: 2, httpStatus: state === 'done' ? 200 : 410, outcome: state === 'done' ? ('delivered' as const) : ('dead' as const), detail: state, nextRetryAt: null };
      await store.finishNotification(id, 'N', a, state === 'done' ? { state } : { state, error: '410' });
    };
    const delivered = await noteOfDeadJob();
    await finish(delivered, 'done');
    const dead = await noteOfDeadJob();
    await finish(dead, 'dead');
    const replayed = await noteOfDeadJob();
    await finish(replayed, 'dead');
    expect(await store.replayNotification(replayed, now)).toBe(true);
    const pending = await noteOfDeadJob();
    // Batches of one, so a round needs several and `more` must carry it on.
    const pruneAll = async () => {
      const { notifications, notification_attempts } = await pruneEvery(store, () => ({ now, eventsBefore: now - HOUR, deadBefore: now - 3 * HOUR, dedupeBefore: now - 5 * HOUR }), 1);
      return { notifications, notification_attempts };
    };
    const left = async () => (await Promise.all([delivered, dead, replayed, pending].map((id) => store.getNotification(id)))).map((x) => x?.state ?? 'gone');

    now += 30 * 60_000; // younger than both clocks
    expect(await pruneAll()).toEqual({ notifications: 0, notification_attempts: 0 });
    now += 60 * 60_000; // delivered 1.5 h ago (> events: 1 h); dead 1.5 h ago (< dead: 3 h)
    expect(await pruneAll()).toEqual({ notifications: 1, notification_attempts: 1 });
    expect(await left()).toEqual(['gone', 'dead', 'pending', 'pending']);
    expect(await store.attemptsOfNotification(delivered)).toEqual([]);
    now += 2 * HOUR; // dead 3.5 h ago; the replayed and the pending one, 3.5 h old, stay
    expect(await pruneAll()).toEqual({ notifications: 1, notification_attempts: 1 });
    expect(await left()).toEqual(['gone', 'gone', 'pending', 'pending']);
    expect(await store.attemptsOfNotification(dead)).toEqual([]);
    expect((await store.attemptsOfNotification(replayed)).length).toBe(1);
    const [next] = await store.claimNotifications({ target: 'oncall', now, limit: 1, leaseMs: 30_000, owner: 'N' });
    expect([replayed, pending]).toContain(next!.id);
  });

  it('without a notifier nothing is written', async () => {
    const { store } = await open();
    const r = await store.insertEvent(event(), [job()], { breaker: POLICY.breaker });
    const [claimed] = await store.claimJobs({ airflow: 'default', now, limit: 10, leaseMs: 30_000, owner: 'A' });
    await store.finishAttempt(claimed!.id, 'A', attempt(now), { state: 'dead', error: 'x' });
    if (!r.ok) throw new Error();
    expect(await store.notificationsOfEvent(r.value.id)).toEqual([]);
  });
});

describe('two replicas on one PostgreSQL database', () => {
  it('record the same run end at once (a push on one, a poll on the other): one notification', async () => {
    const kind = STORE_KINDS.find((k) => k.name === 'postgres')!;
    const location = await kind.fresh();
    const a = await location.open();
    const b = await location.open();
    try {
      const now = Date.now();
      const r = await a.insertEvent(event(), [job('r', 'dag_p')], POLICY);
      if (!r.ok) throw new Error();
      const [claimed] = await b.claimJobs({ airflow: 'default', now, limit: 10, leaseMs: 30_000, owner: 'B' });
      await b.finishAttempt(claimed!.id, 'B', { ...attempt(now), outcome: 'triggered' }, { state: 'done', airflowState: 'queued', dagRunId: claimed!.dagRunId, run: { url: 'http://af/r', track: true } }, notify);
      const o = [{ dagId: 'dag_p', dagRunId: claimed!.dagRunId!, state: 'failed', startDate: now, endDate: now }];
      const judge = (run: Parameters<typeof judgeRun>[0], x: Parameters<typeof judgeRun>[1]) => judgeRun(run, x, undefined, now, 86_400_000);
      const [ca, cb] = await Promise.all([a.recordRuns('default', o, judge, now, notify), b.recordRuns('default', o, judge, now, notify)]);
      expect([ca.length, cb.length].sort()).toEqual([0, 1]);
      const notes = await a.notificationsOfEvent(r.value.id);
      expect(notes.filter((x) => x.target === 'oncall').map((x) => x.type)).toEqual(['dag_run.failed']);
      // Both claim at once: SKIP LOCKED gives the row to one of them.
      const [ga, gb] = await Promise.all([a.claimNotifications({ target: 'oncall', now: Date.now(), limit: 10, leaseMs: 30_000, owner: 'A' }), b.claimNotifications({ target: 'oncall', now: Date.now(), limit: 10, leaseMs: 30_000, owner: 'B' })]);
      expect(ga.length + gb.length).toBe(1);
    } finally {
      await a.close();
      await b.close();
      await location.cleanup();
    }
  });
});
