// FAULT-INJECTING PROXY — not Airflow. Sits between the bridge and an Airflow-like endpoint
// and, by a fixed pattern, answers 503 with Retry-After, answers after the client's timeout
// (having forwarded the request, so the run does get created), or drops the connection.
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FaultProxy {
  url: string;
  injected: { unavailable: number; slow: number; dropped: number };
  close(): Promise<void>;
}

export async function startFaultProxy(target: string, options: { slowMs: number }): Promise<FaultProxy> {
  const upstream = new URL(target);
  const injected = { unavailable: 0, slow: 0, dropped: 0 };
  let n = 0;
  const server: Server = createServer((req, res) => {
    const fault = req.method === 'POST' ? ++n % 7 : 0;
    if (fault === 1) {
      injected.unavailable++;
      req.resume();
      return void res.writeHead(503, { 'retry-after': '1', 'content-type': 'application/json' }).end('{"detail":"injected 503"}');
    }
    const forward = request({ host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: req.headers }, (answer) => {
      if (fault === 2) {
        injected.dropped++;
        answer.resume();
        return void req.socket.destroy(); // the run was created upstream; the bridge never hears
      }
      const reply = () => {
        if (res.destroyed) return;
        res.writeHead(answer.statusCode!, answer.headers);
        answer.pipe(res);
      };
      if (fault === 3) {
        injected.slow++;
        setTimeout(reply, options.slowMs);
      } else reply();
    });
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    injected,
    close: () => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))),
  };
}
