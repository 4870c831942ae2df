// Bundles each command into dist/ with esbuild: one ES module per command,
// shared chunks split out, so that `sendmail -t -i` loads only what the hot
// path needs (chalk, ora, proper-lockfile and the listeners are loaded on
// demand). The new tree is built beside dist/ and swapped in with renames, so
// a command running meanwhile never finds dist/ missing.
import { build } from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

process.chdir(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..'));
const entries = fs
  .readdirSync('src/cli')
  .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && fs.readFileSync(`src/cli/${f}`, 'utf8').includes('@entry'))
  .map((f) => `src/cli/${f}`);

const fresh = `dist.new-${process.pid}`;
const old = `dist.old-${process.pid}`;
await build({
  entryPoints: entries,
  outdir: fresh,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  banner: { js: "import { createRequire as __mailtkRequire } from 'node:module'; const require = __mailtkRequire(import.meta.url);" },
  logLevel: 'warning',
});
// Old chunks stay reachable until the swap: a running command keeps its imports.
if (fs.existsSync('dist')) fs.renameSync('dist', old);
fs.renameSync(fresh, 'dist');
fs.rmSync(old, { recursive: true, force: true });
