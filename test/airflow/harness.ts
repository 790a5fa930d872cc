/**
 * Real-Airflow test harness (Node 20, node: built-ins only).
 *
 *   const af = await startAirflow({ major: 3 });
 *   // af.url = "http://127.0.0.1:<port>", af.username / af.password
 *   ...
 *   await af.stop();
 *
 * Airflow 3.3.x: api-server + scheduler + dag-processor (LocalExecutor, SQLite),
 *   SimpleAuthManager with a passwords file -> POST {url}/auth/token.
 * Airflow 2.11.x: webserver + scheduler (SequentialExecutor, SQLite),
 *   FAB basic auth on /api/v1.
 *
 * Each component runs in its own process group (spawn detached => setsid);
 * stop() sends SIGTERM to every group, then SIGKILL after a short grace period,
 * and removes the temporary AIRFLOW_HOME. pause() kills the components the same way but keeps
 * the home (metadata DB), port and env; resume() starts them again there (outage tests).
 * See NOTES.md next to this file.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, createHash } from 'node:crypto';
import { createWriteStream, existsSync, readdirSync, readFileSync, type WriteStream } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface StartAirflowOptions {
  major: 3 | 2;
  /** DAGs folder; default: test/airflow/dags next to this file. */
  dagsFolder?: string | undefined;
  /** Airflow 3 only: [api_auth] jwt_expiration_time for tokens from /auth/token. */
  jwtExpirationSeconds?: number | undefined;
  /** Airflow 3 only: [api_auth] jwt_leeway (default here: 0, upstream default 10). */
  jwtLeewaySeconds?: number | undefined;
  /** Receives harness progress lines and every stdout/stderr line of the Airflow processes. */
  log?: ((line: string) => void) | undefined;
  /** DAG ids to wait for (visible through the REST API) before resolving.
   *  Default: record_conf, paused_dag, asset_producer for the bundled folder;
   *  ['record_conf'] for a custom folder containing record_conf.py; [] otherwise. */
  waitForDags?: string[] | undefined;
  /** Also run `airflow dags reserialize` before starting the components (default false: the
   *  dag-processor / scheduler parse the folder on start-up anyway, which is faster). */
  reserialize?: boolean | undefined;
  /** Extra environment for every Airflow process (applied last). */
  env?: Record<string, string> | undefined;
  /** Overall start-up timeout (default 180 s, excluding a cold venv install). */
  timeoutMs?: number | undefined;
  /** Keep the temporary AIRFLOW_HOME (logs!) after stop(). Also: PLANASONIX_AIRFLOW_KEEP_HOME=1. */
  keepHome?: boolean | undefined;
  /** stop(): time between SIGTERM and SIGKILL of the process groups (default 1000 ms). */
  stopGraceMs?: number | undefined;
  /** Load the push plugin of airflow-plugin/ (DESIGN §7) into this Airflow, configured to post
   *  to `url` signed with `secret`. The cached venv is not touched: a one-line shim in a
   *  plugins folder inside the run's home imports the plugin from airflow-plugin/src, which is
   *  put on PYTHONPATH (so the DAGs' tasks can import it too). */
  plugin?: PluginOptions | undefined;
}

export interface PluginOptions {
  url: string;
  secret: string;
  /** [planasonix_bridge] timeout (s), tries, queue_size; the plugin's defaults otherwise. */
  timeout?: number | undefined;
  tries?: number | undefined;
  queueSize?: number | undefined;
}

export interface StartedAirflow {
  url: string;
  username: string;
  password: string;
  home: string;
  major: 3 | 2;
  /** Installed Airflow version, e.g. "3.3.2". */
  version: string;
  venv: string;
  /** Environment the Airflow processes run with (AIRFLOW_HOME, AIRFLOW__*, PATH...). */
  env: Record<string, string>;
  /** Milliseconds from startAirflow() call until resolved (including any install). */
  startupMs: number;
  stop(): Promise<void>;
  /** Simulated outage: kill every component (as stop() does) but keep the home, i.e. the same
   *  SQLite metadata DB, port, env and logs. The URL refuses connections until resume(). */
  pause(): Promise<void>;
  /** Start the components again on the same port and home; resolves once healthy and the
   *  waitForDags are visible, like startAirflow(). No-op unless paused. */
  resume(): Promise<void>;
  /** pause() then resume(). */
  restart(): Promise<void>;
}

const USERNAME = 'admin';
const PASSWORD = 'admin';

function harnessDir(): string {
  if (process.env.PLANASONIX_AIRFLOW_HARNESS_DIR) return process.env.PLANASONIX_AIRFLOW_HARNESS_DIR;
  try {
    return dirname(fileURLToPath(import.meta.url));
  } catch {
    return resolve(process.cwd(), 'test/airflow');
  }
}

/**
 * A port Airflow can bind now and again after pause(): taken below Linux's ephemeral range
 * (32768+), so no outgoing connection (the bridge retrying against a paused Airflow makes
 * many) and no `listen(0)` elsewhere can be handed it in between.
 */
export async function freePort(taken: readonly number[] = []): Promise<number> {
  for (let tries = 0; tries < 50; tries++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (taken.includes(port)) continue;
    const bound = await new Promise<boolean>((resolvePort) => {
      const srv = createServer();
      srv.unref();
      srv.once('error', () => resolvePort(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolvePort(true)));
    });
    if (bound) return port;
  }
  throw new Error('no free port in 20000-31999 after 50 tries');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run a command to completion (own process group; killed as a group on timeout). */
function run(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  log: (l: string) => void,
  tag: string,
  timeoutMs: number,
): Promise<RunResult> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => {
      if (child.pid) killTree(child.pid, 'SIGKILL');
      reject(new Error(`${tag}: timed out after ${timeoutMs} ms\n${stderr.slice(-4000)}`));
    }, timeoutMs);
    pipeLines(child.stdout!, (l) => {
      stdout += l + '\n';
      log(`[${tag}] ${l}`);
    });
    pipeLines(child.stderr!, (l) => {
      stderr += l + '\n';
      log(`[${tag}] ${l}`);
    });
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolveRun({ code, stdout, stderr });
    });
  });
}

function pipeLines(stream: NodeJS.ReadableStream, onLine: (line: string) => void, file?: WriteStream) {
  let buf = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    file?.write(chunk);
    buf += chunk;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      onLine(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  });
  stream.on('end', () => {
    if (buf) onLine(buf);
    buf = '';
  });
}

/**
 * Every component is spawned detached (=> setsid()), so it leads its own session and process
 * group. Airflow 2's DagFileProcessorManager calls setpgid(0, 0) and so escapes the scheduler's
 * process group, but it stays in the session. So we signal the process group AND every process
 * whose session id (field 6 of /proc/<pid>/stat) is one of ours.
 */
function sessionMembers(sid: number): number[] {
  const pids: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return pids; // not Linux: process-group kill only
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      // pid (comm) state ppid pgrp session ... ; comm may contain spaces/parens
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(rest[3]) === sid) pids.push(Number(e));
    } catch {
      /* exited meanwhile */
    }
  }
  return pids;
}

function killTree(leader: number, signal: NodeJS.Signals) {
  try {
    process.kill(-leader, signal);
  } catch {
    /* ESRCH: group already gone */
  }
  for (const pid of sessionMembers(leader)) {
    try {
      process.kill(pid, signal);
    } catch {
      /* gone */
    }
  }
}

/** Session leaders of all running harness instances, killed synchronously if Node exits. */
const liveLeaders = new Set<number>();
let exitHookInstalled = false;
function installExitHook() {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const pid of liveLeaders) killTree(pid, 'SIGKILL');
  });
}

async function ensureVenv(major: 2 | 3, log: (l: string) => void): Promise<string> {
  const script = join(harnessDir(), 'install.sh');
  const res = await run('bash', [script, String(major)], process.env, log, `install${major}`, 30 * 60_000);
  if (res.code !== 0) {
    throw new Error(`install.sh ${major} failed (exit ${res.code}):\n${res.stderr.slice(-4000)}`);
  }
  const lines = res.stdout.trim().split('\n');
  return (lines.at(-1) ?? '').trim();
}

/** The cached venv of Airflow `major` (installed by install.sh if missing). */
export function airflowVenv(major: 2 | 3, log: (l: string) => void = () => {}): Promise<string> {
  return ensureVenv(major, log);
}

function fernetKey(): string {
  return randomBytes(32).toString('base64').replace(/\+/g, '-').replace(/\//g, '_');
}

function baseEnv(venv: string, extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    // Never inherit Airflow config from the developer's shell.
    if (v === undefined || k.startsWith('AIRFLOW_') || k.startsWith('AIRFLOW__')) continue;
    env[k] = v;
  }
  // The Airflow 2 SequentialExecutor runs `airflow tasks run ...` via $PATH.
  env.PATH = `${join(venv, 'bin')}:${env.PATH ?? '/usr/bin:/bin'}`;
  env.VIRTUAL_ENV = venv;
  env.PYTHONUNBUFFERED = '1';
  delete env.PYTHONPATH;
  return { ...env, ...extra };
}

/**
 * `airflow db migrate` (+ admin user for Airflow 2) is the same for every start with a given
 * venv, so do it once, keep the SQLite file next to the venv and copy it for each start.
 */
async function templateDb(
  venv: string,
  major: 2 | 3,
  env: Record<string, string>,
  log: (l: string) => void,
): Promise<string> {
  const key = createHash('sha256').update(`${major}:${USERNAME}:${PASSWORD}:v1`).digest('hex').slice(0, 12);
  const dir = join(venv, '.planasonix-templates');
  const file = join(dir, `airflow-${key}.db`);
  if (existsSync(file)) return file;
  await mkdir(dir, { recursive: true });
  const work = await mkdtemp(join(tmpdir(), `airflow${major}-template-`));
  try {
    const dbFile = join(work, 'airflow.db');
    const tenv = {
      ...env,
      AIRFLOW_HOME: work,
      AIRFLOW__DATABASE__SQL_ALCHEMY_CONN: `sqlite:///${dbFile}`,
    };
    const t0 = Date.now();
    const mig = await run(join(venv, 'bin', 'airflow'), ['db', 'migrate'], tenv, log, 'db-migrate', 300_000);
    if (mig.code !== 0) throw new Error(`airflow db migrate failed:\n${mig.stderr.slice(-4000)}`);
    if (major === 2) {
      const u = await run(
        join(venv, 'bin', 'airflow'),
        ['users', 'create', '-u', USERNAME, '-p', PASSWORD, '-r', 'Admin', '-f', 'Test', '-l', 'Admin', '-e', 'admin@example.com'],
        tenv,
        log,
        'users-create',
        120_000,
      );
      if (u.code !== 0) throw new Error(`airflow users create failed:\n${u.stderr.slice(-4000)}`);
    }
    log(`[harness] template DB built in ${Date.now() - t0} ms`);
    const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
    await copyFile(dbFile, tmp);
    await rename(tmp, file); // atomic; a concurrent builder just overwrites with an equivalent file
    return file;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

async function airflowVersion(venv: string): Promise<string> {
  try {
    return (await readFile(join(venv, '.planasonix-complete'), 'utf8')).trim();
  } catch {
    return 'unknown';
  }
}

/** airflow-plugin/src of this repository (test/airflow/ is two levels below the root). */
export function pluginSourceDir(): string {
  return resolve(harnessDir(), '..', '..', 'airflow-plugin', 'src');
}

/** Writes <home>/plugins/planasonix_bridge_plugin.py and returns the env that loads and configures it. */
async function pluginShim(home: string, plugin: PluginOptions): Promise<Record<string, string>> {
  const folder = join(home, 'plugins');
  await mkdir(folder, { recursive: true });
  await writeFile(join(folder, 'planasonix_bridge_plugin.py'), 'from planasonix_bridge.plugin import PlanasonixBridgePlugin  # noqa: F401\n');
  const env: Record<string, string> = {
    AIRFLOW__CORE__PLUGINS_FOLDER: folder,
    PYTHONPATH: pluginSourceDir(),
    AIRFLOW__PLANASONIX_BRIDGE__URL: plugin.url,
    AIRFLOW__PLANASONIX_BRIDGE__SECRET: plugin.secret,
  };
  if (plugin.timeout !== undefined) env.AIRFLOW__PLANASONIX_BRIDGE__TIMEOUT = String(plugin.timeout);
  if (plugin.tries !== undefined) env.AIRFLOW__PLANASONIX_BRIDGE__TRIES = String(plugin.tries);
  if (plugin.queueSize !== undefined) env.AIRFLOW__PLANASONIX_BRIDGE__QUEUE_SIZE = String(plugin.queueSize);
  return env;
}

export async function startAirflow(opts: StartAirflowOptions): Promise<StartedAirflow> {
  const t0 = Date.now();
  const major = opts.major;
  const userLog = opts.log ?? (() => {});
  const log = (l: string) => userLog(l);
  const timeoutMs = opts.timeoutMs ?? 180_000;
  const keepHome = opts.keepHome ?? process.env.PLANASONIX_AIRFLOW_KEEP_HOME === '1';
  const dagsFolder = resolve(opts.dagsFolder ?? join(harnessDir(), 'dags'));
  const waitForDags =
    opts.waitForDags ??
    (opts.dagsFolder === undefined
      ? ['record_conf', 'paused_dag', 'asset_producer']
      : existsSync(join(dagsFolder, 'record_conf.py'))
        ? ['record_conf']
        : []);

  installExitHook();
  const venv = await ensureVenv(major, log);
  const version = await airflowVersion(venv);
  const tInstalled = Date.now();
  log(`[harness] venv ${venv} (Airflow ${version}) ready after ${tInstalled - t0} ms`);

  const home = await mkdtemp(join(tmpdir(), `planasonix-airflow${major}-`));
  /** The running generation of components; pause() empties it, resume() fills it again. */
  let groups: ChildProcess[] = [];
  let logFiles: WriteStream[] = [];
  /** Children we are killing on purpose: their exit is not "unexpected". */
  const halting = new WeakSet<ChildProcess>();
  let stopped = false;
  let paused = false;
  let failed = false;

  /** SIGTERM, short grace, SIGKILL of every component of the current generation. */
  const killComponents = async () => {
    const current = groups;
    const files = logFiles;
    groups = [];
    logFiles = [];
    for (const c of current) halting.add(c);
    const exits = current.map(
      (c) =>
        new Promise<void>((r) => {
          if (c.exitCode !== null || c.signalCode !== null) return r();
          c.once('exit', () => r());
        }),
    );
    for (const c of current) if (c.pid) killTree(c.pid, 'SIGTERM');
    // Graceful shutdown is not needed for tests; the Airflow 3 scheduler with LocalExecutor
    // does not exit on SIGTERM within 10+ s (idle executor workers), so keep the grace short.
    await Promise.race([Promise.all(exits), sleep(opts.stopGraceMs ?? 1000)]);
    // Kill stragglers (executor workers, gunicorn workers, serve-logs, DAG processor ...).
    for (const c of current) if (c.pid) killTree(c.pid, 'SIGKILL');
    await Promise.race([Promise.all(exits), sleep(2000)]);
    await sleep(100);
    for (const c of current) if (c.pid) killTree(c.pid, 'SIGKILL'); // anything forked meanwhile
    for (const c of current) {
      if (c.pid) liveLeaders.delete(c.pid);
      c.stdout?.destroy();
      c.stderr?.destroy();
    }
    for (const f of files) f.end();
  };

  const stop = async () => {
    if (stopped) return;
    stopped = true;
    const t = Date.now();
    await killComponents();
    const keep = keepHome || failed;
    if (!keep) await rm(home, { recursive: true, force: true });
    log(`[harness] stopped in ${Date.now() - t} ms${keep ? `; kept ${home}` : ''}`);
  };

  try {
    const port = await freePort();
    const workerLogPort = await freePort([port]);
    const triggerLogPort = await freePort([port, workerLogPort]);
    const url = `http://127.0.0.1:${port}`;
    const dbFile = join(home, 'airflow.db');
    await mkdir(join(home, 'logs'), { recursive: true });

    const common: Record<string, string> = {
      AIRFLOW_HOME: home,
      AIRFLOW__CORE__DAGS_FOLDER: dagsFolder,
      AIRFLOW__CORE__LOAD_EXAMPLES: 'False',
      AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION: 'False',
      AIRFLOW__CORE__FERNET_KEY: fernetKey(),
      AIRFLOW__DATABASE__SQL_ALCHEMY_CONN: `sqlite:///${dbFile}`,
      AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT: String(workerLogPort),
      AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT: String(triggerLogPort),
    };
    let perMajor: Record<string, string>;
    if (major === 3) {
      const passwordsFile = join(home, 'simple_auth_manager_passwords.json');
      await writeFile(passwordsFile, JSON.stringify({ [USERNAME]: PASSWORD }) + '\n');
      perMajor = {
        AIRFLOW__CORE__EXECUTOR: 'LocalExecutor',
        // LocalExecutor (fork) pre-spawns `parallelism` workers; the default 32 is wasteful here.
        AIRFLOW__CORE__PARALLELISM: '4',
        AIRFLOW__CORE__AUTH_MANAGER: 'airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager',
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS: `${USERNAME}:admin`,
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE: passwordsFile,
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL: `${url}/execution/`,
        AIRFLOW__API__BASE_URL: url,
        AIRFLOW__API__HOST: '127.0.0.1',
        AIRFLOW__API__PORT: String(port),
        AIRFLOW__API__WORKERS: '1',
        AIRFLOW__API__SECRET_KEY: randomBytes(16).toString('hex'),
        AIRFLOW__API_AUTH__JWT_SECRET: randomBytes(32).toString('hex'),
        AIRFLOW__API_AUTH__JWT_LEEWAY: String(opts.jwtLeewaySeconds ?? 0),
        AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL: '10',
        AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES: '1',
        AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL: '30',
        AIRFLOW__DAG_PROCESSOR__PRINT_STATS_INTERVAL: '0',
      };
      if (opts.jwtExpirationSeconds !== undefined) {
        perMajor.AIRFLOW__API_AUTH__JWT_EXPIRATION_TIME = String(opts.jwtExpirationSeconds);
      }
    } else {
      perMajor = {
        // SQLite only works with the SequentialExecutor on Airflow 2.
        AIRFLOW__CORE__EXECUTOR: 'SequentialExecutor',
        AIRFLOW__WEBSERVER__WEB_SERVER_HOST: '127.0.0.1',
        AIRFLOW__WEBSERVER__WEB_SERVER_PORT: String(port),
        AIRFLOW__WEBSERVER__BASE_URL: url,
        AIRFLOW__WEBSERVER__WORKERS: '1',
        AIRFLOW__WEBSERVER__SECRET_KEY: randomBytes(16).toString('hex'),
        AIRFLOW__API__AUTH_BACKENDS: 'airflow.providers.fab.auth_manager.api.auth.backend.basic_auth',
        AIRFLOW__SCHEDULER__DAG_DIR_LIST_INTERVAL: '10',
        AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC: '2',
        AIRFLOW__SCHEDULER__PARSING_PROCESSES: '1',
        AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL: '30',
        AIRFLOW__METRICS__TIMER_UNIT_CONSISTENCY: 'True',
      };
    }
    const pluginEnv = opts.plugin ? await pluginShim(home, opts.plugin) : {};
    const env = baseEnv(venv, { ...common, ...perMajor, ...pluginEnv, ...(opts.env ?? {}) });

    const tpl = await templateDb(venv, major, env, log);
    await copyFile(tpl, dbFile);
    const airflow = join(venv, 'bin', 'airflow');
    const tDb = Date.now();
    log(`[harness] metadata DB ready after ${tDb - t0} ms`);

    if (opts.reserialize) {
      const r = await run(airflow, ['dags', 'reserialize'], env, log, 'reserialize', 120_000);
      if (r.code !== 0) throw new Error(`airflow dags reserialize failed:\n${r.stderr.slice(-4000)}`);
      log(`[harness] reserialize done after ${Date.now() - t0} ms`);
    }

    const components = major === 3 ? ['api-server', 'scheduler', 'dag-processor'] : ['webserver', 'scheduler'];
    /** Spawns one generation of components; logs append, so a resumed generation keeps the old lines. */
    const spawnComponents = () => {
      for (const comp of components) {
        const file = createWriteStream(join(home, 'logs', `${comp}.log`), { flags: 'a' });
        const child = spawn(airflow, [comp], { env, cwd: home, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
        if (child.pid) liveLeaders.add(child.pid);
        groups.push(child);
        logFiles.push(file);
        pipeLines(child.stdout!, (l) => log(`[${comp}] ${l}`), file);
        pipeLines(child.stderr!, (l) => log(`[${comp}] ${l}`), file);
        child.on('exit', (code, sig) => {
          if (!halting.has(child)) log(`[harness] ${comp} exited unexpectedly (code ${code}, signal ${sig})`);
        });
      }
    };

    const assertAlive = () => {
      for (const [i, c] of groups.entries()) {
        if (c.exitCode !== null || c.signalCode !== null) {
          throw new Error(`airflow ${components[i]} exited during start-up (code ${c.exitCode}); logs in ${home}/logs`);
        }
      }
    };

    /** A heartbeat of a component still counts as healthy for a while after it was killed, so
     *  after a resume only heartbeats written since `since` show the new generation is up. */
    const freshSince = (status: Record<string, unknown> | undefined, since: number) =>
      Object.entries(status ?? {}).every(([k, v]) => !k.endsWith('heartbeat') || (typeof v === 'string' && Date.parse(v) >= since));

    /** 1. health, 2. DAGs visible through the REST API; returns when health went green. */
    const waitReady = async (deadline: number, since = 0): Promise<number> => {
      const healthPath = major === 3 ? '/api/v2/monitor/health' : '/health';
      for (;;) {
        assertAlive();
        if (Date.now() > deadline) throw new Error(`Airflow ${major} not healthy within ${timeoutMs} ms`);
        try {
          const res = await fetch(url + healthPath, { signal: AbortSignal.timeout(5000) });
          if (res.ok) {
            const h = (await res.json()) as Record<string, { status?: string | null }>;
            const need = major === 3 ? ['metadatabase', 'scheduler', 'dag_processor'] : ['metadatabase', 'scheduler'];
            if (need.every((k) => h[k]?.status === 'healthy' && freshSince(h[k], since))) break;
          }
        } catch {
          /* not listening yet */
        }
        await sleep(250);
      }
      const tHealthy = Date.now();

      let authHeader: string;
      if (major === 3) {
        const res = await fetch(`${url}/auth/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ username: USERNAME, password: PASSWORD }),
        });
        if (res.status !== 201) throw new Error(`POST /auth/token -> ${res.status} ${await res.text()}`);
        authHeader = `Bearer ${((await res.json()) as { access_token: string }).access_token}`;
      } else {
        authHeader = `Basic ${Buffer.from(`${USERNAME}:${PASSWORD}`).toString('base64')}`;
      }
      const api = major === 3 ? '/api/v2' : '/api/v1';
      for (const dagId of waitForDags) {
        for (;;) {
          assertAlive();
          if (Date.now() > deadline) throw new Error(`DAG ${dagId} not visible within ${timeoutMs} ms`);
          const res = await fetch(`${url}${api}/dags/${encodeURIComponent(dagId)}`, {
            headers: { authorization: authHeader },
            signal: AbortSignal.timeout(5000),
          }).catch(() => undefined);
          if (res?.status === 200) break;
          await res?.body?.cancel();
          await sleep(250);
        }
      }
      return tHealthy;
    };

    spawnComponents();
    const tHealthy = await waitReady(t0 + timeoutMs + (tInstalled - t0));
    log(`[harness] healthy after ${tHealthy - t0} ms`);
    const startupMs = Date.now() - t0;
    log(
      `[harness] Airflow ${version} up at ${url}: total ${startupMs} ms ` +
        `(venv ${tInstalled - t0} ms, db ${tDb - tInstalled} ms, healthy +${tHealthy - tDb} ms, dags +${Date.now() - tHealthy} ms)`,
    );

    // An outage, not a teardown: the home (SQLite metadata DB, logs), port and env stay, so
    // resume() brings back the same Airflow with every run it had accepted.
    const pause = async () => {
      if (stopped) throw new Error('Airflow harness: pause() after stop()');
      if (paused) return;
      paused = true;
      const t = Date.now();
      await killComponents();
      log(`[harness] paused (components killed, home kept) in ${Date.now() - t} ms`);
    };
    const resume = async () => {
      if (stopped) throw new Error('Airflow harness: resume() after stop()');
      if (!paused) return;
      const t = Date.now();
      spawnComponents();
      paused = false; // stop() must kill this generation even if the wait below fails
      try {
        await waitReady(t + timeoutMs, t);
      } catch (err) {
        failed = true; // keep AIRFLOW_HOME (logs/) for diagnosis, as a failed start does
        throw err instanceof Error ? Object.assign(err, { message: `${err.message} [AIRFLOW_HOME kept: ${home}]` }) : err;
      }
      log(`[harness] resumed at ${url} in ${Date.now() - t} ms`);
    };
    const restart = async () => {
      await pause();
      await resume();
    };

    return { url, username: USERNAME, password: PASSWORD, home, major, version, venv, env, startupMs, stop, pause, resume, restart };
  } catch (err) {
    failed = true; // keep AIRFLOW_HOME (logs/) for diagnosis; the error message names it
    await stop().catch(() => {});
    throw err instanceof Error ? Object.assign(err, { message: `${err.message} [AIRFLOW_HOME kept: ${home}]` }) : err;
  }
}
