// FAULT-INJECTION PROXY — not Airflow. Forwards every request to a real Airflow at once,
// but can hold Airflow's answer back, so a test can kill the bridge after Airflow has acted
// and before the bridge has heard (the crash window the lease and 409 must cover).
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface HoldingProxy {
  url: string;
  /** While true, answers to POSTs are held (not sent) until release(). */
  hold: boolean;
  /** Resolves when a held answer has arrived from Airflow. */
  heldAnswer(): Promise<{ path: string; status: number }>;
  close(): Promise<void>;
}

export async function startHoldingProxy(target: string): Promise<HoldingProxy> {
  const upstream = new URL(target);
  let onHeld: ((v: { path: string; status: number }) => void) | undefined;
  const held = new Promise<{ path: string; status: number }>((resolve) => (onHeld = resolve));
  const proxy: HoldingProxy = { url: '', hold: false, heldAnswer: () => held, close: async () => {} };
  const server: Server = createServer((req, res) => {
    const forward = request(
      { host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: { ...req.headers, host: upstream.host } },
      (answer) => {
        if (proxy.hold && req.method === 'POST' && req.url !== '/auth/token') {
          answer.resume();
          onHeld?.({ path: req.url!, status: answer.statusCode! });
          return; // never answers: the caller is expected to die waiting
        }
        res.writeHead(answer.statusCode!, answer.headers);
        answer.pipe(res);
      },
    );
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  proxy.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return proxy;
}
