import type { Result } from '../errors/result.js';

/** What ingress hands to the store: a verified, parsed delivery and the exact bytes received. */
export interface NewEvent {
  source: string;
  /** Dedupe key within the source: the scheme's delivery id, else the event's own `id`. */
  deliveryId: string;
  scheme: string;
  eventId: string;
  type: string;
  pipelineId: string;
  runId: string;
  /** The headers worth keeping for debugging; never signatures or credentials. */
  headers: Record<string, string>;
  body: Buffer;
  receivedAt: Date;
}

export type EventStatus = 'received';

export interface StoredEvent extends NewEvent {
  id: string;
  seq: number;
  status: EventStatus;
}

export interface Inserted {
  id: string;
  duplicate: boolean;
}

export type StoreReason = 'store_unavailable';

/**
 * The one seam between the bridge and its database. Everything is async so that the
 * PostgreSQL implementation for several replicas fits the same shape.
 */
export interface Store {
  /** Commits the event (or finds the earlier delivery) before resolving. */
  insertEvent(event: NewEvent): Promise<Result<Inserted, StoreReason>>;
  getEvent(id: string): Promise<StoredEvent | undefined>;
  /** Resolves when a write could be committed now (readiness). */
  checkWritable(): Promise<Result<true, StoreReason>>;
  close(): Promise<void>;
}
