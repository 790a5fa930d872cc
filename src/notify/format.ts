// What goes on the wire per format: standard-webhooks sends the notification body as is
// (signed); slack an incoming-webhook `{text, blocks}` a person can read.
import type { NotificationBody } from './types.js';

const TITLES: Record<string, string> = {
  'dag_run.succeeded': 'DAG run succeeded',
  'dag_run.failed': 'DAG run failed',
  'dag_run.sla_missed': 'DAG run missed its SLA',
  'job.dead_lettered': 'Trigger dead-lettered',
  'loop_guard.breaker_opened': 'Loop-guard breaker opened',
  'notify.test': 'Test notification',
};

const EMOJI: Record<string, string> = {
  'dag_run.succeeded': ':white_check_mark:',
  'dag_run.failed': ':x:',
  'dag_run.sla_missed': ':hourglass:',
  'job.dead_lettered': ':warning:',
  'loop_guard.breaker_opened': ':no_entry:',
  'notify.test': ':wave:',
};

/** Slack's mrkdwn control characters (https://api.slack.com/reference/surfaces/formatting#escaping). */
const esc = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export interface SlackMessage {
  text: string;
  blocks: ({ type: 'header'; text: { type: 'plain_text'; text: string } } | { type: 'section'; text?: { type: 'mrkdwn'; text: string }; fields?: { type: 'mrkdwn'; text: string }[] } | { type: 'context'; elements: { type: 'mrkdwn'; text: string }[] })[];
}

export function slackMessage(body: NotificationBody): SlackMessage {
  const d = body.data;
  const title = TITLES[body.type] ?? body.type;
  const p = d.planasonix;
  const run = d.dag_id ? `DAG ${d.dag_id}${d.dag_run_id ? ` (run ${d.dag_run_id})` : ''}` : undefined;
  const planasonix = p.run_id ? `Planasonix run ${p.run_id}${p.pipeline_id ? ` of pipeline ${p.pipeline_id}` : ''}` : undefined;
  const text = [
    `${EMOJI[body.type] ?? ''} ${title}`.trim() + (d.route ? ` — route ${d.route}` : ''),
    run,
    d.state ? `state: ${d.state}` : undefined,
    d.detail || undefined,
    d.url ? `Run in Airflow: ${d.url}` : undefined,
    planasonix,
  ]
    .filter((x): x is string => Boolean(x))
    .join('\n');
  const fields: { type: 'mrkdwn'; text: string }[] = [];
  const field = (label: string, value: string | null | undefined) => value && fields.push({ type: 'mrkdwn', text: `*${label}*\n${esc(value)}` });
  field('Route', d.route);
  field('DAG', d.dag_id);
  field('DAG run', d.dag_run_id);
  field('State', d.state);
  field('Planasonix run', p.run_id);
  field('Pipeline', p.pipeline_id);
  const blocks: SlackMessage['blocks'] = [
    { type: 'header', text: { type: 'plain_text', text: `${title}${d.route ? `: ${d.route}` : ''}`.slice(0, 150) } },
    ...(fields.length ? [{ type: 'section' as const, fields }] : []),
    ...(d.detail ? [{ type: 'section' as const, text: { type: 'mrkdwn' as const, text: esc(d.detail).slice(0, 3000) } }] : []),
    ...(d.url ? [{ type: 'section' as const, text: { type: 'mrkdwn' as const, text: `<${d.url}|Open the run in Airflow>` } }] : []),
    { type: 'context', elements: [{ type: 'mrkdwn', text: `${esc(body.type)} · ${esc(body.id)} · ${body.created_at}${p.event_id ? ` · event ${esc(p.event_id)}` : ''}` }] },
  ];
  return { text, blocks };
}
