// planasonix-bridge notify-test NAME --config FILE, as users run it (the built CLI).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/process.js';
import { SECRET, tempDir } from '../helpers/app.js';
import { startReceiver } from './receiver.js';

const NOTIFY_SECRET = `whsec_${randomBytes(32).toString('base64')}`;

const run = (args: string[]) => runCli(args);

describe('notify-test', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  const configFor = (url: string) => {
    const temp = tempDir();
    cleanups.push(temp.cleanup);
    const file = join(temp.dir, 'bridge.yaml');
    writeFileSync(file, `
sources: { planasonix: { path: /webhooks/planasonix, verify: { scheme: standard-webhooks, secrets: ["${SECRET}"] } } }
notify:
  - { name: oncall, url: "${url}", secret: "${NOTIFY_SECRET}" }
`);
    return file;
  };

  it('sends one signed notify.test the bridge’s verifier accepts, prints status and body, exit 0', async () => {
    const receiver = await startReceiver({ secret: NOTIFY_SECRET });
    cleanups.push(receiver.close);
    const out = await run(['notify-test', 'oncall', '--config', configFor(receiver.url)]);
    expect(out.code).toBe(0);
    expect(receiver.received).toHaveLength(1);
    expect(receiver.received[0]).toMatchObject({ verified: true, json: { type: 'notify.test' } });
    expect(out.stdout).toBe(`standard-webhooks ${receiver.received[0]!.headers['webhook-id']} → 200\nok\n`);
  });

  it('exit 6 on a non-2xx answer, 2 for an unknown target', async () => {
    const receiver = await startReceiver({ statuses: [503] });
    cleanups.push(receiver.close);
    const file = configFor(receiver.url);
    const out = await run(['notify-test', 'oncall', '--config', file]);
    expect(out.code).toBe(6);
    expect(out.stdout).toContain('→ 503\nscripted 503');
    const unknown = await run(['notify-test', 'pager', '--config', file]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('no notify: target "pager"');
  });
});
