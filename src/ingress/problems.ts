import type { Response } from 'express';
import type { EventReason } from '../event/schema.js';
import type { StoreReason } from '../store/types.js';
import type { VerifyReason } from '../verify/types.js';

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

export function sendProblem(res: Response, reason: IngressReason, message: string, cause?: string): void {
  res.locals.outcome = reason;
  res.locals.detail = cause === undefined ? message : `${message} (${cause})`;
  res.status(STATUS[reason]).json({ error: reason, message });
}
