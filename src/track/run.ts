// What the bridge makes of Airflow's word on a triggered run (DESIGN §7): its state, when it
// is no longer followed, and whether it missed its route's SLA. Pure, so both stores apply
// the same rule inside the transaction that records it.

export const TERMINAL = new Set(['success', 'failed']);

/** Nothing more will happen to the run: it ended, or Airflow no longer knows it. */
export const isFinal = (state: string | null): boolean => state !== null && (TERMINAL.has(state) || state === 'missing');

/** `missing`: Airflow no longer knows the run (deleted). */
export type RunState = 'queued' | 'running' | 'success' | 'failed' | 'missing' | (string & {});

export type SlaKind = 'started' | 'finished';

export interface Expect {
  started_within?: number | undefined;
  finished_within?: number | undefined;
}

/** One run as Airflow lists it (or pushes it). */
export interface RunObservation {
  dagId: string;
  dagRunId: string;
  state: RunState;
  startDate: number | null;
  endDate: number | null;
}

/** What the store holds of a tracked run. */
export interface TrackedRun {
  jobId: string;
  eventId: string;
  route: string;
  airflow: string;
  dagId: string;
  dagRunId: string;
  /** When Airflow accepted the trigger: the SLA's and the horizon's start. */
  triggeredAt: number;
  receivedAt: number;
  state: RunState | null;
  startDate: number | null;
  endDate: number | null;
  slaMissed: SlaKind | null;
}

/** A run's record changed: for the log, the metrics and (next) notifications. */
export interface RunChange {
  run: TrackedRun;
  /** The run reached a terminal state (or went missing) with this observation. */
  finished: boolean;
  /** Marked now; a run is marked once. */
  slaMissed?: SlaKind;
}

export interface RunVerdict {
  state: RunState | null;
  startDate: number | null;
  endDate: number | null;
  /** Still followed after this. */
  open: boolean;
  sla?: SlaKind;
}

/**
 * `observation` undefined: nothing new from Airflow this time (the SLA clock still runs).
 * A run is marked `started` when it has not started within `started_within` of the trigger,
 * `finished` when it has not ended within `finished_within`; whichever is missed first.
 */
export function judgeRun(run: TrackedRun, observation: RunObservation | undefined, expect: Expect | undefined, now: number, horizonMs: number): RunVerdict {
  const state = observation?.state ?? run.state;
  const startDate = observation ? observation.startDate : run.startDate;
  const endDate = observation ? observation.endDate : run.endDate;
  const done = isFinal(state);
  const verdict: RunVerdict = { state, startDate, endDate, open: !done && now < run.triggeredAt + horizonMs };
  if (run.slaMissed === null && expect) {
    const late = (within: number | undefined, at: number | null) => within !== undefined && (at === null ? now : at) > run.triggeredAt + within && (at !== null || !done);
    if (late(expect.started_within, startDate)) verdict.sla = 'started';
    else if (late(expect.finished_within, endDate)) verdict.sla = 'finished';
  }
  return verdict;
}

/** The run's page in Airflow's UI. */
export function runUrl(airflowUrl: string, api: 'v1' | 'v2', dagId: string, dagRunId: string): string {
  const dag = encodeURIComponent(dagId);
  const run = encodeURIComponent(dagRunId);
  return api === 'v2' ? `${airflowUrl}/dags/${dag}/runs/${run}` : `${airflowUrl}/dags/${dag}/grid?dag_run_id=${run}`;
}
