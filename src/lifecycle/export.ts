// `planasonix-bridge export`: every event with its jobs and attempts, one JSON object a line,
// for archiving before retention prunes them. Paged by a cursor (oldest first), so the store
// is never read into memory at once, and written with backpressure.
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import type { ExportedEvent, Store } from '../store/types.js';

/** Events per read: one query each for events, their jobs and their attempts. */
export const EXPORT_PAGE = 500;

/**
 * One line: `{event, jobs, attempts}` with the store's own field names; `event.body` is the
 * exact bytes received, base64; times are ISO (event) or epoch ms (jobs, attempts), as stored.
 */
export function exportLine(x: ExportedEvent): string {
  const { body, receivedAt, ...event } = x.event;
  return JSON.stringify({ event: { ...event, receivedAt: receivedAt.toISOString(), body: body.toString('base64') }, jobs: x.jobs, attempts: x.attempts });
}

/** Writes every event received before `before` (all when absent); returns how many. */
export async function exportEvents(store: Store, out: Writable, options: { before?: Date; pageSize?: number } = {}): Promise<number> {
  let cursor: string | undefined;
  let n = 0;
  do {
    const page = await store.exportEvents({ limit: options.pageSize ?? EXPORT_PAGE, ...(options.before ? { before: options.before } : {}), ...(cursor ? { cursor } : {}) });
    for (const item of page.items) {
      n++;
      if (!out.write(`${exportLine(item)}\n`)) await once(out, 'drain');
    }
    cursor = page.nextCursor;
  } while (cursor);
  return n;
}
