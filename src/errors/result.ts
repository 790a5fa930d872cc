// Errors are values: a stable `reason` code that HTTP and CLI map to statuses and exit
// codes in one table each, and a message a user can act on.

export interface Problem<R extends string = string> {
  reason: R;
  message: string;
  /** For the log only, never for the client (it may name internal hosts or files). */
  cause?: string;
}

export type Result<T, R extends string = string> = { ok: true; value: T } | { ok: false; error: Problem<R> };

export const ok = <T>(value: T): { ok: true; value: T } => ({ ok: true, value });
export const fail = <R extends string>(reason: R, message: string): { ok: false; error: Problem<R> } => ({
  ok: false,
  error: { reason, message },
});
