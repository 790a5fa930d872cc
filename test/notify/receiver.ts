// THE RECEIVING SIDE of notifications — not a fake of anything the bridge depends on: a
// loopback HTTP server that records every POST (raw bytes and headers) and answers with a
// scripted status, verifying Standard Webhooks signatures with the bridge's own verifier.
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { buildVerifier } from '../../src/verify/build.js';
import { configFrom } from '../helpers/app.js';

export interface Received {
  at: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  json: unknown;
  /** The bridge's verifier accepted the signature (undefined without a secret). */
  verified?: boolean;
  status: number;
}

export async function startReceiver(options: { secret?: string; statuses?: number[]; port?: number } = {}) {
  const received: Received[] = [];
  const statuses = [...(options.statuses ?? [])];
  const verifier = options.secret
    ? (() => {
        const built = buildVerifier(configFrom(`sources: { s: { path: /s, verify: { scheme: standard-webhooks, secrets: ["${options.secret}"] } } }`).sources.s!.verify, { clock: Date.now });
        if (!built.ok) throw new Error(JSON.stringify(built.problems));
        return built.verifier;
      })()
    : undefined;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const body = Buffer.concat(chunks);
      const status = statuses.shift() ?? 200;
      const verified = verifier ? (await verifier({ body, headers: req.headers })).ok : undefined;
      let json: unknown;
      try {
        json = JSON.parse(body.toString('utf8'));
      } catch {
        json = undefined;
      }
      received.push({ at: Date.now(), headers: req.headers, body, json, status, ...(verified === undefined ? {} : { verified }) });
      res.writeHead(status, { 'content-type': 'text/plain' }).end(status < 300 ? 'ok' : `scripted ${status}`);
    });
  });
  await new Promise<void>((r) => server.listen(options.port ?? 0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    port: (server.address() as AddressInfo).port,
    received,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

export async function until<T>(what: string, read: () => Promise<T> | T, done: (v: T) => boolean, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
