import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { SECRET, testApp } from '../helpers/app.js';
import { completionEvent, standardWebhookHeaders } from '../helpers/sign.js';

const YAML = `
sources: { planasonix: { path: /webhooks/planasonix, verify: { scheme: standard-webhooks, secrets: ["${SECRET}"] } } }
airflow: { default: { url: "http://127.0.0.1:9", auth: { type: none } } }
loop_guard: { max_depth: 1 }
routes: [ { name: a-to-b, match: { pipeline_id: pl_a }, trigger: { dag_id: dag_b } } ]
`;

let app: ReturnType<typeof testApp> | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

function send(a: ReturnType<typeof testApp>, data: Record<string, unknown>) {
  const body = JSON.stringify(completionEvent({ data: { run_id: `r${Math.random()}`, pipeline_id: 'pl_a', status: 'succeeded', ...data } }));
  return request(a.app).post('/webhooks/planasonix').set({ 'content-type': 'application/json', ...standardWebhookHeaders(SECRET, `m${Math.random()}`, Math.floor(Date.now() / 1000), body) }).send(body);
}

const metric = async (a: ReturnType<typeof testApp>, name: string) =>
  Number((await request(a.app).get('/metrics')).text.split('\n').find((l) => l.startsWith(name))?.split(' ').at(-1) ?? 'NaN');

describe('loop-guard reporting after the commit', () => {
  it('a learned edge that closes a cycle is a warning with its path and one count, once', async () => {
    app = testApp({ yaml: YAML });
    await send(app, { trigger: { type: 'integration', correlation: { dag_id: 'dag_b' } } });
    await send(app, { trigger: { type: 'integration', correlation: { dag_id: 'dag_b' } } });
    const warnings = app.logLines.map((l) => JSON.parse(l)).filter((l) => typeof l.msg === 'string' && l.msg.startsWith('a learned edge closes a cycle'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.msg).toContain('dag_b --learned--> pl_a --route a-to-b--> dag_b');
    expect(await metric(app, 'bridge_loop_learned_cycles_total')).toBe(1);
  });

  it('one warn line per blocked job, with event id, route, target, reason and depth', async () => {
    app = testApp({ yaml: YAML });
    const lineage = { chain_id: 'c', depth: 1, path: ['planasonix:pl_z', 'airflow:dag_z'], event_id: 'e0', route: 'z' };
    const res = await send(app, { parameters: { planasonix_bridge: lineage } });
    const lines = app.logLines.map((l) => JSON.parse(l)).filter((l) => typeof l.msg === 'string' && l.msg.startsWith('trigger blocked by the loop guard'));
    expect(lines).toEqual([expect.objectContaining({ event_id: res.body.event_id, route: 'a-to-b', target: 'airflow:dag_b', reason: 'max_depth', depth: 2 })]);
    expect(await metric(app, 'bridge_triggers_blocked_total{reason="max_depth"}')).toBe(1);
    expect(await metric(app, 'bridge_triggers_total{route="a-to-b",outcome="blocked"}')).toBe(1);
  });
});
