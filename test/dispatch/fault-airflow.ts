// FAULT-INJECTION FAKE — not Airflow. Used only for what a real Airflow cannot be made to
// do on demand: 503 bursts with Retry-After, answers slower than the timeout, dropped
// connections, token expiry at an exact moment, and 2xx answers that are not Airflow's (a login
// page from a proxy, an empty body, another run) for the proof-of-trigger checks. Everything else is tested against real
// Airflow (test/airflow/).
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Scripted {
  status?: number;
  /** Sent as JSON; `'run'` answers the run the request asked for (state queued), as Airflow does. */
  body?: unknown;
  /** Sent as is instead of `body` (HTML, an empty string); set the content-type in `headers`. */
  raw?: string;
  headers?: Record<string, string>;
  /** Answer after this long (to exceed the client's timeout). */
  delayMs?: number;
  /** Destroy the socket without answering. */
  drop?: boolean;
}

export interface Seen {
  method: string;
  path: string;
  authorization: string | undefined;
  body: unknown;
}

export interface FaultAirflow {
  url: string;
  seen: Seen[];
  /** Queue answers for a path; when its queue is empty the default answer is used. */
  script(path: string, ...answers: Scripted[]): void;
  close(): Promise<void>;
}

const defaults = (req: IncomingMessage, body: { dag_run_id?: string } | undefined): Scripted => {
  if (req.url === '/auth/token') return { status: 201, body: { access_token: 'token-1' } };
  if (req.method === 'GET' && /^\/api\/v[12]\/dags\/[^/]+$/.test(req.url ?? '')) return { status: 200, body: { is_paused: false } };
  const run = /^\/api\/v[12]\/dags\/[^/]+\/dagRuns\/([^/]+)$/.exec(req.url ?? '');
  if (req.method === 'GET' && run) return { status: 200, body: { dag_run_id: decodeURIComponent(run[1]!), state: 'success' } };
  return { status: 200, body: { dag_run_id: body?.dag_run_id, state: 'queued' } };
};

export async function startFaultAirflow(): Promise<FaultAirflow> {
  const seen: Seen[] = [];
  const scripts = new Map<string, Scripted[]>();
  const server: Server = createServer((req, res) => {
    let raw = '';
    req.on('data', (d) => (raw += d));
    req.on('end', () => {
      const body = raw ? (JSON.parse(raw) as { dag_run_id?: string }) : undefined;
      seen.push({ method: req.method!, path: req.url!, authorization: req.headers.authorization, body });
      const answer = scripts.get(req.url!)?.shift() ?? defaults(req, body);
      if (answer.drop) return req.socket.destroy();
      setTimeout(() => {
        if (res.destroyed) return;
        res.writeHead(answer.status ?? 200, { 'content-type': 'application/json', ...answer.headers });
        const json = answer.body === 'run' ? { dag_run_id: body?.dag_run_id, state: 'queued' } : answer.body;
        res.end(answer.raw ?? (json === undefined ? '' : JSON.stringify(json)));
      }, answer.delayMs ?? 0);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    script(path, ...answers) {
      scripts.set(path, [...(scripts.get(path) ?? []), ...answers]);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
