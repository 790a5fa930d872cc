/**
 * Per Airflow instance: after `failures` consecutive failed attempts the circuit opens and
 * nothing is sent for `cooldown`; then one probe goes through (half-open). Its success
 * closes the circuit, its failure opens it again.
 */
export interface Circuit {
  /** May a request be sent now? In half-open, true once until the probe reports. */
  allow(now: number): boolean;
  /** When the circuit will let a probe through (for re-scheduling held jobs). */
  openUntil(): number;
  success(): void;
  failure(now: number): void;
  state(now: number): 'closed' | 'open' | 'half-open';
}

export function createCircuit(failures: number, cooldownMs: number): Circuit {
  let consecutive = 0;
  let openedUntil = 0;
  let probing = false;
  return {
    allow(now) {
      if (consecutive < failures) return true;
      if (now < openedUntil || probing) return false;
      probing = true;
      return true;
    },
    openUntil: () => openedUntil,
    success() {
      consecutive = 0;
      probing = false;
    },
    failure(now) {
      consecutive++;
      probing = false;
      if (consecutive >= failures) openedUntil = now + cooldownMs;
    },
    state(now) {
      if (consecutive < failures) return 'closed';
      // While the probe is out the circuit is still open: nothing else may be claimed.
      return now < openedUntil || probing ? 'open' : 'half-open';
    },
  };
}
