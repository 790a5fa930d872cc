import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { SECRET } from './app.js';

export const CLI = join(import.meta.dirname, '../../dist/cli/main.js');

/**
 * `planasonix-bridge serve` as a child process, as users run it (the built CLI, SECRET in its
 * environment); resolves with its URL once it logs "bridge listening". Later log lines are
 * read and dropped so a busy bridge never blocks on a full pipe.
 */
export function serveProcess(config: string, name = 'bridge'): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [CLI, 'serve', '--config', config], { env: { ...process.env, SECRET }, stdio: ['ignore', 'pipe', 'pipe'] });
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
