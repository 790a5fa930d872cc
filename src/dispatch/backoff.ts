/** Exponential backoff with full jitter (AWS architecture blog), capped; `random` is injected. */
export function backoffDelay(attempt: number, initialMs: number, maxMs: number, random: () => number): number {
  const ceiling = Math.min(maxMs, initialMs * 2 ** Math.max(0, attempt - 1));
  return Math.floor(random() * ceiling);
}

/** Retry-After as seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | string[] | undefined, now: number): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (!text) return undefined;
  if (/^\d+$/.test(text.trim())) return Number(text.trim()) * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** A server asking for more than this is treated as asking for this (a typo must not park a job for days). */
export const MAX_RETRY_AFTER = 60 * 60_000;

/** When to try again: the jittered delay, but never earlier than the server asked (up to an hour). */
export function retryDelay(attempt: number, policy: { initial_delay: number; max_delay: number }, random: () => number, retryAfterMs?: number): number {
  const jittered = backoffDelay(attempt, policy.initial_delay, policy.max_delay, random);
  return Math.max(jittered, Math.min(retryAfterMs ?? 0, MAX_RETRY_AFTER));
}
