import { v7 } from 'uuid';

/**
 * Event and job ids: UUIDv7, time-ordered, so each insert lands on the last page of the
 * id's unique index instead of a random leaf. A random id (v4) dirtied one more page per
 * event in every commit (a WAL page each on SQLite; on PostgreSQL a full-page image per
 * leaf first touched after a checkpoint). Still opaque to users: they only compare ids.
 */
export const newRowId = (): string => v7();
