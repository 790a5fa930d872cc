import { expect, it } from 'vitest';
import { e2eBridge } from '../helpers/e2e.js';
import { completionEvent } from '../helpers/sign.js';
import { airflowContract } from './contract.js';

const TOKEN_LIFETIME_S = 8;

airflowContract({
  major: 3,
  jwtExpirationSeconds: TOKEN_LIFETIME_S,
  extra: (af) => {
    it('meets a real 401 "Token Expired" and logs in again within the same attempt', async () => {
      const a = af();
      // A bridge clock an hour behind believes its token is still fresh, so Airflow is the
      // one to say it expired — the path a real clock skew or a revoked secret takes.
      const skewed = await e2eBridge(
        `airflow: { default: { url: "${a.url}", api: v2, auth: { type: password, username: ${a.username}, password: ${a.password} } } }
routes: [ { name: r, match: { type: run.succeeded }, trigger: { dag_id: record_conf } } ]`,
        { airflowClock: () => Date.now() - 3_600_000 },
      );
      try {
        const first = await skewed.send(completionEvent({ data: { run_id: 'run_tok_1', pipeline_id: 'p', status: 'succeeded' } }));
        expect((await skewed.settled(first.body.id))[0]!.state).toBe('done');
        await new Promise((r) => setTimeout(r, (TOKEN_LIFETIME_S + 1) * 1000));
        const second = await skewed.send(completionEvent({ data: { run_id: 'run_tok_2', pipeline_id: 'p', status: 'succeeded' } }));
        const [job] = await skewed.settled(second.body.id);
        expect(job).toMatchObject({ state: 'done', attempts: 1 });
        const relogin = skewed.logLines.filter((l) => l.msg === 'Airflow "default" answered 401; logging in again');
        expect(relogin).toHaveLength(1);
        expect(relogin[0]!.detail).toBe('Token Expired');
      } finally {
        await skewed.close();
      }
    }, 60_000);
  },
});
