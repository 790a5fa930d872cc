// From the live config to the pure function the stores call inside a cause's transaction:
// which targets want this cause, and the row each gets.
import type { Config } from '../config/schema.js';
import { newNotificationId, notificationBody, type Notifier } from './types.js';

const cache = new WeakMap<Config['notify'], Notifier | undefined>();

/** Undefined when no target is configured (the stores then write nothing). */
export function notifierFor(config: Pick<Config, 'notify'>): Notifier | undefined {
  if (cache.has(config.notify)) return cache.get(config.notify);
  const targets = config.notify.map((t) => ({ name: t.name, on: new Set<string>(t.on), routes: t.routes ? new Set(t.routes) : undefined }));
  const notifier: Notifier | undefined =
    targets.length === 0
      ? undefined
      : (cause, now) =>
          targets
            .filter((t) => t.on.has(cause.type) && (!t.routes || (cause.route !== null && t.routes.has(cause.route))))
            .map((t) => {
              const id = newNotificationId();
              return { id, target: t.name, type: cause.type, cause: cause.key, eventId: cause.eventId, jobId: cause.jobId, body: notificationBody(id, cause, now), createdAt: now };
            });
  cache.set(config.notify, notifier);
  return notifier;
}
