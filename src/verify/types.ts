import type { IncomingHttpHeaders } from 'node:http';
import type { Result } from '../errors/result.js';

export type VerifyReason =
  | 'signature_missing'
  | 'signature_malformed'
  | 'signature_invalid'
  | 'timestamp_invalid'
  | 'timestamp_out_of_tolerance'
  | 'verifier_unavailable';

export interface SignedRequest {
  body: Buffer;
  headers: IncomingHttpHeaders;
}

export interface Verified {
  /** The sender's delivery id, stable across its retries; undefined when the scheme has none. */
  deliveryId?: string;
}

export type Verifier = (req: SignedRequest) => Promise<Result<Verified, VerifyReason>>;

/** Milliseconds since the epoch; injected so tolerance tests are exact. */
export type Clock = () => number;

export function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

/** Shared by every scheme that signs a unix-seconds timestamp. */
export function checkTimestamp(value: string, headerName: string, toleranceMs: number, clock: Clock): VerifyProblem | undefined {
  if (!/^\d{1,15}$/.test(value)) {
    return { reason: 'timestamp_invalid', message: `header ${headerName} must be unix seconds` };
  }
  const now = Math.floor(clock() / 1000);
  const skew = now - Number(value);
  const tolerance = Math.floor(toleranceMs / 1000);
  if (skew > tolerance) return { reason: 'timestamp_out_of_tolerance', message: `header ${headerName} is ${skew}s old, more than the ${tolerance}s tolerance` };
  if (-skew > tolerance) return { reason: 'timestamp_out_of_tolerance', message: `header ${headerName} is ${-skew}s in the future, more than the ${tolerance}s tolerance` };
  return undefined;
}

export interface VerifyProblem {
  reason: VerifyReason;
  message: string;
}
