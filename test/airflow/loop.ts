// The loop guard on a real Airflow: DAGs that call the bridge back with a completion event
// for a pipeline that routes to them again (test/airflow/dags/loop_back.py).
import { expect, it } from 'vitest';
import { airflowApi, e2eBridge } from '../helpers/e2e.js';
import { completionEvent } from '../helpers/sign.js';
import { freePort, type StartedAirflow } from './harness.js';

export function loopGuardOnRealAirflow(af: () => StartedAirflow, api: 'v1' | 'v2'): void {
  it('stops real loops: a cycle at its first repeat, a chain at max_depth, a loop without lineage at the breaker', async () => {
    const a = af();
    const port = await freePort();
    const callback = `http://127.0.0.1:${port}/webhooks/planasonix`;
    const route = (name: string, pipeline: string, dag: string, next: string, forward: boolean, allow = false) =>
      `  - { name: ${name}, allow_cycle: ${allow}, match: { pipeline_id: ${pipeline} }, trigger: { dag_id: ${dag}, conf: { callback_url: "${callback}", next_pipeline: ${next}, forward: ${forward} } } }`;
    const bridge = await e2eBridge(
      `
airflow: { default: { url: "${a.url}", api: ${api}, auth: { type: password, username: ${a.username}, password: ${a.password} } } }
loop_guard:
  max_depth: 3
  breaker: { max_triggers: 2, window: 10m }
  edges:
    - { from: { dag_id: loop_dag }, to: { pipeline_id: pl_loop } }
    - { from: { dag_id: hop_1 }, to: { pipeline_id: pl_hop_2 } }
    - { from: { dag_id: hop_2 }, to: { pipeline_id: pl_hop_3 } }
    - { from: { dag_id: hop_3 }, to: { pipeline_id: pl_hop_4 } }
    - { from: { dag_id: nofwd_dag }, to: { pipeline_id: pl_nofwd } }
routes:
${route('loop', 'pl_loop', 'loop_dag', 'pl_loop', true, true)}
${route('hop-1', 'pl_hop_1', 'hop_1', 'pl_hop_2', true)}
${route('hop-2', 'pl_hop_2', 'hop_2', 'pl_hop_3', true)}
${route('hop-3', 'pl_hop_3', 'hop_3', 'pl_hop_4', true)}
${route('hop-4', 'pl_hop_4', 'hop_4', 'pl_hop_5', true)}
${route('nofwd', 'pl_nofwd', 'nofwd_dag', 'pl_nofwd', false, true)}
`,
      { port },
    );
    try {
      const start = (pipeline: string) => bridge.send(completionEvent({ data: { run_id: `start_${pipeline}_${api}`, pipeline_id: pipeline, pipeline_name: pipeline, status: 'succeeded' } }));
      for (const p of ['pl_loop', 'pl_hop_1', 'pl_nofwd']) expect((await start(p)).status).toBe(202);

      // Each scenario ends with exactly one blocked job; wait for all three.
      const until = Date.now() + 150_000;
      let found: { route: string; reason: string | null; lineage: unknown }[] = [];
      while (Date.now() < until) {
        found = bridge.logLines
          .filter((l) => typeof l.msg === 'string' && l.msg.startsWith('trigger blocked by the loop guard'))
          .map((l) => ({ route: l.route as string, reason: l.reason as string, lineage: { chain_id: l.chain_id, depth: l.depth } }));
        if (found.length >= 3) break;
        await new Promise((r) => setTimeout(r, 500));
      }
      const airflow = airflowApi(a);
      // This waits on Airflow's scheduler running the call-back tasks; when it times out, what
      // Airflow and the bridge got that far is what tells a slow scheduler from a lost call-back.
      if (found.length < 3) {
        const runs = await Promise.all(['loop_dag', 'hop_1', 'hop_2', 'hop_3', 'hop_4', 'nofwd_dag'].map(async (d) => `${d}: ${(await airflow.runs(d).catch(() => [])).map((r) => r.state).join(',') || 'none'}`));
        console.log(`[loop guard, ${api}] ${found.length} of 3 blocked within the wait; Airflow runs ${runs.join('; ')}; bridge warnings: ${JSON.stringify(bridge.logLines.filter((l) => ['warn', 'error', 'fatal'].includes(l.level as string)).slice(-10).map((l) => l.msg))}`);
      }
      expect(found.map((f) => [f.route, f.reason]).sort()).toEqual([['hop-4', 'max_depth'], ['loop', 'cycle'], ['nofwd', 'breaker_open']]);

      const count = async (dag: string) => (await airflow.runs(dag)).length;
      expect(await count('loop_dag')).toBe(1); // pl_loop → loop_dag, then the call-back's loop_dag is already on the path
      expect([await count('hop_1'), await count('hop_2'), await count('hop_3'), await count('hop_4')]).toEqual([1, 1, 1, 0]); // depth 3 reached, depth 4 refused
      expect(await count('nofwd_dag')).toBe(2); // no lineage forwarded: the breaker (2 per window) stops it
      expect(found.find((f) => f.route === 'hop-4')!.lineage).toMatchObject({ depth: 4 });

      // The call-backs taught DAG → pipeline edges; the breaker for the no-lineage loop is open.
      const learned = await bridge.store.learnedEdges();
      expect(learned).toEqual(expect.arrayContaining([expect.objectContaining({ dagId: 'loop_dag', pipelineId: 'pl_loop' }), expect.objectContaining({ dagId: 'nofwd_dag', pipelineId: 'pl_nofwd' })]));
      expect(await bridge.store.openBreakers(Date.now())).toEqual([expect.objectContaining({ sourcePipeline: 'pl_nofwd', target: 'airflow:nofwd_dag' })]);
      const metrics = await (await fetch(`${bridge.url}/metrics`)).text();
      for (const reason of ['cycle', 'max_depth', 'breaker_open']) expect(metrics).toContain(`bridge_triggers_blocked_total{reason="${reason}"} 1`);
    } finally {
      await bridge.close();
    }
  }, 240_000);
}
