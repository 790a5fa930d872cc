// FAULT-INJECTION PROXY — not Airflow. Stands in front of a real Airflow the way a
// misconfigured SSO proxy does: a DAG-run trigger (POST …/dags/{id}/dagRuns) is answered
// `200 text/html` with a login page and never reaches Airflow; every other request is
// forwarded to the real Airflow unchanged.
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export const LOGIN_PAGE = '<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body><form method="post" action="/sso/login"></form></body></html>';

export interface LoginPageProxy {
  url: string;
  /** Each request, with the status Airflow (`forwarded`) or the proxy answered. */
  seen: { method: string; path: string; status: number; forwarded: boolean }[];
  close(): Promise<void>;
}

export async function startLoginPageProxy(target: string): Promise<LoginPageProxy> {
  const upstream = new URL(target);
  const seen: LoginPageProxy['seen'] = [];
  const server: Server = createServer((req, res) => {
    if (req.method === 'POST' && /^\/api\/v[12]\/dags\/[^/]+\/dagRuns$/.test(req.url ?? '')) {
      req.resume();
      seen.push({ method: req.method, path: req.url!, status: 200, forwarded: false });
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(LOGIN_PAGE);
      return;
    }
    const forward = request(
      { host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: { ...req.headers, host: upstream.host } },
      (answer) => {
        seen.push({ method: req.method!, path: req.url!, status: answer.statusCode!, forwarded: true });
        res.writeHead(answer.statusCode!, answer.headers);
        answer.pipe(res);
      },
    );
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
