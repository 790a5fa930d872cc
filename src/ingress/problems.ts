import type { ServerResponse } from 'node:http';
import type { EventReason } from '../event/schema.js';
import type { StoreReason } from '../store/types.js';
import type { VerifyReason } from '../verify/types.js';
import { traceOf } from './trace.js';

export type IngressReason =
  | VerifyReason
  | EventReason
  | StoreReason
  | 'unsupported_media_type'
  | 'body_too_large'
  | 'bad_request'
  | 'rate_limited'
  | 'not_found'
  | 'unauthorized'
  | 'conflict'
  | 'method_not_allowed'
  | 'internal_error';

/** The one table from reason to HTTP status (DESIGN §2). */
export const STATUS: Record<IngressReason, number> = {
  invalid_json: 400,
  invalid_event: 400,
  bad_request: 400,
  signature_missing: 401,
  signature_malformed: 401,
  signature_invalid: 401,
  timestamp_invalid: 401,
  timestamp_out_of_tolerance: 401,
  unauthorized: 401,
  not_found: 404,
  conflict: 409,
  method_not_allowed: 405,
  body_too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
  internal_error: 500,
  store_unavailable: 503,
  verifier_unavailable: 503,
};

/** JSON the way express's `res.json` sends it, on any response (the webhook path has no express). */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.statusCode = status;
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.setHeader('content-length', Buffer.byteLength(text));
  res.end(text);
}

export function sendProblem(res: ServerResponse, reason: IngressReason, message: string, cause?: string): void {
  const trace = traceOf(res);
  trace.outcome = reason;
  trace.detail = cause === undefined ? message : `${message} (${cause})`;
  sendJson(res, STATUS[reason], { error: reason, message });
}

/**
 * A body that could not be read (raw-body's and body-parser's errors carry a `type`), as the
 * problem to answer; undefined for anything else, which is a bug.
 */
export function bodyProblem(err: { type?: string; status?: number; message?: string; limit?: number }): { reason: IngressReason; message: string } | undefined {
  switch (err.type) {
    case 'entity.too.large':
      return { reason: 'body_too_large', message: `body is larger than the ${err.limit ?? ''} byte limit` };
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return { reason: 'unsupported_media_type', message: err.message ?? 'unsupported encoding' };
  }
  // Any other client-side body error (aborted upload, wrong length) is the sender's, not ours.
  if (err.type && (err.status ?? 500) < 500) return { reason: 'bad_request', message: err.message ?? 'unreadable body' };
  return undefined;
}
