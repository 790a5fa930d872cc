import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { hmacSha256Signer, jwsSigner, standardWebhooksSigner, type Signer } from '../verify/sign.js';

export interface SendOptions {
  file?: string;
  type: string;
  pipeline?: string;
  pipelineName?: string;
  environment?: string;
  status?: string;
  params: string[];
  tags: string[];
  /** `data.metrics.rows_written` of a built event (the example route wants it above 0). */
  rows?: number;
  url: string;
  scheme: string;
  secret?: string;
  key?: string;
  issuer?: string;
  audience?: string;
  header?: string;
  repeat: number;
  duplicate: boolean;
}

const STATUS_OF: Record<string, string> = { 'run.succeeded': 'succeeded', 'run.failed': 'failed', 'run.canceled': 'canceled', 'run.timed_out': 'timed_out' };

/** Signs and posts completion events; prints one line per answer and returns how many were not 2xx. */
export async function send(o: SendOptions, out: (line: string) => void): Promise<number> {
  const signer = await signerFor(o);
  const template = o.file ? (JSON.parse(await readFile(o.file, 'utf8')) as Record<string, unknown>) : undefined;
  if (!template && !o.pipeline) throw new Error('give an event file or --pipeline (with --type)');
  let failures = 0;
  const counts = new Map<number | string, number>();
  for (let i = 0; i < o.repeat; i++) {
    // Each repetition is a new event (new ids) unless it comes from a file sent once.
    const event = template && o.repeat === 1 ? template : build(o, template);
    const body = Buffer.from(JSON.stringify(event));
    const deliveryId = `msg_${randomUUID()}`;
    for (let copy = 0; copy < (o.duplicate ? 2 : 1); copy++) {
      let status: number | string;
      let text: string;
      try {
        const headers = await signer(body, deliveryId, new Date());
        const res = await fetch(o.url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
        status = res.status;
        text = await res.text();
      } catch (err) {
        status = 'error';
        text = (err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message;
      }
      if (typeof status !== 'number' || status >= 300) failures++;
      counts.set(status, (counts.get(status) ?? 0) + 1);
      out(`${status} ${text}`);
    }
  }
  if (o.repeat > 1 || o.duplicate) out(`sent ${o.repeat * (o.duplicate ? 2 : 1)}: ${[...counts].map(([s, n]) => `${n}× ${s}`).join(', ')}`);
  return failures;
}

function build(o: SendOptions, template: Record<string, unknown> | undefined): Record<string, unknown> {
  const suffix = randomUUID().slice(0, 8);
  if (template) {
    const data = (template.data ?? {}) as Record<string, unknown>;
    return { ...template, id: `evt_${suffix}`, data: { ...data, run_id: `run_${suffix}` } };
  }
  const pairs = (list: string[]) => Object.fromEntries(list.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  return {
    id: `evt_${suffix}`,
    type: o.type,
    created_at: new Date().toISOString(),
    data: {
      run_id: `run_${suffix}`,
      pipeline_id: o.pipeline,
      ...(o.pipelineName ? { pipeline_name: o.pipelineName } : {}),
      ...(o.environment ? { environment: o.environment } : {}),
      status: o.status ?? STATUS_OF[o.type] ?? 'succeeded',
      trigger: { type: 'manual' },
      ...(o.params.length ? { parameters: pairs(o.params) } : {}),
      ...(o.tags.length ? { tags: pairs(o.tags) } : {}),
      ...(o.rows !== undefined ? { metrics: { rows_written: o.rows } } : {}),
      finished_at: new Date().toISOString(),
    },
  };
}

async function signerFor(o: SendOptions): Promise<Signer> {
  switch (o.scheme) {
    case 'standard-webhooks':
      if (!o.secret) throw new Error('--secret whsec_… is needed for standard-webhooks');
      return standardWebhooksSigner(o.secret);
    case 'hmac-sha256':
      if (!o.secret) throw new Error('--secret is needed for hmac-sha256');
      return hmacSha256Signer(o.secret, o.header);
    case 'jws':
      if (!o.key || !o.issuer || !o.audience) throw new Error('--key PEM-file, --issuer and --audience are needed for jws');
      return jwsSigner(await readFile(o.key, 'utf8'), o.issuer, o.audience, o.header);
    default:
      throw new Error(`unknown scheme "${o.scheme}" (standard-webhooks, hmac-sha256, jws)`);
  }
}
