// The floors every bridge row is compared with, each a child process started like the bridge:
//   node:http   node:http + Standard Webhooks HMAC, 204, nothing stored (baseline-server.ts)
//   express     express 5 + express.raw + the same HMAC, 204, nothing stored (express-floor-server.ts)
//   durable     node:http + HMAC + JSON.parse + one SQLite row per event, WAL, synchronous =
//               FULL, group commit per event-loop turn, 202 after the commit (durable-floor-server.ts)
import { corpus, DURATION, ingestRun, type Request, type Row, sqliteCount, sqliteFile, tsxCmd } from './common.js';

export interface Floors {
  node: Row;
  express: Row;
  durable: Row;
}

/** Unique events for a run of DURATION s at up to `perSecond` req/s (the corpus wraps past that, and the table says so). */
export const corpusFor = (perSecond: number, tag: string, pipelines = 1): Request[] => corpus(Math.max(40_000, Math.ceil(DURATION * perSecond)), tag, pipelines);

export async function durableFloor(name: string, requests: Request[], opts: { rate?: number } = {}): Promise<Row> {
  const file = sqliteFile();
  return ingestRun(name, tsxCmd('durable-floor-server.ts'), requests, { ...opts, env: { FLOOR_DB: file }, count: () => sqliteCount(file) });
}

export async function benchFloors(): Promise<Floors> {
  // The no-store floors repeat a corpus harmlessly (nothing is deduplicated); the durable one needs unique events.
  const node = await ingestRun('floor: node:http + HMAC, 204, no store', tsxCmd('baseline-server.ts'), corpus(40_000, 'fn'));
  const express = await ingestRun('floor: express 5 + express.raw + HMAC, 204, no store', tsxCmd('express-floor-server.ts'), corpus(40_000, 'fe'));
  const durable = await durableFloor('durable floor: node:http + HMAC + JSON.parse + SQLite row (WAL, FULL, group commit), 202', corpusFor(15_000, 'fd'));
  return { node, express, durable };
}
