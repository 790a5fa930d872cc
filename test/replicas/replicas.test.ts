// Three bridge processes on one PostgreSQL database, no balancer: the test sends to each in
// turn, kills one with SIGKILL in the middle, and checks that nothing is lost or doubled.
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SECRET, tempDir } from '../helpers/app.js';
import { completionEvent, standardWebhookHeaders } from '../helpers/sign.js';
import { serveProcess } from '../helpers/process.js';
import { freshPostgresDatabase } from '../helpers/stores.js';
import { startCountingAirflow, type CountingAirflow } from './counting-airflow.js';

const UNIQUE = 2100;
const DUPLICATES = 900; // 30% of 3000 deliveries
const LEASE_S = 3;

interface Replica {
  child: ChildProcess;
  url: string;
  alive: boolean;
}

async function startReplica(config: string, name: string): Promise<Replica> {
  return { ...(await serveProcess(config, name)), alive: true };
}

describe('three replicas on one PostgreSQL', () => {
  let db: Awaited<ReturnType<typeof freshPostgresDatabase>>;
  let airflow: CountingAirflow;
  let replicas: Replica[] = [];
  let file = '';

  beforeAll(async () => {
    db = await freshPostgresDatabase();
    airflow = await startCountingAirflow();
    const temp = tempDir();
    file = join(temp.dir, 'bridge.yaml');
    writeFileSync(
      file,
      `
server: { host: 127.0.0.1, port: 0, rate_limit: { window: 1m, max: 1000000 } }
store: { url: "${db.url}", pool_size: 5 }
log: { level: info }
dispatch: { lease: ${LEASE_S}s, poll_interval: 0.2s }
sources: { planasonix: { path: /webhooks/planasonix, verify: { scheme: standard-webhooks, secrets: ["\${SECRET}"] } } }
airflow: { default: { url: "${airflow.url}", auth: { type: none }, timeout: 1s, max_in_flight: 16 } }
loop_guard: { breaker: { max_triggers: 100000, window: 1m } }
routes: [ { name: all, match: {}, trigger: { dag_id: counted } } ]
`,
    );
    // Started together: the advisory lock makes them migrate once.
    replicas = await Promise.all(['a', 'b', 'c'].map((n) => startReplica(file, n)));
  }, 60_000);

  afterAll(async () => {
    for (const r of replicas) r.child.kill('SIGKILL');
    await airflow?.close();
    await db?.drop();
  });

  it('3,000 webhooks with 30% duplicates across replicas, one killed mid-run: every event stored once, every route triggered once', async () => {
    const deliveries: { id: string; body: string }[] = [];
    for (let i = 0; i < UNIQUE; i++) deliveries.push({ id: `msg_${i}`, body: JSON.stringify(completionEvent({ data: { run_id: `run_${i}`, pipeline_id: `pl_${i % 7}`, status: 'succeeded' } })) });
    // Duplicates: a redelivery of an earlier message, sent to another replica than its first.
    const plan = deliveries.map((d, i) => ({ ...d, replica: i % 3 }));
    for (let i = 0; i < DUPLICATES; i++) {
      const original = plan[(i * 7) % UNIQUE]!;
      plan.splice(Math.min(plan.length, ((i * 7) % UNIQUE) + 50 + (i % 40)), 0, { ...original, replica: (original.replica + 1) % 3 });
    }
    expect(plan).toHaveLength(3000);

    const answers = new Map<number, number>();
    let noAnswer = 0;
    let sent = 0;
    let killedAt = 0;
    const started = Date.now();
    const post = async (d: (typeof plan)[number]) => {
      // A sender that gets no answer retries on another replica (Planasonix retries too).
      for (let attempt = 0; attempt < 6; attempt++) {
        const replica = replicas[(d.replica + attempt) % 3]!;
        if (!replica.alive) continue;
        try {
          const res = await fetch(`${replica.url}/webhooks/planasonix`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', ...standardWebhookHeaders(SECRET, d.id, Math.floor(Date.now() / 1000), d.body) },
            body: d.body,
          });
          await res.arrayBuffer();
          answers.set(res.status, (answers.get(res.status) ?? 0) + 1);
          if (res.status < 300) return;
        } catch {
          noAnswer++;
        }
      }
      throw new Error(`delivery ${d.id} never acknowledged`);
    };
    const queue = [...plan];
    await Promise.all(
      Array.from({ length: 24 }, async () => {
        for (let d = queue.shift(); d; d = queue.shift()) {
          await post(d);
          if (++sent === 1000) {
            replicas[1]!.alive = false;
            replicas[1]!.child.kill('SIGKILL');
            killedAt = Date.now();
          }
        }
      }),
    );
    const acceptSeconds = (Date.now() - started) / 1000;

    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      const counts = async () => (await client.query<{ events: number; pending: number; done: number }>(
        "SELECT (SELECT count(*)::int FROM events) AS events, (SELECT count(*)::int FROM jobs WHERE state = 'pending') AS pending, (SELECT count(*)::int FROM jobs WHERE state = 'done') AS done",
      )).rows[0]!;
      let c = await counts();
      for (let i = 0; i < 200 && (c.pending > 0 || c.done < UNIQUE); i++) {
        await new Promise((r) => setTimeout(r, 100));
        c = await counts();
      }
      const recoveredAfter = (Date.now() - killedAt) / 1000;
      expect(c).toEqual({ events: UNIQUE, pending: 0, done: UNIQUE });
      expect(airflow.created()).toBe(UNIQUE);
      const repeatedPosts = [...airflow.posts.values()].filter((n) => n > 1).length;
      const accepted = answers.get(202) ?? 0;
      const duplicates = answers.get(200) ?? 0;
      // A 202 lost with the killed replica comes back as a 200 duplicate on the retry.
      expect(accepted).toBeLessThanOrEqual(UNIQUE);
      expect(accepted + duplicates).toBeGreaterThanOrEqual(3000);
      process.stdout.write(
        `replicas: ${accepted} accepted + ${duplicates} duplicate answers in ${acceptSeconds.toFixed(1)}s (${(3000 / acceptSeconds).toFixed(0)} deliveries/s), ` +
          `${noAnswer} sends without answer (killed replica) retried elsewhere, ${airflow.created()} runs created, ` +
          `${repeatedPosts} run ids posted again (answered 409), all jobs done ${recoveredAfter.toFixed(1)}s after the kill (lease ${LEASE_S}s)\n`,
      );
    } finally {
      await client.end();
    }
  }, 180_000);
});
