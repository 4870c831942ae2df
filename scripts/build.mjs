// Bundles each command into dist/ with esbuild: one ES module per command,
// shared chunks split out, so that `sendmail -t -i` loads only what the hot
// path needs (yargs, chalk, ora and lmdb are loaded on demand elsewhere).
import { build } from 'esbuild';
import fs from 'node:fs';

const entries = fs
  .readdirSync('src/cli')
  .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && fs.readFileSync(`src/cli/${f}`, 'utf8').includes('@entry'))
  .map((f) => `src/cli/${f}`);

fs.rmSync('dist', { recursive: true, force: true });

await build({
  entryPoints: entries,
  outdir: 'dist',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: ['lmdb'],
  banner: { js: "import { createRequire as __mailtkRequire } from 'node:module'; const require = __mailtkRequire(import.meta.url);" },
  logLevel: 'warning',
});
