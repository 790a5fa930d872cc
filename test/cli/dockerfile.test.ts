// No Docker engine here, so the image's build stage is replayed by hand: only the files its
// COPY lines bring, then the build its `npm ci` runs (prepare → npm run build). A file the
// build needs but the Dockerfile forgets fails here rather than in someone's image build.
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';
import { tempDir } from '../helpers/app.js';

const root = join(import.meta.dirname, '../..');

it('the Dockerfile build stage copies everything `npm run build` needs', async () => {
  const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');
  const buildStage = dockerfile.split(/^FROM /m)[1]!;
  const copies = [...buildStage.matchAll(/^COPY (?!--from)(.+)$/gm)].map((m) => m[1]!.trim().split(/\s+/));
  expect(copies.length).toBeGreaterThan(0);
  const temp = tempDir();
  try {
    for (const parts of copies) {
      const dest = parts.at(-1)!;
      for (const src of parts.slice(0, -1)) {
        const to = dest.endsWith('/') ? join(temp.dir, dest, src.split('/').at(-1)!) : join(temp.dir, dest);
        mkdirSync(dirname(to), { recursive: true });
        cpSync(join(root, src), to, { recursive: true });
      }
    }
    // The installed packages stand in for `npm ci` (same lock file).
    symlinkSync(join(root, 'node_modules'), join(temp.dir, 'node_modules'));
    await promisify(execFile)('npm', ['run', 'build'], { cwd: temp.dir, timeout: 120_000 });
    for (const built of ['dist/cli/main.js', 'dist/console/page/app.js', 'dist/console/page/index.html']) expect(existsSync(join(temp.dir, built)), built).toBe(true);
  } finally {
    temp.cleanup();
  }
}, 150_000);
