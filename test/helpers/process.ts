import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { SECRET } from './app.js';

export const CLI = join(import.meta.dirname, '../../dist/cli/main.js');

/**
 * A Node child process that logs `"bridge listening"` with its URL (the bridge, or the
 * benchmark's baseline server); resolves with that URL. Later output is read and dropped,
 * so a busy child never blocks on a full pipe and the parent spends nothing on it. If
 * `signal` aborts first (a deadline), the child is killed: nobody else holds it yet.
 */
export function spawnListening(args: string[], name: string, env: Record<string, string> = {}, signal?: AbortSignal): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, args, { env: { ...process.env, SECRET, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stderr!.on('data', (d) => process.stderr.write(`[${name}] ${d}`));
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      child.kill('SIGKILL');
      reject(signal!.reason);
    };
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    let buffered = '';
    const onData = (chunk: Buffer) => {
      buffered += chunk;
      const line = buffered.split('\n').find((l) => l.includes('"bridge listening"'));
      if (!line) return;
      child.stdout!.off('data', onData);
      child.stdout!.resume();
      signal?.removeEventListener('abort', onAbort);
      resolve({ child, url: JSON.parse(line).url });
    };
    child.stdout!.on('data', onData);
    child.on('exit', (code, signal) => signal === null && reject(new Error(`${name} exited ${code}`)));
  });
}

/** SIGTERM, then SIGKILL if it has not exited after `graceMs`; resolves once it has exited. */
export async function stopChild(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** `planasonix-bridge serve` as users run it: the built CLI, SECRET in its environment. */
export const serveProcess = (config: string, name = 'bridge') => spawnListening([CLI, 'serve', '--config', config], name);

/**
 * The built CLI run to its end: resolves on `close`, not `exit`, because `exit` can come
 * before the last of the child's output has been read from its pipes.
 */
export function runCli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}
