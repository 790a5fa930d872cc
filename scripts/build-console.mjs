// Part of `npm run build`: bundles the console page (src/console/page) into
// dist/console/page with esbuild. dagre is bundled in: the page loads nothing from elsewhere.
import { copyFileSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';

const root = resolve(import.meta.dirname, '..');
const from = join(root, 'src/console/page');
const to = join(root, 'dist/console/page');
mkdirSync(to, { recursive: true });
await build({
  entryPoints: [join(from, 'main.ts')],
  outfile: join(to, 'app.js'),
  bundle: true,
  format: 'esm',
  target: 'es2022',
  minify: true,
  sourcemap: true,
  legalComments: 'linked',
  logLevel: 'warning',
});
for (const file of ['index.html', 'console.css']) copyFileSync(join(from, file), join(to, file));
