// Group commit for both stores: one transaction (one WAL flush) for many callers.

/**
 * Calls of one event-loop turn, and those that arrive while `maxInFlight` batches are being
 * written, go to `run` together; each caller gets its own result after the batch committed.
 */
export function groupCommit<T, R>(run: (batch: T[]) => Promise<R[]>, maxInFlight: number): (item: T) => Promise<R> {
  let waiting: { item: T; resolve: (r: R) => void; reject: (err: unknown) => void }[] = [];
  let inFlight = 0;
  const flush = () => {
    if (waiting.length === 0 || inFlight >= maxInFlight) return;
    const batch = waiting;
    waiting = [];
    inFlight++;
    run(batch.map((w) => w.item))
      .then(
        (results) => batch.forEach((w, i) => w.resolve(results[i]!)),
        (err: unknown) => batch.forEach((w) => w.reject(err)),
      )
      .finally(() => {
        inFlight--;
        flush();
      });
  };
  return (item) =>
    new Promise<R>((resolve, reject) => {
      waiting.push({ item, resolve, reject });
      if (waiting.length === 1) setImmediate(flush);
    });
}

