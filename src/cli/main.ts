#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { clearTextWarnings, formatProblems, loadConfig, type ConfigResult } from '../config/load.js';
import { buildSources } from '../ingress/sources.js';
import { createLogger } from '../log/logger.js';
import { readFile, rename, rm } from 'node:fs/promises';
import { createWriteStream, type WriteStream } from 'node:fs';
import { exportEvents } from '../lifecycle/export.js';
import { explainEvent, formatExplanation } from '../guard/explain.js';
import { openStoreIfPresent } from '../store/open.js';
import type { Store } from '../store/types.js';
import { startService } from '../service.js';
import { send } from './send.js';
import { sendNotification } from '../notify/deliver.js';
import { newNotificationId } from '../notify/types.js';

const USAGE = `usage: planasonix-bridge <command> [options]

commands:
  serve --config FILE        run the bridge (FILE defaults to $BRIDGE_CONFIG)
  check-config [FILE]        validate a config file; exit 0 when valid, 1 with every problem listed
  explain EVENT.json --config FILE [--source NAME] [--json]
                             dry run: which routes match (and why not), the rendered run,
                             what the loop guard would say; nothing is stored or sent.
                             Exit 0 if a route would trigger, 3 if none.
  send [EVENT.json] --url URL [--secret S] [--type T --pipeline ID ...]
                             sign and post a completion event (a "send test event" button):
                             --scheme standard-webhooks|hmac-sha256|jws (default standard-webhooks;
                             jws takes --key PEM --issuer --audience), --secret defaults to
                             $PLANASONIX_WEBHOOK_SECRET, --pipeline-name, --environment, --status,
                             --param k=v, --tag k=v (repeatable), --rows N (data.metrics.rows_written,
                             default 1), --header NAME,
                             --repeat N (new ids each), --duplicate (each delivery twice).
                             Exit 0 when every answer was 2xx, 6 otherwise.
  notify-test NAME --config FILE
                             send one signed test notification (type notify.test) to the
                             notify: target NAME, print the answer's status and body.
                             Exit 0 on a 2xx answer, 6 otherwise (2: no such target).
  export --config FILE [--before DATE] [--out FILE.jsonl]
                             every stored event with its jobs and attempts, one JSON object
                             a line (stdout without --out), for archiving before retention
                             prunes them; safe beside a running bridge (SQLite read-only).
                             Exit 0 when written, 7 when the store cannot be read or the file
                             cannot be written.

options:
  -c, --config FILE          config file
  -h, --help                 this text`;

// Exit codes, one table: 0 ok, 1 invalid config, 2 usage error, 3 explain: nothing would
// trigger, 4 failed to start, 5 explain: the event is not a valid completion event, 6 send
// or notify-test: an answer was not 2xx, 7 export: the store cannot be read or the output
// cannot be written.
const EXIT = { ok: 0, invalidConfig: 1, usage: 2, nothingTriggers: 3, startFailed: 4, invalidEvent: 5, sendFailed: 6, exportFailed: 7 } as const;

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        help: { type: 'boolean', short: 'h' },
        source: { type: 'string' },
        json: { type: 'boolean' },
        url: { type: 'string' },
        secret: { type: 'string' },
        scheme: { type: 'string', default: 'standard-webhooks' },
        type: { type: 'string', default: 'run.succeeded' },
        pipeline: { type: 'string' },
        'pipeline-name': { type: 'string' },
        environment: { type: 'string' },
        status: { type: 'string' },
        param: { type: 'string', multiple: true, default: [] },
        tag: { type: 'string', multiple: true, default: [] },
        key: { type: 'string' },
        issuer: { type: 'string' },
        audience: { type: 'string' },
        header: { type: 'string' },
        repeat: { type: 'string', default: '1' },
        rows: { type: 'string', default: '1' },
        duplicate: { type: 'boolean', default: false },
        before: { type: 'string' },
        out: { type: 'string' },
      },
    });
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${USAGE}\n`);
    return EXIT.usage;
  }
  const [command, ...rest] = parsed.positionals;
  if (parsed.values.help || !command) {
    process.stdout.write(`${USAGE}\n`);
    return parsed.values.help ? EXIT.ok : EXIT.usage;
  }
  if (command === 'send') return sendCommand(parsed.values, rest[0]);
  const file = parsed.values.config ?? (command === 'explain' ? undefined : rest[0]) ?? process.env.BRIDGE_CONFIG;
  if (!file) {
    process.stderr.write(`${command}: no config file (give --config FILE or set BRIDGE_CONFIG)\n`);
    return EXIT.usage;
  }

  switch (command) {
    case 'check-config':
      return checkConfig(file);
    case 'serve':
      return serve(file);
    case 'notify-test':
      if (!rest[0]) {
        process.stderr.write(`notify-test: give the target's name (notify-test NAME --config FILE)\n`);
        return EXIT.usage;
      }
      return notifyTest(file, rest[0]);
    case 'explain':
      if (!rest[0]) {
        process.stderr.write(`explain: give the event file (explain EVENT.json --config FILE)\n`);
        return EXIT.usage;
      }
      return explain(file, rest[0], parsed.values.source, parsed.values.json ?? false);
    case 'export':
      return exportCommand(file, parsed.values.before, parsed.values.out);
    default:
      process.stderr.write(`unknown command "${command}"\n\n${USAGE}\n`);
      return EXIT.usage;
  }
}

/** One signed test notification to a configured target, as the outbox would send it. */
async function notifyTest(file: string, name: string): Promise<number> {
  const loaded = await loadConfig(file);
  if (!loaded.ok) {
    process.stderr.write(`${file}: invalid config\n${formatProblems(loaded.problems)}\n`);
    return EXIT.invalidConfig;
  }
  const target = loaded.config.notify.find((t) => t.name === name);
  if (!target) {
    const known = loaded.config.notify.map((t) => t.name);
    process.stderr.write(`notify-test: no notify: target "${name}" in ${file} (${known.length ? `configured: ${known.join(', ')}` : 'none configured'})\n`);
    return EXIT.usage;
  }
  const id = newNotificationId();
  const now = Date.now();
  const body = {
    id,
    type: 'notify.test',
    created_at: new Date(now).toISOString(),
    data: { route: null, airflow: null, dag_id: null, dag_run_id: null, state: null, url: null, detail: `a test notification from planasonix-bridge notify-test to "${name}"`, planasonix: { event_id: null, run_id: null, pipeline_id: null } },
  };
  const sent = await sendNotification(target, body, now);
  process.stdout.write(`${target.format} ${id} → ${sent.status ?? 'no answer'}${sent.status === null ? ` (${sent.detail})` : ''}\n${sent.body}${sent.body.endsWith('\n') || sent.body === '' ? '' : '\n'}`);
  return sent.kind === 'delivered' ? EXIT.ok : EXIT.sendFailed;
}

async function checkConfig(file: string): Promise<number> {
  const checked = await checkedConfig(file);
  if (!checked.ok) {
    process.stderr.write(`${file}: ${checked.problems.length} problem(s)\n${formatProblems(checked.problems)}\n`);
    return EXIT.invalidConfig;
  }
  process.stdout.write(`${file}: valid\n`);
  for (const warning of [...checked.warnings, ...clearTextWarnings(checked.config)]) process.stdout.write(`warning: ${warning}\n`);
  return EXIT.ok;
}

/** Schema problems first; keys are only tried once the shape is right. */
async function checkedConfig(file: string): Promise<ConfigResult> {
  const loaded = await loadConfig(file);
  if (!loaded.ok) return loaded;
  const built = buildSources(loaded.config, Date.now);
  return built.ok ? loaded : built;
}

async function explain(file: string, eventFile: string, sourceName: string | undefined, json: boolean): Promise<number> {
  const loaded = await loadConfig(file);
  if (!loaded.ok) {
    process.stderr.write(`${file}: invalid config\n${formatProblems(loaded.problems)}\n`);
    return EXIT.invalidConfig;
  }
  const source = sourceName ?? Object.keys(loaded.config.sources)[0]!;
  if (!(source in loaded.config.sources)) {
    process.stderr.write(`explain: no source "${source}" in ${file}\n`);
    return EXIT.usage;
  }
  let body: Buffer;
  try {
    body = await readFile(eventFile);
  } catch (err) {
    process.stderr.write(`explain: cannot read ${eventFile}: ${(err as NodeJS.ErrnoException).code ?? String(err)}\n`);
    return EXIT.usage;
  }
  // The breaker's counts and learned edges come from the store when there is one; it is
  // opened read-only, so a running bridge beside it is not disturbed.
  let store: Store | undefined;
  try {
    store = await openStoreIfPresent(loaded.config.store);
  } catch (err) {
    process.stderr.write(`explain: the store cannot be read (${(err as Error).message}); breaker state and learned edges are left out\n`);
  }
  try {
    const result = await explainEvent(body, source, loaded.config, store, Date.now());
    if (!result.ok) {
      process.stderr.write(`explain: ${eventFile}: ${result.error.message}\n`);
      return EXIT.invalidEvent;
    }
    process.stdout.write(json ? `${JSON.stringify(result.value, null, 2)}\n` : `${formatExplanation(result.value)}\n`);
    return result.value.would_trigger > 0 ? EXIT.ok : EXIT.nothingTriggers;
  } finally {
    await store?.close();
  }
}

async function exportCommand(file: string, beforeText: string | undefined, out: string | undefined): Promise<number> {
  const before = beforeText === undefined ? undefined : new Date(beforeText);
  if (before && Number.isNaN(before.getTime())) {
    process.stderr.write(`export: --before "${beforeText}" is not a date (e.g. 2026-11-01 or 2026-11-01T00:00:00Z)\n`);
    return EXIT.usage;
  }
  const loaded = await loadConfig(file);
  if (!loaded.ok) {
    process.stderr.write(`${file}: invalid config\n${formatProblems(loaded.problems)}\n`);
    return EXIT.invalidConfig;
  }
  // Read-only beside a running bridge (SQLite opened readonly; PostgreSQL plain reads).
  let store: Store | undefined;
  try {
    store = await openStoreIfPresent(loaded.config.store);
  } catch (err) {
    process.stderr.write(`export: the store cannot be read: ${(err as Error).message}\n`);
    return EXIT.exportFailed;
  }
  if (!store) {
    process.stderr.write(`export: no store at ${loaded.config.store.url}\n`);
    return EXIT.exportFailed;
  }
  // A file is written beside its name and renamed when complete: a half-written archive never looks whole.
  const partial = out ? `${out}.partial` : undefined;
  const sink = partial ? createWriteStream(partial) : process.stdout;
  const failed = new Promise<never>((_, reject) => sink.once('error', reject));
  failed.catch(() => {});
  try {
    const n = await Promise.race([exportEvents(store, sink, before ? { before } : {}), failed]);
    if (partial) {
      await Promise.race([new Promise<void>((resolve) => (sink as WriteStream).end(resolve)), failed]);
      await rename(partial, out!);
    }
    process.stderr.write(`export: ${n} event(s)${out ? ` written to ${out}` : ''}\n`);
    return EXIT.ok;
  } catch (err) {
    process.stderr.write(`export: failed: ${(err as Error).message}\n`);
    if (partial) await rm(partial, { force: true });
    return EXIT.exportFailed;
  } finally {
    await store.close();
  }
}

async function sendCommand(v: Record<string, string | boolean | string[] | undefined>, eventFile: string | undefined): Promise<number> {
  const repeat = Number(v.repeat);
  const rows = Number(v.rows);
  if (typeof v.url !== 'string' || !Number.isInteger(repeat) || repeat < 1 || v.rows === '' || !Number.isSafeInteger(rows) || rows < 0) {
    process.stderr.write(`send: give --url URL (and --repeat as a positive integer, --rows as a whole number ≥ 0)\n\n${USAGE}\n`);
    return EXIT.usage;
  }
  const str = (k: string) => (typeof v[k] === 'string' ? (v[k] as string) : undefined);
  const secret = str('secret') ?? process.env.PLANASONIX_WEBHOOK_SECRET;
  try {
    const failures = await send(
      {
        ...(eventFile ? { file: eventFile } : {}),
        type: str('type')!,
        ...(str('pipeline') ? { pipeline: str('pipeline')! } : {}),
        ...(str('pipeline-name') ? { pipelineName: str('pipeline-name')! } : {}),
        ...(str('environment') ? { environment: str('environment')! } : {}),
        ...(str('status') ? { status: str('status')! } : {}),
        params: v.param as string[],
        tags: v.tag as string[],
        rows,
        url: v.url,
        scheme: str('scheme')!,
        ...(secret ? { secret } : {}),
        ...(str('key') ? { key: str('key')! } : {}),
        ...(str('issuer') ? { issuer: str('issuer')! } : {}),
        ...(str('audience') ? { audience: str('audience')! } : {}),
        ...(str('header') ? { header: str('header')! } : {}),
        repeat,
        duplicate: v.duplicate === true,
      },
      (line) => process.stdout.write(`${line}\n`),
    );
    return failures === 0 ? EXIT.ok : EXIT.sendFailed;
  } catch (err) {
    process.stderr.write(`send: ${(err as Error).message}\n`);
    return EXIT.usage;
  }
}

async function serve(file: string): Promise<number> {
  const loaded = await loadConfig(file);
  if (!loaded.ok) {
    process.stderr.write(`${file}: invalid config, not starting\n${formatProblems(loaded.problems)}\n`);
    return EXIT.invalidConfig;
  }
  const logger = createLogger(loaded.config.log.level);
  boundHeapGrowth();
  let started;
  try {
    started = await startService(loaded.config, logger, file);
  } catch (err) {
    logger.fatal({ err }, 'failed to start');
    return EXIT.startFailed;
  }
  if (!started.ok) {
    process.stderr.write(`${file}: invalid config, not starting\n${formatProblems(started.problems)}\n`);
    return EXIT.invalidConfig;
  }
  const { running } = started;
  await new Promise<void>((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      logger.info({ signal }, 'signal received');
      void running.stop().then(resolve);
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
    // Reload: a valid file is swapped in; an invalid one is refused and logged, the old kept.
    process.on('SIGHUP', () => {
      logger.info({ signal: 'SIGHUP' }, 'reloading config');
      void running.reload();
    });
  });
  return EXIT.ok;
}

/**
 * V8 lets the old generation grow to up to 4× its live size before a full collection when
 * the machine has memory to spare. The bridge's live heap is ~25 MB, but under load about a
 * sixth of what requests allocate survives into the old generation, so RSS reached ~220 MB,
 * mostly garbage waiting for that collection. Growing by 1.5× instead kept peak RSS near
 * 150 MB in the ingest benchmark for ~1% more time in (incremental) major GCs. Only the
 * collector's schedule changes; there is no heap ceiling, so nothing can run out of memory
 * sooner. An operator's own setting (NODE_OPTIONS or node flags) wins.
 */
function boundHeapGrowth(): void {
  const given = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
  if (given.some((a) => /^--(?:heap-growing-percent|heap_growing_percent)\b/.test(a))) return;
  setFlagsFromString('--heap-growing-percent=50');
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = EXIT.startFailed;
  },
);
