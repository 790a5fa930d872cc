// A disk that fills up for real: the SQLite file of a `serve` process on a 3 MB tmpfs. Ingest
// until the bridge answers 503; /readyz says store_unavailable; nothing acknowledged is lost
// and the file is intact; once space is freed (a filler file on the same tmpfs is deleted),
// /readyz is 200 again by itself and deliveries are accepted again.
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SECRET, tempDir } from '../helpers/app.js';
import { CLI, spawnListening, stopChild } from '../helpers/process.js';
import { standardWebhookHeaders } from '../helpers/sign.js';
import type { ChildProcess } from 'node:child_process';

const temp = tempDir();
const mountpoint = join(temp.dir, 'small-disk');
let skipReason: string | undefined;
let child: ChildProcess | undefined;

beforeAll(() => {
  if (process.getuid?.() !== 0) return void (skipReason = 'not root: cannot mount a tmpfs');
  mkdirSync(mountpoint);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', mountpoint], { stdio: 'pipe' });
  } catch (err) {
    skipReason = `mount -t tmpfs failed: ${String((err as { stderr?: Buffer }).stderr ?? err).trim()}`;
  }
});

afterAll(async () => {
  if (child) await stopChild(child);
  if (!skipReason) execFileSync('umount', [mountpoint]);
  temp.cleanup();
});

describe('disk full, for real', () => {
  it('503 and store_unavailable while full, every 202 kept, integrity ok, ready again by itself once space is freed', async (ctx) => {
    if (skipReason) {
      console.log(`skipped: ${skipReason}`);
      return ctx.skip();
    }
    const dbPath = join(mountpoint, 'bridge.db');
    const filler = join(mountpoint, 'filler');
    writeFileSync(filler, Buffer.alloc(1024 * 1024, 1));
    const config = join(temp.dir, 'bridge.yaml');
    writeFileSync(
      config,
      `server: { host: 127.0.0.1, port: 0, rate_limit: { window: 1m, max: 100000 } }
store: { url: "sqlite:${dbPath}" }
sources: { planasonix: { path: /webhooks/planasonix, verify: { scheme: standard-webhooks, secrets: ["${SECRET}"] } } }
`,
    );
    const TOKEN = 'disk-full-admin-token-0123456789abcdef';
    const started = await spawnListening([CLI, 'serve', '--config', config], 'disk-full', { BRIDGE_ADMIN_TOKEN: TOKEN });
    child = started.child;
    const { url } = started;
    const padding = 'x'.repeat(2000);
    const send = async (i: number) => {
      const body = JSON.stringify({ id: `evt_${i}`, type: 'run.succeeded', created_at: new Date().toISOString(), data: { run_id: `run_${i}`, pipeline_id: 'pl_fill', status: 'succeeded', padding } });
      const res = await fetch(`${url}/webhooks/planasonix`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...standardWebhookHeaders(SECRET, `msg_${i}`, Math.floor(Date.now() / 1000), body) },
        body,
      });
      return { status: res.status, body: (await res.json()) as { id?: string; error?: string } };
    };
    const readyz = async () => {
      const res = await fetch(`${url}/readyz`);
      return { status: res.status, body: await res.json() };
    };
    expect(await readyz()).toEqual({ status: 200, body: { status: 'ready', reasons: [] } });

    // Fill the disk: eight senders at a time until the answers turn to 503.
    const acknowledged = new Map<string, string>(); // delivery id → stored id
    let i = 0;
    let refused = 0;
    while (refused === 0 && i < 20_000) {
      const answers = await Promise.all(Array.from({ length: 8 }, () => i++).map(async (k) => ({ k, ...(await send(k)) })));
      for (const a of answers) {
        if (a.status === 202) acknowledged.set(`msg_${a.k}`, a.body.id!);
        else if (a.status === 503) refused++;
        else throw new Error(`unexpected ${a.status}: ${JSON.stringify(a.body)}`);
      }
    }
    expect(refused).toBeGreaterThan(0);
    // A batch of eight no longer fits; single deliveries may, until three in a row do not.
    for (let inARow = 0; inARow < 3 && i < 20_000; ) {
      const a = await send(i++);
      if (a.status === 202) (acknowledged.set(`msg_${i - 1}`, a.body.id!), (inARow = 0));
      else if (a.status === 503) inARow++;
      else throw new Error(`unexpected ${a.status}: ${JSON.stringify(a.body)}`);
    }
    expect(acknowledged.size).toBeGreaterThan(20);
    // Still full: readiness says why (reason code only).
    expect(await readyz()).toEqual({ status: 503, body: { status: 'not_ready', reasons: ['store_unavailable'] } });

    // Free space: readiness comes back without anything being sent, then deliveries are accepted.
    rmSync(filler);
    const until = Date.now() + 30_000;
    let ready = await readyz();
    while (ready.status !== 200 && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 250));
      ready = await readyz();
    }
    const detail = async () => JSON.stringify(((await (await fetch(`${url}/v1/status`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { store: unknown }).store);
    expect(ready, await detail()).toEqual({ status: 200, body: { status: 'ready', reasons: [] } });
    const after = await send(i++);
    expect(after.status).toBe(202);
    acknowledged.set(`msg_${i - 1}`, after.body.id!);

    await stopChild(child);
    child = undefined;
    const db = new Database(dbPath, { readonly: true });
    try {
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
      const stored = new Map(db.prepare<[], { delivery_id: string; id: string }>('SELECT delivery_id, id FROM events').all().map((r) => [r.delivery_id, r.id]));
      const lost = [...acknowledged].filter(([delivery, id]) => stored.get(delivery) !== id);
      expect(lost).toEqual([]);
      console.log(`disk full after ${acknowledged.size - 1} acknowledged events; all ${acknowledged.size} found in the file`);
    } finally {
      db.close();
    }
  }, 120_000);
});
