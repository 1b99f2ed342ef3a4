// Bundles the CLI and every Lambda handler with esbuild. Handlers are what serverless.yml packages (one file each,
// so each cold start loads only its own code); the CLI bundle is what bin/appsctl.mjs runs.
import { build } from 'esbuild';
import { readdirSync, existsSync } from 'node:fs';

const handlers = existsSync('src/handlers')
  ? readdirSync('src/handlers').filter((f) => f.endsWith('.ts') && !f.startsWith('_'))
  : [];

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  sourcemap: false,
  legalComments: 'none',
  logLevel: 'warning',
  // ESM bundles still meet CommonJS deps that call require(); give them one.
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
};

await build({ ...common, entryPoints: ['src/cli/main.ts'], outfile: 'dist/appsctl.mjs' });
// The local stack (`npm start`): a dev tool, so it may bundle the fakes from test/support.
await build({ ...common, entryPoints: ['scripts/local-stack.ts'], outfile: 'dist/local-stack.mjs' });
if (handlers.length > 0) {
  await build({
    ...common,
    entryPoints: handlers.map((f) => `src/handlers/${f}`),
    outdir: 'dist/handlers',
    outExtension: { '.js': '.mjs' },
    minify: true,
    // The Lambda nodejs runtimes ship AWS SDK v3, but pinning our own copy keeps behaviour identical to the tests.
    external: [],
  });
}
