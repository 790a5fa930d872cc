// "Airflow" for the ingest and dispatch benchmarks: a minimal endpoint in this process that
// answers the trigger like Airflow does (200 with the run; GET = the DAG, unpaused), in well
// under 1 ms. `triggers` counts the POSTs it answered.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export const sinkStats = { triggers: 0 };
export const sink = createServer((req, res) => {
  let raw = '';
  req.on('data', (d) => (raw += d));
  req.on('end', () => {
    if (req.method === 'GET') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"is_paused":false}');
    sinkStats.triggers++;
    res.writeHead(200, { 'content-type': 'application/json' }).end(`{"dag_run_id":${JSON.stringify(JSON.parse(raw).dag_run_id)},"state":"queued"}`);
  });
});
await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
sink.unref();
export const sinkUrl = `http://127.0.0.1:${(sink.address() as AddressInfo).port}`;
