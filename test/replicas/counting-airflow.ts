// COUNTING FAKE — not Airflow. Answers the trigger endpoint the way Airflow does for run ids
// (first POST of an id creates the run: 200; any later one: 409; GET of a run: 200/404) and
// counts (run-list requests of the bridge's run tracking are answered, not counted), so a test with thousands of triggers can check "exactly once" without the cost of
// real DAG runs. The real-Airflow behaviour itself is covered in test/airflow/.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface CountingAirflow {
  url: string;
  /** dag_run_id → times a POST for it arrived. */
  posts: Map<string, number>;
  /** Runs created (first POST per id). */
  created: () => number;
  close(): Promise<void>;
}

export async function startCountingAirflow(): Promise<CountingAirflow> {
  const posts = new Map<string, number>();
  const dags = new Map<string, string>();
  const server: Server = createServer((req, res) => {
    let raw = '';
    req.on('data', (d) => (raw += d));
    req.on('end', () => {
      const send = (status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      const run = /^\/api\/v2\/dags\/[^/]+\/dagRuns\/([^/?]+)$/.exec(req.url ?? '');
      if (req.method === 'GET' && run) return posts.has(decodeURIComponent(run[1]!)) ? send(200, { dag_run_id: decodeURIComponent(run[1]!), state: 'queued' }) : send(404, { detail: 'not found' });
      if (req.method === 'GET') return send(200, { is_paused: false });
      // Run tracking's batched list (DESIGN §7): every run it made, finished.
      if (/\/dagRuns\/list$/.test(req.url ?? '')) {
        const dagRuns = [...dags].map(([id, dagId]) => ({ dag_id: dagId, dag_run_id: id, state: 'success', start_date: null, end_date: null, queued_at: null }));
        return send(200, { dag_runs: dagRuns, total_entries: dagRuns.length });
      }
      const id = (JSON.parse(raw) as { dag_run_id: string }).dag_run_id;
      dags.set(id, decodeURIComponent(/\/dags\/([^/]+)\/dagRuns$/.exec(req.url ?? '')?.[1] ?? ''));
      const seen = posts.get(id) ?? 0;
      posts.set(id, seen + 1);
      return seen === 0 ? send(200, { dag_run_id: id, state: 'queued' }) : send(409, { detail: 'exists' });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    posts,
    created: () => posts.size,
    close: () => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))),
  };
}
