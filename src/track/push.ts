import express, { Router, type RequestHandler } from 'express';
import { z } from 'zod';
import type { Config } from '../config/schema.js';
import { sendProblem } from '../ingress/problems.js';
import { traceOf } from '../ingress/trace.js';
import { standardWebhooksVerifier } from '../verify/standard-webhooks.js';
import type { Clock } from '../verify/types.js';
import type { RunChange, RunObservation } from './run.js';

/** Where an instance's plugin posts unless `track.push.path` says otherwise. */
export const pushPath = (name: string, instance: Config['airflow'][string]) => (instance.track !== false && instance.track.push?.path) || `/webhooks/airflow/${name}`;

// What airflow-plugin/ sends (its README has the contract).
const pushed = z.looseObject({
  type: z.literal('dag_run.state_changed'),
  data: z.looseObject({
    dag_id: z.string().min(1),
    dag_run_id: z.string().min(1),
    state: z.string().min(1),
    start_date: z.iso.datetime({ offset: true }).nullish(),
    end_date: z.iso.datetime({ offset: true }).nullish(),
  }),
});

export interface PushDeps {
  clock: Clock;
  bodyLimit: number;
  record(airflow: string, observations: readonly RunObservation[]): Promise<RunChange[]>;
}

/**
 * `POST /webhooks/airflow/<instance>` for each instance with `track.push`: DAG-run state
 * changes from the Airflow plugin, verified like any Standard Webhooks source, recorded like
 * a poll's answer (the same transaction, the same once-only changes). Polling stays the
 * fallback, so a refused push loses nothing.
 */
export function pushRouter(config: Config, deps: PushDeps): Router {
  const router = Router();
  for (const [name, instance] of Object.entries(config.airflow)) {
    if (instance.track === false || !instance.track.push) continue;
    const built = standardWebhooksVerifier({ scheme: 'standard-webhooks', secrets: instance.track.push.secrets, public_keys: [], tolerance: 300_000 }, deps.clock);
    if (!built.ok) continue; // refused at config load (sources.ts checks push secrets the same way)
    const verifier = built.verifier;
    const accept: RequestHandler = async (req, res) => {
      traceOf(res).source = `airflow:${name}`;
      const body: Buffer = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const verified = await verifier({ body, headers: req.headers });
      if (!verified.ok) return sendProblem(res, verified.error.reason, verified.error.message);
      let parsed;
      try {
        parsed = pushed.safeParse(JSON.parse(body.toString('utf8')));
      } catch {
        return sendProblem(res, 'invalid_json', 'body is not JSON');
      }
      if (!parsed.success) return sendProblem(res, 'invalid_event', `not a dag_run.state_changed push: ${parsed.error.issues[0]?.path.join('.')}: ${parsed.error.issues[0]?.message}`);
      const d = parsed.data.data;
      const at = (iso: string | null | undefined) => (iso ? Date.parse(iso) : null);
      const changes = await deps.record(name, [{ dagId: d.dag_id, dagRunId: d.dag_run_id, state: d.state, startDate: at(d.start_date), endDate: at(d.end_date) }]);
      traceOf(res).outcome = 'accepted';
      res.json({ recorded: changes.length });
    };
    router.post(pushPath(name, instance), express.raw({ type: () => true, limit: deps.bodyLimit, inflate: false }), accept);
  }
  return router;
}
