import { describe, expect, it } from 'vitest';
import { parseEvent, type PlanasonixEvent } from '../../src/event/schema.js';
import { applyLineage, readLineage, type Lineage } from '../../src/guard/lineage.js';
import type { PlannedJob } from '../../src/route/route.js';
import { completionEvent } from '../helpers/sign.js';

function event(data: Record<string, unknown> = {}): PlanasonixEvent {
  const base = completionEvent();
  const parsed = parseEvent(Buffer.from(JSON.stringify({ ...base, id: 'evt_L', data: { ...(base.data as object), pipeline_id: 'pl_c', ...data } })));
  if (!parsed.ok) throw new Error(parsed.error.message);
  return parsed.value;
}

const job = (dagId: string, route = 'r'): PlannedJob => ({ route, airflow: 'default', dagId, target: `airflow:${dagId}`, request: { dag_run_id: 'x', logical_date: null, conf: { k: 1 }, note: null } });
const incoming: Lineage = { chain_id: 'chain-1', depth: 2, path: ['planasonix:pl_a', 'airflow:dag_b', 'planasonix:pl_b', 'airflow:dag_c'], event_id: 'evt_0', route: 'r0' };

describe('lineage', () => {
  it('starts a chain at depth 1 with a fresh id and puts it in conf', () => {
    const [j] = applyLineage(event(), [job('dag_x')], undefined, { maxDepth: 5, newChainId: () => 'new-chain' });
    expect(j!.lineage).toEqual({ chain_id: 'new-chain', depth: 1, path: ['planasonix:pl_c', 'airflow:dag_x'], event_id: 'evt_L', route: 'r' });
    expect(j!.request).toMatchObject({ conf: { k: 1, planasonix_bridge: j!.lineage } });
    expect(j!.block).toBeUndefined();
  });

  it('continues a chain: same id, depth + 1, this pipeline and the target appended', () => {
    const [j] = applyLineage(event(), [job('dag_x')], incoming, { maxDepth: 5 });
    expect(j!.lineage).toEqual({ chain_id: 'chain-1', depth: 3, path: [...incoming.path, 'planasonix:pl_c', 'airflow:dag_x'], event_id: 'evt_L', route: 'r' });
  });

  it('blocks a target already on the path (cycle), with the path', () => {
    const [j] = applyLineage(event(), [job('dag_b')], incoming, { maxDepth: 5 });
    expect(j!.block).toEqual({ reason: 'cycle', detail: 'airflow:dag_b is already on this chain\'s path: planasonix:pl_a → airflow:dag_b → planasonix:pl_b → airflow:dag_c → planasonix:pl_c → airflow:dag_b' });
  });

  it('blocks past max_depth, and only past it', () => {
    expect(applyLineage(event(), [job('dag_x')], incoming, { maxDepth: 3 })[0]!.block).toBeUndefined();
    expect(applyLineage(event(), [job('dag_x')], incoming, { maxDepth: 2 })[0]!.block).toMatchObject({ reason: 'max_depth', detail: expect.stringMatching(/^depth 3 would pass loop_guard.max_depth 2/) });
  });

  it('reads lineage from parameters or correlation, as an object or its JSON string', () => {
    expect(readLineage(event({ parameters: { planasonix_bridge: incoming } }))).toEqual({ lineage: incoming });
    expect(readLineage(event({ trigger: { type: 'integration', correlation: { dag_id: 'dag_c', planasonix_bridge: JSON.stringify(incoming) } } }))).toEqual({ lineage: incoming });
    expect(readLineage(event())).toEqual({});
  });

  it('treats the "null" a run the bridge did not start forwards as absent, and falls back to the other place', () => {
    expect(readLineage(event({ parameters: { planasonix_bridge: 'null' } }))).toEqual({});
    expect(readLineage(event({ parameters: { planasonix_bridge: null } }))).toEqual({});
    const both = readLineage(event({ parameters: { planasonix_bridge: 'junk{' }, trigger: { type: 'integration', correlation: { planasonix_bridge: incoming } } }));
    expect(both).toEqual({ lineage: incoming });
  });

  it.each([
    ['not JSON', '{"chain_id": '],
    ['wrong shape', { chain_id: 'c', depth: 'deep', path: [] }],
    ['a number', 42],
    ['negative depth', { ...incoming, depth: -1 }],
  ])('tolerates junk (%s): ignored with a warning, never a crash', (_label, value) => {
    const read = readLineage(event({ parameters: { planasonix_bridge: value } }));
    expect(read.lineage).toBeUndefined();
    expect(read.warning).toMatch(/^data\.parameters\.planasonix_bridge is not/);
  });
});
