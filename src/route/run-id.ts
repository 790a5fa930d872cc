import { createHash } from 'node:crypto';

// Airflow's default run_id pattern (airflow.models.dagrun RUN_ID_REGEX) and length limit.
export const AIRFLOW_RUN_ID = /^[A-Za-z0-9_.~:+-]+$/;
const MAX = 250;
const HASH = 16;

/**
 * Makes a rendered id acceptable to Airflow. When anything had to change (characters
 * replaced, `..` collapsed, length cut), a hash of the rendered text is appended, so two
 * different renderings can never end up as the same DAG run.
 */
export function sanitiseRunId(rendered: string): string {
  let id = rendered.replace(/[^A-Za-z0-9_.~:+-]/g, '_').replace(/\.{2,}/g, '.');
  // An id that already ends like our suffix also gets one, or it could equal the
  // sanitised form of some other rendering.
  const looksHashed = /~[0-9a-f]{16}$/.test(rendered);
  if (id === rendered && id.length <= MAX && id.length > 0 && !looksHashed) return id;
  const suffix = `~${createHash('sha256').update(rendered).digest('hex').slice(0, HASH)}`;
  id = id.slice(0, MAX - suffix.length);
  // The cut may leave a trailing "." next to the suffix's "~": harmless, but never "..".
  return `${id}${suffix}`;
}
