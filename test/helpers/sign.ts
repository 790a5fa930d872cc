// Test-side signing, written against node:crypto directly rather than src/verify, so the
// tests do not grade the code with its own answers.
import { createHash, createHmac, createPrivateKey, sign } from 'node:crypto';
import vectors from '../vectors/standard-webhooks.json' with { type: 'json' };

export { vectors };

export function standardWebhookHeaders(secret: string, id: string, timestamp: number, body: string | Buffer) {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const signature = createHmac('sha256', key).update(`${id}.${timestamp}.`).update(body).digest('base64');
  return { 'webhook-id': id, 'webhook-timestamp': String(timestamp), 'webhook-signature': `v1,${signature}` };
}

export function ed25519Signature(seedBase64: string, id: string, timestamp: number, body: string): string {
  // PKCS#8 wrapping of a raw Ed25519 seed (RFC 8410).
  const der = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), Buffer.from(seedBase64, 'base64')]);
  const key = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  return `v1a,${sign(null, Buffer.from(`${id}.${timestamp}.${body}`), key).toString('base64')}`;
}

export function hmacHex(secret: string, content: string | Buffer): string {
  return createHmac('sha256', secret).update(content).digest('hex');
}

export function bodySha256(body: string | Buffer): string {
  return createHash('sha256').update(body).digest('base64url');
}

let counter = 0;
export function completionEvent(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  counter++;
  return {
    id: `evt_test_${counter}`,
    type: 'run.succeeded',
    created_at: '2026-11-24T02:14:09Z',
    organization_id: 'org_42',
    workspace_id: 'ws_analytics',
    data: {
      run_id: `run_${counter}`,
      pipeline_id: 'pl_8f2a9c1d4e',
      pipeline_name: 'nightly_sales_to_warehouse',
      environment: 'production',
      status: 'succeeded',
      tags: { team: 'sales' },
      metrics: { rows_written: 120344 },
    },
    ...overrides,
  };
}
