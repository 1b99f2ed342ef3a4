// Bundles the CLI and every Lambda handler with esbuild. Handlers are what serverless.yml packages (one file each,
// so each cold start loads only its own code); the CLI bundle is what bin/appsctl.mjs runs.
import { build } from 'esbuild';
import { readdirSync, existsSync, readFileSync } from 'node:fs';

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

/**
 * zod 4's `import { z } from 'zod'` hands out one namespace object holding all of zod (every locale, JSON Schema
 * conversion…), which esbuild cannot tree-shake; `import * as z from 'zod'` (zod 4's documented form) lets it keep only
 * what is used. Same zod, same behaviour: ~360 KB less per handler. Rewritten at build time so that src/ keeps its
 * imports; if src/ switches to `import * as z`, this does nothing.
 */
const zodNamespaceImport = {
  name: 'zod-namespace-import',
  setup(b) {
    b.onLoad({ filter: /[\\/]src[\\/].*\.ts$/ }, (args) => {
      const text = readFileSync(args.path, 'utf8');
      return { contents: text.replace(/^import \{ z \} from 'zod';$/gm, "import * as z from 'zod';"), loader: 'ts' };
    });
  },
};

if (handlers.length > 0) {
  await build({
    ...common,
    entryPoints: handlers.map((f) => `src/handlers/${f}`),
    outdir: 'dist/handlers',
    outExtension: { '.js': '.mjs' },
    minify: true,
    // The Lambda nodejs runtimes ship AWS SDK v3, but pinning our own copy keeps behaviour identical to the tests.
    external: [],
    // The ES module builds of the AWS SDK (dist-es) rather than esbuild's default for node, CommonJS (dist-cjs): the
    // same SDK code, but ESM lets esbuild drop the commands and models a handler never uses (~440 KB per handler).
    // Packages with an `exports` map resolve as before. (What AWS CDK's NodejsFunction does for ESM output too.)
    mainFields: ['module', 'main'],
    plugins: [zodNamespaceImport],
  });
}
