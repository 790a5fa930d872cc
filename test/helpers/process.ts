import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { SECRET } from './app.js';

export const CLI = join(import.meta.dirname, '../../dist/cli/main.js');

/**
 * A Node child process that logs `"bridge listening"` with its URL (the bridge, or the
 * benchmark's baseline server); resolves with that URL. Later output is read and dropped,
 * so a busy child never blocks on a full pipe and the parent spends nothing on it.
 */
export function spawnListening(args: string[], name: string, env: Record<string, string> = {}): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, args, { env: { ...process.env, SECRET, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stderr!.on('data', (d) => process.stderr.write(`[${name}] ${d}`));
  return new Promise((resolve, reject) => {
    let buffered = '';
    const onData = (chunk: Buffer) => {
      buffered += chunk;
      const line = buffered.split('\n').find((l) => l.includes('"bridge listening"'));
      if (!line) return;
      child.stdout!.off('data', onData);
      child.stdout!.resume();
      resolve({ child, url: JSON.parse(line).url });
    };
    child.stdout!.on('data', onData);
    child.on('exit', (code, signal) => signal === null && reject(new Error(`${name} exited ${code}`)));
  });
}

/** `planasonix-bridge serve` as users run it: the built CLI, SECRET in its environment. */
export const serveProcess = (config: string, name = 'bridge') => spawnListening([CLI, 'serve', '--config', config], name);
