// `npm run bench` (after scripts/build.mjs has built dist/): bundles the benchmark (bench/main.ts, which imports the
// TypeScript sources and test/support helpers it measures, and the proxy's own entry) with the same esbuild settings
// as the CLI into dist/bench/, then runs it.
// See bench/README.md.
import { build } from 'esbuild';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = join(root, 'dist', 'bench');
await build({
  absWorkingDir: root,
  // The proxy runs in a process of its own (bench/proxy-process.ts).
  entryPoints: { main: 'bench/main.ts', proxy: 'bench/proxy-main.ts' },
  outdir,
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  sourcemap: 'inline',
  legalComments: 'none',
  logLevel: 'warning',
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
});
await import(pathToFileURL(join(outdir, 'main.mjs')).href);
