// Credentials travel inside URLs (`postgres://user:pw@db/…`, `redis://:pw@…`,
// `?password=…`), and pino's key-based redaction cannot see into a string. Every URL the
// bridge logs, shows (/v1/status, the console, check-config) or stores goes through here.

/** `scheme://userinfo@`: everything between `//` and `@` before the host. */
const USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#@]+@/gi;
/** Query parameters that carry a secret (libpq's `password`, `sslpassword`, tokens, keys). */
const SECRET_PARAM = /([?&;](?:[a-z_]*password|passwd|pwd|secret|[a-z_]*token|api_?key|key|auth|signature|sig)=)[^&#\s'"]*/gi;

export const REDACTED = '***';

/** Replaces URL credentials anywhere in `text` (a URL, an error message, a log line). */
export function redactUrls(text: string): string {
  // Most strings carry no URL: a cheap test first keeps this off the hot path's profile.
  if (!text.includes('://') && !text.includes('=')) return text;
  return text.replace(USERINFO, `$1${REDACTED}@`).replace(SECRET_PARAM, `$1${REDACTED}`);
}

/** The same, through every string of a JSON-like value (log objects, API answers). */
export function redactDeep<T>(value: T): T {
  if (typeof value === 'string') return redactUrls(value) as T;
  if (Array.isArray(value)) {
    const mapped = value.map((v) => redactDeep(v));
    return (mapped.some((v, i) => v !== value[i]) ? mapped : value) as T;
  }
  if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    let copy: Record<string, unknown> | undefined;
    for (const [k, v] of Object.entries(value)) {
      const r = redactDeep(v);
      if (r !== v) (copy ??= { ...(value as Record<string, unknown>) })[k] = r;
    }
    return (copy ?? value) as T;
  }
  return value;
}
