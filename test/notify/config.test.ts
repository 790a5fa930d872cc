// notify: is validated at load (DESIGN §8): every problem listed with the path to fix.
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { slackMessage } from '../../src/notify/format.js';
import { SECRET } from '../helpers/app.js';
import example from './slack-example.json' with { type: 'json' };

const base = (notify: string) => `
sources: { planasonix: { path: /webhooks/planasonix, verify: { scheme: standard-webhooks, secrets: ["${SECRET}"] } } }
airflow: { default: { url: "http://127.0.0.1:9", auth: { type: none } } }
routes:
  - { name: sales-to-dbt, match: { pipeline_id: pl_1 }, trigger: { dag_id: d } }
notify:
${notify}`;

describe('notify: config', () => {
  it('a good target: defaults filled in (every type, retry, timeout), the whsec_ prefix optional', () => {
    const parsed = parseConfig(base(`  - { name: oncall, url: "https://hooks.example/bridge", secret: "${SECRET.replace('whsec_', '')}", routes: [sales-to-dbt] }\n  - { name: chat, url: "http://localhost:3000/slack", format: slack, on: [dag_run.failed] }`), {});
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.problems));
    expect(parsed.config.notify).toMatchObject([
      { name: 'oncall', format: 'standard-webhooks', on: ['dag_run.succeeded', 'dag_run.failed', 'dag_run.sla_missed', 'job.dead_lettered', 'loop_guard.breaker_opened'], retry: { max_attempts: 10, initial_delay: 1000, max_delay: 300_000 }, timeout: 10_000 },
      { name: 'chat', format: 'slack', on: ['dag_run.failed'] },
    ]);
  });

  it('a bad config is refused with every problem at its path', () => {
    const parsed = parseConfig(
      base(`  - { name: oncall, url: "http://hooks.example/bridge", on: [dag_run.failed, job.dead_lettered, dag_run.exploded], routes: [sales-to-dbt, x] }
  - { name: oncall, url: "https://hooks.example/b", secret: "not base64!", format: teams }
  - { name: short, url: "https://hooks.example/c", secret: "whsec_c2hvcnQ=", retry: { max_attempts: 0 }, colour: red }
  - { name: chat, url: "https://hooks.slack.com/services/x", format: slack, on: [] }`),
      {},
    );
    expect(parsed.ok).toBe(false);
    if (parsed.ok) return;
    const problems = parsed.problems.map((p) => `${p.path}: ${p.message}`);
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^notify\[0\]\.url: must be https/),
        expect.stringMatching(/^notify\[0\]\.on\[2\]: unknown type "dag_run\.exploded" \(one of: dag_run\.succeeded, /),
        expect.stringMatching(/^notify\[1\]\.format: /),
        expect.stringMatching(/^notify\[2\]\.retry\.max_attempts: /),
        'notify[2].colour: unknown key (misspelt, or not supported by this version)',
        'notify[3].on: give at least one type',
      ]),
    );
    // The cross-field checks run once the shapes parse: fix the shapes, see the rest.
    const second = parseConfig(
      base(`  - { name: oncall, url: "https://hooks.example/a", on: [dag_run.failed], routes: [sales-to-dbt, x] }
  - { name: oncall, url: "https://hooks.example/b", secret: "not base64!" }
  - { name: short, url: "https://hooks.example/c", secret: "whsec_c2hvcnQ=" }`),
      {},
    );
    expect(second.ok).toBe(false);
    if (second.ok) return;
    expect(second.problems.map((p) => `${p.path}: ${p.message}`)).toEqual([
      'notify[0].secret: required for format standard-webhooks (whsec_<base64>)',
      'notify[0].routes[1]: no route "x"',
      'notify[1].name: another notification target is already named "oncall"',
      'notify[1].secret: not base64 (expected whsec_<base64>)',
      'notify[2].secret: only 5 bytes: use at least 16 (openssl rand -base64 32)',
    ]);
  });
});

describe('slack format', () => {
  it('renders the recorded example (test/notify/slack-example.json) exactly', () => {
    expect(slackMessage(example.notification)).toEqual(example.slack);
  });

  it('escapes Slack’s control characters in what the bridge did not write', () => {
    const message = slackMessage({ ...example.notification, data: { ...example.notification.data, detail: 'a <b> & c' } });
    expect(JSON.stringify(message.blocks)).toContain('a &lt;b&gt; &amp; c');
  });
});
