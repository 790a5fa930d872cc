// CPU time of processes, from /proc/<pid>/stat (utime + stime, all threads, in clock ticks):
// the bridge processes, and the PostgreSQL backends serving them (every process that
// pg_stat_activity lists for the benchmark's database: client backends, and an autovacuum
// worker if one ran there). Backends of a pool come and go, so the backends are sampled every
// SAMPLE_MS during the run and at its end; a backend first seen during the run counts from 0
// (it started during the run), one that exited counts until its last sample (what it spent
// after that is lost, at most SAMPLE_MS of one connection; the count of backends is printed).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type pg from 'pg';

export const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
const SAMPLE_MS = 250;

/** utime + stime of `pid` in clock ticks, or undefined once it has exited. */
export function cpuTicks(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after "(comm)": state is field 3, utime field 14, stime field 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return undefined;
  }
}

export interface CpuUse {
  /** CPU ms of the listed processes (the bridges, or a baseline server). */
  processMs: number;
  /** CPU ms of the PostgreSQL backends of the database (0 without one). */
  postgresMs: number;
  /** How many distinct backends were seen. */
  backends: number;
}

/** Starts measuring; `stop()` returns the CPU used since. `pg` = a client (on another database) and the database to watch. */
export async function startCpuMeter(pids: number[], postgres?: { admin: pg.Client; database: string }) {
  const ticks0 = new Map(pids.map((p) => [p, cpuTicks(p) ?? 0]));
  const first = new Map<number, number>();
  const last = new Map<number, number>();
  const backends = async () =>
    postgres ? (await postgres.admin.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = $1', [postgres.database])).rows.map((r) => r.pid) : [];
  const sample = async (atStart: boolean) => {
    for (const pid of await backends()) {
      const t = cpuTicks(pid);
      if (t === undefined) continue;
      if (!first.has(pid)) first.set(pid, atStart ? t : 0);
      last.set(pid, t);
    }
  };
  await sample(true);
  let sampling = Promise.resolve();
  const timer = postgres ? setInterval(() => (sampling = sampling.then(() => sample(false)).catch(() => {})), SAMPLE_MS) : undefined;
  return {
    async stop(): Promise<CpuUse> {
      // Read the bridges first: the final backend query costs PostgreSQL a little, not them.
      const processTicks = pids.reduce((a, p) => a + ((cpuTicks(p) ?? ticks0.get(p)!) - ticks0.get(p)!), 0);
      clearInterval(timer);
      await sampling;
      await sample(false);
      let postgresTicks = 0;
      for (const [pid, t] of last) postgresTicks += t - first.get(pid)!;
      return { processMs: (processTicks * 1000) / CLK_TCK, postgresMs: (postgresTicks * 1000) / CLK_TCK, backends: last.size };
    },
  };
}
