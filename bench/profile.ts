// `npm run profile -- [no-route|one-route] [--postgres]`: the bridge as `serve` runs it,
// under the ingest benchmark's load, with `node --cpu-prof`; prints where the samples went
// (self and inclusive time by package or src/ folder, the top functions by self time) and,
// on PostgreSQL, the backends' CPU beside the bridge's. Profile before optimising: this is
// what README "Performance" quotes.
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { bridgeConfig, cli, corpus, freshPgDatabase, load, NO_ROUTE, ONE_ROUTE, PG_ADMIN_URL, printTable, root, sqliteFile, start, stop } from './common.js';
import { startCpuMeter } from './cpu.js';

interface Node { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }
interface Profile { nodes: Node[]; samples: number[]; timeDeltas: number[] }

const shape = process.argv.includes('one-route') ? 'one-route' : 'no-route';
const routes = shape === 'one-route' ? ONE_ROUTE : NO_ROUTE;
const admin = process.argv.includes('--postgres') ? new pg.Client({ connectionString: PG_ADMIN_URL }) : undefined;
await admin?.connect();
const db = admin && (await freshPgDatabase(admin));
const dir = mkdtempSync(join(tmpdir(), 'bench-prof-'));
const server = await start(['--cpu-prof', '--cpu-prof-dir', dir, ...cli, bridgeConfig(db?.url ?? `sqlite:${sqliteFile()}`, routes)]);
const meter = await startCpuMeter([server.pid], admin && db ? { admin, database: db.name } : undefined);
const result = await load([server.url], corpus(40_000, 'prof'));
const cpu = await meter.stop();
await stop(server);
if (admin && db) {
  await admin.query(`DROP DATABASE ${db.name} WITH (FORCE)`);
  await admin.end();
}
const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
if (!file) throw new Error(`no profile written in ${dir}`);
const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Profile;

// Self time per node from the sample stream; parents for inclusive time.
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const self = new Map<number, number>();
profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
const idle = [...self].filter(([id]) => ['(idle)', '(program)'].includes(byId.get(id)!.callFrame.functionName)).reduce((a, [, t]) => a + t, 0);
const total = [...self.values()].reduce((a, b) => a + b, 0);
const busy = total - idle;

const where = (url: string) => {
  if (!url) return '(native / V8)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1];
  if (pkg) return pkg;
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0]}`;
  const src = /\/dist\/([^/]+)\//.exec(url)?.[1];
  return src ? `src/${src}` : url.replace(root, '');
};
const add = (m: Map<string, number>, k: string, t: number) => m.set(k, (m.get(k) ?? 0) + t);
const groups = new Map<string, number>();
const functions = new Map<string, number>();
for (const [id, t] of self) {
  const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
  if (['(idle)', '(program)'].includes(functionName)) continue;
  add(groups, functionName === '(garbage collector)' ? '(garbage collector)' : where(url), t);
  add(functions, `${functionName || '(anonymous)'} ${where(url)}:${lineNumber + 1}`, t);
}
// Inclusive: each sample counts once for every distinct group on its stack.
const inclusive = new Map<string, number>();
profile.samples.forEach((id, i) => {
  const seen = new Set<string>();
  for (let n: number | undefined = id; n !== undefined; n = parent.get(n)) seen.add(where(byId.get(n)!.callFrame.url));
  for (const g of seen) add(inclusive, g, profile.timeDeltas[i] ?? 0);
});

const pct = (t: number) => `${((100 * t) / busy).toFixed(1)} %`;
const top = (m: Map<string, number>, n: number) => [...m].sort((a, b) => b[1] - a[1]).slice(0, n);
const perEvent = (ms: number) => (ms / (result.accepted || 1)).toFixed(3);
process.stdout.write(
  `profile of serve, ${db ? 'PostgreSQL' : 'SQLite'}, ${shape}: ${result.rps.toFixed(0)} req/s under profiling, ${result.accepted} accepted; ` +
    `main thread busy ${(busy / 1000).toFixed(0)} of ${(total / 1000).toFixed(0)} ms; CPU ms per accepted event: main thread ${perEvent(busy / 1000)}, ` +
    `process (all threads) ${perEvent(cpu.processMs)}${db ? `, PostgreSQL backends ${perEvent(cpu.postgresMs)} (${cpu.backends} backends)` : ''}\n`,
);
printTable('Self time by package or src/ folder (of busy time)', ['where', 'self', 'inclusive'], top(groups, 20).map(([k, t]) => [k, pct(t), pct(inclusive.get(k) ?? 0)]));
printTable('Top functions by self time', ['function', 'self'], top(functions, 25).map(([k, t]) => [k, pct(t)]));
